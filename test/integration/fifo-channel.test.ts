import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterEach, expect, it } from 'vitest';
import { loadConfig, type SlotqOptions } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { slotContainerSpec } from '../../src/worker/engine/container-spec.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { profileImage } from '../../src/worker/engine/image-profile.js';
import { SlotRuntime } from '../../src/worker/lifecycle/slot-runtime.js';
import { uniquePrefix } from '../support/harness.js';

const log = createLogger({ level: 'silent' });
const made: Array<{ driver: DockerDriver; id: string }> = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const { driver, id } of made.splice(0)) await driver.remove(id);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A slot on a fresh driver (so an earlier fallback does not carry over), made with the given settings. */
async function slotWith(opts: SlotqOptions): Promise<{ slot: SlotRuntime; driver: DockerDriver; onFifos: () => boolean }> {
  const driver = new DockerDriver();
  const config = loadConfig({ prefix: uniquePrefix(), ...opts });
  const profile = await profileImage(driver, config, slotContainerSpec(config, 'fifo-test'), log);
  const id = await driver.create(slotContainerSpec(config, 'fifo-test', profile));
  made.push({ driver, id });
  const slot = new SlotRuntime('fifo-s0', id, driver, { sh: profile.shell ?? '', stateful: profile.bash ?? '', tmux: '', networkIsolated: true }, log);
  await slot.openSession();
  const onFifos = (): boolean => (slot as unknown as { session?: { onFifos: boolean } }).session?.onFifos ?? false;
  return { slot, driver, onFifos };
}

it('carries calls over the FIFO channel: output, stdin, stderr, exit codes, timeouts, state; the FIFO names are gone once it is up', async () => {
  const dir = await mkdtemp(`${tmpdir()}/slotq-ch-`);
  dirs.push(dir);
  const { slot, onFifos } = await slotWith({ channel: 'fifo', channelDir: dir });
  expect(onFifos()).toBe(true);

  const r = await slot.run({ mode: 's', command: 'echo out; echo err >&2; cat; exit 3', stdin: Buffer.from('in\n'), timeoutMs: 10_000 });
  expect([r.exitCode, r.timedOut, r.stdout.head.toString(), r.stderr.head.toString()]).toEqual([3, false, 'out\nin\n', 'err\n']);
  // A command cannot open the channel by name, nor print a line that ends its call early.
  const ls = await slot.run({ mode: 's', command: 'ls -A /run/slotq-ch; printf "R 0 0\\nFREADY\\n"', timeoutMs: 10_000 });
  expect([ls.exitCode, ls.stdout.head.toString()]).toEqual([0, 'R 0 0\nFREADY\n']);
  const big = await slot.run({ mode: 's', command: 'head -c 5000000 /dev/zero', timeoutMs: 30_000 });
  expect(big.stdout.totalBytes).toBe(5_000_000);
  const slow = await slot.run({ mode: 's', command: 'sleep 100', timeoutMs: 1000 });
  expect([slow.timedOut, slow.exitCode]).toEqual([true, -1]);
  await slot.run({ mode: 't', command: 'X=kept', timeoutMs: 10_000 });
  const st = await slot.run({ mode: 't', command: 'echo $X', timeoutMs: 10_000 });
  expect(st.stdout.head.toString()).toBe('kept\n');
  expect(onFifos()).toBe(true);
});

it('falls back to the attached stream when the engine does not see the worker\'s channel directory (compose without the shared volume)', async () => {
  const dir = await mkdtemp(`${tmpdir()}/slotq-ch-`);
  const elsewhere = await mkdtemp(`${tmpdir()}/slotq-ch-engine-`);
  dirs.push(dir, elsewhere);
  const { slot, onFifos } = await slotWith({ channel: 'fifo', channelDir: dir, channelHostDir: elsewhere });
  expect(onFifos()).toBe(false);
  const r = await slot.run({ mode: 's', command: 'echo still works', timeoutMs: 10_000 });
  expect([r.exitCode, r.stdout.head.toString()]).toEqual([0, 'still works\n']);
});
