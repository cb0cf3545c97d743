import Table from 'cli-table3';
import type { BenchResults } from './bench.js';
import { renderCpu } from './cpu.js';

export interface TargetCheck {
  id: string;
  target: string;
  value: number;
  met: boolean;
}

/** The goals slotq is measured against (contract targets for the executor path). */
export function checkTargets(r: Pick<BenchResults, 'e2e' | 'ratios' | 'redisCommandsPerCall' | 'bigOutput' | 'coldStart32SlotsMs'> & Partial<Pick<BenchResults, 'harnessExec'>>): TargetCheck[] {
  const atMost = (id: string, value: number, max: number, unit: string): TargetCheck => ({ id, target: `≤ ${max}${unit}`, value, met: value <= max });
  const atLeast = (id: string, value: number, min: number, unit: string): TargetCheck => ({ id, target: `≥ ${min}${unit}`, value, met: value >= min });
  return [
    atMost('e2eP50', r.e2e.p50Ms, 2, ' ms'),
    atMost('e2eP99', r.e2e.p99Ms, 10, ' ms'),
    atLeast('callsPerS', r.e2e.callsPerS, 1500, ' calls/s'),
    atLeast('latencyRatio', r.ratios.latencyP50, 25, '×'),
    atLeast('throughputRatio', r.ratios.throughput, 40, '×'),
    atMost('redisCommandsPerCall', r.redisCommandsPerCall, 5, ''),
    atMost('coldStart32SlotsMs', r.coldStart32SlotsMs, 3000, ' ms'),
    // The executor streams output: a 300 MB print must not cost the worker more than this (was a test threshold).
    atMost('bigOutputRssGrowthMb', r.bigOutput.ok ? r.bigOutput.rssGrowthMb : Number.POSITIVE_INFINITY, 200, ' MB'),
    // The harness's exec rides the same executor as the bash tool: within 10 % of it.
    ...(r.harnessExec ? [atMost('execVsBashP50', r.harnessExec.ratio, 1.1, '× bash')] : []),
  ];
}

const mark = (t: TargetCheck | undefined): string => (t ? `${t.target} ${t.met ? '✔ met' : '✘ not met'}` : '—');
const ms = (x: number): string => `${x.toFixed(2)} ms`;
const times = (x: number): string => `${x.toFixed(1)}×`;

/** The results as a table: metric | slotq | baseline | ratio | target. */
export function renderTable(r: BenchResults): string {
  const t = new Map(r.targets.map((c) => [c.id, c]));
  const style = process.stdout.isTTY ? {} : { style: { head: [], border: [] } }; // no colour codes in pipes and logs
  const table = new Table({ head: ['metric', 'slotq', 'baseline (docker exec)', 'ratio', 'target'], ...style });
  table.push(
    ['latency p50, one call at a time', ms(r.e2e.p50Ms), ms(r.baseline.p50Ms), times(r.ratios.latencyP50), `${mark(t.get('e2eP50'))}\nratio ${mark(t.get('latencyRatio'))}`],
    ['latency p99, one call at a time', ms(r.e2e.p99Ms), ms(r.baseline.p99Ms), times(r.baseline.p99Ms / r.e2e.p99Ms), mark(t.get('e2eP99'))],
    [`throughput, ${r.config.slots} slots`, `${r.e2e.callsPerS.toFixed(0)} calls/s`, `${r.baseline.callsPerS.toFixed(1)} calls/s`, times(r.ratios.throughput), `${mark(t.get('callsPerS'))}\nratio ${mark(t.get('throughputRatio'))}`],
    ['queue overhead p50 (e2e − in-slot)', ms(r.queueOverheadP50Ms), '—', '—', '—'],
    ['Redis commands per call (batches)', r.redisCommandsPerCall.toFixed(2), '—', '—', mark(t.get('redisCommandsPerCall'))],
    [`cold start, ${r.config.slots} slots ready`, `${r.coldStart32SlotsMs.toFixed(0)} ms`, '—', '—', mark(t.get('coldStart32SlotsMs'))],
    [`RSS growth, one ${r.bigOutput.bytes / 1e6} MB output${r.bigOutput.ok ? '' : ' (FAILED)'}`, `${r.bigOutput.rssGrowthMb.toFixed(0)} MB`, '—', '—', mark(t.get('bigOutputRssGrowthMb'))],
  );
  if (r.harnessExec) table.push(['harness exec p50 (vs the bash tool, alternating)', ms(r.harnessExec.execP50Ms), `bash tool ${ms(r.harnessExec.bashP50Ms)}`, times(r.harnessExec.ratio), mark(t.get('execVsBashP50'))]);
  const runs = r.e2e.batchRuns.map((b) => `${b.inFlight} in flight: ${b.callsPerS.toFixed(0)} calls/s (in-slot p50 ${b.inSlotP50Ms?.toFixed(2) ?? '?'} ms)`).join(', ');
  const failures = r.e2e.failures + r.baseline.failures;
  const cpu = r.e2e.batchRuns.reduce((a, b) => (b.callsPerS > a.callsPerS ? b : a));
  const notes = [`slotq batch runs: ${runs}`];
  if (cpu?.cpuUs) notes.push(`slotq ${cpu.inFlight} in flight, ${renderCpu(cpu.cpuUs)}`);
  if (r.baseline.concurrent.cpuUs) notes.push(`docker exec, ${renderCpu(r.baseline.concurrent.cpuUs)}`);
  notes.push( `failed or wrong calls: ${failures}${r.e2e.firstFailure ? ` (first: ${r.e2e.firstFailure})` : ''}`);
  if (failures > 0) notes.push(`WARNING: ${failures} calls failed or printed the wrong output; the numbers above are not trustworthy (throughput counts successful calls only)`);
  return `${table.toString()}\n${notes.join('\n')}`;
}
