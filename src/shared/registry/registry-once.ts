/**
 * Exactly-once answers for the registry's mutating scripts. ioredis re-sends a command whose reply it
 * had not read when the connection dropped, so a script that already ran may run again. Each run of a
 * wrapped script carries one more key, last in KEYS, unique to the call (Registry makes it): the first
 * run stores its result there, and a re-sent run finds it and answers the same, changing nothing.
 */

/**
 * How long a run's result is remembered. A command connection re-sends only while it reconnects, which
 * gives up after ~13 s (redis.ts); this is well past that, and short enough that the keys stay few.
 */
export const ONCE_TTL_MS = 120_000;

/**
 * Wraps a whole script (LIB and body) in a function whose result is remembered under KEYS[#KEYS].
 * The script's own keys keep their places; results are arrays of strings or integers (cjson keeps both).
 */
export const once = (lua: string): string => `local K_ONCE = KEYS[#KEYS]
local done = redis.call('GET', K_ONCE)
if done then return cjson.decode(done) end
local function run()
${lua}
end
local result = run()
redis.call('SET', K_ONCE, cjson.encode(result), 'PX', ${ONCE_TTL_MS})
return result`;
