import { script } from './registry-lua.js';

/**
 * The registry's scripts for per-trajectory images (the shared LIB, with IMAGE_LIB, comes first).
 * Placement: a warm free slot of the image; else a reservation on a worker that holds the image; else on any
 * worker with on-demand capacity; else the waiter waits for capacity (K_IPEND). A reservation, a claim of a
 * waiting request and an eviction only ever pick a worker whose published SLOTQ_IMAGES allow the image.
 */

/**
 * ARGV: trajectoryId, owner, leaseId, ttlMs, nowMs, waiterId, waiterTtlMs, image, affinity key (owner-scoped, affinity.ts).
 * Returns {'slot', json}; {'other', json} when the trajectory holds a slot of another image; {'wait', workerId}
 * when queued, workerId being the worker that should create a container for it ('' when none has room), its
 * capacity reserved and recorded until the provision job reaches it (TAKE_RESERVATION). With
 * no room anywhere, a warm container of another image makes room: {'wait', '', slotId, workerId} names it (its
 * worker removes it, and the capacity goes to the oldest request waiting for capacity). {'refused'}, nothing
 * queued: the live workers' SLOTQ_IMAGES all refuse the image.
 */
export const ACQUIRE_IMAGE = script(`
local tid, owner, lease, ttl, now, waiter, img, aff = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[8], ARGV[9]
if not aff or aff == '' then return redis.error_reply('ERR slotq ACQUIRE_IMAGE: no affinity key') end
local existing = redis.call('HGET', K_TRAJS, aff)
if existing then
  local s = get_slot(existing)
  if s and s.state == 'held' then
    if (s.image or '') ~= img then return {'other', cjson.encode(s)} end
    return {'slot', cjson.encode(s)}
  end
  redis.call('HDEL', K_TRAJS, aff)
end
local lo, hi = irange(img)
for _, m in ipairs(redis.call('ZRANGEBYLEX', K_IFREE, lo, hi, 'LIMIT', 0, 32)) do
  local rest = string.sub(m, #img + #SEP + 1)
  local cut = string.find(rest, SEP, 1, true)
  local wid, sid = string.sub(rest, 1, cut - 1), string.sub(rest, cut + #SEP)
  if not usable(wid) then
    if not alive(wid) then redis.call('ZREM', K_IFREE, m) end
  else
    redis.call('ZREM', K_IFREE, m)
    local s = get_slot(sid)
    if s and s.state == 'free' then
      grant(s, aff, tid, owner, lease, ttl, now)
      return {'slot', cjson.encode(s)}
    end
  end
end
if waiter == '' then return {'wait', ''} end
local wid = reserve(img, waiter)
if not (wid or placeable(img)) then return {'refused'} end
local member = img .. SEP .. string.format('%016d', redis.call('HINCRBY', K_IMETA, 'seq', 1)) .. SEP .. waiter
redis.call('ZADD', K_IWAIT, 0, member)
redis.call('HSET', K_WINFO, waiter, cjson.encode({producerId = owner, trajectoryId = tid, affinity = aff, leaseId = lease, ttlMs = ttl, expMs = clock() + tonumber(ARGV[7]), image = img, member = member, worker = wid}))
if wid then return {'wait', wid} end
redis.call('RPUSH', K_IPEND, waiter)
for _, m in ipairs(redis.call('ZRANGE', K_IFREE, 0, 63)) do
  local a = string.find(m, SEP, 1, true)
  local b = string.find(m, SEP, a + 1, true)
  local owid, osid = string.sub(m, a + 1, b - 1), string.sub(m, b + 1)
  if usable(owid) and allows(owid, img) then
    redis.call('ZREM', K_IFREE, m)
    local s = get_slot(osid)
    if s and s.state == 'free' then
      clear_holder(s, 'resetting')
      s.evict = '1'
      put_slot(s)
      return {'wait', '', osid, owid}
    end
  end
end
return {'wait', ''}
`);

/**
 * Worker keys. ARGV: workerId, capacity ('' keeps it), 'set' or 'missing' (set the capacity only when the
 * registry has none for the worker: it forgot it, Redis restarted), the worker's SLOTQ_IMAGES as a JSON list
 * ('' publishes none: any image may be placed on it), then the images the worker holds locally.
 */
export const PUBLISH_IMAGES = script(`
local wid = ARGV[1]
local old = redis.call('HGET', K_IMETA, 'w:' .. wid)
if old then
  for _, img in ipairs(cjson.decode(old)) do redis.call('ZREM', K_ILOC, img .. SEP .. wid) end
end
if ARGV[4] ~= '' then redis.call('HSET', K_IMETA, 'a:' .. wid, ARGV[4]) end
local imgs = {}
for i = 5, #ARGV do
  imgs[#imgs + 1] = ARGV[i]
  redis.call('ZADD', K_ILOC, 0, ARGV[i] .. SEP .. wid)
end
redis.call('HSET', K_IMETA, 'w:' .. wid, cjson.encode(imgs))
if ARGV[2] ~= '' and (ARGV[3] == 'set' or not redis.call('ZSCORE', K_IMAGE_CAPACITY, wid)) then redis.call('ZADD', K_IMAGE_CAPACITY, tonumber(ARGV[2]), wid) end
return 1
`);

/**
 * Worker keys. ARGV: workerId, reclaimAfterMs. First reclaims the worker's reservations older than that whose
 * provision job never came (the producer died before sending it, or could not): the capacity comes back, and
 * their waiters still waiting wait for capacity again. Returns the requests waiting for capacity that the
 * worker's free capacity takes: image, waiterId pairs.
 */
