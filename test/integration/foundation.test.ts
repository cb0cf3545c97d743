import { afterEach, describe, expect, it } from 'vitest';
import { SlotBackend, SlotUnavailableError } from '../../src/index.js';
import { statusTable } from '../../src/cli/admin.js';
import { loadConfig } from '../../src/shared/config.js';
import { keysFor } from '../../src/shared/keys.js';
import { containersOf, harness, redisUrl, waitFor, type Harness } from '../support/harness.js';

let h: Harness;
/** Polls the registry's FIFO of waiting acquire() calls until it holds n of them. */
async function waitForWaiters(n: number): Promise<void> {
  const redis = h.redis();
  await waitFor(async () => (await redis.llen(keysFor(h.prefix).waiters)) >= n, 20_000, `${n} acquire() call(s) queued as waiters`);
}
afterEach(async () => {
  await h?.close();
});

describe('end to end through Redis, a worker and real containers', () => {
  it('returns results in request order although they finish out of order', async () => {
    h = harness();
    await h.worker({ slots: 2 });
    const b = await h.backend();
    const [s1, s2] = [await b.acquire('ta'), await b.acquire('tb')];
    expect(s1.slotId).not.toBe(s2.slotId);
    const res = await b.executeBatch([
      [s1, 'bash', { command: 'sleep 0.3; echo a' }],
      [s2, 'bash', { command: 'echo b' }],
    ]);
    expect(res.map((r) => r.output)).toEqual(['a\n', 'b\n']);
    expect(res.map((r) => r.slotId)).toEqual([s1.slotId, s2.slotId]);
    expect(new Set(res.map((r) => r.executionId)).size).toBe(2);
  });

  it('runs calls on one slot one at a time in request order', async () => {
    h = harness();
    await h.worker({ slots: 2 });
    const b = await h.backend();
    const s = await b.acquire();
    const n = 8;
    const res = await b.executeBatch(
      Array.from({ length: n }, (_, i) => [s, 'bash', { command: `sleep 0.0${n - i}; echo ${i} >> order.txt` }] as const),
    );
    expect(res.every((r) => r.success)).toBe(true);
    const [read] = await b.executeBatch([[s, 'read_file', { path: 'order.txt' }]]);
    expect(read!.output.trim().split('\n')).toEqual(Array.from({ length: n }, (_, i) => String(i)));
  });

  it('keeps affinity within a producer: the same trajectory gets the same slot, also from concurrent acquires', async () => {
    h = harness();
    await h.worker({ slots: 2 });
    const b1 = await h.backend();
    const first = await b1.acquire('traj-1');
    expect((await b1.acquire('traj-1')).slotId).toBe(first.slotId);
    const [p, q] = await Promise.all([b1.acquire('traj-3'), b1.acquire('traj-3')]);
    expect(p.slotId).toBe(q.slotId);
    expect(p.leaseId).toBe(q.leaseId);
    expect(new Set([first.slotId, p.slotId]).size).toBe(2);
  });

  it('tenants never share a slot: two producers naming the same trajectory get different slots and cannot read each other', async () => {
    h = harness();
    await h.worker({ slots: 2 });
    const [b1, b2] = [await h.backend(), await h.backend()];
    const [x, y] = await Promise.all([b1.acquire('traj-0'), b2.acquire('traj-0')]);
    expect(x.slotId).not.toBe(y.slotId);
    expect(x.leaseId).not.toBe(y.leaseId);
    expect([x.trajectoryId, y.trajectoryId]).toEqual(['traj-0', 'traj-0']); // the plain ID, as asked
    const [wrote] = await b1.executeBatch([[x, 'write_file', { path: 'secret.txt', content: 'run-1 only' }]]);
    expect(wrote!.success).toBe(true);
    const [read] = await b2.executeBatch([[y, 'bash', { command: 'ls -A /workspace | wc -l; cat /workspace/secret.txt' }]]);
    expect(read!.output.split('\n')[0]).toBe('0');
    expect(read!.output).not.toContain('run-1 only');
    // A third producer naming it, once the first released, gets the free slot: never the one b2 holds.
    await b1.release(x, { resetWorkspace: true });
    const b3 = await h.backend();
    expect((await b3.acquire('traj-0', { timeoutMs: 30_000 })).slotId).toBe(x.slotId);
    expect((await b2.acquire('traj-0')).slotId).toBe(y.slotId);
    // `slotq status` shows the plain trajectory ID and no lease.
    const table = await statusTable(loadConfig({ redisUrl: redisUrl(), prefix: h.prefix }));
    expect(table).toContain('traj-0');
    expect(table).not.toContain(y.leaseId);
  });

  it('producers that pass the same namespace share trajectories (explicit opt-in); another namespace does not', async () => {
    h = harness();
    await h.worker({ slots: 3 });
    const [n1, n2, other, plain] = [await h.backend({ namespace: 'run-7' }), await h.backend({ namespace: 'run-7' }), await h.backend({ namespace: 'run-8' }), await h.backend()];
    const [x, y] = await Promise.all([n1.acquire('traj-0'), n2.acquire('traj-0')]);
    expect(y.slotId).toBe(x.slotId);
    await n1.executeBatch([[x, 'write_file', { path: 'shared.txt', content: 'for the run' }]]);
    const [read] = await n2.executeBatch([[y, 'read_file', { path: 'shared.txt' }]]);
    expect(read!.output).toBe('for the run');
    const [z, p] = [await other.acquire('traj-0'), await plain.acquire('traj-0')];
    expect(new Set([x.slotId, z.slotId, p.slotId]).size).toBe(3);
    expect(() => new SlotBackend({ redisUrl: redisUrl(), prefix: h.prefix, namespace: 'a\x1fb' })).toThrow(/namespace/);
  });

  it('rejects with NO_SLOT after timeoutMs when every slot is held, and serves waiters first come first served', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const b = await h.backend();
    const held = await b.acquire('holder');
    const err = await b.acquire('late', { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlotUnavailableError);
    expect((err as SlotUnavailableError).code).toBe('NO_SLOT');
    const order: string[] = [];
    // Each waiter is queued in the registry before the next one asks: the order is decided there, not by a sleep.
    const w1 = b.acquire('w1', { timeoutMs: 20_000 }).then((s) => (order.push('w1'), s));
    await waitForWaiters(1);
    const w2 = b.acquire('w2', { timeoutMs: 20_000 }).then((s) => (order.push('w2'), s));
    await waitForWaiters(2);
    await b.release(held);
    const s1 = await w1;
    await b.release(s1);
    await w2;
    expect(order).toEqual(['w1', 'w2']);
  });

  it('an acquire still waiting when the backend stops rejects with BACKEND_STOPPED instead of hanging', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const b = await h.backend();
    await b.acquire('holder');
    const waiting = b.acquire('waiter', { timeoutMs: 60_000 }).catch((e: unknown) => e);
    await waitForWaiters(1);
    await b.stop();
    expect(await waiting).toMatchObject({ code: 'BACKEND_STOPPED' });
  });

  it('kills the whole process group on timeout, background children included', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const b = await h.backend();
    const s = await b.acquire();
    const [r] = await b.executeBatch([[s, 'bash', { command: 'sleep 100 & sleep 100', timeout: 1 }]]);
    expect(r!.success).toBe(false);
    expect(r!.metadata).toMatchObject({ code: 'TIMEOUT', timedOut: true, exitCode: -1 });
    const [ps] = await b.executeBatch([[s, 'bash', { command: 'ps -eo args' }]]);
    expect(ps!.output).not.toContain('sleep 100');
  });

  it('reports a non-zero exit as TOOL_FAILED with exitCode, and keeps stdout and stderr', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const b = await h.backend();
    const s = await b.acquire();
    const [r] = await b.executeBatch([[s, 'bash', { command: 'echo out; echo err >&2; exit 3' }]]);
    expect(r).toMatchObject({ success: false, error: 'Exit code: 3', output: 'out\n\n[stderr]\nerr\n' });
    expect(r!.metadata).toMatchObject({ code: 'TOOL_FAILED', exitCode: 3, retryable: false });
  });

  it('gives UNKNOWN_TOOL for an unknown tool and INVALID_ARGS naming the bad field', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const b = await h.backend();
    const s = await b.acquire();
    const res = await b.executeBatch([
      [s, 'rm_rf', {}],
      [s, 'bash', { command: 42 }],
      [s, 'write_file', { path: 'a.txt' }],
      [s, 'terminal', { command: 'echo alias' }],
    ]);
    expect(res[0]!.metadata.code).toBe('UNKNOWN_TOOL');
    expect(res[0]!.error).toContain('rm_rf');
    expect(res[1]!.metadata.code).toBe('INVALID_ARGS');
    expect(res[1]!.error).toContain('command');
    expect(res[2]!.metadata.code).toBe('INVALID_ARGS');
    expect(res[2]!.error).toContain('content');
    expect(res[3]).toMatchObject({ success: true, output: 'alias\n' });
  });

  it('reset gives the next holder a pristine container: no files anywhere, no leftover process', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const b = await h.backend();
    const s = await b.acquire('dirty');
    const [w] = await b.executeBatch([
      [s, 'bash', { command: 'echo x > /workspace/secret; echo y > /tmp/secret; echo z > ~/secret; (setsid sleep 1000 &) ; nohup sleep 999 >/dev/null 2>&1 & echo ok' }],
    ]);
    expect(w!.success).toBe(true);
    await b.release(s, { resetWorkspace: true });
    const next = await b.acquire('clean', { timeoutMs: 30_000 });
    expect(next.slotId).toBe(s.slotId);
    const [r] = await b.executeBatch([
      [next, 'bash', { command: 'ls -A /workspace; find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -name secret -print 2>/dev/null; ps -eo args | grep -c "^sleep [0-9]" || true' }],
    ]);
    expect(r!.output.trim()).toBe('0');
  });

  it('a stopped worker leaves no container carrying its labels', async () => {
    h = harness();
    const w = await h.worker({ slots: 2 });
    expect((await containersOf(h.prefix, w.workerId)).length).toBeGreaterThanOrEqual(2);
    const b = await h.backend();
    const s = await b.acquire();
    await b.release(s, { resetWorkspace: true });
    await w.stop();
    expect(await containersOf(h.prefix, w.workerId)).toEqual([]);
  });

  it('throws only for programmer errors: not started, or not a Slot', async () => {
    const b = new SlotBackend({ redisUrl: redisUrl() });
    await expect(b.acquire()).rejects.toMatchObject({ code: 'BACKEND_STOPPED' });
    h = harness();
    const started = await h.backend();
    await expect(started.executeBatch([[{ slotId: 'x' } as never, 'bash', { command: 'true' }]])).rejects.toMatchObject({ code: 'INVALID_ARGS' });
    expect(await started.executeBatch([])).toEqual([]);
  });
});
