import type { RssReport } from './scenario.js';
import { waitUntil } from '../testkit/wait.js';
import { RssSampler } from './rss-sampler.js';
import { runScenario, type ChaosRow, type ScenarioOptions, type WorkerHandle } from './scenario.js';
import { Trajectory } from './trajectory.js';
import { Loops, echoCall, fileUnit, token } from './workload.js';

export interface MemoryRunOptions {
  /** Calls in all (100 000 for the run). */
  calls: number;
  /** Slots of the worker that stays; each worker that comes and goes has as many. */
  slots: number;
  /** A worker joins and the oldest guest leaves (SIGTERM: drain) every this many calls. */
  churnEveryCalls: number;
}

const UNITS_PER_LEASE = 25;
const ACQUIRE_TIMEOUT_MS = 60_000;
const SAMPLE_MS = 5000;

/**
 * Bounded memory over time: a long run in which workers join and leave while trajectories keep calling
 * (each lease a few checked units, then release with reset). The producer (this process) and the worker
 * that stays must keep a flat RSS: start, peak and end are in the notes. Producer-side state that once grew
 * with every worker that came and went (its per-worker queue map) is counted too.
 */
export function memoryRun(opts: ScenarioOptions, mo: MemoryRunOptions): Promise<ChaosRow> {
  return runScenario(`memory (${mo.calls} calls, workers joining and leaving)`, 'memory', opts, async (s) => {
    await s.useOwnRedis();
    const sampler = new RssSampler(SAMPLE_MS, 'producer (chaos process)');
    const anchor = await s.startWorker(mo.slots);
    const guests: WorkerHandle[] = [await s.startWorker(mo.slots)];
    sampler.watch(anchor.proc);
    sampler.watch(guests[0]!.proc);
    sampler.start();
    const backend = await s.backend();
    const env = s.env(backend);
    const trajs = Array.from({ length: mo.slots * 2 }, (_, i) => new Trajectory(env, `m${i}`, ACQUIRE_TIMEOUT_MS));
    const loops = new Loops(trajs, async (t) => {
      for (let u = 0; u < UNITS_PER_LEASE; u++) {
        const tag = token(t.id);
        if ((await t.unit([...fileUnit(tag), echoCall(`${tag}-e`)])) === 'retry') return;
      }
      await t.moveOn();
    });
    const t0 = Date.now();
    let joined = 1;
    let maxQueues = 0;
    try {
      for (let next = mo.churnEveryCalls; next < mo.calls; next += mo.churnEveryCalls) {
        await waitUntil(() => (loops.check(), s.rec.calls >= next), Math.max(600_000, mo.churnEveryCalls * 60), `call ${next}`);
        const guest = await s.startWorker(mo.slots);
        sampler.watch(guest.proc);
        guests.push(guest);
        joined++;
        const leaving = guests.shift()!;
        await leaving.proc.stop(60_000, 'SIGTERM');
        maxQueues = Math.max(maxQueues, backend.openQueues);
        s.log.warn({ calls: s.rec.calls, joined, openQueues: backend.openQueues, waitingAcquires: backend.waitingAcquires, producerRssMb: Math.round(process.memoryUsage().rss / 2 ** 20) }, 'memory run: a worker joined and one left');
      }
      await waitUntil(() => (loops.check(), s.rec.calls >= mo.calls), Math.max(600_000, mo.calls * 60), `${mo.calls} calls`);
    } finally {
      // RSS so far is reported even when the run fails part way (the samples are the point of this run).
      await loops.stop().finally(async () => (s.rss = await sampler.stop()));
    }
    const seconds = (Date.now() - t0) / 1000;
    for (const t of trajs) await t.release();
    s.notes.push(`${s.rec.calls} calls in ${seconds.toFixed(0)} s (${(s.rec.calls / seconds).toFixed(0)} calls/s); ${joined} workers joined over the run and ${joined - 1} left`);
    s.notes.push(`producer: ${backend.openQueues} worker queues open at the end (at most ${maxQueues} after a worker left), ${backend.waitingAcquires} acquires waiting`);
    s.notes.push(...flatness(s.rss ?? [], anchor.workerId));
  });
}

/** Start, peak and end of the producer and of the worker that stayed, and their growth. */
function flatness(rss: RssReport[], anchorId: string): string[] {
  return rss
    .filter((r) => r.process.startsWith('producer') || r.process === `worker ${anchorId}`)
    .map((r) => `flat? ${r.process}: start ${mb(r.startKb)}, peak ${mb(r.maxKb)}, end ${mb(r.endKb)} (end − start ${mb(r.endKb - r.startKb)}, ${r.samples} samples)`);
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
