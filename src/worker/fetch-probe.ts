import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from '../shared/errors.js';
import { callsJobSchema, type JobItem } from '../shared/schemas.js';

/** [slotId, leaseId] of each slot a job's calls use, in first-use order. */
export type LeasePairs = Array<readonly [slotId: string, leaseId: string]>;

export function leasePairs(items: ReadonlyArray<Pick<JobItem, 'slotId' | 'leaseId'>>): LeasePairs {
  return [...new Map(items.map((i) => [i.slotId, i.leaseId] as const)).entries()];
}

/**
 * KEYS: the registry's slots hash, the queue's wait list, its prioritized set, its marker set.
 * ARGV: slotId, leaseId pairs. Returns {idle, {1|0 per pair}}: a lease is valid while its slot is
 * held under it (the registry's CHECK_LEASES). idle = 1 when no job waits in the queue; the marker
 * BullMQ set when it handed out the job is then removed, so the worker's next BZPOPMIN blocks until a
 * producer adds a job (an add sets the marker again) instead of waking for nothing.
 */
const FETCH_PROBE = `
local out = {}
for i = 1, #ARGV, 2 do
  local j = redis.call('HGET', KEYS[1], ARGV[i])
  local ok = 0
  if j then
    local s = cjson.decode(j)
    if s.leaseId == ARGV[i + 1] and s.state == 'held' then ok = 1 end
  end
  out[#out + 1] = ok
end
local idle = 0
if redis.call('LLEN', KEYS[2]) == 0 and redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[4], '0')
  idle = 1
end
return {idle, out}
`;

export interface ProbeKeys {
  slots: string;
  wait: string;
  prioritized: string;
  marker: string;
}

interface Probe {
  pairs: string;
  valid: Promise<boolean[]>;
}

type ProbeRedis = Redis & { slotqFetchProbe(...args: Array<string | number>): Promise<[number, number[]]> };

/** Probes older than this many jobs are dropped (a job fetched but never processed, e.g. at close). */
const MAX_PROBES = 1024;

/**
 * What the worker asks Redis the moment BullMQ hands it a calls job, in one round trip: are the job's
 * leases still valid (the at-most-once check, contract §3), and is the queue now empty. The job
 * processor takes the lease answer instead of asking again; the queue's fetch loop (probing-worker.ts)
 * skips the fetch it would make right after a job when the queue was empty (BullMQ's own marker would
 * otherwise wake it for a second, empty fetch).
 */
export class FetchProbes {
  private readonly probes = new Map<string, Probe>();
  private readonly redis: ProbeRedis;
  private keys: ProbeKeys | undefined;
  /** The last job probed, and whether the queue was empty once it was handed out. */
  private last: { jobId: string; idle: Promise<boolean> } | undefined;

  constructor(redis: Redis, private readonly slotsKey: string, private readonly log: Logger) {
    this.redis = redis as ProbeRedis;
    if (typeof this.redis.slotqFetchProbe !== 'function') this.redis.defineCommand('slotqFetchProbe', { lua: FETCH_PROBE, numberOfKeys: 4 });
  }

  /** The queue's keys (known once its BullMQ worker exists). */
  bind(keys: Omit<ProbeKeys, 'slots'>): void {
    this.keys = { ...keys, slots: this.slotsKey };
  }

  /** Starts the probe of a job just handed out (a calls job; other kinds are not probed). */
  start(jobId: string | undefined, data: unknown): void {
    this.last = undefined;
    const parsed = callsJobSchema.safeParse(data);
    if (!jobId || !parsed.success || !this.keys) return;
    const pairs = leasePairs(parsed.data.items);
    const k = this.keys;
    const reply = this.redis.slotqFetchProbe(k.slots, k.wait, k.prioritized, k.marker, ...pairs.flat());
    const valid = reply.then(([, ok]) => ok.map((n) => n === 1));
    valid.catch(() => undefined); // the processor sees the error when it takes the probe
    const idle = reply.then(
      ([empty]) => empty === 1,
      (err: unknown) => {
        this.log.debug({ err: toError(err).message }, 'fetch probe failed');
        return false;
      },
    );
    this.last = { jobId, idle };
    this.probes.set(jobId, { pairs: JSON.stringify(pairs), valid });
    if (this.probes.size > MAX_PROBES) this.probes.delete(this.probes.keys().next().value!);
  }

  /** The lease answer of a probed job for exactly these pairs, once; undefined when there is none. */
  take(jobId: string, pairs: LeasePairs): Promise<boolean[]> | undefined {
    const probe = this.probes.get(jobId);
    if (!probe) return undefined;
    this.probes.delete(jobId);
    return probe.pairs === JSON.stringify(pairs) ? probe.valid : undefined;
  }

  /** Resolves true when the queue was empty right after this job was handed out (its marker then removed). */
  idleAfter(jobId: string | undefined): Promise<boolean> | undefined {
    return this.last && this.last.jobId === jobId ? this.last.idle : undefined;
  }
}
