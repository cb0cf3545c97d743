import { killContainer, runsIn } from '../testkit/docker.js';
import { waitUntil } from '../testkit/wait.js';
import { runScenario, type ChaosRow, type ScenarioOptions } from './scenario.js';
import { Trajectory } from './trajectory.js';
import { echoWhile, fileUnit, settledFlag, token } from './workload.js';

/**
 * A slot's container is killed while a call runs in it: that call gets a retryable SLOT_BROKEN and is
 * retried on a fresh slot, the neighbour slot keeps answering, and the killed slot serves calls again.
 */
export function containerKill(opts: ScenarioOptions): Promise<ChaosRow> {
  return runScenario('container killed mid-call', 'ckill', opts, async (s) => {
    await s.startWorker(2);
    const env = s.env(await s.backend());
    const victim = new Trajectory(env, 'victim');
    const neighbour = new Trajectory(env, 'neighbour');
    await victim.unit(fileUnit(token('v')));
    await neighbour.unit(fileUnit(token('n')));
    const slot = await victim.ensureSlot();
    const inFlight = victim.call({ tool: 'bash', args: { command: 'sleep 20; echo late' }, check: (r) => r.output === 'late\n', timeoutS: 30 });
    await waitUntil(() => runsIn(slot.containerId, 'sleep 20'), 30_000, 'the long call to start');
    const killedAtMs = Date.now();
    s.rec.watchRecovery('container kill', killedAtMs, (x) => x.slotId === slot.slotId);
    const neighbourLoop = echoWhile(neighbour, settledFlag(inFlight));
    await killContainer(slot.containerId);
    const outcome = await inFlight;
    if (outcome !== 'retry') s.notes.push(`the call in flight ended "${outcome}", not with a retryable SLOT_BROKEN`);
    const n = await neighbourLoop;
    s.notes.push(`neighbour: ${n.outcomes.ok}/${n.calls} echo calls ok while the container died`);
    // The killed slot comes back reset: the victim lands on it again (the neighbour holds the other one).
    for (let i = 0; i < 5; i++) await victim.unit(fileUnit(token('v')));
    await victim.release();
    await neighbour.release();
  });
}
