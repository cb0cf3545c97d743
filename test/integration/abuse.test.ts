import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

const MEMORY_MB = 256;
const WORKSPACE_MB = 64;

let h: Harness | undefined;
let server: Server | undefined;
afterEach(async () => {
  server?.close();
  server = undefined;
  await h?.close();
  h = undefined;
});

interface Pair {
  b: SlotBackend;
  abuser: Slot;
  neighbour: Slot;
}

/** A worker with two small slots (256 MB memory, 64 MB /workspace): one to abuse, one neighbour. */
async function twoSlots(): Promise<Pair> {
  h = harness();
  await h.worker({ slots: 2, warmSpares: 0, memoryMb: MEMORY_MB, workspaceMb: WORKSPACE_MB });
  const b = await h.backend();
  return { b, abuser: await b.acquire('abuser'), neighbour: await b.acquire('neighbour') };
}

const run = async (b: SlotBackend, slot: Slot, tool: string, args: Record<string, unknown>): Promise<ExecutionResult> => (await b.executeBatch([[slot, tool, args]]))[0]!;

/**
 * Runs the abusive call; meanwhile the neighbour slot runs `echo hi` over and over (at least once).
 * Returns the abusive call's result and every neighbour result.
 */
async function duringAbuse(p: Pair, args: Record<string, unknown>): Promise<{ result: ExecutionResult; neighbour: ExecutionResult[] }> {
  let done = false;
  const abusive = run(p.b, p.abuser, 'bash', args).finally(() => (done = true));
  const neighbour: ExecutionResult[] = [];
  // Only answers that came back while the abuse still ran count: the neighbour must answer during it.
  for (;;) {
    const r = await run(p.b, p.neighbour, 'bash', { command: 'echo hi' });
    if (done) break;
    neighbour.push(r);
  }
  return { result: await abusive, neighbour };
}

const expectNeighbourFine = (results: ExecutionResult[]): void => {
  expect(results.length, 'neighbour answers while the abusive call ran').toBeGreaterThan(0);
  for (const r of results) expect(r).toMatchObject({ success: true, output: 'hi\n' });
};

/** The abused slot answers again; a SLOT_BROKEN (container replaced) notice first is allowed. */
async function expectSlotWorks(p: Pair): Promise<void> {
  let r = await run(p.b, p.abuser, 'bash', { command: 'echo after' });
  if (r.metadata.code === 'SLOT_BROKEN') r = await run(p.b, p.abuser, 'bash', { command: 'echo after' });
  expect(r).toMatchObject({ success: true, output: 'after\n' });
}

