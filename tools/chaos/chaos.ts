import Table from 'cli-table3';
import type { Logger } from 'pino';
import { loadConfig } from '../../src/shared/config.js';
import { randomId } from '../../src/shared/ids.js';
import { createLogger } from '../../src/shared/logger.js';
import { abuse } from './abuse.js';
import { memoryRun } from './memory-run.js';
import { containerKill } from './container-kill.js';
import { producerKill } from './producer-kill.js';
import { redisRestart } from './redis-restart.js';
import type { ChaosRow, ScenarioOptions } from './scenario.js';
import { soak } from './soak.js';
import { workerKill } from './worker-kill.js';

export type { ChaosRow, RssReport } from './scenario.js';

export interface ChaosOptions {
  /** Calls of the soak (default 50 000). */
  soakCalls?: number;
  /** Slots of the soak, over two worker processes (default 32). */
  slots?: number;
  logger?: Logger;
  /** Redis for the scenarios that do not restart it (default REDIS_URL, else 127.0.0.1:6379). The Redis restart and the soak run their own. */
  redisUrl?: string;
  /** Seed of the soak's fault plan (default random; printed with the results). */
  seed?: number;
  /** Calls of the memory run, workers joining and leaving (default 100 000; 0 skips it). */
  memoryCalls?: number;
  /** Only the memory run (no fault scenarios, no soak). */
  memoryOnly?: boolean;
}

/** SLOTQ_WORKER_LOST_MS of the chaos run's workers and producers. */
export const CHAOS_WORKER_LOST_MS = 5000;

/** One injected fault per 5 000 soak calls, at least one of each kind. */
const faultsFor = (calls: number): number => Math.max(3, Math.round(calls / 5000));

/**
 * Runs the fault scenarios (worker SIGKILL mid-batch, container killed mid-call, Redis restart, producer
 * killed holding slots, abuse) and the soak with random faults; prints the table and returns its rows.
 */
export async function runChaos(opts: ChaosOptions = {}): Promise<ChaosRow[]> {
  const logger = opts.logger ?? createLogger({ level: 'info', name: 'slotq-chaos' });
  const so: ScenarioOptions = { runId: randomId(3), redisUrl: opts.redisUrl ?? loadConfig().redisUrl, logger, workerLostMs: CHAOS_WORKER_LOST_MS };
  const soakCalls = opts.soakCalls ?? 50_000;
  const rows: ChaosRow[] = [];
  if (!opts.memoryOnly) {
    for (const scenario of [workerKill, containerKill, redisRestart, producerKill, abuse]) rows.push(await scenario(so));
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    rows.push(await soak(so, { calls: soakCalls, slots: opts.slots ?? 32, faults: faultsFor(soakCalls), seed }));
  }
  const memoryCalls = opts.memoryCalls ?? 100_000;
  if (memoryCalls > 0) rows.push(await memoryRun(so, { calls: memoryCalls, slots: 8, churnEveryCalls: Math.max(1000, Math.round(memoryCalls / 20)) }));
  process.stdout.write(`${chaosTable(rows)}\n${chaosNotes(rows)}\n`);
  return rows;
}

/** The table: a row per scenario. */
export function chaosTable(rows: readonly ChaosRow[]): string {
  const table = new Table({ head: ['scenario', 'calls', 'retried', 'failed', 'lost', 'hung', 'leaked', 'recovery time (ms)'] });
  for (const r of rows) {
    const recovery = r.recoveryMs === undefined ? '-' : String(r.recoveryMs);
    table.push([r.error ? `${r.scenario} (ERROR)` : r.scenario, r.calls, r.retried, r.failed, r.lost, r.hung, r.leaked, r.unrecovered ? `${recovery} (${r.unrecovered} never)` : recovery]);
  }
  return table.toString();
}

/** What the table cannot hold: per scenario notes, errors and the RSS of the soak's processes. */
export function chaosNotes(rows: readonly ChaosRow[]): string {
  const lines: string[] = [];
  for (const r of rows) {
    lines.push(`${r.scenario}:`);
    if (r.error) lines.push(`  ERROR: ${r.error}`);
    for (const n of r.notes) lines.push(`  - ${n}`);
    for (const m of r.rss ?? []) lines.push(`  - RSS ${m.process}: start ${mb(m.startKb)}, then ${m.quartersKb.map(mb).join(' / ')} at 1/4, 1/2, 3/4 of its life, end ${mb(m.endKb)}, max ${mb(m.maxKb)} (${m.samples} samples)`);
  }
  return lines.join('\n');
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
