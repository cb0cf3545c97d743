import { describe, expect, it } from 'vitest';
import { runChaos } from '../../src/cli/chaos.js';
import { createLogger } from '../../src/index.js';
import { redisUrl } from '../support/harness.js';

describe('chaos: faults survived end to end', () => {
  it('worker SIGKILL, container kill, Redis restart, producer kill, abuse and a 2 000-call soak with one fault of each kind: nothing lost, hung, wrong or leaked', async () => {
    const rows = await runChaos({ soakCalls: 2000, slots: 8, redisUrl: redisUrl(), seed: 1, logger: createLogger({ level: process.env['SLOTQ_TEST_LOG_LEVEL'] ?? 'silent' }) });
    expect(rows.map((r) => r.scenario)).toEqual([
      'worker SIGKILL mid-batch',
      'container killed mid-call',
      'Redis restarted (no persistence)',
      'producer killed holding slots',
      'abuse: fork bomb, memory, disk, network',
      'soak (8 slots, 3 faults)',
    ]);
    const counts = rows.map((r) => ({ scenario: r.scenario, error: r.error, failed: r.failed, lost: r.lost, hung: r.hung, leaked: r.leaked, unrecovered: r.unrecovered, recovered: r.recoveryMs !== undefined }));
    const clean = rows.map((r) => ({ scenario: r.scenario, error: undefined, failed: 0, lost: 0, hung: 0, leaked: 0, unrecovered: 0, recovered: true }));
    // On a mismatch the notes say what went wrong.
    expect(counts, rows.map((r) => `${r.scenario}:\n  ${r.notes.join('\n  ')}`).join('\n')).toEqual(clean);
    const soak = rows.at(-1)!;
    expect(soak.calls).toBeGreaterThanOrEqual(2000);
    const faults = soak.notes.find((n) => n.startsWith('faults:')) ?? '';
    for (const kind of ['container of', 'worker', 'Redis']) expect(faults).toContain(kind);
  }, 600_000);
});
