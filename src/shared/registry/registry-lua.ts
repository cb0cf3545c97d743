import { FREE_SLOT_SEPARATOR } from '../keys.js';
import { IMAGE_LIB } from './registry-image-lib.js';

/**
 * Lua for the slot registry. Scripts are atomic, so affinity, FIFO waiters and leases never race.
 * Every key a script touches arrives in KEYS, built by keys.ts (`registryKeys()`, then `workerKeys(id)`
 * for the scripts about one worker); none is built here, so a Redis Cluster routes each script to the
 * node of the shared hash tag and an ACL can name exactly the keys.
 *
 * A slot record is JSON in the `slots` hash: slotId, workerId, containerId, state (free|held|resetting),
 * trajectoryId (plain, for display), affinity (the owner-scoped key of the `trajectories` hash, affinity.ts),
 * owner, leaseId, leaseExpMs, heldAtMs (numbers as decimal strings). Affinity is only ever looked up by the
 * scoped key, so a slot (and its lease) reaches only producers of its owner's scope.
 * Grants to waiting producers are returned to the caller (producerId, waiterId, slot JSON triples after
 * the outcome), which delivers them to the inboxes; a producer whose grant got lost finds it with GRANTED_TO.
 */
const LIB = `
local K_WORKERS, K_SLOTS, K_TRAJS, K_LEASES, K_FREECOUNT = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_FREE, K_HB, K_DRAINING, K_WAITERS, K_WINFO = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_WORKER, K_WSLOTS, K_WSTATS = KEYS[18], KEYS[19], KEYS[20]
local SEP = '${FREE_SLOT_SEPARATOR}'
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%d', n) end
local function alive(wid)
  local exp = redis.call('ZSCORE', K_HB, wid)
  return exp and tonumber(exp) > clock()
end
local function draining(wid) return redis.call('SISMEMBER', K_DRAINING, wid) == 1 end
local function get_slot(sid)
  local j = redis.call('HGET', K_SLOTS, sid)
  if j then return cjson.decode(j) end
  return nil
end
local function put_slot(s) redis.call('HSET', K_SLOTS, s.slotId, cjson.encode(s)) end
local function clear_holder(s, state)
  s.state = state
  s.trajectoryId, s.affinity, s.owner, s.leaseId, s.leaseExpMs = '', '', '', '', '0'
end
local function untie(s)
  local aff = s.affinity
  if not aff or aff == '' then aff = s.trajectoryId end -- a record written before affinity was scoped
  if aff and aff ~= '' and redis.call('HGET', K_TRAJS, aff) == s.slotId then
    redis.call('HDEL', K_TRAJS, aff)
  end
  redis.call('ZREM', K_LEASES, s.slotId)
end
-- aff: the owner-scoped affinity key; tid: the plain trajectory ID (display only).
local function grant(s, aff, tid, owner, lease, ttl, now)
  s.state, s.affinity, s.trajectoryId, s.owner, s.leaseId = 'held', aff, tid, owner, lease
  s.leaseExpMs, s.heldAtMs = ms(now + ttl), ms(now)
  put_slot(s)
  redis.call('HSET', K_TRAJS, aff, s.slotId)
  redis.call('ZADD', K_LEASES, now + ttl, s.slotId)
end
local function free_range(wid) return '[' .. wid .. SEP, '[' .. wid .. SEP .. '\\255' end
local function drop_free(wid)
  local lo, hi = free_range(wid)
  redis.call('ZREMRANGEBYLEX', K_FREE, lo, hi)
  redis.call('ZREM', K_FREECOUNT, wid)
end
local function pop_free(wid)
  local lo, hi = free_range(wid)
  local m = redis.call('ZRANGEBYLEX', K_FREE, lo, hi, 'LIMIT', 0, 1)[1]
  if not m then return nil end
  redis.call('ZREM', K_FREE, m)
  redis.call('ZINCRBY', K_FREECOUNT, -1, wid)
  return string.sub(m, #wid + #SEP + 1)
end
local grants = {}
local function with_grants(outcome)
  local out = {outcome}
  for _, g in ipairs(grants) do out[#out + 1] = g[1]; out[#out + 1] = g[2]; out[#out + 1] = g[3] end
  return out
end
${IMAGE_LIB}
-- Hands a slot to the first live waiter (of its image, for an on-demand slot), or lists it among the free slots.
local function make_free(sid, now)
  local s = get_slot(sid)
  if not s then return 'gone' end
  clear_holder(s, 'free')
  put_slot(s)
  local wid = s.workerId
  if (not alive(wid)) or draining(wid) then return 'parked' end
  if has_image(s) then return make_free_image(s, now) end
  while true do
    local w = redis.call('LPOP', K_WAITERS)
    if not w then break end
    local raw = redis.call('HGET', K_WINFO, w)
    redis.call('HDEL', K_WINFO, w)
    local info = raw and cjson.decode(raw)
    if info and info.affinity and tonumber(info.expMs) > clock() then
      local existing = redis.call('HGET', K_TRAJS, info.affinity)
      local rec = existing and redis.call('HGET', K_SLOTS, existing)
      if rec then
        grants[#grants + 1] = {info.producerId, w, rec} -- the trajectory got a slot meanwhile (same scope)
      else
        grant(s, info.affinity, info.trajectoryId, info.producerId, info.leaseId, tonumber(info.ttlMs), now)
        grants[#grants + 1] = {info.producerId, w, cjson.encode(s)}
        return 'granted'
      end
    end
  end
  -- Idempotent: a slot is listed at most once, whatever re-registration or retry got here twice.
  if redis.call('ZADD', K_FREE, 'NX', 0, wid .. SEP .. sid) == 1 then redis.call('ZINCRBY', K_FREECOUNT, 1, wid) end
  return 'free'
end
local function forget_slot(sid)
  local s = get_slot(sid)
  if s then
    untie(s)
    if redis.call('ZREM', K_FREE, s.workerId .. SEP .. sid) == 1 then redis.call('ZINCRBY', K_FREECOUNT, -1, s.workerId) end
    if has_image(s) then redis.call('ZREM', K_IFREE, ifree_member(s)) end
  end
  redis.call('HDEL', K_SLOTS, sid)
end
local function unregister(wid)
  drop_image_state(wid)
  for _, sid in ipairs(redis.call('SMEMBERS', K_WSLOTS)) do forget_slot(sid) end
  redis.call('DEL', K_WSLOTS, K_WORKER, K_WSTATS)
  drop_free(wid)
  redis.call('SREM', K_WORKERS, wid)
  redis.call('ZREM', K_HB, wid)
  redis.call('SREM', K_DRAINING, wid)
end
`;

