import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { inboxMessageSchema, type InboxMessage } from '../../src/shared/calls/schemas.js';
import type { SlotBackend, Slot, SlotWorker } from '../../src/index.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

async function setup(): Promise<{ w: SlotWorker; b: SlotBackend; s: Slot }> {
  h = harness();
  const w = await h.worker({ slots: 1 });
  const b = await h.backend();
  return { w, b, s: await b.acquire() };
}

async function sh(b: SlotBackend, s: Slot, command: string): Promise<string> {
  const [r] = await b.executeBatch([[s, 'bash', { command }]]);
  expect(r, command).toMatchObject({ success: true });
  return r!.output;
}

/** Every way out of /workspace, and the code it must get (contract §4: resolved after following symlinks). */
const ESCAPES: ReadonlyArray<readonly [string, 'PATH_OUTSIDE_WORKSPACE' | 'INVALID_ARGS']> = [
  ['../tmp/canary', 'PATH_OUTSIDE_WORKSPACE'],
  ['/tmp/canary', 'PATH_OUTSIDE_WORKSPACE'],
  ['a/../../tmp/canary', 'PATH_OUTSIDE_WORKSPACE'],
  ['/workspace/../tmp/canary', 'PATH_OUTSIDE_WORKSPACE'],
  ['..', 'PATH_OUTSIDE_WORKSPACE'],
  ['/', 'PATH_OUTSIDE_WORKSPACE'],
  ['/tmp/not-there-yet', 'PATH_OUTSIDE_WORKSPACE'],
  ['canary-link', 'PATH_OUTSIDE_WORKSPACE'], // symlinks planted by an earlier command
  ['etc-link/passwd', 'PATH_OUTSIDE_WORKSPACE'],
  ['pw-link', 'PATH_OUTSIDE_WORKSPACE'],
  ['dangling-out', 'PATH_OUTSIDE_WORKSPACE'],
  ['inner/deep/up/tmp/canary', 'PATH_OUTSIDE_WORKSPACE'],
  ['missing/../canary-link', 'PATH_OUTSIDE_WORKSPACE'], // back out of a missing directory, then a link out
  ['missing/../etc-link/new-file', 'PATH_OUTSIDE_WORKSPACE'],
  ['canary\0', 'INVALID_ARGS'],
  ['a\0/../../etc/passwd', 'INVALID_ARGS'],
  ['x'.repeat(4097), 'INVALID_ARGS'],
  ['', 'INVALID_ARGS'],
];

const PLANT =
  'echo SECRET > /tmp/canary && ln -s /etc etc-link && ln -s /etc/passwd pw-link && ln -s /tmp/canary canary-link && ' +
  'ln -s /tmp/new-file dangling-out && mkdir -p inner/deep && ln -s ../../.. inner/deep/up';

