import { describe, expect, it } from 'vitest';
import { checkBoardAccess, isLoopback, redactJobData } from '../../src/cli/board/board-access.js';

const TOKEN = 'x'.repeat(16);

describe('board access', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.com', '127.0.0.1.example.com']) expect(isLoopback(host), host).toBe(false);
  });

  it('refuses a non-loopback address or write actions without a token', () => {
    expect(() => checkBoardAccess({ host: '0.0.0.0', token: undefined, readWrite: false, showJobData: false })).toThrow(/SLOTQ_BOARD_TOKEN/);
    expect(() => checkBoardAccess({ host: '127.0.0.1', token: undefined, readWrite: true, showJobData: false })).toThrow(/SLOTQ_BOARD_TOKEN/);
    expect(() => checkBoardAccess({ host: '0.0.0.0', token: TOKEN, readWrite: true, showJobData: false })).not.toThrow();
    expect(() => checkBoardAccess({ host: '127.0.0.1', token: undefined, readWrite: false, showJobData: true })).not.toThrow();
  });

  it('hides call arguments and lease IDs, keeps the shape of each call', () => {
    const job = {
      v: 1,
      kind: 'calls',
      producerId: 'p1',
      items: [
        { index: 0, executionId: 'e0', slotId: 's1', leaseId: 'L-secret', tool: 'bash', args: { command: 'cat ~/.netrc' }, timeoutS: 30 },
        { index: 1, executionId: 'e1', slotId: 's1', leaseId: 'L-secret', tool: 'write_file', args: { path: 'a', content: 'key=SECRET' }, timeoutS: 30 },
      ],
    };
    const shown = redactJobData(job) as { redacted: string; items: Array<Record<string, unknown>> };
    const text = JSON.stringify(shown);
    for (const secret of ['L-secret', '.netrc', 'SECRET']) expect(text).not.toContain(secret);
    expect(shown.redacted).toMatch(/--show-job-data/);
    expect(shown.items.map((i) => [i['tool'], i['slotId'], i['executionId']])).toEqual([['bash', 's1', 'e0'], ['write_file', 's1', 'e1']]);
    expect(redactJobData({ v: 1, kind: 'reset', slotId: 's1' })).toMatchObject({ kind: 'reset', slotId: 's1' });
  });
});
