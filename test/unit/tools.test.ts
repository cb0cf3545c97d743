import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { ExecutionResult, JobItem } from '../../src/shared/calls/schemas.js';
import { encodeCommand, shellQuote, statefulStatement } from '../../src/worker/executor/executor-protocol.js';
import { MAX_TIMEOUT_S, MIN_TIMEOUT_S, clampTimeoutS } from '../../src/shared/calls/schemas.js';
import { parseCall } from '../../src/worker/tools/tools.js';

// /bin/sh here is dash, like the sandbox image's.
const SH = '/bin/sh';

const item = (tool: string, args: Record<string, unknown>): JobItem => ({
  index: 0,
  executionId: 'exec-1',
  slotId: 'slot-1',
  leaseId: 'lease-1',
  tool,
  args,
  timeoutS: 30,
});

const asFailure = (p: ReturnType<typeof parseCall>): ExecutionResult => {
  if (!('success' in p)) throw new Error(`expected a failure, got ${JSON.stringify(p)}`);
  return p;
};

const NASTY = [
  '',
  'plain',
  "it's",
  "''",
  "'",
  'a"b"c',
  'line1\nline2\n',
  '\n',
  'trailing newline\n',
  '$HOME ${HOME} $(id) `id` $1 $@ $$',
  'back\\slash \\n \\t \\\\ \\0101 \\c tail',
  'tab\there',
  'glob * ? [a-z]',
  '-n',
  '-e',
  '%s %d %% %b',
  '; rm -rf / #',
  '&& || | > < >> <<EOF',
  'héllo wörld 🚀 日本語',
  '\r\ncarriage',
  "mix 'of' \"all\" $x `y` \\z\n!",
];

describe('parseCall', () => {
  it('returns an UNKNOWN_TOOL failure naming the tool and the known ones', () => {
    const r = asFailure(parseCall(item('rm_rf', {})));
    expect(r).toMatchObject({ success: false, output: '', executionId: 'exec-1', slotId: 'slot-1' });
    expect(r.metadata).toMatchObject({ code: 'UNKNOWN_TOOL', retryable: false });
    expect(r.error).toContain('rm_rf');
    expect(r.error).toContain('bash');
    expect(r.error).toContain('write_file');
  });

  it.each([
    ['bash', { command: 42 }, 'command'],
    ['bash', {}, 'command'],
    ['bash', { command: '' }, 'command'],
    ['bash', { command: 'echo\0x' }, 'command'],
    ['bash', { command: 'true', timeout: Number.NaN }, 'timeout'],
    ['bash', { command: 'true', timeout: '5' }, 'timeout'],
    ['bash_stateful', { command: null }, 'command'],
    ['read_file', {}, 'path'],
    ['read_file', { path: '' }, 'path'],
    ['read_file', { path: 'a\0b' }, 'path'],
    ['write_file', { path: 'a.txt' }, 'content'],
    ['write_file', { path: 7, content: 'x' }, 'path'],
    ['write_file', { path: 'a.txt', content: 1 }, 'content'],
  ])('gives INVALID_ARGS naming the field for %s %j', (tool, args, field) => {
    const r = asFailure(parseCall(item(tool, args)));
    expect(r.success).toBe(false);
    expect(r.metadata).toMatchObject({ code: 'INVALID_ARGS', retryable: false });
    expect(r.error).toContain(field);
    expect(r.error).toContain(tool);
  });

  it('accepts valid calls and returns the parsed arguments', () => {
    expect(parseCall(item('bash', { command: 'ls', timeout: 5 }))).toEqual({ tool: 'bash', args: { command: 'ls', timeout: 5 } });
    expect(parseCall(item('bash_stateful', { command: 'pwd' }))).toEqual({ tool: 'bash_stateful', args: { command: 'pwd' } });
    expect(parseCall(item('read_file', { path: 'a/b.txt' }))).toEqual({ tool: 'read_file', args: { path: 'a/b.txt' } });
    expect(parseCall(item('write_file', { path: 'a', content: '' }))).toEqual({ tool: 'write_file', args: { path: 'a', content: '' } });
  });

  it('maps the aliases terminal → bash and terminal_stateful → bash_stateful', () => {
    expect(parseCall(item('terminal', { command: 'echo hi' }))).toEqual({ tool: 'bash', args: { command: 'echo hi' } });
    expect(parseCall(item('terminal_stateful', { command: 'cd /' }))).toEqual({ tool: 'bash_stateful', args: { command: 'cd /' } });
  });

  it('validates an aliased call against the real tool and names it', () => {
    const r = asFailure(parseCall(item('terminal', { command: 3 })));
    expect(r.metadata.code).toBe('INVALID_ARGS');
    expect(r.error).toContain('command');
  });
});

