import { TOOL_ALIASES, TOOL_NAMES } from './calls/schemas.js';

/**
 * The counters a worker publishes for the board (a small hash per worker, written every heartbeat),
 * and their encoding. The worker writes with `WorkerMetrics`; the board reads with `decodeWorkerStats`.
 *
 * Hash fields: `c|<tool>|<outcome>` calls, `h|<tool>|<bucket>` latency bucket counts (not cumulative;
 * bucket index into LATENCY_BUCKETS_S, or `inf`), `hs|<tool>` latency sum (s), `hc|<tool>` latency count,
 * plus the plain counters below.
 */
export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300] as const;

export const STATS_FIELDS = {
  containersCreated: 'containers_created',
  containersFailed: 'containers_failed',
  brokenSlots: 'broken_slots',
  updatedAtMs: 'updated_at_ms',
} as const;

/** Tool label: a known tool name or alias, else `other` (producers can send any string). */
export const toolLabel = (tool: string): string => ((TOOL_NAMES as readonly string[]).includes(tool) || tool in TOOL_ALIASES ? tool : 'other');

export const callsField = (tool: string, outcome: string): string => `c|${toolLabel(tool)}|${outcome}`;

/** The hash fields one call adds to, for a latency in seconds. */
export function latencyFields(tool: string, seconds: number): { bucket: string; sum: string; count: string } {
  const t = toolLabel(tool);
  const i = LATENCY_BUCKETS_S.findIndex((le) => seconds <= le);
  return { bucket: `h|${t}|${i < 0 ? 'inf' : i}`, sum: `hs|${t}`, count: `hc|${t}` };
}

export interface ToolLatency {
  tool: string;
  /** Cumulative counts, one per LATENCY_BUCKETS_S entry (Prometheus `le` semantics). */
  cumulative: number[];
  count: number;
  sumS: number;
}

export interface WorkerStats {
  calls: Array<{ tool: string; outcome: string; count: number }>;
  latency: ToolLatency[];
  containersCreated: number;
  containersFailed: number;
  brokenSlots: number;
  updatedAtMs: number;
}

/** Parses a worker's stats hash; unknown fields are ignored. */
export function decodeWorkerStats(hash: Record<string, string>): WorkerStats {
  const num = (v: string | undefined): number => (v === undefined || !Number.isFinite(Number(v)) ? 0 : Number(v));
  const calls: WorkerStats['calls'] = [];
  const lat = new Map<string, { raw: number[]; inf: number; count: number; sumS: number }>();
  const latFor = (tool: string) => {
    let l = lat.get(tool);
    if (!l) lat.set(tool, (l = { raw: LATENCY_BUCKETS_S.map(() => 0), inf: 0, count: 0, sumS: 0 }));
    return l;
  };
  for (const [field, value] of Object.entries(hash)) {
    const [kind, tool, rest] = field.split('|');
    if (tool === undefined) continue;
    if (kind === 'c' && rest !== undefined) calls.push({ tool, outcome: rest, count: num(value) });
    else if (kind === 'hs') latFor(tool).sumS = num(value);
    else if (kind === 'hc') latFor(tool).count = num(value);
    else if (kind === 'h' && rest === 'inf') latFor(tool).inf = num(value);
    else if (kind === 'h' && rest !== undefined && Number(rest) < LATENCY_BUCKETS_S.length) latFor(tool).raw[Number(rest)] = num(value);
  }
  const latency = [...lat.entries()].map(([tool, l]): ToolLatency => {
    let acc = 0;
    return { tool, cumulative: l.raw.map((n) => (acc += n)), count: l.count, sumS: l.sumS };
  });
  return {
    calls: calls.sort((a, b) => `${a.tool}|${a.outcome}`.localeCompare(`${b.tool}|${b.outcome}`)),
    latency: latency.sort((a, b) => a.tool.localeCompare(b.tool)),
    containersCreated: num(hash[STATS_FIELDS.containersCreated]),
    containersFailed: num(hash[STATS_FIELDS.containersFailed]),
    brokenSlots: num(hash[STATS_FIELDS.brokenSlots]),
    updatedAtMs: num(hash[STATS_FIELDS.updatedAtMs]),
  };
}
