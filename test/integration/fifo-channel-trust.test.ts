import { closeSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { slotContainerSpec } from '../../src/worker/engine/container-spec.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { CHANNEL_DIR_MODE, CHANNEL_MAX_FAILURES, channelGivenUp, openOwnFifo } from '../../src/worker/executor/fifo-channel.js';
import { profileImage, type ImageProfile } from '../../src/worker/engine/image-profile.js';
import { SlotRuntime } from '../../src/worker/lifecycle/slot-runtime.js';
import { uniquePrefix } from '../support/harness.js';

/**
 * Issue 20 item 2: the FIFO channel's directory is no writable host directory inside the slot. The worker
 * makes it (0311, its own) and the FIFOs in it; the slot sees it read-only; the worker opens only the FIFOs
 * it made; a failed handshake costs that session only.
 */

const log = createLogger({ level: 'silent' });
const made: Array<{ driver: DockerDriver; id: string }> = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const { driver, id } of made.splice(0)) await driver.remove(id);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

interface TestSlot {
  slot: SlotRuntime;
  id: string;
  /** The worker's path of the slot's channel directory. */
  hostDir: string;
  onFifos: () => boolean;
}

/** One driver and channel root per test, with as many slots on it as asked for (a worker's slots share both). */
async function workerOn(image: string): Promise<{ driver: DockerDriver; profile: ImageProfile; slot: (name: string) => Promise<TestSlot> }> {
  const driver = new DockerDriver();
  const channelDir = await mkdtemp(`${tmpdir()}/slotq-ch-`);
  dirs.push(channelDir);
  const config = loadConfig({ prefix: uniquePrefix(), image, channel: 'fifo', channelDir });
  const profile = await profileImage(driver, config, slotContainerSpec(config, 'fifo-trust'), log);
  const slot = async (name: string): Promise<TestSlot> => {
    const id = await driver.create(slotContainerSpec(config, 'fifo-trust', profile));
    made.push({ driver, id });
    const slot = new SlotRuntime(name, id, driver, { sh: profile.shell ?? '', stateful: profile.bash ?? '', tmux: '', networkIsolated: true }, log);
    await slot.openSession();
    const onFifos = (): boolean => (slot as unknown as { session?: { onFifos: boolean } }).session?.onFifos ?? false;
    return { slot, id, hostDir: driver.channelDir(id)!.path, onFifos };
  };
  return { driver, profile, slot };
}

const sh = (slot: SlotRuntime, command: string, timeoutMs = 30_000) => slot.run({ mode: 's', command, timeoutMs });
const out = async (slot: SlotRuntime, command: string): Promise<string> => (await sh(slot, command)).stdout.head.toString();

/** What the worker's side of the directory holds: nothing (FIFO names go once open), and no data blocks. */
async function expectEmpty(hostDir: string): Promise<void> {
  expect(await readdir(hostDir)).toEqual([]);
  expect(execFileSync('du', ['-s', '--block-size=1', hostDir]).toString().split('\t')[0]).toBe(String((await stat(hostDir)).blocks * 512));
  expect((await stat(hostDir)).mode & 0o7777).toBe(CHANNEL_DIR_MODE);
}

