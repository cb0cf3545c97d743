import { describe, expect, it } from 'vitest';
import { inboxMessageSchema, type ExecutionResult } from '../../src/shared/calls/schemas.js';
import { replyMessages } from '../../src/worker/queue/reply.js';

const result = (i: number, bytes: number): [number, ExecutionResult] => [i, { success: true, output: `${i}:`.padEnd(bytes, 'x'), error: '', executionId: `e${i}`, slotId: 's0', metadata: { durationMs: 1 } }];

describe('replyMessages', () => {
  it('splits a job into messages no larger than the bound, every result once and in order', () => {
    const results = Array.from({ length: 40 }, (_, i) => result(i, 1000 + i * 97));
    const messages = replyMessages('job-1', results, 8 * 1024);
    expect(messages.length).toBeGreaterThan(5);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(8 * 1024);
    const parsed = messages.map((m) => inboxMessageSchema.parse(JSON.parse(m)));
    expect(parsed.every((m) => m.t === 'results' && m.jobId === 'job-1')).toBe(true);
    expect(parsed.flatMap((m) => (m.t === 'results' ? m.results : []))).toEqual(results);
  });

  it('sends a result larger than the bound alone, and a job with no result as one empty message', () => {
    const messages = replyMessages('j', [result(0, 10), result(1, 5000), result(2, 10)], 1024);
    expect(messages.map((m) => (JSON.parse(m) as { results: Array<[number]> }).results.map(([i]) => i))).toEqual([[0], [1], [2]]);
    expect(replyMessages('j', [], 1024)).toEqual(['{"t":"results","jobId":"j","results":[]}']);
  });

  it('keeps a small job in one message, byte-for-byte what JSON.stringify makes', () => {
    const results = [result(0, 10), result(1, 20)];
    expect(replyMessages('j"1', results)).toEqual([JSON.stringify({ t: 'results', jobId: 'j"1', results })]);
  });
});