export const script = (body: string): string => `${LIB}\n${body}`;

/**
 * ARGV: trajectoryId, owner, leaseId, ttlMs, nowMs, waiterId ('' = do not queue), waiterTtlMs, affinity key
 * (owner-scoped, affinity.ts). Returns {'slot', json} or {'wait'}.
 */
export const ACQUIRE = script(`
local tid, owner, lease, ttl, now, waiter, aff = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[8]
if not aff or aff == '' then return redis.error_reply('ERR slotq ACQUIRE: no affinity key') end
local existing = redis.call('HGET', K_TRAJS, aff)
if existing then
  local s = get_slot(existing)
  if s and s.state == 'held' then return {'slot', cjson.encode(s)} end
  redis.call('HDEL', K_TRAJS, aff)
end
for _, wid in ipairs(redis.call('ZREVRANGEBYSCORE', K_FREECOUNT, '+inf', 1, 'LIMIT', 0, 32)) do
  if not alive(wid) then
    drop_free(wid)
  elseif not draining(wid) then
    local sid = pop_free(wid)
    local s = sid and get_slot(sid)
    if s then
      grant(s, aff, tid, owner, lease, ttl, now)
      return {'slot', cjson.encode(s)}
    end
    if not sid then redis.call('ZADD', K_FREECOUNT, 0, wid) end
  end
end
if waiter ~= '' then
  redis.call('RPUSH', K_WAITERS, waiter)
  redis.call('HSET', K_WINFO, waiter, cjson.encode({producerId = owner, trajectoryId = tid, affinity = aff, leaseId = lease, ttlMs = ttl, expMs = clock() + tonumber(ARGV[7])}))
end
return {'wait'}
`);

/** ARGV: waiterId. Returns 1 when the waiter was still queued (so nothing was granted). */
export const CANCEL_WAITER = script(`
local raw = redis.call('HGET', K_WINFO, ARGV[1])
local info = raw and cjson.decode(raw)
local n = redis.call('LREM', K_WAITERS, 0, ARGV[1]) + ((info and info.member) and iwait_rem(info.member) or 0)
redis.call('LREM', K_IPEND, 0, ARGV[1])
redis.call('HDEL', K_WINFO, ARGV[1])
return n
`);

/** ARGV: affinity key (owner-scoped), leaseId. The slot JSON when the trajectory holds a slot under that lease (a grant), else false. */
export const GRANTED_TO = script(`
local sid = redis.call('HGET', K_TRAJS, ARGV[1])
local s = sid and get_slot(sid)
if s and s.state == 'held' and s.leaseId == ARGV[2] then return cjson.encode(s) end
return false
`);

