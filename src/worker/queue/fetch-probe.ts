import type { Writable } from 'node:stream';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { toError } from '../../shared/errors.js';
import { FENCE_FIELD, RUN_FIELD, type StartStatus } from '../../shared/calls/call-fence.js';
import type { JobItem } from '../../shared/calls/schemas.js';
import type { Keys, QueueKeys } from '../../shared/keys.js';

/** [slotId, leaseId] of each slot a job's calls use, in first-use order (a slot's last leaseId wins). */
export type LeasePairs = Array<readonly [slotId: string, leaseId: string]>;

export function leasePairs(items: ReadonlyArray<Pick<JobItem, 'slotId' | 'leaseId'>>): LeasePairs {
  return [...new Map(items.map((i) => [i.slotId, i.leaseId] as const)).entries()];
}

/**
 * KEYS: the queue's active list, wait list, prioritized set and marker set, the registry's slots hash,
 * the worker's info hash.
 * ARGV: the queue's job key prefix, the largest job payload (bytes) worth decoding here, the worker's
 * incarnation (epoch).
 * Sent on BullMQ's own connection right behind its fetch (moveToActive), so it runs just after it and
 * finds the job it handed out at the head of the active list. Returns {jobId, idle, {slotId, leaseId,
 * 1|0, ...}, status}: the leases of that job's calls (valid while the slot is held under it, as the
 * registry's CHECK_LEASES says; the pairs as leasePairs() makes them); status as START_CALLS in
 * call-fence.ts ('ok', 'fenced', 'stale'), and when 'ok' each slot's first call with a valid lease is
 * marked started there (it starts at once when its slot is idle); and idle = 1 when no job waits: then the
 * marker BullMQ set when it handed the job out is removed, so the worker's next BZPOPMIN blocks until
 * a producer adds a job (an add sets the marker again) instead of waking for an empty fetch.
 * Every key comes from keys.ts (keysFor): the six in KEYS, and the job hash prefix in ARGV[1] (its
 * queueKeys().jobPrefix); only the job's ID, read from the active list, is appended to it here, as
 * BullMQ's own scripts do (same hash tag).
 */
const FETCH_PROBE = `
local idle = 0
if redis.call('LLEN', KEYS[2]) == 0 and redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('ZREM', KEYS[4], '0')
  idle = 1
end
local id = redis.call('LINDEX', KEYS[1], 0)
if not id then return {'', idle, {}, ''} end
local jobKey = ARGV[1] .. id
local data = redis.call('HGET', jobKey, 'data')
if not data or #data > tonumber(ARGV[2]) then return {id, idle, {}, ''} end
local ok, job = pcall(cjson.decode, data)
if not ok or type(job) ~= 'table' or job.kind ~= 'calls' or type(job.items) ~= 'table' then return {id, idle, {}, ''} end
local order, lease, first = {}, {}, {}
for _, it in ipairs(job.items) do
  if type(it) ~= 'table' or type(it.slotId) ~= 'string' or type(it.leaseId) ~= 'string' or type(it.index) ~= 'number' then return {id, idle, {}, ''} end
  if lease[it.slotId] == nil then order[#order + 1] = it.slotId; first[it.slotId] = it end
  lease[it.slotId] = it.leaseId
end
local status = 'ok'
if redis.call('HEXISTS', jobKey, '${FENCE_FIELD}') == 1 then status = 'fenced'
elseif redis.call('HGET', KEYS[6], 'epoch') ~= ARGV[3] then status = 'stale' end
-- Marks are only ever added (as START_CALLS does): the job at the head may be an older one, already marked.
local out, run = {}, redis.call('HGET', jobKey, '${RUN_FIELD}') or ','
for _, sid in ipairs(order) do
  local j = redis.call('HGET', KEYS[5], sid)
  local valid = 0
  if j then
    local s = cjson.decode(j)
    if s.leaseId == lease[sid] and s.state == 'held' then valid = 1 end
  end
  local mark = string.format('%d', first[sid].index)
  if valid == 1 and first[sid].leaseId == lease[sid] and not string.find(run, ',' .. mark .. ',', 1, true) then run = run .. mark .. ',' end
  out[#out + 1] = sid
  out[#out + 1] = lease[sid]
  out[#out + 1] = valid
end
if status == 'ok' then redis.call('HSET', jobKey, '${RUN_FIELD}', run) end
return {id, idle, out, status}
`;

/** Payloads above this are not decoded inside Redis (it would block it): their processor checks the leases. */
const MAX_PROBED_DATA_BYTES = 64 * 1024;
/** Probes older than this many jobs are dropped (a job fetched but never processed, e.g. at close). */
const MAX_PROBES = 1024;

/** The queue keys the probe reads (keys.ts's queueKeys()). */
export type ProbeKeys = QueueKeys;

export interface ProbeReply {
  /** The job at the head of the active list when the probe ran ('' when none). */
  jobId: string;
  idle: boolean;
  pairs: LeasePairs;
  valid: boolean[];
  /** 'ok': the first call of each slot with a valid lease is marked started; else none is (call-fence.ts). */
  status: Exclude<StartStatus, 'gone'>;
  /** When the probe was sent: the leases were valid no earlier than this. */
  checkedAtMs: number;
}

type ProbeRedis = Redis & { slotqFetchProbe(...args: Array<string | number>): Promise<[string, number, Array<string | number>, string]> };

/**
 * The lease check of a job the worker is handed (the at-most-once check, contract §3), made in the same
 * round trip as BullMQ's fetch instead of one after it; and whether the queue was then empty (see
 * probing-worker.ts). The job processor takes the answer when it is for its job and its pairs, and
 * asks the registry itself otherwise.
 */