describe('path safety: no tool or helper reads or writes outside /workspace', () => {
  it('refuses every escape form in read_file, write_file, readArtifact, listArtifacts and archiveArtifacts', async () => {
    const { b, s } = await setup();
    await sh(b, s, PLANT);
    const ops: Record<string, (path: string) => Promise<{ code: unknown; text: string }>> = {
      read_file: async (path) => (([r]) => ({ code: r!.metadata.code, text: r!.output }))(await b.executeBatch([[s, 'read_file', { path }]])),
      write_file: async (path) => (([r]) => ({ code: r!.metadata.code, text: r!.output }))(await b.executeBatch([[s, 'write_file', { path, content: 'PWNED' }]])),
      readArtifact: async (path) => ((r) => ({ code: r.success ? undefined : r.code, text: r.success ? r.content : '' }))(await b.readArtifact(s, path)),
      listArtifacts: async (path) => ((r) => ({ code: r.success ? undefined : r.code, text: JSON.stringify(r) }))(await b.listArtifacts(s, path, { recursive: true })),
      archiveArtifacts: async (path) => ((r) => ({ code: r.success ? undefined : r.code, text: r.success ? r.content : '' }))(await b.archiveArtifacts(s, path)),
    };
    for (const [name, op] of Object.entries(ops)) {
      for (const [path, code] of ESCAPES) {
        const got = await op(path);
        expect(got.code, `${name}(${JSON.stringify(path.slice(0, 40))})`).toBe(code);
        expect(got.text).not.toMatch(/SECRET|root:x:0/);
      }
    }
    expect(await sh(b, s, 'cat /tmp/canary; ls /tmp/new-file /tmp/not-there-yet 2>&1 || true')).toMatch(/^SECRET\n(.*No such file.*\n){2}$/);
  });

  it('refuses a symlink planted earlier in the same batch, and lists and archives around links that leave', async () => {
    const { b, s } = await setup();
    const res = await b.executeBatch([
      [s, 'bash', { command: 'echo SECRET > /tmp/canary; mkdir -p mixed; echo ok > mixed/ok.txt; ln -s /tmp/canary mixed/out; ln -s /etc mixed/etc; ln -s .. mixed/up; ln -s loop mixed/loop' }],
      [s, 'read_file', { path: 'mixed/out' }],
      [s, 'write_file', { path: 'mixed/out', content: 'PWNED' }],
      [s, 'read_file', { path: 'mixed/up/mixed/ok.txt' }],
      [s, 'read_file', { path: 'mixed/loop' }],
    ]);
    expect(res.map((r) => r.metadata.code)).toEqual([undefined, 'PATH_OUTSIDE_WORKSPACE', 'PATH_OUTSIDE_WORKSPACE', undefined, 'NOT_FOUND']);
    expect(res[3]!.output).toBe('ok\n');
    const list = await b.listArtifacts(s, 'mixed', { recursive: true });
    // Links out are skipped; a link loop or dangling link stays inside, so it is listed (never followed).
    expect(list.success && list.entries.map((e) => e.path)).toEqual(['mixed/loop', 'mixed/ok.txt', 'mixed/up']);
    const arc = await b.archiveArtifacts(s, 'mixed');
    expect(arc).toMatchObject({ success: true, entryCount: 1 });
    expect(await sh(b, s, 'cat /tmp/canary')).toBe('SECRET\n');
  });
});

describe('limits and encodings of the file tools', () => {
  it('read_file and write_file: 100 000 is the limit (limit - 1, limit, limit + 1)', async () => {
    const { b, s } = await setup();
    const writes = await b.executeBatch([99_999, 100_000, 100_001].map((n) => [s, 'write_file', { path: `w${n}`, content: 'a'.repeat(n) }] as const));
    expect(writes.map((r) => r.metadata.code)).toEqual([undefined, undefined, 'TOO_LARGE']);
    expect(writes[2]!.error).toContain('100001');
    await sh(b, s, 'for n in 99999 100000 100001; do head -c $n /dev/zero | tr "\\0" b > r$n; done');
    const reads = await b.executeBatch([99_999, 100_000, 100_001].map((n) => [s, 'read_file', { path: `r${n}` }] as const));
    expect(reads.map((r) => r.metadata.code)).toEqual([undefined, undefined, 'TOO_LARGE']);
    expect(reads.map((r) => r.output.length)).toEqual([99_999, 100_000, 0]);
    expect(reads[2]!.error).toBe('File too large: 100001 bytes (max 100000)');
  });

  it('replaces invalid UTF-8, caps output with a marker, refuses non-files and clamps timeouts', async () => {
    const { b, s } = await setup();
    const res = await b.executeBatch([
      [s, 'bash', { command: "printf 'a\\377b' > bad.txt; printf 'x\\376y'" }],
      [s, 'read_file', { path: 'bad.txt' }],
      [s, 'bash', { command: 'head -c 200000 /dev/zero | tr "\\0" z' }],
      [s, 'bash', { command: 'mkdir -p adir && mkfifo pipe' }],
      [s, 'write_file', { path: 'adir', content: 'x' }],
      [s, 'write_file', { path: 'pipe', content: 'x' }],
      [s, 'read_file', { path: 'pipe' }],
      [s, 'bash', { command: 'sleep 0.3; echo clamped', timeout: 0.001 }],
    ]);
    expect(res[0]!.output).toBe('x\uFFFDy');
    expect(res[1]!.output).toBe('a\uFFFDb');
    expect(res[2]!.output).toContain('[output truncated: 150000 bytes omitted]');
    expect(res[2]!.metadata.truncated).toBe(true);
    expect(res.slice(4, 7).map((r) => r.metadata.code)).toEqual(['INVALID_ARGS', 'INVALID_ARGS', 'INVALID_ARGS']);
    expect(res[7]).toMatchObject({ success: true, output: 'clamped\n' }); // 0.001 s is clamped up to 1 s
  });
});