export const CLAIM_PENDING = script(`
local wid = ARGV[1]
-- The worker's records are one lex range, oldest first: those made before now - reclaimAfterMs.
local cut = '(' .. wid .. SEP .. string.format('%016d', clock() - tonumber(ARGV[2]))
for _, m in ipairs(redis.call('ZRANGEBYLEX', K_IRES, '[' .. wid .. SEP, cut)) do
  redis.call('ZREM', K_IRES, m)
  if redis.call('ZSCORE', K_IMAGE_CAPACITY, wid) then redis.call('ZINCRBY', K_IMAGE_CAPACITY, 1, wid) end
  local w = string.sub(m, #wid + 2 * #SEP + 17)
  local raw = redis.call('HGET', K_WINFO, w)
  local info = raw and cjson.decode(raw)
  if info and info.worker == wid and tonumber(info.expMs) > clock() then
    info.worker = nil
    redis.call('HSET', K_WINFO, w, cjson.encode(info))
    redis.call('RPUSH', K_IPEND, w)
  end
end
local out = {}
while true do
  local nxt = claim_pending(wid)
  if not nxt then return out end
  out[#out + 1] = nxt[1]
  out[#out + 1] = nxt[2]
end
`);

/**
 * Worker keys. ARGV: workerId, waiterId. A provision job reached the worker: it takes the reservation the
 * acquire recorded (returns 1). When the record is gone (the worker reclaimed it: the job came that late),
 * the container takes capacity now, even below zero (retiring slots bring it back), so the count stays right.
 */
export const TAKE_RESERVATION = script(`
local wid = ARGV[1]
if unreserve(wid, ARGV[2]) then return 1 end
if redis.call('ZSCORE', K_IMAGE_CAPACITY, wid) then redis.call('ZINCRBY', K_IMAGE_CAPACITY, -1, wid) end
return 0
`);

/**
 * Worker keys. ARGV: workerId, slotId, warmPerImage (-1: remove it whatever waits). The worker removed the container of an on-demand slot
 * that was released (state resetting). Returns {'refill'} when the slot should get a fresh container of its
 * image (a waiter for it, or fewer warm ones than wanted); else the slot is forgotten, its capacity given
 * back, and {'provision', image, waiterId} names a request that waited for capacity, or {'removed'}.
 */
export const RETIRE_IMAGE_SLOT = script(`
local wid, sid, warm = ARGV[1], ARGV[2], tonumber(ARGV[3])
local s = get_slot(sid)
if warm >= 0 and s and has_image(s) and s.evict ~= '1' and usable(wid) then
  local lo, hi = irange(s.image)
  local wlo, whi = irange(s.image .. SEP .. wid)
  if #redis.call('ZRANGEBYLEX', K_IWAIT, lo, hi, 'LIMIT', 0, 1) > 0 or redis.call('ZLEXCOUNT', K_IFREE, wlo, whi) < warm then return {'refill'} end
end
forget_slot(sid)
redis.call('SREM', K_WSLOTS, sid)
local nxt = give_back(wid)
if nxt then return {'provision', nxt[1], nxt[2]} end
return {'removed'}
`);

/**
 * Worker keys. ARGV: workerId, slotId, warmPerImage. Takes a free on-demand slot back from the free list when
 * the worker has more warm ones of its image than wanted (then the worker retires it). Returns 1 when taken.
 */
export const TRIM_IMAGE_SLOT = script(`
local wid, sid, warm = ARGV[1], ARGV[2], tonumber(ARGV[3])
local s = get_slot(sid)
if not (s and has_image(s) and s.state == 'free') then return 0 end
local wlo, whi = irange(s.image .. SEP .. wid)
if redis.call('ZLEXCOUNT', K_IFREE, wlo, whi) <= warm then return 0 end
redis.call('ZREM', K_IFREE, ifree_member(s))
clear_holder(s, 'resetting')
put_slot(s)
return 1
`);

/**
 * Worker keys. ARGV: workerId, image, waiterId. The worker could not create a container of the image for
 * that waiter: the waiter (or, when it is gone, the image's first waiter) leaves the queues, the capacity
 * comes back. Returns {producerId, waiterId} of the waiter to tell ('' when none), then the next request
 * for the freed capacity ({image, waiterId}, or '' '').
 */
export const FAIL_IMAGE_WAITER = script(`
local wid, img, w = ARGV[1], ARGV[2], ARGV[3]
local raw = redis.call('HGET', K_WINFO, w)
local victim
if raw then
  victim = cjson.decode(raw)
  victim.waiterId = w
  redis.call('HDEL', K_WINFO, w)
  if victim.member then iwait_rem(victim.member) end
  redis.call('LREM', K_IPEND, 0, w)
else
  victim = pop_image_waiter(img)
end
unreserve(wid, w) -- still there only when the job could not take it: this gives it back
local nxt = give_back(wid)
return {victim and victim.producerId or '', victim and victim.waiterId or '', nxt and nxt[1] or '', nxt and nxt[2] or ''}
`);

/**
 * A worker's pull progress (`pulling` in its info hash, which the board shows); never creates the entry.
 * Not a registry script (no LIB): evaluated alone, KEYS[1] the worker's info hash (keys.worker), ARGV: field, status ('' deletes it).
 */
export const PULL_PROGRESS_LUA = "if redis.call('EXISTS', KEYS[1]) == 1 then if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end end";
