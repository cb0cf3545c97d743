import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import { harness, type Harness } from './harness.js';

/** An image the contract runs on, with what it offers; runtime: the slots' OCI runtime (runc unless named). */
export interface ContractImage {
  image: string;
  uid: number;
  bash: boolean;
  tmux: boolean;
  runtime?: string;
}

/** slotq's internals must never show in what a command prints. */
export const INTERNALS = /\/run\/slotq|\/\.slotq|@sq[0-9a-f]|slotq-supervisor|\/tmp\/\.slotq/;
export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function untar(content: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = extract();
  const fed = pipeline(Readable.from([gunzipSync(Buffer.from(content, 'base64'))]), ex);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    out.set(e.header.name, Buffer.concat(chunks).toString());
  }
  await fed;
  return out;
}

/**
 * The contract on one image (call it inside a describe): the tool matrix as the image's user, long commands,
 * bash_stateful, timeouts with group kills, path escapes, artifacts, tmux where the image has it, and reset.
 * Used by images.test.ts (runc, four images) and runsc.test.ts (gVisor, two images).
 */
export function imageContract({ image, uid, bash, tmux, runtime = 'runc' }: ContractImage): void {
  let h: Harness;
  let b: SlotBackend;
  let s: Slot;
  const run = async (...calls: Array<[string, Record<string, unknown>]>): Promise<ExecutionResult[]> => b.executeBatch(calls.map(([tool, args]) => [s, tool, args] as const));
  const sh = async (command: string): Promise<string> => {
    const [r] = await run(['bash', { command }]);
    expect(r, command).toMatchObject({ success: true });
    return r!.output;
  };

  beforeAll(async () => {
    h = harness();
    await h.worker({ image, runtime, slots: 1, warmSpares: 1 });
    b = await h.backend();
    s = await b.acquire('traj-images');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('runs the tool matrix as the image user, in /workspace, with a writable HOME and /tmp, and output like a plain shell', async () => {
    const res = await run(
      ['write_file', { path: 'src/main.sh', content: 'echo "hello from $(id -u)"\n' }],
      ['read_file', { path: 'src/main.sh' }],
      ['bash', { command: 'sh src/main.sh; pwd; touch "$HOME/.probe" /tmp/probe && echo writable' }],
      ['bash', { command: 'echo out; echo err >&2; exit 3' }],
      ['bash', { command: 'surely-not-a-command-xyz' }],
      ['terminal', { command: 'cd /tmp; echo $PATH | grep -c bin' }],
    );
    expect(res[0]).toMatchObject({ success: true });
    expect(res[1]).toMatchObject({ success: true, output: 'echo "hello from $(id -u)"\n' });
    expect(res[2]).toMatchObject({ success: true, output: `hello from ${uid}\n/workspace\nwritable\n` });
    expect(res[3]).toMatchObject({ success: false, output: 'out\n\n[stderr]\nerr\n', error: 'Exit code: 3', metadata: { exitCode: 3, code: 'TOOL_FAILED' } });
    expect(res[4]).toMatchObject({ success: false, metadata: { code: 'TOOL_FAILED', exitCode: 127 } });
    expect(res[4]!.output).toMatch(/surely-not-a-command-xyz.*not found/);
    expect(res[5]).toMatchObject({ success: true, output: '1\n' }); // the image's PATH, not the helper's
    for (const r of res) expect(r.output + r.error).not.toMatch(INTERNALS);
  });

  it('runs a command too long for one argument (40 000 two-byte characters, whatever the locale)', async () => {
    const out = await sh(`printf '%s' '${'é'.repeat(40_000)}' | wc -c`);
    expect(out.trim()).toBe('80000');
  });

  it('keeps bash_stateful state (cd, variables, functions), in bash when the image has it, else in sh and says so', async () => {
    const res = await run(
      ['bash_stateful', { command: 'mkdir -p deep/er && cd deep/er && export GREETING=hi && f() { echo "f:$1"; }' }],
      ['bash_stateful', { command: 'pwd; echo "$GREETING"; f x' }],
      ['bash', { command: 'pwd; echo "[$GREETING]"' }],
      ['terminal_stateful', { command: 'no-such-thing-here' }],
    );
    expect(res.map((r) => r.success)).toEqual([true, true, true, false]);
    expect(res[1]!.output).toBe('/workspace/deep/er\nhi\nf:x\n');
    expect(res[2]!.output).toBe('/workspace\n[]\n');
    expect(res[3]!.output).toMatch(/no-such-thing-here.*not found/);
    expect(res[3]!.output).not.toMatch(INTERNALS);
    expect(res[1]!.metadata['shell']).toBe(bash ? undefined : 'sh');
  });

  it('kills a timed-out call with its background children, and the slot stays usable', async () => {
    const [t, stateful, after] = await run(
      ['bash', { command: 'sleep 101 & sleep 102; echo never', timeout: 1 }],
      ['bash_stateful', { command: 'sleep 103 & sleep 104', timeout: 1 }],
      ['bash', { command: 'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " " | grep -c "sleep 10[1-4]" || true' }],
    );
    expect(t).toMatchObject({ success: false, metadata: { code: 'TIMEOUT', timedOut: true, exitCode: -1 } });
    expect(stateful).toMatchObject({ success: false, metadata: { code: 'TIMEOUT', timedOut: true } });
    expect(after).toMatchObject({ success: true, output: '0\n' });
  });

  it('refuses every way out of /workspace with PATH_OUTSIDE_WORKSPACE, in the tools and the helpers', async () => {
    await sh('ln -sf /etc/passwd pw-link; ln -sfn /etc etc-link; ln -sf /nonexistent/x dangling-out');
    for (const path of ['../etc/passwd', '/etc/passwd', 'pw-link', 'etc-link/passwd', 'dangling-out', 'a/../../etc/x']) {
      const [read, write] = await run(['read_file', { path }], ['write_file', { path, content: 'PWNED' }]);
      expect([read!.metadata.code, write!.metadata.code], path).toEqual(['PATH_OUTSIDE_WORKSPACE', 'PATH_OUTSIDE_WORKSPACE']);
      const art = await Promise.all([b.readArtifact(s, path), b.listArtifacts(s, path), b.archiveArtifacts(s, path)]);
      expect(art.map((a) => (a.success ? 'ok' : a.code)), path).toEqual(['PATH_OUTSIDE_WORKSPACE', 'PATH_OUTSIDE_WORKSPACE', 'PATH_OUTSIDE_WORKSPACE']);
    }
    const [missing] = await run(['read_file', { path: 'nope/never.txt' }]);
    expect(missing!.metadata.code).toBe('NOT_FOUND');
  });

  it('reads, lists and archives artifacts with the whole-file sha256 and the limits', async () => {
    const body = 'x'.repeat(5000) + '\nend\n';
    await run(['write_file', { path: 'art/a.txt', content: body }], ['write_file', { path: 'art/sub/b.txt', content: 'bee\n' }]);
    const read = await b.readArtifact(s, 'art/a.txt', { includeSha256: true, maxBytes: 100 });
    expect(read).toMatchObject({ success: true, bytes: 100, fileSize: body.length, truncated: true, path: 'art/a.txt', sha256: sha256(body), mime: 'text/plain' });
    const list = await b.listArtifacts(s, 'art', { recursive: true });
    expect(list.success && list.entries.map((e) => [e.path, e.isDir, e.size])).toEqual([
      ['art/a.txt', false, body.length],
      ['art/sub', true, expect.any(Number)],
      ['art/sub/b.txt', false, 4],
    ]);
    expect(list).toMatchObject({ truncated: false });
    expect(await b.listArtifacts(s, 'art', { recursive: true, maxEntries: 2 })).toMatchObject({ success: true, truncated: true });
    const arc = await b.archiveArtifacts(s, 'art');
    expect(arc).toMatchObject({ success: true, entryCount: 2, truncated: false, format: 'tar.gz' });
    if (!arc.success) throw new Error(arc.error);
    expect([...(await untar(arc.content)).entries()].sort()).toEqual([['a.txt', body], ['sub/b.txt', 'bee\n']]);
    expect(await b.archiveArtifacts(s, 'art', { maxBytes: 10 })).toMatchObject({ success: false, code: 'TOO_LARGE' });
  });

  it(`offers tmux only where the image has it${tmux ? '' : ' (a typed result says it is missing)'}`, async () => {
    const [start, keys, screen, stream, stop] = await run(
      ['tmux', { action: 'start' }],
      ['tmux', { action: 'send_keys', keys: 'echo tmux-$((6 * 7))', block: true, max_wait_s: 20 }],
      ['tmux', { action: 'capture' }],
      ['tmux', { action: 'stream' }],
      ['tmux', { action: 'stop' }],
    );
    if (!tmux) {
      for (const r of [start, keys, screen, stream, stop]) expect(r).toMatchObject({ success: false, metadata: { code: 'UNKNOWN_TOOL', cause: 'no_tmux_in_image' } });
      return;
    }
    expect([start, keys, screen, stream, stop].map((r) => r!.success)).toEqual([true, true, true, true, true]);
    expect(start!.output).toBe('started');
    expect(keys).toMatchObject({ output: 'ok', metadata: { blocked: true } });
    expect(screen!.output).toContain('tmux-42');
    expect(stream!.output).toContain('tmux-42');
    expect(stop!.output).toBe('stopped');
  });

  it('hands the next holder a pristine slot after release with reset: no file, no process', async () => {
    await sh('echo secret > /workspace/left.txt; echo x > /tmp/left.txt; echo y > "$HOME/left.txt"; (sleep 300 &) ; true');
    await b.release(s, { resetWorkspace: true });
    s = await b.acquire('traj-images-2');
    const out = await sh('find /workspace -mindepth 1; ls /tmp/left.txt "$HOME/left.txt" 2>/dev/null; cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " " | grep -c "slee[p] 300" || true');
    expect(out).toBe('0\n');
  });
}
