import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend, SlotWorker } from '../../src/index.js';
import { harness, type Harness } from '../support/harness.js';

/**
 * The table of causes in docs/tools-and-results.md, row by row: what a command does inside its own slot comes back scored
 * (`retryable: false`, with `metadata.cause`); what happens to the slot from outside comes back masked
 * (`retryable: true`). In RL a policy would otherwise learn to turn its failures into masked ones.
 */
let h: Harness;
afterEach(async () => {
  await h?.close();
});

const one = async (b: SlotBackend, s: Slot, tool: string, args: Record<string, unknown>): Promise<ExecutionResult> => (await b.executeBatch([[s, tool, args]]))[0]!;

/** One slot with small limits: 96 MB of memory, a 16 MB /tmp, 64 pids, and a /workspace of workspaceMb. */
async function setup(workspaceMb = 16): Promise<{ w: SlotWorker; b: SlotBackend; s: Slot }> {
  h = harness();
  const w = await h.worker({ slots: 1, warmSpares: 0, memoryMb: 96, workspaceMb, tmpMb: 16, pids: 64 });
  const b = await h.backend();
  return { w, b, s: await b.acquire('causes') };
}

const scored = (cause: string | undefined, code = 'TOOL_FAILED') => ({ code, retryable: false, ...(cause ? { cause } : {}) });

describe('causes inside the slot are scored, never retryable', () => {
  it('memory, pids, disk, the stateful shell, closed stdout, the executor session, pid 1', async () => {
    const { b, s } = await setup();
    const rows: Array<[string, string, Record<string, unknown>, string | undefined]> = [
      ['kills its executor session', 'bash', { command: 'kill -9 $PPID; sleep 5', timeout: 30 }, 'killed_executor_session'],
      ['kills every process it can see', 'bash', { command: 'kill -9 -1; sleep 5', timeout: 30 }, 'killed_executor_session'],
      ['exhausts memory (stateless)', 'bash', { command: 'head -c 400000000 /dev/zero | tail -n 1 >/dev/null', timeout: 60 }, 'oom'],
      ['exhausts memory (stateful)', 'bash_stateful', { command: 'head -c 400000000 /dev/zero | tail -n 1 >/dev/null', timeout: 60 }, 'oom'],
      ['exhausts pids', 'bash', { command: 'for i in $(seq 100); do sleep 5 & done; wait', timeout: 60 }, 'pids_exhausted'],
      ['fills the disk (bash)', 'bash', { command: 'head -c 20000000 /dev/zero > /tmp/fill', timeout: 30 }, 'disk_full'],
      ['exits the stateful shell', 'bash_stateful', { command: 'cd /tmp; exit 3' }, 'exited_stateful_shell'],
      ['closes its stdout (stateless)', 'bash', { command: 'exec >&-; echo gone' }, undefined],
      ['closes its stdout (stateful)', 'bash_stateful', { command: 'exec >&-; echo gone' }, undefined],
    ];
    for (const [what, tool, args, cause] of rows) {
      const r = await one(b, s, tool, args);
      expect(r.metadata, what).toMatchObject(scored(cause));
      expect(r.success, what).toBe(false);
    }
    // write_file into a full /workspace: the same cause.
    await one(b, s, 'bash', { command: 'rm -f /tmp/fill; head -c 20000000 /dev/zero > /workspace/fill' });
    const w = await one(b, s, 'write_file', { path: 'x.txt', content: 'hello' });
    expect(w.metadata).toMatchObject(scored('disk_full'));
    // pid 1 cannot be killed from inside: nothing happens, and the slot works on, the stateful shell included.
    await one(b, s, 'bash', { command: 'rm -f /workspace/fill' });
    expect((await one(b, s, 'bash', { command: 'kill -9 1; echo alive' })).output).toMatch(/^alive\n/);
    expect(await one(b, s, 'bash_stateful', { command: 'echo after; pwd' })).toMatchObject({ success: true, output: 'after\n/workspace\n' });
  });

  it('files that exhaust the memory: the kernel kills processes or the whole container; either way scored, and so is the "workspace gone" that follows', async () => {
    const { b, s } = await setup(256);
    const filled = await one(b, s, 'bash', { command: 'cat /dev/zero > /workspace/fill', timeout: 60 });
    expect(filled.metadata).toMatchObject({ retryable: false, cause: 'oom' });
    expect(['TOOL_FAILED', 'SLOT_BROKEN']).toContain(filled.metadata.code);
    // Until the files are gone (with the container, or by rm), every result is the slot's own: scored.
    let next = await one(b, s, 'bash', { command: 'rm -f /workspace/fill; echo ok' });
    for (let i = 0; i < 3 && !next.success; i++) {
      expect(next.metadata, JSON.stringify(next)).toMatchObject({ retryable: false });
      next = await one(b, s, 'bash', { command: 'rm -f /workspace/fill; echo ok' });
    }
    if (!next.success) expect(next.metadata, JSON.stringify(next)).toMatchObject({ retryable: false });
    // A slot so full that even rm cannot start stays the trajectory's problem; a release with reset ends it.
    await b.release(s, { resetWorkspace: true });
    const fresh = await b.acquire('after-fill');
    expect(await one(b, fresh, 'bash', { command: 'ls -A /workspace | wc -l' })).toMatchObject({ success: true, output: '0\n' });
  });
});

describe('causes outside the slot are masked (retryable)', () => {
  it('a container killed from outside: SLOT_BROKEN, retryable, cause container_killed', async () => {
    const { w, b, s } = await setup();
    await one(b, s, 'write_file', { path: 'keep.txt', content: 'x' });
    // An OOM earlier in the container (one process killed, scored) does not make the outside kill its own.
    expect((await one(b, s, 'bash', { command: 'head -c 400000000 /dev/zero | tail -n 1 >/dev/null', timeout: 60 })).metadata).toMatchObject(scored('oom'));
    execFileSync('docker', ['kill', w.slots.get(s.slotId)!.containerId]);
    const r = await one(b, s, 'bash', { command: 'echo hi' });
    expect(r.metadata).toMatchObject({ code: 'SLOT_BROKEN', retryable: true, cause: 'container_killed' });
    // Usually the worker has already replaced the idle slot's container and this call is the one told;
    // a call that came first finds it dead, and the next one is told.
    if (!r.metadata['workspaceLost']) {
      const told = await one(b, s, 'bash', { command: 'echo hi' });
      expect(told.metadata).toMatchObject({ code: 'SLOT_BROKEN', retryable: true, workspaceLost: true, cause: 'container_killed' });
    }
    expect(await one(b, s, 'bash', { command: 'echo ok' })).toMatchObject({ success: true, output: 'ok\n' });
  });
});