describe('abuse inside a slot stays inside it; the neighbour keeps answering', () => {
  it('a fork bomb is contained by the pids limit: scored (TIMEOUT, not retryable, cause pids_exhausted, its stderr kept), and the slot works afterwards', async () => {
    const p = await twoSlots();
    // /bin/sh (dash) rejects ":" as a function name: the classic bomb runs in bash, and sleep keeps the call alive while it forks.
    const { result, neighbour } = await duringAbuse(p, { command: `bash -c ':(){ :|:& };:; sleep 60'`, timeout: 5 });
    expectNeighbourFine(neighbour);
    // The kill goes in band (no new process needed in the slot), so the call's own end comes back.
    expect(result.success).toBe(false);
    expect(result.metadata, result.error).toMatchObject({ code: 'TIMEOUT', retryable: false, cause: 'pids_exhausted' });
    expect(result.output).toMatch(/Resource temporarily unavailable/); // fork() failed: the pids limit held
    await expectSlotWorks(p);
    // Nothing of the bomb is left running in the slot.
    await waitFor(async () => Number((await run(p.b, p.abuser, 'bash', { command: 'ls /proc | grep -c "^[0-9]"' })).output.trim()) < 20, 20_000, 'the bomb to be gone');
  });

  it(`a memory hog beyond SLOTQ_MEMORY_MB (${MEMORY_MB}) is killed with 137 and the slot works afterwards`, async () => {
    const p = await twoSlots();
    const { result, neighbour } = await duringAbuse(p, { command: `python3 -c "a = []\nwhile True: a.append(b'x' * 10**7)"`, timeout: 60 });
    expectNeighbourFine(neighbour);
    expect(result).toMatchObject({ success: false, metadata: { code: 'TOOL_FAILED', exitCode: 137 } });
    await expectSlotWorks(p);
  });

  it(`a disk filler fills /workspace, a tmpfs of exactly SLOTQ_WORKSPACE_MB (${WORKSPACE_MB}), to "No space left"; the slot's / does not grow`, async () => {
    const p = await twoSlots();
    /** The slot's own view of a filesystem (coreutils stat -f): its type, size and bytes in use. */
    const fsOf = async (path: string): Promise<{ type: string; totalBytes: number; usedBytes: number }> => {
      const r = await run(p.b, p.abuser, 'bash', { command: `stat -f -c '%T %S %b %f' ${path}` });
      expect(r, `stat -f ${path}`).toMatchObject({ success: true });
      const [type, blockBytes, blocks, freeBlocks] = r.output.trim().split(/\s+/);
      return { type: type!, totalBytes: Number(blockBytes) * Number(blocks), usedBytes: Number(blockBytes) * (Number(blocks) - Number(freeBlocks)) };
    };
    const workspace = await fsOf('/workspace');
    expect(workspace).toMatchObject({ type: 'tmpfs', totalBytes: WORKSPACE_MB * 2 ** 20 });
    const rootBefore = await fsOf('/');
    const { result, neighbour } = await duringAbuse(p, { command: 'dd if=/dev/zero of=/workspace/fill bs=1M count=5000', timeout: 60 });
    expectNeighbourFine(neighbour);
    expect(result).toMatchObject({ success: false, metadata: { code: 'TOOL_FAILED' } });
    expect(result.output).toMatch(/No space left on device/);
    // The filler took all of /workspace, and no more than it: the cap, not the 5 000 MB asked for, stopped it.
    const size = Number((await run(p.b, p.abuser, 'bash', { command: 'stat -c %s /workspace/fill' })).output.trim());
    expect(size).toBeLessThanOrEqual(WORKSPACE_MB * 2 ** 20);
    expect(size).toBeGreaterThan((WORKSPACE_MB - 1) * 2 ** 20);
    const full = await fsOf('/workspace');
    expect(full.usedBytes).toBeGreaterThan(full.totalBytes - 2 ** 20);
    // Nothing spilled into the container's writable layer (/): it moved by far less than the cap.
    expect((await fsOf('/')).usedBytes - rootBefore.usedBytes).toBeLessThan(WORKSPACE_MB * 2 ** 19);
    const cleaned = await run(p.b, p.abuser, 'bash', { command: 'rm /workspace/fill && echo x > /workspace/y && cat /workspace/y' });
    expect(cleaned).toMatchObject({ success: true, output: 'x\n' });
    expect((await fsOf('/workspace')).usedBytes).toBeLessThan(2 ** 20);
  });

  it('network attempts fail under network "none": 1.1.1.1:53, a loopback-only port of the host, DNS', async () => {
    const p = await twoSlots();
    let connections = 0;
    server = createServer((sock) => (connections++, sock.destroy()));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const connect = (host: string, to: number): string => `python3 -c "import socket; socket.create_connection(('${host}', ${to}), timeout=5)"`;
    for (const command of [connect('1.1.1.1', 53), connect('127.0.0.1', port), connect('172.17.0.1', port), 'getent hosts example.com']) {
      // Each attempt fails at once: the call then waits a second (its exit code kept), so the neighbour's
      // answers during it can be counted.
      const { result, neighbour } = await duringAbuse(p, { command: `${command}; rc=$?; sleep 1; exit $rc`, timeout: 30 });
      expectNeighbourFine(neighbour);
      expect(result, command).toMatchObject({ success: false, metadata: { code: 'TOOL_FAILED' } });
      if (command.startsWith('python3')) expect(result.output).toMatch(/Network is unreachable|Connection refused/);
    }
    expect(connections).toBe(0);
    await expectSlotWorks(p);
  });
});
