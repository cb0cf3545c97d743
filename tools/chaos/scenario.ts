import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SlotBackend, type SlotBackendOptions } from '../../src/producer/slot-backend.js';
import { loadConfig } from '../../src/shared/config.js';
import { toError } from '../../src/shared/errors.js';
import { keysFor } from '../../src/shared/keys.js';
import { createRedis } from '../../src/shared/redis.js';
import { purge } from '../../src/cli/admin.js';
import type { CallEnv } from './calls.js';
import { describeLeaks, findLeaks, leakCount } from '../testkit/leaks.js';
import { startSlotHolder, startWorkerProcess, type ManagedProcess } from '../testkit/processes.js';
import { OwnRedis } from './own-redis.js';
import { Recorder } from './recorder.js';

const START_ATTEMPTS = 3;

/** One row of the chaos table. */
export interface ChaosRow {
  scenario: string;
  /** Tool calls made (each retry is a call of its own). */
  calls: number;
  /** Calls with a retryable infrastructure failure, retried on a fresh slot (plus acquisitions that found no slot). */
  retried: number;
  /** Calls with a wrong, non-retryable result. */
  failed: number;
  /** Calls that never got a result, or got more than one. */
  lost: number;
  /** Calls whose result took longer than their timeout + SLOTQ_WORKER_LOST_MS + 30 s. */
  hung: number;
  /** Slot containers plus Redis keys of the scenario's prefix left once everything stopped. */
  leaked: number;
  /** Longest time from an injected fault to the first successful call on the capacity it hit. */
  recoveryMs: number | undefined;
  /** Faults after which the affected capacity never served a successful call. */
  unrecovered: number;
  notes: string[];
  /** Set when the scenario itself could not run to its end. */
  error?: string;
  /** Worker processes' resident memory over the run (soak). */
  rss?: RssReport[];
}

export interface RssReport {
  process: string;
  samples: number;
  startKb: number;
  endKb: number;
  maxKb: number;
  /** The samples at 25 %, 50 % and 75 % of the process's sampled life. */
  quartersKb: [number, number, number];
}

export interface ScenarioOptions {
  runId: string;
  redisUrl: string;
  logger: Logger;
  workerLostMs: number;
}

/** A worker process of a scenario. */
export interface WorkerHandle {
  workerId: string;
  proc: ManagedProcess;
  slots: number;
  env: Record<string, string>;
}

/**
 * Everything one scenario starts (its own key prefix, worker processes, backends, maybe its own Redis),
 * its call recorder, and the final stop + leak count.
 */
export class Scenario {
  readonly prefix: string;
  readonly rec = new Recorder();
  readonly notes: string[] = [];
  readonly log: Logger;
  redisUrl: string;
  rss: RssReport[] | undefined;
  private ownRedis: OwnRedis | undefined;
  private readonly procs: ManagedProcess[] = [];
  private readonly backends: SlotBackend[] = [];
  private workerSeq = 0;
  private readonly failedStarts: Array<[workerId: string, output: string]> = [];

  constructor(
    readonly name: string,
    key: string,
    readonly opts: ScenarioOptions,
  ) {
    this.prefix = `chaos-${opts.runId}-${key}`;
    this.redisUrl = opts.redisUrl;
    this.log = opts.logger.child({ scenario: name });
  }

  get workerLostMs(): number {
    return this.opts.workerLostMs;
  }

  /**
   * Connection options for this scenario's Redis: its own Redis is a plain standalone one, even when the
   * rest runs on a Cluster (SLOTQ_REDIS_CLUSTER=true, e.g. `npm run test:cluster`).
   */
  clusterOpt(): { cluster?: boolean } {
    return this.ownRedis ? { cluster: false } : {};
  }

  private clusterEnv(): Record<string, string> {
    return this.ownRedis ? { SLOTQ_REDIS_CLUSTER: 'false' } : {};
  }

  /** Runs this scenario on a Redis of its own (a container it can restart). */
  async useOwnRedis(): Promise<OwnRedis> {
    this.ownRedis = await OwnRedis.start(this.opts.runId);
    this.redisUrl = this.ownRedis.url;
    return this.ownRedis;
  }

  /**
   * Starts `slotq worker` in a child process; resolves once it logged "worker started". A worker that
   * fails to start is started again (as a process supervisor would), up to START_ATTEMPTS times; each failure is noted.
   */
  async startWorker(slots: number, env: Record<string, string> = {}): Promise<WorkerHandle> {
    for (let attempt = 1; ; attempt++) {
      const workerId = `${this.prefix}-w${++this.workerSeq}`;
      const fullEnv = { REDIS_URL: this.redisUrl, ...this.clusterEnv(), SLOTQ_PREFIX: this.prefix, SLOTQ_SLOTS: String(slots), SLOTQ_WORKER_LOST_MS: String(this.workerLostMs), SLOTQ_WARM_SPARES: '1', SLOTQ_LOG_LEVEL: 'info', ...env };
      try {
        const proc = await startWorkerProcess(`worker ${workerId}`, fullEnv, ['--worker-id', workerId]);
        this.procs.push(proc);
        return { workerId, proc, slots, env };
      } catch (err) {
        this.notes.push(`worker ${workerId} failed to start (attempt ${attempt}): ${startFailure(toError(err).message)}`);
        this.failedStarts.push([workerId, toError(err).message]);
        if (attempt >= START_ATTEMPTS) throw err;
      }
    }
  }

