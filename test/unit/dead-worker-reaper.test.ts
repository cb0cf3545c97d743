import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../src/shared/keys.js';
import { silentLogger } from '../../src/shared/logger.js';
import { DeadWorkerReaper, SWEEP_INTERVAL_MS } from '../../src/worker/lifecycle/dead-worker-reaper.js';
import { FakeDriver } from '../support/fake-driver.js';

const labels = (worker: string, host = 'here', prefix = 'p') => ({ [LABELS.prefix]: prefix, [LABELS.worker]: worker, [LABELS.host]: host });

function setup(alive: string[], dead: string[], channelDir?: string) {
  const driver = new FakeDriver();
  const dropped: string[] = [];
  let now = 1_000_000;
  let sweeps = 0;
  const reaper = new DeadWorkerReaper({
    workerId: 'me',
    prefix: 'p',
    host: 'here',
    registry: {
      reapDeadWorkers: () => (sweeps++, Promise.resolve(dead)),
      workerAlive: (id) => Promise.resolve(id === 'me' || alive.includes(id)),
    },
    driver,
    dropQueue: (id) => (dropped.push(id), Promise.resolve()),
    log: silentLogger(),
    nowMs: () => now,
    ...(channelDir ? { channelDir } : {}),
  });
  return { driver, dropped, reaper, sweeps: () => sweeps, advance: (ms: number) => (now += ms) };
}

describe('DeadWorkerReaper', () => {
  it("drops dead workers' queues and removes their containers on this host only", async () => {
    const { driver, dropped, reaper } = setup(['alive'], ['gone']);
    const mine = await driver.create({ labels: labels('me') });
    const alive = await driver.create({ labels: labels('alive') });
    const gone = await driver.create({ labels: labels('gone') });
    const goneElsewhere = await driver.create({ labels: labels('gone', 'other-host') });
    const otherPrefix = await driver.create({ labels: labels('gone', 'here', 'q') });
    await reaper.sweep();
    expect(dropped).toEqual(['gone']);
    expect(driver.removed).toEqual([gone]);
    expect([...driver.containers.keys()].sort()).toEqual([mine, alive, goneElsewhere, otherPrefix].sort());
  });

  it('sweepIfDue sweeps only once SWEEP_INTERVAL_MS passed since the last sweep', async () => {
    const { reaper, sweeps, advance } = setup([], []);
    await reaper.sweepIfDue();
    expect(sweeps()).toBe(0);
    advance(SWEEP_INTERVAL_MS + 1);
    await reaper.sweepIfDue();
    await reaper.sweepIfDue();
    expect(sweeps()).toBe(1);
  });

  it("removes the channel subdirectories of dead workers on this host, not its own, a live worker's or a young one", async () => {
    const root = await mkdtemp(`${tmpdir()}/slotq-reaper-`);
    try {
      for (const d of ['me', 'alive', 'gone', 'young']) await mkdir(`${root}/${d}/slot`, { recursive: true });
      const old = new Date(Date.now() - 10 * 60_000);
      for (const d of ['me', 'alive', 'gone']) await utimes(`${root}/${d}`, old, old);
      const { reaper } = setup(['alive'], [], root);
      (reaper as unknown as { now: () => number }).now = Date.now;
      await reaper.sweep();
      expect((await readdir(root)).sort()).toEqual(['alive', 'me', 'young']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
