/**
 * Lua for the slot registry. Every script declares one key ({prefix}:workers, for Cluster routing), gets
 * the hash-tagged root as ARGV[1] and builds its keys
 * with the same layout as keys.ts. Scripts are atomic, so affinity, FIFO waiters and leases never race.
 *
 * Slot hash fields: workerId, containerId, state (free|held|resetting), trajectoryId, owner, leaseId,
 * leaseExpMs, heldAtMs.
 */
const LIB = `
local P = ARGV[1]
local function k(a, b) if b then return P .. ':' .. a .. ':' .. b end return P .. ':' .. a end
local function alive(wid) return redis.call('EXISTS', k('worker', wid)) == 1 end
local function draining(wid) return redis.call('HGET', k('worker', wid), 'state') == 'draining' end
local function hmap(key)
  local flat = redis.call('HGETALL', key)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  m['slotId'] = string.sub(key, #P + 7)
  return m
end
local function grant(sid, tid, owner, lease, ttl, now)
  redis.call('HSET', k('slot', sid), 'state', 'held', 'trajectoryId', tid, 'owner', owner,
    'leaseId', lease, 'leaseExpMs', now + ttl, 'heldAtMs', now)
  redis.call('SET', k('traj', tid), sid)
  redis.call('ZADD', k('leases'), now + ttl, sid)
end
local function push_grant(producer, waiter, sid)
  local box = k('inbox', producer)
  redis.call('RPUSH', box, cjson.encode({t = 'grant', waiterId = waiter, slot = hmap(k('slot', sid))}))
  redis.call('PEXPIRE', box, 600000)
end
local function drop_free(wid)
  redis.call('DEL', k('free', wid))
  redis.call('ZREM', k('freecount'), wid)
end
-- Hands a slot to the first live waiter, or appends it to its worker's free list.
local function make_free(sid, now)
  local h = k('slot', sid)
  local wid = redis.call('HGET', h, 'workerId')
  if not wid then return 'gone' end
  redis.call('HSET', h, 'state', 'free', 'trajectoryId', '', 'owner', '', 'leaseId', '', 'leaseExpMs', 0)
  if (not alive(wid)) or draining(wid) then return 'parked' end
  while true do
    local w = redis.call('LPOP', k('waiters'))
    if not w then break end
    local wk = k('waiter', w)
    local info = redis.call('HMGET', wk, 'producerId', 'trajectoryId', 'leaseId', 'ttlMs')
    redis.call('DEL', wk)
    if info[1] then
      local existing = redis.call('GET', k('traj', info[2]))
      if existing then
        push_grant(info[1], w, existing)
      else
        grant(sid, info[2], info[1], info[3], tonumber(info[4]), now)
        push_grant(info[1], w, sid)
        return 'granted'
      end
    end
  end
  -- Idempotent: a slot is listed at most once, whatever re-registration or retry got here twice.
  if redis.call('LREM', k('free', wid), 0, sid) == 0 then redis.call('ZINCRBY', k('freecount'), 1, wid) end
  redis.call('RPUSH', k('free', wid), sid)
  return 'free'
end
local function forget_slot(sid)
  local h = k('slot', sid)
  local tid = redis.call('HGET', h, 'trajectoryId')
  if tid and tid ~= '' and redis.call('GET', k('traj', tid)) == sid then redis.call('DEL', k('traj', tid)) end
  redis.call('ZREM', k('leases'), sid)
  redis.call('DEL', h)
end
local function unregister(wid)
  for _, sid in ipairs(redis.call('SMEMBERS', k('wslots', wid))) do forget_slot(sid) end
  redis.call('DEL', k('wslots', wid), k('worker', wid), k('wstats', wid))
  drop_free(wid)
  redis.call('SREM', k('workers'), wid)
end
`;

const script = (body: string): string => `${LIB}\n${body}`;

/** ARGV: root, trajectoryId, owner, leaseId, ttlMs, nowMs, waiterId ('' = do not queue), waiterTtlMs */
export const ACQUIRE = script(`
local tid, owner, lease, ttl, now, waiter = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local existing = redis.call('GET', k('traj', tid))
if existing then
  if redis.call('HGET', k('slot', existing), 'state') == 'held' then return {'slot', cjson.encode(hmap(k('slot', existing)))} end
  redis.call('DEL', k('traj', tid))
end
local cands = redis.call('ZREVRANGEBYSCORE', k('freecount'), '+inf', 1, 'LIMIT', 0, 32)
for _, wid in ipairs(cands) do
  if not alive(wid) then
    drop_free(wid)
  elseif not draining(wid) then
    local sid = redis.call('LPOP', k('free', wid))
    if sid then
      redis.call('ZINCRBY', k('freecount'), -1, wid)
      grant(sid, tid, owner, lease, ttl, now)
      return {'slot', cjson.encode(hmap(k('slot', sid)))}
    end
    redis.call('ZADD', k('freecount'), 0, wid)
  end
end
if waiter ~= '' then
  redis.call('RPUSH', k('waiters'), waiter)
  redis.call('HSET', k('waiter', waiter), 'producerId', owner, 'trajectoryId', tid, 'leaseId', lease, 'ttlMs', ttl)
  redis.call('PEXPIRE', k('waiter', waiter), tonumber(ARGV[8]))
end
return {'wait'}
`);

/** ARGV: root, waiterId. Returns 1 when the waiter was still queued (so nothing was granted). */
export const CANCEL_WAITER = script(`
local n = redis.call('LREM', k('waiters'), 0, ARGV[2])
redis.call('DEL', k('waiter', ARGV[2]))
return n
`);

