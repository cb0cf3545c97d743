import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { harness, redisUrl, type Harness } from '../support/harness.js';

const run = promisify(execFile);

/** The docker-like verbs (docs/harnesses.md), each a CLI process of its own: the hold outlives every one. */
describe('slotq exec, cp, ps, logs, rm on a named hold', () => {
  let h: Harness | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'slotq-cli-'));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await h?.close();
  });
  const slotq = async (args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> => {
    const p = run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: process.cwd(), timeout: 60_000, env: { ...process.env, REDIS_URL: redisUrl(), SLOTQ_PREFIX: h!.prefix } });
    p.child.stdin?.end(input ?? '');
    return p.then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  };

  it('keeps one slot across processes, copies both ways, lists and logs it, and gives it back at rm', async () => {
    h = harness();
    await h.worker({ slots: 1 });
    const first = await slotq(['exec', '-w', '/tmp', '-e', 'FOO=bar', 'job-1', '--', 'sh', '-c', 'echo $FOO $(pwd); echo kept > /tmp/state; exit 3']);
    expect(first).toMatchObject({ code: 3, stdout: 'bar /tmp\n' });
    expect((await slotq(['exec', 'job-1', '--', 'cat', '/tmp/state'])).stdout).toBe('kept\n'); // the same slot, another process
    expect((await slotq(['exec', '-i', 'job-1', '--', 'wc', '-c'], 'hello')).stdout.trim()).toBe('5');
    expect((await slotq(['exec', '-u', 'root', 'job-1', '--', 'id', '-u'])).stdout.trim()).toBe('0');
    const timedOut = await slotq(['exec', '-t', '1', 'job-1', '--', 'sleep', '30']);
    expect(timedOut.code).toBe(124);
    const json = JSON.parse((await slotq(['exec', '-o', 'json', 'job-1', '--', 'echo', 'x'])).stdout) as { exitCode: number; stdout: string };
    expect(json).toMatchObject({ exitCode: 0, stdout: 'x\n' });

    mkdirSync(join(dir, 'tree/sub'), { recursive: true });
    writeFileSync(join(dir, 'tree/sub/a.txt'), 'A');
    writeFileSync(join(dir, 'one.txt'), 'ONE');
    const up = await slotq(['cp', join(dir, 'tree'), 'job-1:/tmp/tree']);
    expect(up, up.stderr).toMatchObject({ code: 0 });
    expect((await slotq(['cp', join(dir, 'one.txt'), 'job-1:/tmp/one.txt'])).code).toBe(0);
    expect((await slotq(['exec', 'job-1', '--', 'cat', '/tmp/tree/sub/a.txt', '/tmp/one.txt'])).stdout).toBe('AONE');
    expect((await slotq(['cp', 'job-1:/tmp/tree', join(dir, 'back')])).code).toBe(0);
    expect(readFileSync(join(dir, 'back/sub/a.txt'), 'utf8')).toBe('A');
    expect((await slotq(['cp', 'job-1:/tmp/one.txt', join(dir, 'one-back.txt')])).code).toBe(0);
    expect(readFileSync(join(dir, 'one-back.txt'), 'utf8')).toBe('ONE');

    const ps = JSON.parse((await slotq(['ps', '-o', 'json'])).stdout) as Array<{ trajectory: string }>;
    expect(ps.map((r) => r.trajectory)).toContain('job-1');
    const logs = JSON.parse((await slotq(['logs', '-o', 'json', 'job-1'])).stdout) as Array<{ exitCode: number; command: string[] }>;
    expect(logs[0]).toMatchObject({ exitCode: 3 });
    expect(logs.length).toBeGreaterThanOrEqual(6);

    expect((await slotq(['rm', 'job-1'])).code).toBe(0);
    expect(JSON.parse((await slotq(['ps', '-o', 'json'])).stdout)).toEqual([]);
    // A new hold of the same name is a fresh workspace.
    expect((await slotq(['exec', 'job-1', '--', 'sh', '-c', 'cat /tmp/state 2>/dev/null || echo fresh'])).stdout).toBe('fresh\n');
    await slotq(['rm', 'job-1']);
  }, 240_000);
});
