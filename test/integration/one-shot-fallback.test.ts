import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import type { AttachedProcess } from '../../src/worker/container-driver.js';
import { slotContainerSpec } from '../../src/worker/container-spec.js';
import { DockerDriver } from '../../src/worker/docker-driver.js';
import { profileImage } from '../../src/worker/image-profile.js';
import { SlotRuntime } from '../../src/worker/slot-runtime.js';
import { uniquePrefix } from '../support/harness.js';

/** A Docker driver on which no executor session can start: every call must take the one-shot path. */
class NoSessionDriver extends DockerDriver {
  override attach(): Promise<AttachedProcess> {
    return Promise.reject(new Error('attach refused (test)'));
  }
}

const driver = new NoSessionDriver();
let containerId: string | undefined;
afterEach(async () => {
  if (containerId) await driver.remove(containerId);
  containerId = undefined;
});

it('falls back to one plain docker exec per call when no session can start: output, exit code, bounded output, timeout', async () => {
  const config = loadConfig({ prefix: uniquePrefix() });
  const log = createLogger({ level: 'silent' });
  const profile = await profileImage(driver, config, slotContainerSpec(config, 'fallback-test'), log);
  containerId = await driver.create(slotContainerSpec(config, 'fallback-test', profile));
  const slot = new SlotRuntime('fallback-s0', containerId, driver, { sh: profile.shell ?? '', stateful: profile.bash ?? '', tmux: '', networkIsolated: true }, log);

  const r = await slot.run({ mode: 's', command: 'echo out; echo err >&2; cat; exit 3', stdin: Buffer.from('in\n'), timeoutMs: 10_000 });
  expect([r.exitCode, r.timedOut, r.stdout.head.toString(), r.stderr.head.toString()]).toEqual([3, false, 'out\nin\n', 'err\n']);

  const big = await slot.run({ mode: 's', command: 'head -c 50000000 /dev/zero', timeoutMs: 30_000 });
  expect(big.stdout.totalBytes).toBe(50_000_000);
  expect(big.stdout.head.length + big.stdout.tail.length).toBeLessThanOrEqual(200_000);

  const slow = await slot.run({ mode: 's', command: 'sleep 100 & sleep 100', timeoutMs: 1000 });
  expect([slow.timedOut, slow.exitCode]).toEqual([true, -1]);
  const ps = await slot.run({ mode: 's', command: 'ps -eo args', timeoutMs: 10_000 });
  expect(ps.stdout.head.toString()).not.toContain('sleep 100');
});
