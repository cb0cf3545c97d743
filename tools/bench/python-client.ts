import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import type { Logger } from 'pino';
import { startGateway } from '../../src/gateway/gateway.js';
import { loadConfig } from '../../src/shared/config.js';
import type { ThroughputRun } from './baseline.js';
import { round, summarize, type LatencySummary } from './stats.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The Python client's phase: the TypeScript phase's runs, through `slotq gateway` and `SlotqBackend`. */
export interface PythonClientResults {
  ok: boolean;
  error?: string;
  python?: string;
  serial?: LatencySummary;
  queueOverhead?: LatencySummary;
  callsPerS?: number;
  batchRuns?: ThroughputRun[];
  failures?: number;
  firstFailure?: string | null;
  /** Against the TypeScript client in the same run (issue 11 targets: ≤ 1 ms, ≥ 80 %). */
  addedP50Ms?: number;
  callsPerSVsTs?: number;
  samplesMs?: number[];
}

export interface PythonClientOptions {
  redisUrl: string;
  prefix: string;
  slots: number;
  iterations: number;
  warmup: number;
  batches: number;
  batchWarmup: number;
  inFlight: number[];
  command: string;
  logger: Logger;
  /** The TypeScript client's numbers from the same run, to compare with. */
  ts: { p50Ms: number; callsPerS: number };
}

interface PythonOutput { python: string; serialMs: number[]; overheadMs: number[]; runs: ThroughputRun[]; failures: number; firstFailure: string | null }

/**
 * Starts a gateway in this process on the bench's prefix (loopback, no token), runs
 * tools/bench/python_client.py against it, and compares with the TypeScript client. Never throws:
 * a missing python3 or a failed run is reported in the results.
 */
export async function measurePythonClient(o: PythonClientOptions): Promise<PythonClientResults> {
  const config = loadConfig({ redisUrl: o.redisUrl, prefix: o.prefix, gatewayPort: 0, gatewayHost: '127.0.0.1' });
  const gateway = await startGateway({ config, logger: o.logger });
  try {
    const args = [
      'tools/bench/python_client.py', '--url', gateway.url, '--slots', String(o.slots), '--iterations', String(o.iterations), '--warmup', String(o.warmup),
      '--batches', String(o.batches), '--batch-warmup', String(o.batchWarmup), '--in-flight', ...o.inFlight.map(String), '--command', o.command,
    ];
    const { stdout } = await run('python3', args, { cwd: ROOT, env: { ...process.env, PYTHONPATH: `${ROOT}python` }, timeout: 30 * 60_000, maxBuffer: 64 * 1024 * 1024 });
    const out = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PythonOutput;
    const serial = summarize(out.serialMs);
    const best = out.runs.reduce((a, r) => (r.callsPerS > a.callsPerS ? r : a));
    return {
      ok: true, python: out.python, serial, queueOverhead: summarize(out.overheadMs), callsPerS: best.callsPerS, batchRuns: out.runs,
      failures: out.failures, firstFailure: out.firstFailure, addedP50Ms: round(serial.p50Ms - o.ts.p50Ms), callsPerSVsTs: round(best.callsPerS / o.ts.callsPerS, 3),
      samplesMs: out.serialMs.map((x) => round(x)),
    };
  } catch (err) {
    const e = err as { message?: string; stderr?: string };
    return { ok: false, error: `${e.message ?? String(err)}\n${e.stderr ?? ''}`.trim() };
  } finally {
    await gateway.close();
  }
}

/** The Python client beside the TypeScript client: p50 added and calls/s, with issue 11's targets. */
export function renderPythonTable(p: PythonClientResults, ts: { p50Ms: number; p99Ms: number; callsPerS: number }, slots: number): string {
  if (!p.ok) return `Python client: not measured (${p.error ?? 'unknown error'})`;
  const style = process.stdout.isTTY ? {} : { style: { head: [], border: [] } };
  const table = new Table({ head: ['metric', 'Python client (gateway)', 'TypeScript client', 'difference', 'target'], ...style });
  const added = p.addedP50Ms ?? Number.NaN;
  const signed = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)} ms`;
  const share = p.callsPerSVsTs ?? Number.NaN;
  table.push(
    ['latency p50, one call at a time', `${p.serial!.p50Ms.toFixed(2)} ms`, `${ts.p50Ms.toFixed(2)} ms`, signed(added), `≤ +1 ms ${added <= 1 ? '✔ met' : '✘ not met'}`],
    ['latency p99, one call at a time', `${p.serial!.p99Ms.toFixed(2)} ms`, `${ts.p99Ms.toFixed(2)} ms`, signed(p.serial!.p99Ms - ts.p99Ms), '—'],
    [`throughput, ${slots} slots`, `${(p.callsPerS ?? 0).toFixed(0)} calls/s`, `${ts.callsPerS.toFixed(0)} calls/s`, Number.isFinite(share) ? `${(share * 100).toFixed(0)} %` : '—', `≥ 80 % ${share >= 0.8 ? '✔ met' : '✘ not met'}`],
  );
  return `Python client (python ${p.python ?? '?'}, ${p.failures ?? 0} failed calls):\n${table.toString()}`;
}