  /** Starts a producer process holding `count` slots (to be killed). */
  async startSlotHolder(name: string, count: number, env: Record<string, string>): Promise<ManagedProcess> {
    const proc = await startSlotHolder(name, count, { REDIS_URL: this.redisUrl, ...this.clusterEnv(), SLOTQ_PREFIX: this.prefix, ...env });
    this.procs.push(proc);
    return proc;
  }

  async backend(opts: SlotBackendOptions = {}): Promise<SlotBackend> {
    const b = new SlotBackend({ redisUrl: this.redisUrl, ...(this.ownRedis ? { redisCluster: false } : {}), prefix: this.prefix, workerLostMs: this.workerLostMs, logger: this.log, ...opts });
    await b.start();
    this.backends.push(b);
    return b;
  }

  /** Worker IDs in the registry's workers set. */
  registeredWorkers(): Promise<string[]> {
    return this.query((redis) => redis.smembers(keysFor(this.prefix).workers));
  }

  /** acquire() calls queued in the registry, waiting for a slot. */
  waitingAcquires(): Promise<number> {
    return this.query((redis) => redis.llen(keysFor(this.prefix).waiters));
  }

  private async query<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = createRedis(this.redisUrl, { name: 'slotq-chaos', ...this.clusterOpt() });
    try {
      return await fn(redis);
    } finally {
      redis.disconnect();
    }
  }

  env(backend: SlotBackend): CallEnv {
    return { backend, rec: this.rec, workerLostMs: this.workerLostMs };
  }

  /** Stops backends and workers (SIGTERM), counts what was left behind, then removes it anyway. */
  async finish(): Promise<number> {
    for (const b of this.backends) await b.stop({ purge: true }).catch((err: unknown) => this.notes.push(`backend stop failed: ${toError(err).message}`));
    for (const p of this.procs) {
      const wasRunning = p.running;
      const code = await p.stop();
      if (wasRunning && code !== 0) this.notes.push(`${p.name} exited with ${code} on SIGTERM`);
    }
    await this.saveLogs();
    try {
      const leaks = await findLeaks(this.redisUrl, this.prefix, { settleMs: 30_000, processes: () => this.procs, ...this.clusterOpt() });
      const leaked = leakCount(leaks);
      if (leaked) this.notes.push(`left behind: ${describeLeaks(leaks)}`);
      await purge(loadConfig({ redisUrl: this.redisUrl, prefix: this.prefix, ...(this.ownRedis ? { redisCluster: false } : {}) }));
      return leaked;
    } finally {
      await this.ownRedis?.remove();
    }
  }

  /** With SLOTQ_CHAOS_LOG_DIR set, keeps each child process's last output there (for digging into a bad row). */
  private async saveLogs(): Promise<void> {
    const dir = process.env['SLOTQ_CHAOS_LOG_DIR'];
    if (!dir) return;
    await mkdir(dir, { recursive: true });
    const file = (name: string): string => join(dir, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.log`);
    for (const p of this.procs) await writeFile(file(p.name), p.output());
    for (const [workerId, output] of this.failedStarts) await writeFile(file(`worker ${workerId} failed start`), output);
  }

  row(leaked: number, error: string | undefined): ChaosRow {
    const r = this.rec;
    const notes = [...this.notes];
    if (r.retried) notes.unshift(`retried: ${r.retriedSummary()}`);
    if (r.recoveriesMs.length) notes.push(`recoveries: ${r.recoveriesMs.map((x) => `${x.what} ${x.ms} ms`).join('; ')}`);
    if (r.unrecovered.length) notes.push(`never recovered: ${r.unrecovered.join('; ')}`);
    notes.push(...r.problems);
    const row: ChaosRow = { scenario: this.name, calls: r.calls, retried: r.retried, failed: r.failed, lost: r.lost, hung: r.hung, leaked, recoveryMs: r.maxRecoveryMs, unrecovered: r.unrecovered.length, notes };
    if (error !== undefined) row.error = error;
    if (this.rss) row.rss = this.rss;
    return row;
  }
}

/** The reason a worker gave for not starting (its "worker failed to start" log line), else the start of the message. */
const startFailure = (message: string): string => /"msg":"worker failed to start"/.test(message) ? (/"err":"([^"]*)"/.exec(message)?.[1] ?? '') : message.slice(0, 200);

/** Runs one scenario body, always stops what it started, and turns the outcome into a table row. */
export async function runScenario(name: string, key: string, opts: ScenarioOptions, body: (s: Scenario) => Promise<void>): Promise<ChaosRow> {
  const s = new Scenario(name, key, opts);
  const t0 = Date.now();
  s.log.info('scenario started');
  let error: string | undefined;
  try {
    await body(s);
  } catch (err) {
    error = toError(err).message;
    s.log.error({ err: error }, 'scenario failed');
  }
  let leaked = 0;
  try {
    leaked = await s.finish();
  } catch (err) {
    error ??= `cleanup failed: ${toError(err).message}`;
  }
  const row = s.row(leaked, error);
  s.log.info({ ms: Date.now() - t0, calls: row.calls, lost: row.lost, hung: row.hung, leaked }, 'scenario done');
  return row;
}
