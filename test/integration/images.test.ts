import { afterAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from '../support/harness.js';
import { imageContract } from '../support/image-contract.js';

/**
 * The contract on images users bring, not only slotq's own (built by scripts/build-images.sh, no registry):
 * (a) Debian, root by default, no USER line; (b) a named user with uid 1234 and a home; (c) busybox only,
 * FROM scratch, no bash and no coreutils, uid 1000 with no passwd entry; (d) slotq's own sandbox.
 * Every image must give the same results; where a tool cannot be offered, the result says so.
 */
const IMAGES = [
  { name: 'root by default (Debian)', image: 'slotq-test-root:latest', uid: 0, bash: true, tmux: true },
  { name: 'named user uid 1234', image: 'slotq-test-named:latest', uid: 1234, bash: true, tmux: false },
  { name: 'busybox only', image: 'slotq-test-busybox:latest', uid: 1000, bash: false, tmux: false },
  { name: "slotq's sandbox", image: 'slotq-sandbox:latest', uid: 1000, bash: true, tmux: true },
] as const;

describe.each(IMAGES)('any image: $name ($image)', (img) => imageContract(img));

describe('images a worker cannot use, and the user and root filesystem options', () => {
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.close();
  });

  it('fails at start with one line naming the image: missing (SLOTQ_PULL=never), or a user it does not have', async () => {
    h = harness();
    await expect(h.worker({ image: 'slotq-no-such-image:nope', pull: 'never' })).rejects.toThrow(/image slotq-no-such-image:nope is not on this Docker engine and SLOTQ_PULL=never/);
    await expect(h.worker({ image: 'slotq-test-named:latest', user: 'nosuchuser' })).rejects.toThrow(/image slotq-test-named:latest cannot run as user "nosuchuser"/);
  });

  it('runs as SLOTQ_USER (root in a named-user image) on a read-only root filesystem, with /workspace, /tmp and HOME writable', async () => {
    const w = await h!.worker({ image: 'slotq-test-named:latest', user: '0', readOnlyRootfs: true, slots: 1 });
    expect(w.config.readOnlyRootfs).toBe(true);
    const b = await h!.backend();
    const s = await b.acquire();
    const [r] = await b.executeBatch([[s, 'bash', { command: 'id -u; touch /workspace/a /tmp/b "$HOME/c" && echo ok; touch /etc/x 2>/dev/null || echo read-only' }]]);
    expect(r).toMatchObject({ success: true, output: '0\nok\nread-only\n' });
  });
});
