import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { SlotBackend } from '../../src/index.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { containersOf, harness, redisUrl, uniquePrefix, waitFor, type Harness } from '../support/harness.js';
import { imageContract } from '../support/image-contract.js';
import { startWorkerProcess } from '../../tools/testkit/processes.js';
import { runsIn } from '../../tools/testkit/docker.js';
import { killContainerMidCall } from '../support/container-kill.js';

/**
 * The same contract under gVisor (SLOTQ_RUNTIME=runsc, registered by scripts/provision.sh) on slotq's sandbox
 * and a busybox-only image, then the faults: a container killed from outside, a worker SIGKILLed (the
 * lifeline ends its containers), and the start checks.
 */
const IMAGES = [
  { name: "slotq's sandbox", image: 'slotq-sandbox:latest', uid: 1000, bash: true, tmux: true },
  { name: 'busybox only', image: 'slotq-test-busybox:latest', uid: 1000, bash: false, tmux: false },
] as const;

const runtimeOf = async (containerId: string): Promise<string> =>
  (await promisify(execFile)('docker', ['inspect', '-f', '{{.HostConfig.Runtime}}', containerId])).stdout.trim();

describe.each(IMAGES)('gVisor (runsc): $name ($image)', (img) => imageContract({ ...img, runtime: 'runsc' }));

describe('gVisor (runsc): faults and start checks', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('runs slots under runsc, says so in the registry, and survives a container killed mid-call', async () => {
    h = harness();
    const w = await h.worker({ runtime: 'runsc', slots: 1 });
    expect(await new Registry(h.redis(), w.keys).workerInfo(w.workerId)).toMatchObject({ runtime: 'runsc', image: 'slotq-sandbox:latest' });
    const b = await h.backend();
    const s = await b.acquire();
    expect(await runtimeOf(w.slots.get(s.slotId)!.containerId)).toBe('runsc');
    const { after } = await killContainerMidCall(b, w, s, 'cat before.txt 2>/dev/null; echo ok');
    expect(after).toMatchObject({ success: true, output: 'ok\n' });
    expect(await runtimeOf(w.slots.get(s.slotId)!.containerId)).toBe('runsc');
  });

  it('a worker killed with SIGKILL: calls return WORKER_LOST and its gVisor containers end with it', async () => {
    const prefix = uniquePrefix();
    const env = { REDIS_URL: redisUrl(), SLOTQ_PREFIX: prefix, SLOTQ_SLOTS: '1', SLOTQ_WORKER_LOST_MS: '3000', SLOTQ_WARM_SPARES: '0', SLOTQ_RUNTIME: 'runsc' };
    const worker = await startWorkerProcess('slotq worker (runsc, to be killed)', env, [], 60_000);
    const b = new SlotBackend({ redisUrl: redisUrl(), prefix, workerLostMs: 3000 });
    await b.start();
    try {
      const s = await b.acquire('a');
      const batch = b.executeBatch([[s, 'bash', { command: 'sleep 60' }]]);
      const [id] = await containersOf(prefix);
      expect(await runtimeOf(id!)).toBe('runsc');
      await waitFor(() => runsIn(id!, 'sleep 60'), 20_000, 'the call to start');
      await worker.kill();
      const [r] = await batch;
      expect(r!.metadata).toMatchObject({ code: 'WORKER_LOST', retryable: false, outcome: 'unknown' }); // it had started
      await waitFor(async () => (await containersOf(prefix)).length === 0, 40_000, 'orphaned containers to end');
    } finally {
      await b.stop({ purge: true });
      await worker.kill();
    }
  });

  it('fails at start with one line saying how to register a runtime dockerd lacks, and refuses a network under runsc --network=none', async () => {
    h = harness();
    await expect(h.worker({ runtime: 'slotq-no-such-runtime' })).rejects.toThrow(/SLOTQ_RUNTIME=slotq-no-such-runtime: the Docker engine offers no runtime .*daemon\.json.*kill -HUP/);
    await expect(h.worker({ runtime: 'runsc', network: 'bridge' })).rejects.toThrow(/SLOTQ_NETWORK=bridge with SLOTQ_RUNTIME=runsc: .*--network=none/);
  });
});
