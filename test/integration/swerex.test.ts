import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type GatewayHandle } from '../../src/gateway/gateway.js';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { harness, type Harness, redisUrl } from '../support/harness.js';

/**
 * SWE-ReX wire compatibility (docs/swerex.md): the requests SWE-ReX's RemoteRuntime sends, with plain fetch, and the
 * checks of SWE-ReX's tests/test_execution.py. Exceptions come back as HTTP 511 {swerexception: {class_path, message}}.
 */
const TOKEN = 'swerex-test-token-0123456789';
let h: Harness;
let gw: GatewayHandle;
let base: string;
let work: string;

beforeAll(async () => {
  h = harness();
  await h.worker({ image: 'slotq-test-root:latest', slots: 1 });
  const config = loadConfig({ redisUrl: redisUrl(), prefix: h.prefix, gatewayPort: 0, logLevel: 'silent' });
  gw = await startGateway({ config, logger: createLogger({ level: 'silent' }), token: TOKEN });
  base = `${gw.url}/swerex/traj-1`;
  work = mkdtempSync(join(tmpdir(), 'slotq-swerex-'));
}, 120_000);
afterAll(async () => {
  await gw.close();
  await h.close();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

const headers = { 'X-API-Key': TOKEN };
/** RemoteRuntime._request: POST json=payload.model_dump() (or no body), X-API-Key, X-Request-ID. */
async function call(route: string, body?: unknown): Promise<{ status: number; data: Record<string, unknown> }> {
  const init: RequestInit = { method: 'POST', headers: { ...headers, 'X-Request-ID': crypto.randomUUID(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(`${base}/${route}`, init);
  return { status: res.status, data: (await res.json()) as Record<string, unknown> };
}
async function ok(route: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await call(route, body);
  expect(r.status, JSON.stringify(r.data)).toBe(200);
  return r.data;
}
async function raises(route: string, body: unknown, classPath: string): Promise<string> {
  const r = await call(route, body);
  expect(r.status, JSON.stringify(r.data)).toBe(511);
  const exc = r.data['swerexception'] as { class_path: string; message: string; traceback: string; extra_info: Record<string, unknown> };
  expect(exc.class_path).toBe(classPath);
  expect(typeof exc.traceback).toBe('string');
  return exc.message;
}
// Their models' full dumps, as model_dump() sends them.
const A = (command: string, more: Record<string, unknown> = {}) => ({ command, session: 'default', timeout: null, is_interactive_command: false, is_interactive_quit: false, check: 'raise', error_msg: '', expect: [], action_type: 'bash', ...more });
const C = (command: string | string[], more: Record<string, unknown> = {}) => ({ command, timeout: null, shell: false, check: false, error_msg: '', env: null, cwd: null, merge_output_streams: false, ...more });

describe('SWE-ReX remote runtime wire', () => {
  it('is_alive without a slot; a wrong X-API-Key is 401 {detail}', async () => {
    const alive = await fetch(`${base}/is_alive`, { headers });
    expect(await alive.json()).toEqual({ is_alive: true, message: '' });
    const wrong = await fetch(`${base}/is_alive`, { headers: { 'X-API-Key': 'nope' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toEqual({ detail: 'Invalid API Key' });
  });

  it('execute: echo, argv, empty output, merged streams, check, timeout', async () => {
    expect((await ok('execute', C("echo 'hello world'", { shell: true }))).stdout).toBe('hello world\n');
    expect((await ok('execute', C(['echo', '-n', '\nhello world']))).stdout).toBe('\nhello world');
    expect((await ok('execute', C("echo ''", { shell: true }))).stdout).toBe('\n');
    const merged = await ok('execute', C(['bash', '-lc', "echo 'out'; echo 'err' 1>&2"], { merge_output_streams: true }));
    expect(merged['stderr']).toBe('');
    expect(String(merged['stdout']).split('\n').filter(Boolean)).toEqual(['out', 'err']);
    const apart = await ok('execute', C(['bash', '-lc', 'echo out; echo err 1>&2']));
    expect([String(apart['stdout']).trim(), String(apart['stderr']).trim()]).toEqual(['out', 'err']);
    expect((await ok('execute', C('exit 3', { shell: true })))['exit_code']).toBe(3);
    expect(await raises('execute', C('exit 3', { shell: true, check: true, error_msg: 'boom' }), 'swerex.exceptions.NonZeroExitCodeError')).toMatch(/^boom: .*exit code 3/);
    await ok('execute', C('', { shell: true, check: true }));
    await raises('execute', C(['sleep', '10'], { timeout: 1 }), 'swerex.exceptions.CommandTimeoutError');
    expect((await ok('execute', C('pwd; echo $X', { shell: true, cwd: '/tmp', env: { X: 'y' } })))['stdout']).toBe('/tmp\ny\n');
  }, 60_000);

  it('a named bash session keeps cwd, variables and functions; exit codes; check=raise', async () => {
    expect(await ok('create_session', { startup_source: [], session: 'default', session_type: 'bash', startup_timeout: 1.0 })).toMatchObject({ session_type: 'bash' });
    await raises('create_session', { session: 'default' }, 'swerex.exceptions.SessionExistsError');
    await ok('run_in_session', A('cd /tmp && export FOO=bar && x=42 && greet() { echo "hi $1"; }'));
    expect((await ok('run_in_session', A('pwd; echo $FOO $x; greet you')))['output']).toBe('/tmp\nbar 42\nhi you\n');
    expect((await ok('run_in_session', A('echo hello world')))).toEqual({ output: 'hello world\n', exit_code: 0, failure_reason: '', expect_string: '', session_type: 'bash' });
    expect((await ok('run_in_session', A('doesntexit', { check: 'silent' })))['exit_code']).toBe(127);
    expect((await ok('run_in_session', A('false && true', { check: 'silent' })))['exit_code']).toBe(1);
    await ok('run_in_session', A('false || true'));
    expect(await raises('run_in_session', A('false'), 'swerex.exceptions.NonZeroExitCodeError')).toContain("Command 'false' failed with exit code 1");
    expect((await ok('run_in_session', A('false', { check: 'ignore' })))['exit_code']).toBeNull();
    expect((await ok('run_in_session', A("printf '\\n\\nx\\n\\n\\n'")))['output']).toBe('\n\nx\n\n\n');
    await ok('run_in_session', A('\n\n \n'));
    await raises('run_in_session', A('if then fi fi'), 'swerex.exceptions.BashIncorrectSyntaxError');
    // exit ends the command, not the session.
    expect((await ok('run_in_session', A('exit 4', { check: 'silent' })))['exit_code']).toBe(4);
    expect((await ok('run_in_session', A('pwd')))['output']).toBe('/tmp\n');
  }, 60_000);

  it('a timeout and an interrupt keep the session as it was', async () => {
    await ok('run_in_session', A('cd /etc && export KEEP=1'));
    await raises('run_in_session', A('cd / && export KEEP=2 && sleep 10', { timeout: 1 }), 'swerex.exceptions.CommandTimeoutError');
    expect(await ok('run_in_session', { session: 'default', timeout: 0.2, n_retry: 3, expect: [], action_type: 'bash_interrupt' })).toMatchObject({ exit_code: 0 });
    expect((await ok('run_in_session', A('pwd; echo $KEEP')))['output']).toBe('/etc\n1\n');
  }, 60_000);

  it('several named sessions are isolated; unknown sessions raise SessionDoesNotExistError', async () => {
    await ok('create_session', { session: 'shell1' });
    await ok('create_session', { session: 'shell2' });
    await Promise.all([ok('run_in_session', A('x=42', { session: 'shell1' })), ok('run_in_session', A('y=24', { session: 'shell2' }))]);
    expect((await ok('run_in_session', A('echo $x $y', { session: 'shell1' })))['output']).toBe('42\n');
    expect((await ok('run_in_session', A('echo $x $y', { session: 'shell2' })))['output']).toBe('24\n');
    await ok('close_session', { session: 'shell1', session_type: 'bash' });
    await raises('close_session', { session: 'shell1', session_type: 'bash' }, 'swerex.exceptions.SessionDoesNotExistError');
    await raises('run_in_session', A('echo hi', { session: 'non_existent' }), 'swerex.exceptions.SessionDoesNotExistError');
  }, 60_000);

  it('read_file / write_file (parents made), FileNotFoundError, a 1 MB file', async () => {
    expect(await ok('write_file', { content: 'test', path: '/tmp/a/b/test.txt' })).toEqual({});
    expect(await ok('read_file', { path: '/tmp/a/b/test.txt', encoding: null, errors: null })).toEqual({ content: 'test' });
    await raises('read_file', { path: 'non_existent.txt', encoding: null, errors: null }, 'builtins.FileNotFoundError');
    await ok('write_file', { content: 'x'.repeat(1024 * 1024), path: '/tmp/large.txt' });
    expect(String((await ok('read_file', { path: '/tmp/large.txt' }))['content']).length).toBe(1024 * 1024);
  }, 60_000);

  it('upload: a file (unzip=false) and a directory as a zip (unzip=true), as RemoteRuntime.upload sends them', async () => {
    const send = async (file: Buffer, filename: string, target: string, unzip: boolean) => {
      const form = new FormData();
      form.append('file', new Blob([file]), filename);
      form.append('target_path', target);
      form.append('unzip', unzip ? 'true' : 'false');
      const res = await fetch(`${base}/upload`, { method: 'POST', body: form, headers });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.json()).toEqual({});
    };
    await send(Buffer.from('one file\n'), 'f.txt', '/tmp/up/f.txt', false);
    expect((await ok('read_file', { path: '/tmp/up/f.txt' }))['content']).toBe('one file\n');

    const dir = join(work, 'src');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'a.txt'), 'A');
    writeFileSync(join(dir, 'sub', 'b.sh'), '#!/bin/sh\necho B\n', { mode: 0o755 });
    execFileSync('python3', ['-c', 'import shutil,sys; shutil.make_archive(sys.argv[1], "zip", sys.argv[2])', join(work, 'zipped_transfer'), dir]);
    await send(readFileSync(join(work, 'zipped_transfer.zip')), 'zipped_transfer.zip', '/tmp/updir', true);
    expect((await ok('execute', C('cat /tmp/updir/a.txt; /tmp/updir/sub/b.sh', { shell: true, check: true })))['stdout']).toBe('AB\n');
  }, 60_000);

  it('close releases the slot; the next use acquires a fresh one', async () => {
    await ok('write_file', { content: 'gone after close', path: '/workspace/mark.txt' });
    expect(await ok('close')).toEqual({});
    expect(gw.sessions.size).toBe(0);
    await raises('run_in_session', A('echo hi'), 'swerex.exceptions.SessionDoesNotExistError');
    await raises('read_file', { path: '/workspace/mark.txt' }, 'builtins.FileNotFoundError');
    expect(await ok('close')).toEqual({});
    expect(gw.sessions.size).toBe(0);
  }, 60_000);
});