/** ARGV: root, slotId, leaseId, reset ('1'|'0'), nowMs. Returns gone|lost|resetting|free|granted|parked. */
export const RELEASE = script(`
local sid, lease, reset, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local h = k('slot', sid)
local cur = redis.call('HMGET', h, 'leaseId', 'trajectoryId', 'workerId', 'state')
if not cur[3] then return 'gone' end
if cur[4] ~= 'held' or cur[1] ~= lease then return 'lost' end
if redis.call('GET', k('traj', cur[2])) == sid then redis.call('DEL', k('traj', cur[2])) end
redis.call('ZREM', k('leases'), sid)
if reset == '1' then
  redis.call('HSET', h, 'state', 'resetting', 'trajectoryId', '', 'owner', '', 'leaseId', '', 'leaseExpMs', 0)
  return 'resetting'
end
return make_free(sid, now)
`);

/** ARGV: root, ttlMs, nowMs, then slotId, leaseId pairs. Returns the slot ids whose lease is lost. */
export const RENEW = script(`
local ttl, now, lost = tonumber(ARGV[2]), tonumber(ARGV[3]), {}
for i = 4, #ARGV, 2 do
  local sid, lease = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HMGET', k('slot', sid), 'leaseId', 'state')
  if cur[1] == lease and cur[2] == 'held' then
    redis.call('HSET', k('slot', sid), 'leaseExpMs', now + ttl)
    redis.call('ZADD', k('leases'), now + ttl, sid)
  else
    table.insert(lost, sid)
  end
end
return lost
`);

/** ARGV: root, then slotId, leaseId pairs. Returns 1/0 per pair: is the lease current. */
export const CHECK_LEASES = script(`
local out = {}
for i = 2, #ARGV, 2 do
  local cur = redis.call('HMGET', k('slot', ARGV[i]), 'leaseId', 'state')
  out[#out + 1] = (cur[1] == ARGV[i + 1] and cur[2] == 'held') and 1 or 0
end
return out
`);

/** ARGV: root, workerId, heartbeatTtlMs, then field, value pairs of the worker's info. */
export const REGISTER_WORKER = script(`
local wid, ttl = ARGV[2], tonumber(ARGV[3])
local info = {}
for i = 4, #ARGV do info[#info + 1] = ARGV[i] end
redis.call('HSET', k('worker', wid), unpack(info))
redis.call('PEXPIRE', k('worker', wid), ttl)
redis.call('SADD', k('workers'), wid)
return 1
`);

/** ARGV: root, slotId, workerId, containerId, nowMs. Registers (or re-registers) a ready slot as free. */
export const ADD_SLOT = script(`
local sid, wid, cid, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local tid = redis.call('HGET', k('slot', sid), 'trajectoryId')
if tid and tid ~= '' and redis.call('GET', k('traj', tid)) == sid then redis.call('DEL', k('traj', tid)) end
redis.call('ZREM', k('leases'), sid)
redis.call('HSET', k('slot', sid), 'workerId', wid, 'containerId', cid)
redis.call('SADD', k('wslots', wid), sid)
return make_free(sid, now)
`);

/** ARGV: root, workerId, nowMs. Takes back this worker's slots whose lease expired; returns their ids. */
export const REAP_LEASES = script(`
local wid, now, out = ARGV[2], tonumber(ARGV[3]), {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', k('leases'), '-inf', now)) do
  local h = k('slot', sid)
  local cur = redis.call('HMGET', h, 'workerId', 'state', 'leaseExpMs')
  if (not cur[1]) or (cur[1] == wid and cur[2] ~= 'held') then
    redis.call('ZREM', k('leases'), sid) -- stale entry: the slot is gone or no longer held
  elseif cur[1] == wid and tonumber(cur[3] or '0') <= now then
    local tid = redis.call('HGET', h, 'trajectoryId')
    if tid and redis.call('GET', k('traj', tid)) == sid then redis.call('DEL', k('traj', tid)) end
    redis.call('ZREM', k('leases'), sid)
    redis.call('HSET', h, 'state', 'resetting', 'trajectoryId', '', 'owner', '', 'leaseId', '', 'leaseExpMs', 0)
    out[#out + 1] = sid
  end
end
return out
`);

/** ARGV: root, workerId. Stops new leases landing on the worker's slots. */
export const DRAIN_WORKER = script(`
redis.call('HSET', k('worker', ARGV[2]), 'state', 'draining')
drop_free(ARGV[2])
return 1
`);

/** ARGV: root, workerId. Removes a worker and all its slots from the registry. */
export const UNREGISTER_WORKER = script(`
unregister(ARGV[2])
return 1
`);

/** ARGV: root. Unregisters every worker whose heartbeat key expired; returns their ids. */
export const REAP_DEAD_WORKERS = script(`
local out = {}
for _, wid in ipairs(redis.call('SMEMBERS', k('workers'))) do
  if not alive(wid) then
    unregister(wid)
    out[#out + 1] = wid
  end
end
return out
`);

export const REGISTRY_SCRIPTS = {
  slotqAcquire: ACQUIRE,
  slotqCancelWaiter: CANCEL_WAITER,
  slotqRelease: RELEASE,
  slotqRenew: RENEW,
  slotqCheckLeases: CHECK_LEASES,
  slotqRegisterWorker: REGISTER_WORKER,
  slotqAddSlot: ADD_SLOT,
  slotqReapLeases: REAP_LEASES,
  slotqDrainWorker: DRAIN_WORKER,
  slotqUnregisterWorker: UNREGISTER_WORKER,
  slotqReapDeadWorkers: REAP_DEAD_WORKERS,
} as const;
