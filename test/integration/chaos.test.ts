import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/index.js';
import { randomId } from '../../src/shared/ids.js';
import { CHAOS_WORKER_LOST_MS } from '../../tools/chaos/chaos.js';
import { containerKill } from '../../tools/chaos/container-kill.js';
import type { ChaosRow, ScenarioOptions } from '../../tools/chaos/scenario.js';
import { soak } from '../../tools/chaos/soak.js';
import { redisUrl } from '../support/harness.js';

/**
 * A smoke run of the chaos tooling (the full run, every scenario and a 50 000-call soak, is `npm run chaos`):
 * one fault scenario and a short soak with one injected fault, each required to lose, hang, break and leak nothing.
 */
describe('chaos smoke', () => {
  const opts = (): ScenarioOptions => ({ runId: randomId(3), redisUrl: redisUrl(), workerLostMs: CHAOS_WORKER_LOST_MS, logger: createLogger({ level: process.env['SLOTQ_TEST_LOG_LEVEL'] ?? 'silent' }) });
  const counts = (r: ChaosRow) => ({ error: r.error, failed: r.failed, lost: r.lost, hung: r.hung, leaked: r.leaked, unrecovered: r.unrecovered, recovered: r.recoveryMs !== undefined });
  const clean = { error: undefined, failed: 0, lost: 0, hung: 0, leaked: 0, unrecovered: 0, recovered: true };

  it('a container killed mid-call: the call is retried on a fresh slot, nothing lost, hung or leaked', async () => {
    const row = await containerKill(opts());
    expect(counts(row), row.notes.join('\n')).toEqual(clean);
  }, 180_000);

  it('a short soak with a container killed at random: every call accounted for', async () => {
    const row = await soak(opts(), { calls: 200, slots: 2, faults: 1, seed: 1 });
    expect(counts(row), row.notes.join('\n')).toEqual(clean);
    expect(row.calls).toBeGreaterThanOrEqual(200);
    expect(row.notes.find((n) => n.startsWith('faults:'))).toContain('container of');
  }, 300_000);
});
