import type { Slot } from '../../src/shared/calls/schemas.js';
import { checkedBatch, type CallSpec } from './calls.js';
import { runsIn } from '../testkit/docker.js';
import { waitUntil } from '../testkit/wait.js';
import { runScenario, type ChaosRow, type Scenario, type ScenarioOptions } from './scenario.js';
import { Trajectory } from './trajectory.js';
import { echoCall, fileUnit, token } from './workload.js';

const slowCall = (t: string): CallSpec => ({ tool: 'bash', args: { command: `sleep 3; echo ${t}` }, check: (r) => r.output === `${t}\n`, timeoutS: 30 });

/**
 * Two worker processes; one batch spreads calls over all four slots; one worker is SIGKILLed while the
 * batch runs and started again. Its calls come back WORKER_LOST (retried on fresh slots, which land on
 * the restarted worker), the other worker's calls succeed, and the dead worker is reaped from Redis.
 */
export function workerKill(opts: ScenarioOptions): Promise<ChaosRow> {
  return runScenario('worker SIGKILL mid-batch', 'wkill', opts, async (s) => {
    const victim = await s.startWorker(2);
    await s.startWorker(2);
    const env = s.env(await s.backend());
    const trajs = [0, 1, 2, 3].map((i) => new Trajectory(env, `t${i}`));
    for (const t of trajs) await t.ensureSlot();
    const specsOf = new Map(trajs.map((t) => [t, [slowCall(token(t.id)), echoCall(token(t.id)), echoCall(token(t.id))]]));
    const items = trajs.flatMap((t) => specsOf.get(t)!.map((spec) => [t.slot!, spec] as const));
    const batch = checkedBatch(env, items);
    const onVictim = trajs.map((t) => t.slot!).filter((x) => x.workerId === victim.workerId);
    if (onVictim.length === 0) throw new Error('no slot of the victim worker was handed out');
    await waitUntil(() => runsIn(onVictim[0]!.containerId, 'sleep 3'), 30_000, 'the batch to start on the victim worker');
    await victim.proc.kill();
    const killedAtMs = Date.now();
    let successor = '';
    s.rec.watchRecovery('worker SIGKILL', killedAtMs, (x: Slot) => x.workerId === successor);
    const restarting = s.startWorker(victim.slots).then((w) => (successor = w.workerId));
    const outcomes = await batch;
    s.notes.push(`batch of ${items.length}: ${outcomes.filter((o) => o === 'ok').length} ok, ${outcomes.filter((o) => o === 'retry').length} retried (${onVictim.length} slot(s) on the killed worker)`);
    await restarting;
    // Trajectories hit by the kill redo their calls on a fresh slot; then everyone works on.
    for (const [i, t] of trajs.entries()) {
      if (outcomes.slice(i * 3, i * 3 + 3).includes('retry')) {
        await t.moveOn();
        await t.unit(specsOf.get(t)!);
      }
    }
    await Promise.all(trajs.map(async (t) => { for (let k = 0; k < 3; k++) await t.unit(fileUnit(token(t.id))); }));
    for (const t of trajs) await t.release();
    await waitReaped(s, victim.workerId, killedAtMs);
  });
}

/** Waits until the registry forgot the killed worker (another worker's sweep reaps it). */
async function waitReaped(s: Scenario, workerId: string, sinceMs: number): Promise<void> {
  await waitUntil(async () => !(await s.registeredWorkers()).includes(workerId), 60_000, `worker ${workerId} to be reaped from the registry`);
  s.notes.push(`killed worker reaped from the registry ${Date.now() - sinceMs} ms after the kill`);
}
