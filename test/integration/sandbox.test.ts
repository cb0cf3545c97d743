import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlotqError, type Slot, type SlotBackend } from '../../src/index.js';
import { startGateway, type GatewayHandle } from '../../src/gateway/gateway.js';
import { packDirectory } from '../../src/producer/tar-pack.js';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { harness, redisUrl, type Harness } from '../support/harness.js';
import { waitUntil } from '../../tools/testkit/wait.js';

/**
 * The harness's surface (docs/harnesses.md) through a live worker, on images users bring: exec with cwd,
 * env, user and stdin, byte files at any path, directories in and out; the model's tools unchanged.
 */
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function untar(tar: Readable): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const ex = extract();
  const fed = pipeline(tar, ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    if (entry.header.type === 'file') files.set(entry.header.name, Buffer.concat(chunks));
  }
  await fed;
  return files;
}

const IMAGES = [
  { name: 'root by default (Debian)', image: 'slotq-test-root:latest', uid: 0 },
  { name: 'named user uid 1234', image: 'slotq-test-named:latest', uid: 1234 },
  { name: 'busybox only', image: 'slotq-test-busybox:latest', uid: 1000 },
];

describe.each(IMAGES)('harness surface on $name', ({ image, uid }) => {
  let h: Harness;
  let b: SlotBackend;
  let s: Slot;
  beforeAll(async () => {
    h = harness();
    await h.worker({ image, slots: 1 });
    b = await h.backend();
    s = await b.acquire();
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  it('exec: a string under sh -c, an array as argv; stdout and stderr apart; exit codes are answers', async () => {
    const r = await b.exec(s, 'echo out; echo err >&2; exit 42');
    expect(r).toMatchObject({ exitCode: 42, stdout: 'out\n', stderr: 'err\n', timedOut: false, truncated: false });
    expect(r.code).toBeUndefined();
    const argv = await b.exec(s, ['printf', '%s|', 'a b', '$HOME', "it's"]);
    expect(argv).toMatchObject({ exitCode: 0, stdout: "a b|$HOME|it's|" });
    const missing = await b.exec(s, ['no-such-program-xyz']);
    expect(missing.exitCode).toBe(127);
  });

  it('exec: cwd anywhere, env merged over the image, stdin', async () => {
    expect((await b.exec(s, 'pwd')).stdout).toBe('/workspace\n');
    expect((await b.exec(s, 'pwd', { cwd: '/tmp' })).stdout).toBe('/tmp\n');
    const noDir = await b.exec(s, 'pwd', { cwd: '/no/such/dir' });
    expect(noDir.exitCode).not.toBe(0);
    expect(noDir.stderr).toMatch(/cwd \/no\/such\/dir is not a directory/);
    const env = await b.exec(s, 'echo "$FOO|$BAR|${PATH:+path}"', { env: { FOO: "x'y z", BAR: '' } });
    expect(env.stdout).toBe("x'y z||path\n");
    expect((await b.exec(s, 'cat; echo', { stdin: 'from stdin' })).stdout).toBe('from stdin\n');
    const bin = randomBytes(1000);
    expect((await b.exec(s, ['sha256sum'], { stdin: bin })).stdout.split(' ')[0]).toBe(sha(bin));
    expect((await b.exec(s, 'cat | wc -c')).stdout.trim()).toBe('0'); // no stdin: EOF, never a hang
  });

  it('exec: user by name or uid (another user over a one-shot exec); refused for a user the image lacks', async () => {
    expect((await b.exec(s, 'id -u')).stdout.trim()).toBe(String(uid));
    expect((await b.exec(s, 'id -u', { user: 'root' })).stdout.trim()).toBe('0');
    expect((await b.exec(s, 'id -u', { user: 4321 })).stdout.trim()).toBe('4321');
    const r = await b.exec(s, 'id -u', { user: 'nosuchuser' });
    expect(r).toMatchObject({ code: 'INVALID_ARGS', retryable: false });
    expect(r.error).toMatch(/No such user.*nosuchuser/);
  });

  it('4 execs at once in one slot (a server and its clients): they overlap, and the model tools keep their FIFO', async () => {
    await b.exec(s, 'rm -f /tmp/go /tmp/started-*');
    const wait = (name: string) => b.exec(s, `touch /tmp/started-${name}; i=0; until [ -e /tmp/go ]; do sleep 0.05; i=$((i+1)); [ $i -lt 200 ] || exit 9; done; echo ${name}`, { timeoutS: 30 });
    const waiters = [wait('a'), wait('b'), wait('c')];
    // All three are running (each waits on the file the fourth makes) before the fourth is sent.
    await waitUntil(async () => (await b.exec(s, 'ls /tmp | grep -c "^started-"')).stdout.trim() === '3', 20_000, 'the three waiters to start');
    const go = b.exec(s, 'touch /tmp/go; echo go');
    const out = await Promise.all([...waiters, go]);
    expect(out.map((r) => r.stdout.trim())).toEqual(['a', 'b', 'c', 'go']);
    expect(out.every((r) => r.exitCode === 0)).toBe(true);
    // The model's calls of one batch still run in order.
    const seq = await b.executeBatch([
      [s, 'bash', { command: 'sleep 0.3; echo 1 >> /tmp/order' }],
      [s, 'bash', { command: 'echo 2 >> /tmp/order' }],
      [s, 'bash', { command: 'cat /tmp/order' }],
    ]);
    expect(seq[2]!.output).toBe('1\n2\n');
  });

  it('exec: the timeout kills the process group, children too', async () => {
    const r = await b.exec(s, 'sleep 300 & sleep 301; echo never', { timeoutS: 1 });
    expect(r).toMatchObject({ timedOut: true, code: 'TIMEOUT', retryable: false, exitCode: -1 });
    const ps = await b.exec(s, 'ps -o args 2>/dev/null || ps');
    expect(ps.stdout).not.toMatch(/sleep 30[01]/);
  });

  it('exec: each stream capped, head and tail kept, with its byte count', async () => {
    const r = await b.exec(s, 'head -c 3000000 /dev/zero | tr "\\0" a; echo END');
    expect(r.truncated).toBe(true);
    expect(r.stdoutBytes).toBe(3_000_004);
    expect(r.stdout.endsWith('END\n')).toBe(true);
    expect(r.stdout.length).toBeLessThan(300_000);
  });

  it('bytes in and out at any path, parents made, owned by the exec user; typed errors', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    await b.writeFile(s, '/tmp/deep/x.bin', data, { mode: 0o640 });
    expect(sha(await b.readFile(s, '/tmp/deep/x.bin'))).toBe(sha(data));
    expect((await b.exec(s, 'stat -c "%a %u" /tmp/deep/x.bin')).stdout.trim()).toBe(`640 ${uid}`);
    await b.writeFile(s, '/tmp/small.txt', 'héllo');
    expect(Buffer.from(await b.readFile(s, '/tmp/small.txt')).toString()).toBe('héllo');
    await b.writeFile(s, '/tmp/empty', new Uint8Array(0));
    expect((await b.readFile(s, '/tmp/empty')).length).toBe(0);
    await expect(b.readFile(s, '/no/such/file')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(b.readFile(s, '/tmp')).rejects.toMatchObject({ code: 'INVALID_ARGS', details: { cause: 'is_directory' } });
    await expect(b.readFile(s, 'relative.txt')).rejects.toMatchObject({ code: 'INVALID_ARGS' });
    if (uid !== 0) {
      await expect(b.writeFile(s, '/etc/slotq-denied', 'x')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      await b.exec(s, 'echo secret > /tmp/secret; chmod 600 /tmp/secret');
      await expect(b.readFile(s, '/tmp/secret', { user: 4321 })).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    }
    // Another user's file: written as that user.
    await b.writeFile(s, '/tmp/by-root.txt', 'r', { user: 0 });
    expect((await b.exec(s, 'stat -c %u /tmp/by-root.txt')).stdout.trim()).toBe('0');
  });

  it('a directory in and out (upload and download as tar, at any path), and the model tools still keep to /workspace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slotq-up-'));
    try {
      for (let i = 0; i < 120; i++) {
        mkdirSync(join(dir, `d${i % 7}`), { recursive: true });
        writeFileSync(join(dir, `d${i % 7}`, `f${i}.txt`), `file ${i}\n`.repeat(i));
      }
      await b.upload(s, dir, '/tmp/up');
      expect((await b.exec(s, 'find /tmp/up -type f | wc -l')).stdout.trim()).toBe('120');
      const files = await untar(await b.download(s, '/tmp/up'));
      expect(files.size).toBe(120);
      for (const d of readdirSync(dir)) for (const f of readdirSync(join(dir, d))) expect(files.get(`up/${d}/${f}`)?.equals(readFileSync(join(dir, d, f)))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(b.download(s, '/no/such')).rejects.toBeInstanceOf(SlotqError);
    expect((await b.exec(s, 'ls -a /var/tmp /tmp | grep -c slotq-xfer')).stdout.trim()).toBe('0'); // no part file left
    const [r] = await b.executeBatch([[s, 'read_file', { path: '/etc/passwd' }]]);
    expect(r!.metadata.code).toBe('PATH_OUTSIDE_WORKSPACE');
  });
});

describe('harness surface at size, and over the gateway', () => {
  let h: Harness | undefined;
  let gw: GatewayHandle | undefined;
  afterAll(async () => {
    await gw?.close();
    await h?.close();
  });

  it('50 MB round trip at /tests/x.bin by SHA-256, a directory of 1 000 files in and out, all over the gateway', async () => {
    h = harness();
    await h.worker({ image: 'slotq-test-root:latest', slots: 1 });
    const config = loadConfig({ redisUrl: redisUrl(), prefix: h.prefix, gatewayPort: 0, logLevel: 'silent' });
    gw = await startGateway({ config, logger: createLogger({ level: 'silent' }) });
    const call = async (path: string, body: unknown): Promise<Response> => fetch(`${gw!.url}/v1/sessions${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const { session_id: sid } = (await (await call('', {})).json()) as { session_id: string };
    const { slot } = (await (await call(`/${sid}/acquire`, { trajectory_id: 't-gw' })).json()) as { slot: Record<string, unknown> };
    const exec = (await (await call(`/${sid}/exec`, { slot, command: ['sh', '-c', 'cat; echo " $X" >&2; exit 3'], stdin: 'in', env: { X: 'y' }, cwd: '/tmp' })).json()) as Record<string, unknown>;
    expect(exec).toMatchObject({ exit_code: 3, stdout: 'in', stderr: ' y\n', timed_out: false });

    const big = randomBytes(50 * 1024 * 1024);
    const bin = (path: string, query: string, body: Buffer) => fetch(`${gw!.url}/v1/sessions/${sid}/${path}?${query}`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'x-slotq-slot': JSON.stringify(slot) } });
    let t0 = performance.now();
    expect(await (await bin('write_file', 'path=/tests/x.bin', big)).json()).toEqual({ success: true });
    const upMs = performance.now() - t0;
    t0 = performance.now();
    const back = await call(`/${sid}/read_file`, { slot, path: '/tests/x.bin' });
    expect(back.headers.get('content-type')).toMatch(/octet-stream/);
    const got = Buffer.from(await back.arrayBuffer());
    const downMs = performance.now() - t0;
    expect(sha(got)).toBe(sha(big));
    console.log(`[sandbox] 50 MB over the gateway: write ${Math.round(upMs)} ms, read ${Math.round(downMs)} ms`);
    const missing = (await (await call(`/${sid}/read_file`, { slot, path: '/tests/nope' })).json()) as Record<string, unknown>;
    expect(missing).toMatchObject({ success: false, code: 'NOT_FOUND', retryable: false });

    const dir = mkdtempSync(join(tmpdir(), 'slotq-1k-'));
    try {
      for (let i = 0; i < 1000; i++) {
        mkdirSync(join(dir, `d${i % 10}`), { recursive: true });
        writeFileSync(join(dir, `d${i % 10}`, `f${i}.txt`), `${i}\n`);
      }
      const tar: Buffer[] = [];
      for await (const c of packDirectory(dir) as AsyncIterable<Buffer>) tar.push(c);
      expect(await (await bin('upload', 'target=/tests/tree', Buffer.concat(tar))).json()).toEqual({ success: true });
      const dl = await call(`/${sid}/download`, { slot, path: '/tests/tree' });
      const files = await untar(Readable.from([Buffer.from(await dl.arrayBuffer())]));
      expect(files.size).toBe(1000);
      expect(files.get('tree/d7/f417.txt')?.toString()).toBe('417\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