export class FetchProbes {
  private readonly probes = new Map<string, Promise<ProbeReply>>();
  private bound: ProbeRedis | undefined;
  private readonly slotsKey: string;
  private readonly workerKey: string;
  /** The worker's queue keys, from keys.ts (bind() checks BullMQ spells them the same). */
  readonly queueKeys: ProbeKeys;
  /** Sends the probe asked for by the last probeAfterNextCommand(), once. */
  private pending: (() => void) | undefined;
  /** The fetching connection's socket, while it is connected. */
  private socket: (() => Writable | undefined) | undefined;

  constructor(
    keys: Keys,
    workerId: string,
    /** The worker's current incarnation (liveness.ts). */
    private readonly epoch: () => string,
    private readonly log: Logger,
  ) {
    this.slotsKey = keys.slots;
    this.workerKey = keys.worker(workerId);
    this.queueKeys = keys.queueKeys(workerId);
  }

  /**
   * The connection BullMQ fetches on (one this worker made for it), and BullMQ's own keys of the queue
   * (its `keys`): they must be the ones keys.ts builds, or this throws (a BullMQ that spells them
   * otherwise would have the probe read keys nobody writes). Its
   * sendCommand is wrapped so that a probe asked for goes out right behind the next command written,
   * which is the fetch, and Redis runs it right after the fetch.
   */
  bind(redis: Redis, bullmqKeys: Readonly<Record<string, string>>): void {
    const q = this.queueKeys;
    const drift = ([['active', q.active], ['wait', q.wait], ['prioritized', q.prioritized], ['marker', q.marker], ['', q.jobPrefix]] as const).filter(([type, key]) => bullmqKeys[type] !== key);
    if (drift.length > 0) throw new Error(`fetch probe: BullMQ's queue keys differ from keys.ts's: ${drift.map(([type, key]) => `${type || "''"}: ${bullmqKeys[type]} != ${key}`).join(', ')}`);
    const r = redis as ProbeRedis;
    if (typeof r.slotqFetchProbe !== 'function') r.defineCommand('slotqFetchProbe', { lua: FETCH_PROBE, numberOfKeys: 6 });
    const sendCommand = r.sendCommand.bind(r);
    r.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
      const sent = sendCommand(...args);
      const probe = this.pending;
      this.pending = undefined;
      probe?.();
      return sent;
    };
    this.socket = () => (r as unknown as { stream?: Writable }).stream;
    this.bound = r;
  }

  /**
   * A probe sent right behind the next command written on the fetching connection (call it just before
   * the fetch); sent anyway once this turn of the event loop is over. Were another command to slip in
   * first, the probe would find another job at the head of the active list, and not be used.
   */
  probeAfterNextCommand(): Promise<ProbeReply> {
    // Corked, the fetch and the probe leave in one write (a syscall less on every job's path).
    const socket = this.socket?.();
    const corked = socket?.writable === true && typeof socket.cork === 'function';
    if (corked) socket.cork();
    let uncorked = !corked;
    const uncork = (): void => {
      if (uncorked) return;
      uncorked = true;
      socket?.uncork();
    };
    return new Promise<ProbeReply>((resolve, reject) => {
      const send = (): void => {
        try {
          void this.send().then(resolve, reject);
        } finally {
          uncork();
        }
      };
      this.pending = send;
      setImmediate(() => {
        uncork();
        if (this.pending !== send) return;
        this.pending = undefined;
        send();
      });
    });
  }

  /** Sends a probe on the fetching connection. */
  async send(): Promise<ProbeReply> {
    if (!this.bound) throw new Error('fetch probe: no connection bound');
    const redis = this.bound;
    const k = this.queueKeys;
    const sentAtMs = Date.now();
    const [jobId, idle, flat, status] = await redis.slotqFetchProbe(k.active, k.wait, k.prioritized, k.marker, this.slotsKey, this.workerKey, k.jobPrefix, MAX_PROBED_DATA_BYTES, this.epoch());
    const pairs: Array<[string, string]> = [];
    const valid: boolean[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      pairs.push([String(flat[i]), String(flat[i + 1])]);
      valid.push(Number(flat[i + 2]) === 1);
    }
    return { jobId: String(jobId), idle: Number(idle) === 1, pairs, valid, status: status === 'fenced' || status === 'stale' ? status : 'ok', checkedAtMs: sentAtMs };
  }

  /** Keeps a probe for the job the fetch handed out (the processor takes it). */
  attach(jobId: string, reply: Promise<ProbeReply>): void {
    reply.catch((err: unknown) => this.log.debug({ err: toError(err).message, jobId }, 'fetch probe failed'));
    this.probes.set(jobId, reply);
    if (this.probes.size > MAX_PROBES) this.probes.delete(this.probes.keys().next().value!);
  }

  /**
   * The lease answer for a job, once: undefined when it was not probed, or the probe found another job
   * or other pairs, or the probe failed (then the caller checks the leases itself).
   */
  async take(jobId: string, pairs: LeasePairs): Promise<Pick<ProbeReply, 'valid' | 'status' | 'checkedAtMs'> | undefined> {
    const probe = this.probes.get(jobId);
    if (!probe) return undefined;
    this.probes.delete(jobId);
    const reply = await probe.catch(() => undefined);
    // A probe of an undecodable payload ('' status) marked nothing: the processor claims the calls itself.
    return reply && reply.jobId === jobId && reply.pairs.length > 0 && JSON.stringify(reply.pairs) === JSON.stringify(pairs) ? { valid: reply.valid, status: reply.status, checkedAtMs: reply.checkedAtMs } : undefined;
  }
}