describe('validation at the queue boundary', () => {
  it('answers malformed payloads put straight into a worker queue with INVALID_ARGS, and keeps serving', async () => {
    const { w, b, s } = await setup();
    const redis = h.redis();
    const queue = new Queue(w.queueName, { connection: h.redis(), prefix: w.keys.root });
    const producerId = 'rogue-producer';
    const item = { index: 0, executionId: 'e0', slotId: s.slotId, leaseId: s.leaseId, tool: 'bash', args: { command: 'echo hi' }, timeoutS: 30 };
    const replied = [
      { v: 2, kind: 'calls', batchId: 'b', producerId, items: [item] },
      { v: 1, kind: 'calls', batchId: 'b', producerId, items: [{ ...item, tool: 42 }] },
      { v: 1, kind: 'calls', batchId: 'b', producerId, items: [{ ...item, args: 'rm -rf /' }, 'junk', { index: 'x' }] },
      { v: 1, kind: 'calls', batchId: 'b', producerId, items: [{ ...item, timeoutS: -5, deep: { a: { b: { c: [1, [2, [3]]] } } } }] },
      { v: 1, kind: 'mystery', producerId, items: [item] },
    ];
    const dropped: unknown[] = [null, 'a string', 12, [1, 2], { v: 1, kind: 'calls', items: [item] }, { producerId: 7 }];
    for (const [i, data] of replied.entries()) await queue.add('calls', data, { jobId: `bad-${i}` });
    for (const [i, data] of dropped.entries()) await queue.add('calls', data, { jobId: `drop-${i}` });
    const messages: InboxMessage[] = [];
    while (messages.length < replied.length) {
      const popped = await redis.blpop(w.keys.inbox(producerId), 10);
      expect(popped, 'a reply for every payload that names a producer').not.toBeNull();
      messages.push(inboxMessageSchema.parse(JSON.parse(popped![1])));
    }
    const results = messages.flatMap((m) => (m.t === 'results' ? m.results.map(([, r]) => r) : []));
    expect(results.length).toBe(1 + 1 + 3 + 1 + 1);
    for (const r of results) expect(r).toMatchObject({ success: false, metadata: { code: 'INVALID_ARGS', retryable: false } });
    expect(results[0]!.error).toContain('Invalid job payload');
    for (const i of dropped.keys()) {
      await waitFor(async () => ['failed', 'unknown'].includes(await queue.getJobState(`drop-${i}`)), 10_000, `job drop-${i} to fail`);
    }
    expect(await sh(b, s, 'echo still serving')).toBe('still serving\n');
    await queue.close();
  });

  it('answers a well-formed call for a slot it does not own, or with a stale lease, without running it', async () => {
    const { w, b, s } = await setup();
    const redis = h.redis();
    const queue = new Queue(w.queueName, { connection: h.redis(), prefix: w.keys.root });
    const base = { index: 0, executionId: 'e', slotId: s.slotId, leaseId: s.leaseId, tool: 'bash', args: { command: 'touch ran' }, timeoutS: 30 };
    const items = [{ ...base, slotId: 'nobody-s9' }, { ...base, index: 1, leaseId: 'stale' }];
    await queue.add('calls', { v: 1, kind: 'calls', batchId: 'b', producerId: 'p2', items }, { jobId: 'foreign' });
    const popped = await redis.blpop(w.keys.inbox('p2'), 10);
    const msg = inboxMessageSchema.parse(JSON.parse(popped![1]));
    expect(msg.t === 'results' && msg.results.map(([i, r]) => [i, r.metadata.code])).toEqual([[0, 'WORKER_LOST'], [1, 'LEASE_LOST']]);
    expect(await b.listArtifacts(s)).toMatchObject({ success: true, entries: [] });
    await queue.close();
  });
});
