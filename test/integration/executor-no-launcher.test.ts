/**
 * The executor without its launcher (native/slotq-spawn.c): a worker machine with no C compiler, or
 * SLOTQ_HELPER_SPAWN=off. Every call then forks and execs from the supervisor's shell; the same tests as
 * executor.test.ts must pass. (Each test file runs in a fresh module registry, so the helper bundle built
 * here has no launcher.)
 */
process.env['SLOTQ_HELPER_SPAWN'] = 'off';
await import('./executor.test.js');

