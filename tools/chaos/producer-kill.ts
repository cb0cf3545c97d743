import { heldBy } from '../testkit/processes.js';
import { runScenario, type ChaosRow, type ScenarioOptions } from './scenario.js';
import { Trajectory } from './trajectory.js';
import { fileUnit, token } from './workload.js';

const LEASE_TTL_MS = 3000;

/**
 * A producer process holding every slot is SIGKILLed: its leases expire, the slots are reset and handed
 * to the next producer waiting in acquire(), pristine (nothing the dead producer wrote is left).
 */
export function producerKill(opts: ScenarioOptions): Promise<ChaosRow> {
  return runScenario('producer killed holding slots', 'pkill', opts, async (s) => {
    await s.startWorker(2);
    const holder = await s.startSlotHolder('producer (to be killed)', 2, { SLOTQ_LEASE_TTL_MS: String(LEASE_TTL_MS) });
    const { slotIds: heldIds, ok } = heldBy(holder);
    if (!ok) s.notes.push(`the doomed producer's own calls failed: ${holder.output().slice(-300)}`);
    await holder.kill();
    const killedAtMs = Date.now();
    s.rec.watchRecovery('producer SIGKILL', killedAtMs, (x) => heldIds.includes(x.slotId));
    const env = s.env(await s.backend({ leaseTtlMs: LEASE_TTL_MS }));
    const trajs = [0, 1].map((i) => new Trajectory(env, `next${i}`));
    await Promise.all(
      trajs.map(async (t) => {
        await t.unit([{ tool: 'bash', args: { command: 'ls -A /workspace' }, check: (r) => r.output === '' }]);
        for (let k = 0; k < 5; k++) await t.unit(fileUnit(token(t.id)));
      }),
    );
    const waitedMs = Math.max(...s.rec.recoveriesMs.map((r) => r.ms));
    s.notes.push(`the slots came back pristine to a waiting producer ${waitedMs} ms after the kill (lease TTL ${LEASE_TTL_MS} ms)`);
    for (const t of trajs) await t.release();
  });
}
