import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import { harness, type Harness } from '../support/harness.js';
import { helperBundle } from '../../src/worker/executor/helper-bundle.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const marker = (bytes: number): string => `\n... [output truncated: ${bytes} bytes omitted] ...\n`;

/** One call, one result. */
const call = async (b: SlotBackend, s: Slot, tool: string, args: Record<string, unknown>): Promise<ExecutionResult> => (await b.executeBatch([[s, tool, args]]))[0]!;

/** A worker with `slots` slots, a backend, and `slots` held slots. */
const setup = async (slots = 1): Promise<{ b: SlotBackend; s: Slot[] }> => {
  h = harness();
  await h.worker({ slots });
  const b = await h.backend();
  const s: Slot[] = [];
  for (let i = 0; i < slots; i++) s.push(await b.acquire(`traj-${i}`));
  return { b, s };
};

describe('the executor: output bounds, binary data, session recovery, timeouts, state, files', () => {
  it('bounds a 300 MB output: head and tail with an exact marker', async () => {
    // The worker's memory while it streams this is measured by the bench (bigOutput in npm run bench).
    const { b, s } = await setup(1);
    const slot = s[0]!;
    const r = await call(b, slot, 'bash', { command: "head -c 300000000 /dev/zero | tr '\\0' a", timeout: 300 });
    expect(r.success, r.error).toBe(true);
    expect(r.metadata).toMatchObject({ exitCode: 0, truncated: true });
    expect(r.output).toBe(`${'a'.repeat(25_000)}${marker(300_000_000 - 50_000)}${'a'.repeat(25_000)}`);
    expect(r.output.length).toBeLessThanOrEqual(50_000 + 100);
    // The session is still in step afterwards.
    expect(await call(b, slot, 'bash', { command: 'echo next' })).toMatchObject({ success: true, output: 'next\n' });
  });

  it('keeps stdout and stderr apart, each capped on its own', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    const inter = await call(b, slot, 'bash', { command: 'for i in 1 2 3; do echo out$i; echo err$i >&2; done' });
    expect(inter).toMatchObject({ success: true, output: 'out1\nout2\nout3\n\n[stderr]\nerr1\nerr2\nerr3\n' });
    const onlyErr = await call(b, slot, 'bash', { command: 'echo only-err >&2' });
    expect(onlyErr).toMatchObject({ success: true, output: 'only-err\n' });
    const big = await call(b, slot, 'bash', { command: "head -c 300000 /dev/zero | tr '\\0' o; head -c 250000 /dev/zero | tr '\\0' e >&2" });
    expect(big.success, big.error).toBe(true);
    expect(big.metadata.truncated).toBe(true);
    expect(big.output).toBe(
      `${'o'.repeat(25_000)}${marker(250_000)}${'o'.repeat(25_000)}\n[stderr]\n${'e'.repeat(25_000)}${marker(200_000)}${'e'.repeat(25_000)}`,
    );
    const small = await call(b, slot, 'bash', { command: "head -c 300000 /dev/zero | tr '\\0' o; echo tiny >&2" });
    expect(small.output).toBe(`${'o'.repeat(25_000)}${marker(250_000)}${'o'.repeat(25_000)}\n[stderr]\ntiny\n`);
  });

  it('carries binary output intact through base64, and raw binary as text with U+FFFD without breaking the session', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    const make = await call(b, slot, 'bash', {
      command: `python3 -c "import os; open('bin.dat','wb').write(bytes(range(256))*40 + os.urandom(20000))" && sha256sum bin.dat`,
    });
    expect(make.success, make.error).toBe(true);
    const containerSha = make.output.split(' ')[0]!;
    expect(containerSha).toMatch(/^[0-9a-f]{64}$/);

    const b64 = await call(b, slot, 'bash', { command: 'base64 bin.dat' });
    expect(b64.success, b64.error).toBe(true);
    expect(b64.metadata.truncated).toBeUndefined();
    const bytes = Buffer.from(b64.output.replace(/\s+/g, ''), 'base64');
    expect(bytes.length).toBe(256 * 40 + 20_000);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(containerSha);

    const raw = await call(b, slot, 'bash', { command: 'cat bin.dat' });
    expect(raw.success, raw.error).toBe(true);
    expect(typeof raw.output).toBe('string');
    expect(raw.output).toContain('\uFFFD');
    expect(raw.output.startsWith('\x00\x01\x02\x03')).toBe(true);

    const exact = await call(b, slot, 'bash', { command: "printf '\\377\\376ok\\000end'" });
    expect(exact.output).toBe('\uFFFD\uFFFDok\x00end');

    const both = await call(b, slot, 'bash', { command: 'cat bin.dat; echo done >&2' });
    expect(both.output.endsWith('\n[stderr]\ndone\n')).toBe(true);
    const errBin = await call(b, slot, 'bash', { command: 'echo out; head -c 512 bin.dat >&2' });
    expect(errBin.output.startsWith('out\n\n[stderr]\n\x00\x01\x02')).toBe(true);

    expect(await call(b, slot, 'bash', { command: 'echo still in step' })).toMatchObject({ success: true, output: 'still in step\n' });
  });

  it('recovers when a stateless call kills the executor session', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    const r = await call(b, slot, 'bash', { command: 'kill -9 $PPID; sleep 5', timeout: 60 });
    expect(r.success).toBe(false);
    expect(r.metadata.code, 'a dead session fails the call at once, not at its 60 s timeout').not.toBe('TIMEOUT');
    // Whatever a command does inside its slot is scored, never masked (contract §3).
    expect(r.metadata).toMatchObject({ code: 'TOOL_FAILED', retryable: false, cause: 'killed_executor_session' });
    expect(r.error).toMatch(/session/i);
    expect(await call(b, slot, 'bash', { command: 'echo again; pwd' })).toMatchObject({ success: true, output: 'again\n/workspace\n' });
    expect(await call(b, slot, 'bash_stateful', { command: 'echo stateful again' })).toMatchObject({ success: true, output: 'stateful again\n' });
  });

  it('recovers when a bash_stateful call exits its shell: the next call gets a fresh shell', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    expect(await call(b, slot, 'bash_stateful', { command: 'cd /tmp; export FOO=1' })).toMatchObject({ success: true });
    const r = await call(b, slot, 'bash_stateful', { command: 'echo bye; exit 3', timeout: 60 });
    expect(r.success).toBe(false);
    expect(r.output).toBe('bye\n');
    expect(r.metadata.code).toBe('TOOL_FAILED');
    expect.soft(r.metadata.exitCode, 'the exit status the shell exited with').toBe(3);
    const next = await call(b, slot, 'bash_stateful', { command: 'pwd; echo ${FOO:-unset}' });
    expect(next).toMatchObject({ success: true, output: '/workspace\nunset\n' });
    // And the fresh shell keeps state again.
    await call(b, slot, 'bash_stateful', { command: 'cd /tmp' });
    expect(await call(b, slot, 'bash_stateful', { command: 'pwd' })).toMatchObject({ success: true, output: '/tmp\n' });
    // Again and again: each exit is noticed, and the next call always finds a working shell.
    for (let i = 0; i < 5; i++) {
      const ex = await call(b, slot, 'bash_stateful', { command: `cd /tmp; Z=${i}; exit 0`, timeout: 20 });
      expect(ex.output, `round ${i}`).toBe('');
      expect(await call(b, slot, 'bash_stateful', { command: 'pwd; echo ${Z:-unset}' }), `round ${i}`).toMatchObject({ success: true, output: '/workspace\nunset\n' });
    }
  });

  it('recovers when a bash_stateful call kills its own shell with SIGKILL', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    expect(await call(b, slot, 'bash_stateful', { command: 'cd /tmp; X=1' })).toMatchObject({ success: true });
    const r = await call(b, slot, 'bash_stateful', { command: 'echo before; kill -9 $$', timeout: 20 });
    expect(r.success).toBe(false);
    expect(r.error).not.toBe('');
    expect(r.output).toBe('before\n');
    // A shell that died is a failed call at once, not a hang until the call's 20 s timeout.
    expect(r.metadata.code, r.error).not.toBe('TIMEOUT');
    const next = await call(b, slot, 'bash_stateful', { command: 'pwd; echo ${X:-unset}' });
    expect(next).toMatchObject({ success: true, output: '/workspace\nunset\n' });
    expect(await call(b, slot, 'bash', { command: 'echo stateless ok' })).toMatchObject({ success: true, output: 'stateless ok\n' });
  });

  it('times out a call with background children, stateless and stateful, kills them all, and the slot stays usable', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    for (const tool of ['bash', 'bash_stateful']) {
      const r = await call(b, slot, tool, { command: 'echo started; sleep 100 & sleep 100', timeout: 1 });
      expect(r.success, tool).toBe(false);
      expect(r.metadata, tool).toMatchObject({ code: 'TIMEOUT', timedOut: true, exitCode: -1, retryable: false });
      expect(r.output, tool).toBe('started\n');
      expect(r.error, tool).toMatch(/timed out after 1s/);
      expect(await call(b, slot, tool, { command: 'echo after' }), tool).toMatchObject({ success: true, output: 'after\n' });
      const ps = await call(b, slot, 'bash', { command: 'ps -eo args' });
      expect(ps.success).toBe(true);
      expect(ps.output, tool).not.toContain('sleep 100');
    }
    // The stateful shell that replaced the killed one keeps state.
    await call(b, slot, 'bash_stateful', { command: 'cd /tmp; Y=2' });
    expect(await call(b, slot, 'bash_stateful', { command: 'pwd; echo $Y' })).toMatchObject({ success: true, output: '/tmp\n2\n' });
  });

  it('keeps bash_stateful state apart from stateless bash calls', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    const res = await b.executeBatch([
      [slot, 'bash_stateful', { command: 'cd /tmp; export FOO=1; f(){ echo fn; }' }],
      [slot, 'bash_stateful', { command: 'pwd; echo $FOO; f' }],
      [slot, 'bash', { command: 'pwd; echo ${FOO:-unset}; type f >/dev/null 2>&1 && echo has-f || echo no-f' }],
      [slot, 'bash', { command: 'cd /; export FOO=stateless' }],
      [slot, 'bash_stateful', { command: 'pwd; echo $FOO; f' }],
      [slot, 'terminal_stateful', { command: 'BAR=2; cd sub 2>/dev/null || mkdir -p /tmp/sub && cd /tmp/sub' }],
      [slot, 'terminal', { command: 'pwd; echo ${BAR:-unset}' }],
      [slot, 'bash_stateful', { command: 'pwd; echo $FOO $BAR' }],
    ]);
    expect(res.map((r) => (r.success ? [true, r.output] : [false, r.output, r.error, r.metadata.code]))).toEqual([
      [true, ''],
      [true, '/tmp\n1\nfn\n'],
      [true, '/workspace\nunset\nno-f\n'],
      [true, ''],
      [true, '/tmp\n1\nfn\n'],
      [true, ''],
      [true, '/workspace\nunset\n'],
      [true, '/tmp/sub\n1 2\n'],
    ]);
    expect(res[1]!.metadata.stateful).toBe(true);
    expect(res[2]!.metadata.stateful).toBeUndefined();
  });

  it('never mixes the output of concurrent calls on different slots', async () => {
    const { b, s } = await setup(4);
    const n = 40;
    const lines = 2000;
    const requests = Array.from({ length: n }, (_, k) => {
      const slot = s[k % 4]!;
      return [slot, 'bash', { command: `for i in $(seq ${lines}); do echo tok-${k % 4}-${k}; done` }] as const;
    });
    const res = await b.executeBatch(requests);
    expect(res).toHaveLength(n);
    res.forEach((r, k) => {
      expect(r.success, `call ${k}: ${r.error}`).toBe(true);
      expect(r.slotId).toBe(s[k % 4]!.slotId);
      expect(r.output === `tok-${k % 4}-${k}\n`.repeat(lines), `call ${k} got foreign or missing lines`).toBe(true);
    });
  });

  it('round-trips write_file/read_file with unicode and nested dirs, and reports NOT_FOUND and INVALID_ARGS', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    const content = 'héllo wörld 🚀\n日本語\ttab\n"quotes" \'single\' $HOME `id` \\ backslash\n\nno final newline';
    const w = await call(b, slot, 'write_file', { path: 'a/b/c/ünï cødé.txt', content });
    expect(w.success, w.error).toBe(true);
    expect(w.metadata.size).toBe(Buffer.byteLength(content));
    const r = await call(b, slot, 'read_file', { path: 'a/b/c/ünï cødé.txt' });
    expect(r).toMatchObject({ success: true, output: content });
    expect(r.metadata.size).toBe(Buffer.byteLength(content));
    // Absolute paths inside the workspace work too, and the file is really there for bash.
    expect(await call(b, slot, 'read_file', { path: '/workspace/a/b/c/ünï cødé.txt' })).toMatchObject({ success: true, output: content });
    expect(await call(b, slot, 'bash', { command: "sha256sum < 'a/b/c/ünï cødé.txt' | cut -d' ' -f1" })).toMatchObject({
      output: `${createHash('sha256').update(content).digest('hex')}\n`,
    });
    // Overwrite, and an empty file.
    await call(b, slot, 'write_file', { path: 'a/b/c/ünï cødé.txt', content: 'short' });
    expect((await call(b, slot, 'read_file', { path: 'a/b/c/ünï cødé.txt' })).output).toBe('short');
    expect(await call(b, slot, 'write_file', { path: 'empty', content: '' })).toMatchObject({ success: true });
    expect(await call(b, slot, 'read_file', { path: 'empty' })).toMatchObject({ success: true, output: '' });
    // Invalid UTF-8 in a file is replaced.
    await call(b, slot, 'bash', { command: "printf 'a\\377b' > bad.txt" });
    expect((await call(b, slot, 'read_file', { path: 'bad.txt' })).output).toBe('a\uFFFDb');

    const missing = await call(b, slot, 'read_file', { path: 'nope/missing.txt' });
    expect(missing).toMatchObject({ success: false });
    expect(missing.metadata).toMatchObject({ code: 'NOT_FOUND', retryable: false });
    expect(missing.error).toContain('nope/missing.txt');
    const dir = await call(b, slot, 'read_file', { path: 'a/b' });
    expect(dir.metadata.code).toBe('INVALID_ARGS');
    expect(dir.error).not.toBe('');
  });

  it('refuses paths that resolve outside /workspace, symlinks included', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    expect(await call(b, slot, 'bash', { command: 'ln -s /etc escape && ln -s /nonexistent/dir dangling && ln -s a/.. inside && mkdir -p a' })).toMatchObject({
      success: true,
    });
    const cases: Array<[string, Record<string, unknown>]> = [
      ['read_file', { path: '../x' }],
      ['write_file', { path: '../x', content: 'x' }],
      ['read_file', { path: '/etc/passwd' }],
      ['write_file', { path: '/etc/passwd', content: 'x' }],
      ['read_file', { path: '../../etc/passwd' }],
      ['read_file', { path: 'a/../../etc/passwd' }],
      ['read_file', { path: 'escape/passwd' }],
      ['write_file', { path: 'escape/x', content: 'x' }],
      ['write_file', { path: 'dangling/x', content: 'x' }],
      ['read_file', { path: 'dangling/x' }],
      ['read_file', { path: 'dangling' }],
      ['write_file', { path: '/tmp/x', content: 'x' }],
      ['read_file', { path: '/workspace/../etc/passwd' }],
    ];
    const res = await b.executeBatch(cases.map(([tool, args]) => [slot, tool, args] as const));
    const got = res.map((r, i) => `${JSON.stringify(cases[i])} -> ${r.success ? 'success' : r.metadata.code}`);
    expect(got).toEqual(cases.map((c) => `${JSON.stringify(c)} -> PATH_OUTSIDE_WORKSPACE`));
    for (const r of res) expect(r.error).toMatch(/outside \/workspace/);
    // Nothing was written outside.
    expect(await call(b, slot, 'bash', { command: 'ls /x /tmp/x /etc/x 2>/dev/null | wc -l' })).toMatchObject({ output: '0\n' });
    // A symlink that stays inside the workspace is fine.
    expect(await call(b, slot, 'write_file', { path: 'inside/via-link.txt', content: 'ok' })).toMatchObject({ success: true });
    expect(await call(b, slot, 'read_file', { path: 'via-link.txt' })).toMatchObject({ success: true, output: 'ok' });
  });

  it('enforces the 100 000 limits: read_file by bytes, write_file by characters', async () => {
    const { b, s } = await setup(1);
    const slot = s[0]!;
    await call(b, slot, 'bash', { command: "head -c 100001 /dev/zero | tr '\\0' x > big; head -c 100000 /dev/zero | tr '\\0' y > edge" });
    const big = await call(b, slot, 'read_file', { path: 'big' });
    expect(big.success).toBe(false);
    expect(big.metadata).toMatchObject({ code: 'TOO_LARGE', size: 100_001 });
    const edge = await call(b, slot, 'read_file', { path: 'edge' });
    expect(edge.success, edge.error).toBe(true);
    expect(edge.output).toBe('y'.repeat(100_000));

    const tooBig = await call(b, slot, 'write_file', { path: 'w1', content: 'z'.repeat(100_001) });
    expect(tooBig.success).toBe(false);
    expect(tooBig.metadata.code).toBe('TOO_LARGE');
    expect(await call(b, slot, 'bash', { command: 'test -e w1 && echo exists || echo absent' })).toMatchObject({ output: 'absent\n' });
    const atLimit = await call(b, slot, 'write_file', { path: 'w2', content: 'z'.repeat(100_000) });
    expect(atLimit.success, atLimit.error).toBe(true);
    expect(await call(b, slot, 'bash', { command: 'wc -c < w2' })).toMatchObject({ output: '100000\n' });
  });
  it('starts and uses the stateful shell reliably right after calls that leave killed children behind', async () => {
    const { b, s: [s] } = await setup(1);
    for (let round = 0; round < 15; round++) {
      const res = await b.executeBatch([
        [s!, 'bash', { command: 'sleep 30 & sleep 30 & echo spawned' }],
        [s!, 'bash_stateful', { command: `N=${round}; echo "$N"` }],
        [s!, 'bash_stateful', { command: 'echo "again $N"; exit 0' }], // the next round starts a new shell
      ]);
      expect(res.map((r) => r.output)).toEqual(['spawned\n', `${round}\n`, `again ${round}\n`]);
    }
  });

  // executor-no-launcher.test.ts runs this file again with SLOTQ_HELPER_SPAWN=off.
  const launcher = process.env['SLOTQ_HELPER_SPAWN'] !== 'off';
  it(launcher ? 'starts each command from its launcher (one vfork and exec), with no signal left ignored, as the slot user' : 'starts each command from the shell when there is no launcher', async () => {
    // Built from native/slotq-spawn.c on this machine; without it calls work but cost more.
    expect((await helperBundle()).noSpawn).toBe(launcher ? undefined : 'SLOTQ_HELPER_SPAWN=off');
    const { b, s } = await setup(2);
    const r = await call(b, s[0]!, 'bash', { command: 'tr "\\0" " " < /proc/$PPID/cmdline; echo; id -u; grep SigIgn /proc/$$/status' });
    expect(r.success, r.error).toBe(true);
    // (Without the launcher, the shell starts commands as background jobs: SIGINT and SIGQUIT ignored.)
    expect(r.output).toMatch(launcher ? /^\/\.slotq\/bin\/slotq-spawn .*\n1000\nSigIgn:\s+0+\n$/ : /^\/\.slotq\/bin\/sh -c [^]*\n1000\nSigIgn:\s+0+6\n$/);
    // No process of the slot shows a call's nonce in its argv or environment: printing them all (the first
    // call of a session, when the launcher takes over, and a later one) ends each call normally.
    const dump = 'for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do tr "\\0" " " < $f; echo; done 2>/dev/null; echo done';
    const first = await call(b, s[1]!, 'bash', { command: dump });
    const later = await call(b, s[0]!, 'bash', { command: dump });
    for (const d of [first, later]) expect([d.success, d.output.endsWith('done\n')], d.error).toEqual([true, true]);
    // A command that kills what started it ends its session (scored), and takes its own process group along.
    const killer = await call(b, s[0]!, 'bash', { command: 'kill -9 $PPID; sleep 1; echo late > /workspace/late' });
    expect(killer.metadata).toMatchObject({ code: 'TOOL_FAILED', retryable: false, cause: 'killed_executor_session' });
    expect(await call(b, s[0]!, 'bash', { command: 'sleep 2; ls /workspace' })).toMatchObject({ success: true, output: '' });
  });
});
