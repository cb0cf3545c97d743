import { SlotqError } from '../../src/shared/errors.js';
import type { CallEnv, CallSpec } from './calls.js';
import { waitUntil } from '../testkit/wait.js';
import { runScenario, type ChaosRow, type Scenario, type ScenarioOptions } from './scenario.js';
import { Trajectory, acquireWithDeadline } from './trajectory.js';
import { Loops, fileUnit, token } from './workload.js';

const CALLS_BEFORE = 40;
const CALLS_AFTER = 60;
/** Redis stays down this long: long enough for the workers' heartbeats to notice. */
const OUTAGE_MS = 3000;
const WAITER_TIMEOUT_MS = 10_000;

const sleepyEcho = (t: string): CallSpec => ({ tool: 'bash', args: { command: `sleep 0.5; echo ${t}` }, check: (r) => r.output === `${t}\n` });

/**
 * Four trajectories hold the four slots of a worker process, and a fifth producer call waits in acquire(),
 * when the scenario's own Redis goes down for a few seconds and comes back empty: every call in flight
 * gets a result, the waiting acquire() ends (a slot or NO_SLOT), the worker registers again, work goes on.
 */
export function redisRestart(opts: ScenarioOptions): Promise<ChaosRow> {
  return runScenario('Redis restarted (no persistence)', 'redis', opts, async (s) => {
    const redis = await s.useOwnRedis();
    await s.startWorker(4);
    const env = s.env(await s.backend());
    const trajs = [0, 1, 2, 3].map((i) => new Trajectory(env, `t${i}`));
    const loops = new Loops(trajs, (t) => t.unit([...fileUnit(token(t.id)), sleepyEcho(token(t.id))]));
    try {
      await waitUntil(() => (loops.check(), s.rec.calls >= CALLS_BEFORE), 120_000, `${CALLS_BEFORE} calls before the restart`);
      const waiter = waitingAcquire(s, env);
      waiter.catch(() => undefined); // awaited below; this only keeps an early failure elsewhere from leaving it unhandled
      await waitUntil(async () => (await s.waitingAcquires()) > 0, 10_000, 'the extra acquire() to wait for a slot');
      const restartedAtMs = Date.now();
      await redis.restart(OUTAGE_MS);
      s.rec.watchRecovery('Redis restart', restartedAtMs, () => true, Date.now());
      s.notes.push(`Redis down for ${OUTAGE_MS} ms, back (empty) ${Date.now() - restartedAtMs} ms after the stop`);
      const target = s.rec.calls + CALLS_AFTER;
      await waitUntil(() => (loops.check(), s.rec.unrecovered.length === 0 && s.rec.calls >= target), 180_000, 'work to go on after the restart');
      await waiter;
    } finally {
      await loops.stop();
    }
    for (const t of trajs) await t.release();
  });
}

/** An acquire() that is waiting (every slot is held) when Redis goes away: it must end, with a slot or NO_SLOT. */
async function waitingAcquire(s: Scenario, env: CallEnv): Promise<void> {
  const got = await acquireWithDeadline(env, 'waiter', WAITER_TIMEOUT_MS);
  if (got === 'lost') return;
  if (got instanceof SlotqError && got.code === 'NO_SLOT') {
    s.rec.retry('NO_SLOT');
    s.notes.push('the acquire() waiting across the restart ended with NO_SLOT');
  } else if (got instanceof Error) {
    throw got;
  } else {
    s.notes.push(`the acquire() waiting across the restart got ${got.slotId}`);
    await env.backend.release(got, { resetWorkspace: true });
  }
}
