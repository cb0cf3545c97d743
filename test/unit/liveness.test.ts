import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { Liveness } from '../../src/worker/liveness.js';
import type { WorkerPhase } from '../../src/worker/worker-phase.js';
import { FakeSlot } from '../support/fake-driver.js';

function setup(phase: WorkerPhase, alive: boolean) {
  const calls: string[] = [];
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
      registerWorker: () => (calls.push('register'), Promise.resolve()),
      slotStates: () => Promise.resolve(states),
    },
    relist: (s) => (calls.push(`relist ${s.slotId}`), Promise.resolve()),
    resetInBackground: (id) => void calls.push(`reset ${id}`),
    chores: () => (calls.push('chores'), Promise.resolve()),
    log: silentLogger(),
  });
  return { liveness, calls };
}

describe('Liveness', () => {
  it('a running worker heartbeats and does its chores', async () => {
    const { liveness, calls } = setup('running', true);
    await liveness.tick();
    expect(calls).toEqual(['heartbeat', 'chores']);
  });

  it('forgotten by the registry: registers again, relists free slots, resets those without a record, keeps held ones', async () => {
    const { liveness, calls } = setup('running', false);
    await liveness.tick();
    expect(calls).toEqual(['heartbeat', 'register', 'relist free', 'reset lost', 'chores']);
  });

  it('while starting only heartbeats (registering again when forgotten); while stopping only heartbeats', async () => {
    const starting = setup('starting', false);
    await starting.liveness.tick();
    expect(starting.calls).toEqual(['heartbeat', 'register']);
    const stopping = setup('stopping', false);
    await stopping.liveness.tick();
    expect(stopping.calls).toEqual(['heartbeat']);
    const stopped = setup('stopped', true);
    await stopped.liveness.tick();
    expect(stopped.calls).toEqual([]);
  });

  it('never throws: a failed heartbeat is logged and the next round runs', async () => {
    const { liveness } = setup('running', true);
    const failing = new Liveness({ ...(liveness as unknown as { d: ConstructorParameters<typeof Liveness>[0] }).d, registry: { heartbeat: () => Promise.reject(new Error('redis away')), registerWorker: () => Promise.resolve(), slotStates: () => Promise.resolve(new Map()) } });
    await expect(failing.tick()).resolves.toBeUndefined();
  });
});
