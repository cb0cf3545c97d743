import { afterEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import type { AttachedProcess } from '../../src/worker/executor/exec-port.js';
import { slotContainerSpec } from '../../src/worker/engine/container-spec.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { profileImage } from '../../src/worker/engine/image-profile.js';
import { CAPTURE_HEAD_BYTES } from '../../src/worker/executor/bounded-capture.js';
import { SlotRuntime } from '../../src/worker/lifecycle/slot-runtime.js';
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

/** Runs fn while sampling this process's Buffer memory; returns fn's value and the peak growth over the start. */
async function peakBufferGrowth<T>(fn: () => Promise<T>): Promise<{ value: T; peakBytes: number }> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 10);
  try {
    const value = await fn();
    return { value, peakBytes: Math.max(peak, process.memoryUsage().arrayBuffers) - base };
  } finally {
    clearInterval(sample);
  }
}

it('a one-shot exec keeps bounded output whatever it prints: 200 MB in, head and tail out, memory flat', async () => {
  const config = loadConfig({ prefix: uniquePrefix() });
  const log = createLogger({ level: 'silent' });
  const profile = await profileImage(driver, config, slotContainerSpec(config, 'fallback-test'), log);
  containerId = await driver.create(slotContainerSpec(config, 'fallback-test', profile));
  const id = containerId;
  const MB200 = 200_000_000;
  // The driver's exec with no cap given (the out-of-band kill path, the image probe): bounded by default.
  const plain = await peakBufferGrowth(() => driver.exec(id, ['/bin/sh', '-c', `head -c ${MB200} /dev/zero; head -c ${MB200} /dev/zero >&2`], { timeoutMs: 120_000 }));
  expect([plain.value.exitCode, plain.value.stdoutCapture.totalBytes, plain.value.stderrCapture.totalBytes]).toEqual([0, MB200, MB200]);
  expect([plain.value.stdout.length, plain.value.stderr.length]).toEqual([2 * CAPTURE_HEAD_BYTES, 2 * CAPTURE_HEAD_BYTES]);
  // 400 MB went through; before the fix all of it was held (twice, with the final concat).
  expect(plain.peakBytes).toBeLessThan(150 * 1024 * 1024);
  // slotq's own scripts keep stdout whole up to their bound, and only count what lies beyond.
  const whole = await driver.exec(id, ['/bin/sh', '-c', 'head -c 3000000 /dev/zero; echo tail'], { timeoutMs: 60_000, wholeStdoutBytes: 1_000_000 });
  expect([whole.stdout.length, whole.stdoutCapture.totalBytes]).toEqual([1_000_000, 3_000_005]);
  // The one-shot fallback of a call: the same bound, the call's output capped as a session's.
  const slot = new SlotRuntime('fallback-s1', id, driver, { sh: profile.shell ?? '', stateful: profile.bash ?? '', tmux: '', networkIsolated: true }, log);
  const big = await peakBufferGrowth(() => slot.run({ mode: 's', command: `head -c ${MB200} /dev/zero`, timeoutMs: 60_000 }));
  expect([big.value.exitCode, big.value.stdout.totalBytes, big.value.stdout.head.length + big.value.stdout.tail.length]).toEqual([0, MB200, 2 * CAPTURE_HEAD_BYTES]);
  expect(big.peakBytes).toBeLessThan(150 * 1024 * 1024);
});
