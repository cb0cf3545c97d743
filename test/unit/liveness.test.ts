import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { Liveness, type WorkerPhase } from '../../src/worker/lifecycle/liveness.js';
import { FakeSlot } from '../support/fake-driver.js';

function setup(phase: WorkerPhase, alive: boolean, housekeeping: () => Promise<void> = () => Promise.resolve()) {
  const calls: string[] = [];
  const epochs: string[] = [];
  const slots = new Map(['held', 'free', 'lost'].map((id) => [id, new FakeSlot(id, `c-${id}`)]));
  const states = new Map<string, string | null>([['held', 'held'], ['free', 'free'], ['lost', null]]);
  const liveness = new Liveness({
    workerId: 'w1',
    heartbeatTtlMs: 1000,
    phase: () => phase,
    info: () => ({ host: 'h' }),
    slots,
    registry: {
      heartbeat: () => (calls.push('heartbeat'), Promise.resolve(alive)),
      registerWorker: (_w, _ttl, info) => (calls.push('register'), epochs.push(String(info['epoch'])), Promise.resolve()),
      slotStates: () => Promise.resolve(states),
    },
    listAsFree: (s) => (calls.push(`listAsFree ${s.slotId}`), Promise.resolve()),
    resetInBackground: (id) => void calls.push(`reset ${id}`),
    housekeeping: () => (calls.push('housekeeping'), housekeeping()),
    log: silentLogger(),
  });
  return { liveness, calls, epochs };
}

/** A registered worker (fresh: its registration just went through), its calls log cleared. */
async function registered(phase: WorkerPhase, alive: boolean, housekeeping?: () => Promise<void>) {
  const t = setup(phase, alive, housekeeping);
  await t.liveness.register();
  t.calls.length = 0;
  return t;
}

describe('Liveness', () => {
  it('a running worker heartbeats, and does its housekeeping on a round of their own', async () => {
    const { liveness, calls } = await registered('running', true);
    await liveness.tick();
    expect(calls).toEqual(['heartbeat']);
    await liveness.housekeepingRound();
    expect(calls).toEqual(['heartbeat', 'housekeeping']);
  });

  it('housekeeping that hang (a stalled engine) never hold up the heartbeat', async () => {
    const { liveness, calls } = await registered('running', true, () => new Promise<void>(() => undefined));
    void liveness.housekeepingRound();
    await liveness.tick();
    await liveness.tick();
    expect(calls).toEqual(['housekeeping', 'heartbeat', 'heartbeat']);
  });

  it('forgotten by the registry: registers again as a new incarnation, lists free slots again, resets those without a record, keeps held ones', async () => {
    const { liveness, calls, epochs } = await registered('running', false);
    const before = liveness.epoch;
    await liveness.tick();
    expect(calls).toEqual(['heartbeat', 'register', 'listAsFree free', 'reset lost']);
    expect(liveness.epoch).not.toBe(before);
    expect(epochs).toEqual([before, liveness.epoch]);
  });

  it('not fresh (no heartbeat went through within its TTL: paused, cut off): starts nothing, and comes back as a new incarnation without extending the old one', async () => {
    const { liveness, calls } = await registered('running', true);
    const before = liveness.epoch;
    expect(liveness.fresh()).toBe(true);
    expect(liveness.fresh(Date.now() + 1500)).toBe(false);
    const now = Date.now;
    Date.now = () => now() + 1500;
    try {
      expect(liveness.fresh()).toBe(false);
      await liveness.housekeepingRound(); // no housekeeping either
      await liveness.tick();
    } finally {
      Date.now = now;
    }
    expect(calls).toEqual(['register', 'listAsFree free', 'reset lost']);
    expect(liveness.epoch).not.toBe(before);
    expect(liveness.fresh()).toBe(true);
  });

  it('while starting only heartbeats (registering again when forgotten); while stopping only heartbeats', async () => {
    const starting = await registered('starting', false);
    await starting.liveness.tick();
    expect(starting.calls).toEqual(['heartbeat', 'register']);
    const stopping = await registered('stopping', false);
    await stopping.liveness.tick();
    await stopping.liveness.housekeepingRound();
    expect(stopping.calls).toEqual(['heartbeat']);
    const stopped = await registered('stopped', true);
    await stopped.liveness.tick();
    expect(stopped.calls).toEqual([]);
  });

  it('after a gap in its heartbeats longer than the TTL (a failover), reaps nothing until heartbeats have flowed for 2 × TTL', async () => {
    const { liveness, calls } = await registered('running', true);
    const now = Date.now;
    let offsetMs = 1500; // the last heartbeat that went through is 1.5 TTL old
    Date.now = () => now() + offsetMs;
    try {
      await liveness.tick(); // registers again (a new incarnation): the grace starts here
      expect(liveness.fresh()).toBe(true);
      await liveness.housekeepingRound();
      for (let i = 0; i < 19; i++) {
        offsetMs += 100; // heartbeats flowing, each well within the TTL
        await liveness.tick();
      }
      await liveness.housekeepingRound(); // 1.9 TTL of heartbeats: still within the grace
      offsetMs += 100;
      await liveness.tick();
      expect(liveness.settled()).toBe(true);
      await liveness.housekeepingRound();
    } finally {
      Date.now = now;
    }
    expect(calls.filter((c) => c === 'housekeeping')).toHaveLength(1);
    expect(calls.at(-1)).toBe('housekeeping');
  });

  it('a failed heartbeat starts the grace too; a worker that never had trouble is settled from its registration on', async () => {
    const { liveness } = setup('running', true);
    await liveness.register();
    expect(liveness.settled()).toBe(true);
    const failing = new Liveness({ ...(liveness as unknown as { deps: ConstructorParameters<typeof Liveness>[0] }).deps, registry: { heartbeat: () => Promise.reject(new Error('redis away')), registerWorker: () => Promise.resolve(), slotStates: () => Promise.resolve(new Map()) } });
    await failing.register();
    await failing.tick();
    expect(failing.fresh()).toBe(true);
    expect(failing.settled()).toBe(false);
    expect(failing.settled(Date.now() + 2000)).toBe(false); // not fresh by then either: no beat went through
  });

  it('never throws: a failed heartbeat is logged and the next round runs', async () => {
    const { liveness } = setup('running', true);
    const failing = new Liveness({ ...(liveness as unknown as { deps: ConstructorParameters<typeof Liveness>[0] }).deps, registry: { heartbeat: () => Promise.reject(new Error('redis away')), registerWorker: () => Promise.resolve(), slotStates: () => Promise.resolve(new Map()) } });
    await expect(failing.tick()).resolves.toBeUndefined();
  });
});