// The root-by-default image, a named user whose uid is not 1000, and busybox (uid 1000, no passwd entry).
describe.each([
  { image: 'slotq-test-root:latest', uid: 0 },
  { image: 'slotq-test-named:latest', uid: 1234 },
  { image: 'slotq-test-busybox:latest', uid: 1000 },
])('the channel directory on $image (uid $uid)', ({ image, uid }) => {
  it('is read-only and unlistable in the slot: 100 MB of dd, a file, a symlink, a chmod all fail, and the host directory stays empty', async () => {
    const w = await workerOn(image);
    expect(w.profile.uid).toBe(uid);
    const a = await w.slot('trust-a');
    expect(a.onFifos()).toBe(true);
    expect(await out(a.slot, 'id -u')).toBe(`${uid}\n`);

    const dd = await sh(a.slot, 'dd if=/dev/zero of=/run/slotq-ch/big bs=1M count=100');
    expect(dd.exitCode).not.toBe(0);
    expect(dd.stderr.head.toString()).toMatch(/Read-only file system|Permission denied/);
    const tries = await sh(a.slot, 'cd /run/slotq-ch || exit 9; for t in ": > f" "mkdir d" "ln -s /proc/self/fd/1 i" "chmod 777 ." "ls ."; do sh -c "$t" 2>/dev/null && echo "$t: done"; done; echo end');
    expect([tries.exitCode, tries.stdout.head.toString()]).toEqual([0, 'end\n']);
    await expectEmpty(a.hostDir);
    // The channel still carries calls.
    expect(await out(a.slot, 'echo fine')).toBe('fine\n');
    expect(a.onFifos()).toBe(true);
  });

  it('survives the symlink attack: names swapped by a process left behind, then the supervisor killed; the next calls reach this slot, a neighbour is unaffected', async () => {
    const w = await workerOn(image);
    const [a, b] = [await w.slot('trust-a'), await w.slot('trust-b')];
    expect([a.onFifos(), b.onFifos()]).toEqual([true, true]);
    await sh(a.slot, 'echo slot-a > /workspace/mark');
    await sh(b.slot, 'echo slot-b > /workspace/mark');
    const hostA = await out(a.slot, 'cat /etc/hostname');
    expect(hostA).toBe(`${a.id.slice(0, 12)}\n`);

    // Left behind (its own session, so the call's group kill misses it): keeps trying to put symlinks in place
    // of the channel's names while the next handshake runs, until its container goes at the end of the test.
    const swapper = "setsid sh -c 'while :; do for f in i o x; do rm -f /run/slotq-ch/$f; ln -sf /proc/self/fd/1 /run/slotq-ch/$f; mv /run/slotq-ch/$f /run/slotq-ch/y; done; sleep 0.05 2>/dev/null || sleep 1; done' </dev/null >/dev/null 2>&1 &";
    const attack = await sh(a.slot, `${swapper} sleep 1; kill -9 $PPID; sleep 5`).then(
      (r) => ({ ok: true, r }),
      (err: unknown) => ({ ok: false, err }),
    );
    expect(attack.ok).toBe(false); // the session died with the call (its result is lost, the slot lives)
    // The swapper is still there (its command line, read from /proc: not every image has ps).
    expect(await out(a.slot, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done 2>/dev/null")).toMatch(/while :; do for f in i o x/);

    // The next calls get a new session, on FIFOs again, and reach this slot's executor only.
    expect(await out(a.slot, 'cat /workspace/mark; cat /etc/hostname')).toBe(`slot-a\n${hostA}`);
    expect(a.onFifos()).toBe(true);
    expect(await out(b.slot, 'cat /workspace/mark')).toBe('slot-b\n');
    expect(b.onFifos()).toBe(true);
    await expectEmpty(a.hostDir);
    await expectEmpty(b.hostDir);
  });
});

it('a failed handshake costs only that session the channel: its neighbours and new slots stay on FIFOs; after repeated failures the container stops trying', async () => {
  const w = await workerOn('slotq-test-busybox:latest');
  const [a, b] = [await w.slot('fail-a'), await w.slot('fail-b')];
  expect([a.onFifos(), b.onFifos()]).toEqual([true, true]);

  // A's container keeps the directory it was given; the worker's path of it now names a fresh one the
  // container does not see: the supervisor finds no FIFO and answers NOFIFO.
  await rename(a.hostDir, `${a.hostDir}.gone`);
  await mkdir(a.hostDir, { mode: CHANNEL_DIR_MODE });
  await a.slot.openSession();
  expect(a.onFifos()).toBe(false);
  expect(await out(a.slot, 'cat /etc/hostname')).toBe(`${a.id.slice(0, 12)}\n`); // on the attached stream

  await b.slot.openSession();
  expect(b.onFifos()).toBe(true);
  const c = await w.slot('fail-c');
  expect(c.onFifos()).toBe(true);
  expect(await out(c.slot, 'echo c')).toBe('c\n');

  // After CHANNEL_MAX_FAILURES in a row, A's sessions do not try again, even once its directory is back.
  for (let i = 1; i < CHANNEL_MAX_FAILURES; i++) await a.slot.openSession();
  expect(channelGivenUp(a.hostDir)).toBe(true);
  await rm(a.hostDir, { recursive: true });
  await rename(`${a.hostDir}.gone`, a.hostDir);
  await a.slot.openSession();
  expect(a.onFifos()).toBe(false);
  expect(await out(a.slot, 'echo still')).toBe('still\n');
  expect(await readdir(a.hostDir)).toEqual([]); // no FIFO made for a session that does not try
});

it('the worker opens only the FIFO it made: a symlink, a regular file or another FIFO under its name is refused', async () => {
  const dir = await mkdtemp(`${tmpdir()}/slotq-ch-open-`);
  dirs.push(dir);
  execFileSync('mkfifo', ['-m', '600', `${dir}/fifo`, `${dir}/other`]);
  const ino = (await stat(`${dir}/fifo`)).ino;
  await symlink('/proc/self/fd/1', `${dir}/link`);
  await symlink(`${dir}/fifo`, `${dir}/link-to-fifo`);
  await writeFile(`${dir}/file`, 'x');
  await expect(openOwnFifo(`${dir}/link`, constants.O_RDWR, undefined)).rejects.toMatchObject({ code: 'ELOOP' });
  await expect(openOwnFifo(`${dir}/link-to-fifo`, constants.O_RDWR, ino)).rejects.toMatchObject({ code: 'ELOOP' });
  await expect(openOwnFifo(`${dir}/file`, constants.O_RDWR, undefined)).rejects.toThrow(/not the FIFO the worker made/);
  await expect(openOwnFifo(`${dir}/other`, constants.O_RDWR, ino)).rejects.toThrow(/not the FIFO the worker made/);
  const fd = await openOwnFifo(`${dir}/fifo`, constants.O_RDWR, ino);
  expect(fd).toBeGreaterThan(2);
  closeSync(fd);
});