/** ARGV: slotId, leaseId, reset ('1'|'0'), nowMs. Returns {gone|lost|resetting|free|granted|parked, grants...}. */
export const RELEASE = script(`
local sid, lease, reset, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local s = get_slot(sid)
if not s then return {'gone'} end
if s.state ~= 'held' or s.leaseId ~= lease then return {'lost'} end
untie(s)
if reset == '1' or has_image(s) then -- an on-demand slot is always reset (or removed) by its worker
  clear_holder(s, 'resetting')
  put_slot(s)
  return {'resetting'}
end
return with_grants(make_free(sid, now))
`);

/** ARGV: ttlMs, nowMs, then slotId, leaseId pairs. Returns the slot ids whose lease is lost. */
export const RENEW = script(`
local ttl, now, lost = tonumber(ARGV[1]), tonumber(ARGV[2]), {}
for i = 3, #ARGV, 2 do
  local s = get_slot(ARGV[i])
  if s and s.leaseId == ARGV[i + 1] and s.state == 'held' then
    s.leaseExpMs = ms(now + ttl)
    put_slot(s)
    redis.call('ZADD', K_LEASES, now + ttl, s.slotId)
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
`);

/** ARGV: slotId, leaseId pairs. Returns 1/0 per pair: is the lease current. */
export const CHECK_LEASES = script(`
local out = {}
for i = 1, #ARGV, 2 do
  local s = get_slot(ARGV[i])
  out[#out + 1] = (s and s.leaseId == ARGV[i + 1] and s.state == 'held') and 1 or 0
end
return out
`);

/** Worker keys. ARGV: workerId, heartbeatTtlMs, then field, value pairs of the worker's info. */
export const REGISTER_WORKER = script(`
local wid, ttl, info, state = ARGV[1], tonumber(ARGV[2]), {}, ''
for i = 3, #ARGV, 2 do
  info[#info + 1] = ARGV[i]; info[#info + 1] = ARGV[i + 1]
  if ARGV[i] == 'state' then state = ARGV[i + 1] end
end
redis.call('HSET', K_WORKER, unpack(info))
redis.call('PEXPIRE', K_WORKER, ttl)
redis.call('SADD', K_WORKERS, wid)
redis.call('ZADD', K_HB, clock() + ttl, wid)
if state == 'draining' then redis.call('SADD', K_DRAINING, wid) else redis.call('SREM', K_DRAINING, wid) end
return 1
`);

/** Worker keys. ARGV: workerId, ttlMs. Extends the heartbeat; 0 when the worker's entry is gone (Redis restarted). */
export const HEARTBEAT = script(`
if redis.call('PEXPIRE', K_WORKER, tonumber(ARGV[2])) == 0 then return 0 end
redis.call('ZADD', K_HB, clock() + tonumber(ARGV[2]), ARGV[1])
return 1
`);

/** Worker keys. ARGV: slotId, workerId, containerId, nowMs, image ('' for the worker's own pool). Registers (or re-registers) a ready slot as free. */
export const ADD_SLOT = script(`
local sid, wid, cid, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local s = get_slot(sid) or {slotId = sid}
untie(s)
s.slotId, s.workerId, s.containerId = sid, wid, cid
if (ARGV[5] or '') ~= '' then s.image = ARGV[5] end
put_slot(s)
redis.call('SADD', K_WSLOTS, sid)
return with_grants(make_free(sid, now))
`);

/** ARGV: workerId, nowMs. Takes back this worker's slots whose lease expired; returns their ids. */
export const REAP_LEASES = script(`
local wid, now, out = ARGV[1], tonumber(ARGV[2]), {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', now)) do
  local s = get_slot(sid)
  if (not s) or (s.workerId == wid and s.state ~= 'held') then
    redis.call('ZREM', K_LEASES, sid) -- stale entry: the slot is gone or no longer held
  elseif s.workerId == wid and tonumber(s.leaseExpMs or '0') <= now then
    untie(s)
    clear_holder(s, 'resetting')
    put_slot(s)
    out[#out + 1] = sid
  end
end
return out
`);

/** Worker keys. ARGV: workerId. Stops new leases landing on the worker's slots. */
export const DRAIN_WORKER = script(`
if redis.call('EXISTS', K_WORKER) == 1 then redis.call('HSET', K_WORKER, 'state', 'draining') end
redis.call('SADD', K_DRAINING, ARGV[1])
drop_free(ARGV[1])
drop_image_state(ARGV[1])
return 1
`);

/** Worker keys. ARGV: workerId. Removes a worker and all its slots from the registry. */
export const UNREGISTER_WORKER = script(`
unregister(ARGV[1])
return 1
`);

/** Worker keys. ARGV: workerId. Unregisters the worker if its heartbeat expired; 1 when it did. */
export const REAP_DEAD_WORKER = script(`
if alive(ARGV[1]) then return 0 end
unregister(ARGV[1])
return 1
`);