describe('clampTimeoutS', () => {
  it('clamps to 1..3600 and leaves values in range alone', () => {
    expect([MIN_TIMEOUT_S, MAX_TIMEOUT_S]).toEqual([1, 3600]);
    expect(clampTimeoutS(0)).toBe(1);
    expect(clampTimeoutS(0.2)).toBe(1);
    expect(clampTimeoutS(-5)).toBe(1);
    expect(clampTimeoutS(1)).toBe(1);
    expect(clampTimeoutS(2.5)).toBe(2.5);
    expect(clampTimeoutS(30)).toBe(30);
    expect(clampTimeoutS(3600)).toBe(3600);
    expect(clampTimeoutS(3601)).toBe(3600);
    expect(clampTimeoutS(Number.MAX_SAFE_INTEGER)).toBe(3600);
    expect(clampTimeoutS(Infinity)).toBe(3600);
  });
});

describe('shellQuote', () => {
  it.each(NASTY.map((s) => [JSON.stringify(s), s]))('round-trips %s through sh -c printf %%s', (_label, s) => {
    const out = execFileSync(SH, ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' });
    expect(out).toBe(s);
  });

  it('yields exactly one word, even next to other words', () => {
    const out = execFileSync(SH, ['-c', `for a in x ${shellQuote('a b  c')} ${shellQuote('')} y; do printf '<%s>' "$a"; done`], { encoding: 'utf8' });
    expect(out).toBe('<x><a b  c><><y>');
  });
});

describe('encodeCommand', () => {
  // The supervisor runs in slotq's helper shell, a static busybox ash (Debian's busybox-static on the worker).
  const BUSYBOX = '/bin/busybox';

  it('produces a single line', () => {
    for (const s of NASTY) expect(encodeCommand(s)).not.toContain('\n');
  });

  it('round-trips every command through the supervisor\'s own read + eval, one line each', () => {
    // The supervisor reads the encoded command with `IFS= read -r enc` and decodes it with `eval "c=$enc"`.
    const script = 'while IFS= read -r enc; do eval "c=$enc"; printf "%s\\036" "$c"; done';
    const input = NASTY.map((s) => `${encodeCommand(s)}\n`).join('');
    const out = execFileSync(BUSYBOX, ['sh', '-c', script], { input, encoding: 'utf8' });
    expect(out.split('\x1e').slice(0, -1)).toEqual(NASTY);
  });

  it('runs the decoded command as written, in sh -c and as a stateful eval', () => {
    const cmd = [String.raw`x='a b'; printf '%s|' "$x" "it's" "$(printf 'l1\nl2')" 'back\slash' "\$HOME"`, 'f() { echo "in f: $1"; }', "f 'two words'"].join('\n');
    const viaC = execFileSync(BUSYBOX, ['sh', '-c', 'IFS= read -r enc; eval "c=$enc"; sh -c "$c" sh'], { input: `${encodeCommand(cmd)}\n`, encoding: 'utf8' });
    expect(viaC).toBe(execFileSync(SH, ['-c', cmd], { encoding: 'utf8' }));
    const viaEval = execFileSync(SH, ['-s'], { input: `${statefulStatement(cmd)}\n`, encoding: 'utf8' });
    expect(viaEval).toBe(viaC);
  });
});
