import type { Redis } from 'ioredis';

/**
 * "Retryable" means "never ran, and never will" (contract §3). Two marks in a calls job's BullMQ hash make
 * that checkable: the worker marks each call started (`sq:run`, ",0,3,") in the same script that checks it
 * may start it; a producer giving calls up fences the job first (`sq:fence`), so no call of it starts
 * afterwards, and learns which calls had started. Both scripts are atomic on the job's hash, so each call
 * is either started before the fence (its outcome is unknown) or refused after it (it never ran).
 */
export const RUN_FIELD = 'sq:run';
export const FENCE_FIELD = 'sq:fence';

/**
 * KEYS: the job's hash, the worker's info hash, the registry's slots hash.
 * ARGV: the worker's incarnation (epoch), then triples (item index, slotId, leaseId).
 * Returns {status, valid...}: status 'gone' (no job), 'fenced' (given up by its producer), 'stale' (the
 * worker's registration is not this incarnation: it was declared lost, or Redis forgot it), else 'ok' and
 * per triple 1 when the lease holds (that call is marked started) or 0 (not marked). Marks are a set:
 * sent twice (ioredis re-sends after a reconnect), it answers the same and changes nothing more.
 */
export const START_CALLS = `
if redis.call('HEXISTS', KEYS[1], 'data') == 0 then return {'gone'} end
if redis.call('HEXISTS', KEYS[1], '${FENCE_FIELD}') == 1 then return {'fenced'} end
if redis.call('HGET', KEYS[2], 'epoch') ~= ARGV[1] then return {'stale'} end
local run = redis.call('HGET', KEYS[1], '${RUN_FIELD}') or ','
local out = {'ok'}
for i = 2, #ARGV, 3 do
  local valid = 0
  local j = redis.call('HGET', KEYS[3], ARGV[i + 1])
  if j then
    local s = cjson.decode(j)
    if s.leaseId == ARGV[i + 2] and s.state == 'held' then valid = 1 end
  end
  if valid == 1 and not string.find(run, ',' .. ARGV[i] .. ',', 1, true) then run = run .. ARGV[i] .. ',' end
  out[#out + 1] = valid
end
redis.call('HSET', KEYS[1], '${RUN_FIELD}', run)
return out
`;

/**
 * KEYS: the job's hash. ARGV: how long (ms) a hash made to fence a job that is not there is kept.
 * Returns {state, started}: 'absent' (no job data: never added, or gone; a fence-only hash now holds the
 * ID, so an add still on its way is refused as a duplicate and never runs), 'finished' (its results are
 * on their way), else 'fenced' with the started marks (",0,3,"). Idempotent.
 */
export const FENCE_JOB = `
if redis.call('HEXISTS', KEYS[1], 'data') == 0 then
  if redis.call('HEXISTS', KEYS[1], '${FENCE_FIELD}') == 0 then
    redis.call('HSET', KEYS[1], '${FENCE_FIELD}', '1')
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
  end
  return {'absent', ''}
end
if redis.call('HEXISTS', KEYS[1], 'finishedOn') == 1 then return {'finished', ''} end
redis.call('HSET', KEYS[1], '${FENCE_FIELD}', '1')
return {'fenced', redis.call('HGET', KEYS[1], '${RUN_FIELD}') or ''}
`;

/** How long a fence-only hash lasts: past any add that could still arrive, and past the producer's wait. */
export const FENCE_TTL_MS = 3_600_000;

export type StartStatus = 'ok' | 'gone' | 'fenced' | 'stale';
export type FenceState = 'absent' | 'finished' | 'fenced';

type FenceRedis = Redis & {
  slotqStartCalls(job: string, worker: string, slots: string, ...args: string[]): Promise<[StartStatus, ...number[]]>;
  slotqFenceJob(job: string, ttlMs: number): Promise<[FenceState, string]>;
};

function scripts(redis: Redis): FenceRedis {
  const r = redis as FenceRedis;
  if (typeof r.slotqStartCalls !== 'function') r.defineCommand('slotqStartCalls', { lua: START_CALLS, numberOfKeys: 3 });
  if (typeof r.slotqFenceJob !== 'function') r.defineCommand('slotqFenceJob', { lua: FENCE_JOB, numberOfKeys: 1 });
  return r;
}

export interface StartKeys {
  job: string;
  worker: string;
  slots: string;
}

/** Marks calls started if the job may run them here; per call whether its lease holds (and it is marked). */
export async function startCalls(redis: Redis, keys: StartKeys, epoch: string, calls: ReadonlyArray<readonly [index: number, slotId: string, leaseId: string]>): Promise<{ status: StartStatus; valid: boolean[] }> {
  const [status, ...valid] = await scripts(redis).slotqStartCalls(keys.job, keys.worker, keys.slots, epoch, ...calls.flatMap(([i, s, l]) => [String(i), s, l]));
  return { status, valid: status === 'ok' ? valid.map((v) => Number(v) === 1) : calls.map(() => false) };
}

/** Fences a job: none of its calls starts after this. Which had started (item indices), and the job's state. */
export async function fenceJob(redis: Redis, jobKey: string): Promise<{ state: FenceState; started: Set<number> }> {
  const [state, run] = await scripts(redis).slotqFenceJob(jobKey, FENCE_TTL_MS);
  return { state, started: new Set(String(run).split(',').filter(Boolean).map(Number)) };
}
