import { waitUntil } from '../testkit/wait.js';
import { FaultInjector, planFaults, seededRandom, type PlannedFault } from './fault-injector.js';
import { RssSampler } from './rss-sampler.js';
import { runScenario, type ChaosRow, type Scenario, type ScenarioOptions } from './scenario.js';
import { Trajectory } from './trajectory.js';
import { Loops, echoCall, fileUnit, token } from './workload.js';

export interface SoakOptions {
  calls: number;
  /** Slots in all (split over two worker processes); one trajectory per slot. */
  slots: number;
  faults: number;
  seed: number;
}

/** Units (of 4 calls) a trajectory runs before it releases its slot with reset and acquires another. */
const UNITS_PER_LEASE = 40;
const PROGRESS_MS = 10_000;
/** acquire() timeout of the soak's trajectories (a slot frees up within moments unless something is wrong). */
const ACQUIRE_TIMEOUT_MS = 30_000;

/**
 * The soak: one trajectory per slot over two worker processes and the scenario's own Redis, each doing
 * short checked write_file / read_file / bash calls, with faults injected at random (a slot's container
 * killed, a worker SIGKILLed and restarted, Redis restarted). Samples the worker processes' RSS.
 */
export function soak(opts: ScenarioOptions, so: SoakOptions): Promise<ChaosRow> {
  return runScenario(`soak (${so.slots} slots, ${so.faults} faults)`, 'soak', opts, async (s) => {
    const redis = await s.useOwnRedis();
    const sampler = new RssSampler();
    const half = Math.ceil(so.slots / 2);
    const workers = [await s.startWorker(half), await s.startWorker(so.slots - half)];
    for (const w of workers) sampler.watch(w.proc);
    sampler.start();
    const random = seededRandom(so.seed);
    const plan = planFaults(so.calls, so.faults, random);
    const injector = new FaultInjector(s, workers, redis, random, (w) => sampler.watch(w.proc));
    const env = s.env(await s.backend());
    const trajs = Array.from({ length: so.slots }, (_, i) => new Trajectory(env, `t${i}`, ACQUIRE_TIMEOUT_MS));
    const t0 = Date.now();
    const progress = setInterval(() => s.log.info({ calls: s.rec.calls, retried: s.rec.retried, failed: s.rec.failed, lost: s.rec.lost, hung: s.rec.hung }, 'soak progress'), PROGRESS_MS);
    const loops = new Loops(trajs, leaseLoop);
    try {
      await injectAll(s, loops, plan, injector);
      await waitUntil(() => (loops.check(), s.rec.calls >= so.calls), deadlineMs(so.calls), `${so.calls} calls`);
    } finally {
      await loops.stop().finally(() => clearInterval(progress));
    }
    const seconds = (Date.now() - t0) / 1000;
    for (const t of trajs) await t.release();
    s.rss = await sampler.stop();
    s.notes.push(`${s.rec.calls} calls in ${seconds.toFixed(0)} s (${(s.rec.calls / seconds).toFixed(0)} calls/s); seed ${so.seed}`);
    s.notes.push(`faults: ${injector.log.map((f, i) => `${plan[i]?.atCalls ?? '?'}: ${f}`).join('; ')}`);
    const live = new Set(injector.workers.map((w) => w.workerId));
    await waitUntil(async () => (await s.registeredWorkers()).every((id) => live.has(id)), 60_000, 'killed workers to be reaped from the registry');
  });
}

/** One lease of a trajectory: UNITS_PER_LEASE units of write / read / shell / echo, then release with reset. */
async function leaseLoop(t: Trajectory): Promise<void> {
  for (let u = 0; u < UNITS_PER_LEASE; u++) {
    const tag = token(t.id);
    if ((await t.unit([...fileUnit(tag), echoCall(`${tag}-e`)])) === 'retry') return;
  }
  await t.moveOn();
}

/** Injects each planned fault once the run reached its call count and the previous fault's capacity is back. */
async function injectAll(s: Scenario, loops: Loops<Trajectory>, plan: PlannedFault[], injector: FaultInjector): Promise<void> {
  for (const f of plan) {
    await waitUntil(() => (loops.check(), s.rec.calls >= f.atCalls), deadlineMs(f.atCalls), `call ${f.atCalls} for the ${f.kind} fault`);
    await waitUntil(() => s.rec.unrecovered.length === 0, 120_000, 'the previous fault to recover').catch(() => s.notes.push(`injected the ${f.kind} fault before the previous one recovered`));
    s.log.info({ kind: f.kind, atCalls: s.rec.calls }, 'injecting a fault');
    await injector.inject(f.kind);
  }
}

/** A generous bound for reaching a call count (the machine may be slow; nothing here should take that long). */
const deadlineMs = (calls: number): number => Math.max(600_000, calls * 60);
