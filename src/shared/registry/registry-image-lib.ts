/**
 * Lua functions for per-trajectory images, part of the registry's LIB (registry-lua.ts puts them after
 * `grant` and before `make_free`). Keys K_IFREE..K_IRES are KEYS[11..17] (image-keys.ts).
 *
 * An on-demand slot's record has `image`. Its waiters queue per image (FIFO within the image, so a waiter
 * for one image never blocks another image's); a waiter that found no worker with capacity also sits in
 * K_IPEND until capacity comes back. A worker's capacity is reserved when a waiter picks it and given back
 * when one of its on-demand slots is removed. A reservation an acquire makes is recorded in K_IRES until its
 * provision job reaches the worker, which takes it; one whose job never came (the producer died, the job
 * could not be sent) is reclaimed by the worker after a bound, so no capacity leaks.
 */
export const IMAGE_LIB = `
local K_IFREE, K_IWAIT, K_IPEND, K_ILOC, K_IMAGE_CAPACITY, K_IMETA, K_IRES = KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16], KEYS[17]
local function has_image(s) return s.image ~= nil and s.image ~= '' end
local function ifree_member(s) return s.image .. SEP .. s.workerId .. SEP .. s.slotId end
local function irange(prefix) return '[' .. prefix .. SEP, '[' .. prefix .. SEP .. '\\255' end
local function usable(wid) return alive(wid) and not draining(wid) end
-- A glob of SLOTQ_IMAGES (exact, or with * and ?) against an image, as image-options.ts imageAllowed.
local function glob_match(p, img)
  if p == img then return true end
  if not string.find(p, '[*?]') then return false end
  local q = string.gsub(p, '[%^%$%(%)%%%.%[%]%+%-]', '%%%0')
  q = string.gsub(q, '%*', '.*')
  q = string.gsub(q, '%?', '.')
  return string.find(img, '^' .. q .. '$') ~= nil
end
-- Whether the worker's SLOTQ_IMAGES (published as 'a:<wid>' in K_IMETA) allow the image; one that published none takes any.
local function allows(wid, img)
  local raw = redis.call('HGET', K_IMETA, 'a:' .. wid)
  if not raw then return true end
  for _, p in ipairs(cjson.decode(raw)) do
    if glob_match(p, img) then return true end
  end
  return false
end
-- Takes a member off the image waiters; the FIFO counter goes with the last one (no key stays behind).
local function iwait_rem(m)
  local n = redis.call('ZREM', K_IWAIT, m)
  if redis.call('EXISTS', K_IWAIT) == 0 then redis.call('HDEL', K_IMETA, 'seq') end
  return n
end
-- The first live waiter for an image, taken off its queues; nil when there is none.
local function pop_image_waiter(img)
  local lo, hi = irange(img)
  while true do
    local m = redis.call('ZRANGEBYLEX', K_IWAIT, lo, hi, 'LIMIT', 0, 1)[1]
    if not m then return nil end
    iwait_rem(m)
    local w = string.sub(m, #img + 16 + 2 * #SEP + 1)
    local raw = redis.call('HGET', K_WINFO, w)
    redis.call('HDEL', K_WINFO, w)
    redis.call('LREM', K_IPEND, 0, w)
    local info = raw and cjson.decode(raw)
    if info and tonumber(info.expMs) > clock() then
      info.waiterId = w
      return info
    end
  end
end
-- Hands a free on-demand slot to its image's first waiter, or lists it as warm.
local function make_free_image(s, now)
  while true do
    local info = pop_image_waiter(s.image)
    if not info then break end
    local existing = info.affinity and redis.call('HGET', K_TRAJS, info.affinity)
    local rec = existing and redis.call('HGET', K_SLOTS, existing)
    if rec then
      grants[#grants + 1] = {info.producerId, info.waiterId, rec} -- the trajectory got a slot meanwhile (same scope)
    elseif info.affinity then
      grant(s, info.affinity, info.trajectoryId, info.producerId, info.leaseId, tonumber(info.ttlMs), now)
      grants[#grants + 1] = {info.producerId, info.waiterId, cjson.encode(s)}
      return 'granted'
    end
  end
  redis.call('ZADD', K_IFREE, 'NX', 0, ifree_member(s))
  return 'free'
end
-- Takes one of a worker's capacity for a waiter's provision job, recorded until the job reaches the worker.
local function take_for_job(wid, waiter)
  redis.call('ZINCRBY', K_IMAGE_CAPACITY, -1, wid)
  redis.call('ZADD', K_IRES, 0, wid .. SEP .. string.format('%016d', clock()) .. SEP .. waiter)
  return wid
end
-- Whether a live worker taking on-demand requests allows the image (also when none is there yet: one may come).
local function placeable(img)
  local seen = false
  for _, wid in ipairs(redis.call('ZRANGE', K_IMAGE_CAPACITY, 0, -1)) do
    if usable(wid) then
      if allows(wid, img) then return true end
      seen = true
    end
  end
  return not seen
end
-- Reserves one on-demand container for an image: on a live worker that holds it, else on the one with most
-- room; only on a worker whose SLOTQ_IMAGES allow the image.
local function reserve(img, waiter)
  local lo, hi = irange(img)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', K_ILOC, lo, hi, 'LIMIT', 0, 64)) do
    local wid = string.sub(m, #img + #SEP + 1)
    if tonumber(redis.call('ZSCORE', K_IMAGE_CAPACITY, wid) or '0') > 0 and usable(wid) and allows(wid, img) then return take_for_job(wid, waiter) end
  end
  for _, wid in ipairs(redis.call('ZREVRANGEBYSCORE', K_IMAGE_CAPACITY, '+inf', 1, 'LIMIT', 0, 128)) do
    if usable(wid) and allows(wid, img) then return take_for_job(wid, waiter) end
  end
  return nil
end
-- Removes the record of the waiter's reservation on the worker; true when there was one.
-- (A worker has at most its capacity in records, so its range is short.)
local function unreserve(wid, waiter)
  local lo, hi = irange(wid)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', K_IRES, lo, hi)) do
    if string.sub(m, #wid + 2 * #SEP + 17) == waiter then
      redis.call('ZREM', K_IRES, m)
      return true
    end
  end
  return false
end
-- A worker's on-demand capacity came back: the oldest live request waiting for capacity whose image the
-- worker allows takes it (requests for other images keep their place). Returns {image, waiterId} for the
-- worker to create, its capacity reserved, or nil when none (or no room). Looks at the first 256 requests.
local function claim_pending(wid)
  if not (usable(wid) and tonumber(redis.call('ZSCORE', K_IMAGE_CAPACITY, wid) or '0') > 0) then return nil end
  for _, w in ipairs(redis.call('LRANGE', K_IPEND, 0, 255)) do
    local raw = redis.call('HGET', K_WINFO, w)
    local info = raw and cjson.decode(raw)
    local live = info and info.image and tonumber(info.expMs) > clock()
    if not live then
      redis.call('LREM', K_IPEND, 1, w)
    elseif allows(wid, info.image) then
      redis.call('LREM', K_IPEND, 1, w)
      redis.call('ZINCRBY', K_IMAGE_CAPACITY, -1, wid)
      info.worker = wid
      redis.call('HSET', K_WINFO, w, cjson.encode(info))
      return {info.image, w}
    end
  end
  return nil
end
local function give_back(wid)
  if not redis.call('ZSCORE', K_IMAGE_CAPACITY, wid) then return nil end
  redis.call('ZINCRBY', K_IMAGE_CAPACITY, 1, wid)
  return claim_pending(wid)
end
-- Forgets what a leaving or draining worker offered for images (its slots' records go with forget_slot).
local function drop_image_state(wid)
  for _, sid in ipairs(redis.call('SMEMBERS', K_WSLOTS)) do
    local s = get_slot(sid)
    if s and has_image(s) then redis.call('ZREM', K_IFREE, ifree_member(s)) end
  end
  local old = redis.call('HGET', K_IMETA, 'w:' .. wid)
  if old then
    for _, img in ipairs(cjson.decode(old)) do redis.call('ZREM', K_ILOC, img .. SEP .. wid) end
  end
  redis.call('HDEL', K_IMETA, 'w:' .. wid, 'a:' .. wid)
  redis.call('ZREM', K_IMAGE_CAPACITY, wid)
  local rlo, rhi = irange(wid)
  redis.call('ZREMRANGEBYLEX', K_IRES, rlo, rhi)
  -- Requests it was making containers for wait for capacity again (another worker claims them).
  local all = redis.call('HGETALL', K_WINFO)
  for i = 1, #all, 2 do
    local info = cjson.decode(all[i + 1])
    if info.worker == wid then
      info.worker = nil
      redis.call('HSET', K_WINFO, all[i], cjson.encode(info))
      redis.call('RPUSH', K_IPEND, all[i])
    end
  end
end
`;
