import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, executionResultSchema, type ExecutionResult, type Slot, type SlotBackend, type ToolRequest } from '../../src/index.js';
import { harness, type Harness } from '../support/harness.js';

const BATCH = 50;
const BATCHES = 24; // 1 200 requests
/** Codes that would mean a bad request hurt the infrastructure rather than being refused. */
const INFRA = new Set(['INTERNAL', 'WORKER_LOST', 'SLOT_BROKEN', 'BACKEND_STOPPED', 'NO_SLOT', 'LEASE_LOST']);

const HUGE = 'h'.repeat(1_000_001);
const NASTY_STRINGS = [
  '../etc/passwd',
  '/etc/shadow',
  'a/../../..',
  '/workspace/../tmp',
  '.',
  '',
  '~',
  '\0',
  'a\0b',
  'x'.repeat(4097),
  '$(id)',
  '`id`',
  "'; cat /etc/passwd #",
  '-rf',
  '\n\r\t',
  'é🚀\uFFFD',
  '__proto__',
];

const tool = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('bash', 'bash_stateful', 'terminal', 'terminal_stateful', 'read_file', 'write_file', 'artifact_read', 'artifact_list', 'artifact_archive') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'BASH', 'read_file ', 'artifact_', 'x'.repeat(10_000)) },
);

const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 40, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  { weight: 30, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 20, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1, 2 ** 53, 5_000_001, 1e308)) },
  { weight: 10, arbitrary: fc.oneof(fc.boolean(), fc.constant(null), fc.constant(undefined)) },
  { weight: 10, arbitrary: fc.object({ maxDepth: 3 }) },
  { weight: 10, arbitrary: fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.constant(HUGE) }, // about two per batch
);

const KEYS = ['command', 'path', 'content', 'timeout', 'encoding', 'maxBytes', 'maxEntries', 'recursive', 'includeSha256', 'archiveFormat'] as const;
const nastyPath = fc.oneof(fc.constantFrom(...NASTY_STRINGS), fc.string({ unit: 'binary', maxLength: 30 }), fc.constantFrom('a.txt', 'd/e/f', '/workspace/x', '.'));
/** Right types, hostile values: these get past zod and reach the shell scripts. */
const plausible = fc.record(
  {
    command: fc.string({ unit: 'binary', maxLength: 60 }),
    path: nastyPath,
    content: fc.string({ unit: 'binary', maxLength: 200 }),
    timeout: fc.constantFrom(0.001, 1, 2),
    maxBytes: fc.integer({ min: -2, max: 6_000_000 }),
    maxEntries: fc.integer({ min: -2, max: 6000 }),
    recursive: fc.boolean(),
    includeSha256: fc.boolean(),
    encoding: fc.constantFrom('text', 'base64', ' BASE64 ', 'hex'),
    archiveFormat: fc.constantFrom('tar.gz', 'tgz', 'zip'),
  },
  { requiredKeys: [] },
);
const args: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: plausible },
  { weight: 6, arbitrary: fc.record(Object.fromEntries(KEYS.map((k) => [k, value])), { requiredKeys: [] }) },
  { weight: 2, arbitrary: fc.dictionary(fc.string({ unit: 'binary', maxLength: 12 }), value, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
);

let h: Harness;
let b: SlotBackend;
let s: Slot;
beforeAll(async () => {
  h = harness();
  await h.worker({ slots: 1 });
  b = await h.backend();
  s = await b.acquire('fuzz');
});
afterAll(async () => {
  await h?.close();
});

/** A result is fine when it is a legitimate success or a typed, non-infrastructure failure. */
function checkResult(r: ExecutionResult | undefined, req: readonly [unknown, unknown], seen: Map<string, number>): void {
  seen.set(r?.metadata.code ?? 'success', (seen.get(r?.metadata.code ?? 'success') ?? 0) + 1);
  const where = JSON.stringify(req).slice(0, 300);
  expect(executionResultSchema.safeParse(r).success, where).toBe(true);
  expect(r!.slotId, where).toBe(s.slotId);
  if (r!.success) return;
  expect(ERROR_CODES, where).toContain(r!.metadata.code);
  expect(r!.error.length, where).toBeGreaterThan(0);
  expect(INFRA.has(r!.metadata.code!), `${where} → ${r!.metadata.code}: ${r!.error}`).toBe(false);
}

describe('fuzzing a live worker with malformed requests', () => {
  it(`gives ${BATCH * BATCHES} random requests a typed result and keeps serving`, async () => {
    // Memory under load is measured by the bench and the chaos soak (npm run bench / chaos), not asserted here.
    let sent = 0;
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(tool, args), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const requests = batch.map(([t, a]) => [s, t, a] as unknown as ToolRequest);
        const results = await b.executeBatch(requests, { timeoutS: 3 });
        sent += batch.length;
        expect(results).toHaveLength(batch.length);
        results.forEach((r, i) => checkResult(r, batch[i]!, seen));
      }),
      { numRuns: BATCHES, endOnFailure: true },
    );
    expect(sent).toBeGreaterThanOrEqual(1000);
    // The requests reached the tools too, not only the validators.
    expect(seen.get('success') ?? 0, JSON.stringify([...seen])).toBeGreaterThan(BATCH);
    expect(seen.size, JSON.stringify([...seen])).toBeGreaterThanOrEqual(5);
    const after = await b.executeBatch([
      [s, 'bash', { command: 'cd /workspace && echo alive' }],
      [s, 'write_file', { path: 'after-fuzz.txt', content: 'fine' }],
      [s, 'read_file', { path: 'after-fuzz.txt' }],
    ]);
    expect(after.map((r) => r.output)).toEqual(['alive\n', 'Wrote 4 bytes to after-fuzz.txt', 'fine']);
    expect(await b.readArtifact(s, 'after-fuzz.txt')).toMatchObject({ success: true, content: 'fine' });
  });
});
