import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitUntil } from '../../tools/testkit/wait.js';

// Not harness.js's waitFor: global-setup.ts (outside any test) starts these servers too.
const waitFor = (fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> => waitUntil(fn, timeoutMs, what, 100);

const run = promisify(execFile);

/** Redis servers this test started (plain redis-server processes on loopback), and how to reach them. */
export interface LocalRedis {
  /** REDIS_URL for slotq. */
  url: string;
  /** What a worker process needs besides REDIS_URL (SLOTQ_REDIS_CLUSTER, SLOTQ_REDIS_TLS_CA). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = createServer()
      .once('error', () => resolve(false))
      .listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });

/** A port that is free, and whose cluster bus port (+10000) is free too. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if ((await portFree(port)) && (await portFree(port + 10_000))) return port;
  }
}

function startServer(dir: string, args: string[]): ChildProcess {
  const child = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--dir', dir, '--bind', '127.0.0.1', ...args], { stdio: 'ignore' });
  // A missing binary shows up as the server never answering (waitFor's message names the fix).
  child.on('error', () => undefined);
  return child;
}

async function stopAll(children: ChildProcess[], dir: string): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }),
  );
  rmSync(dir, { recursive: true, force: true });
}

const cli = async (args: string[]): Promise<string> => (await run('redis-cli', args, { timeout: 10_000 })).stdout;
const answers = async (args: string[]): Promise<boolean> => cli(args).then((out) => out.includes('PONG'), () => false);

/** Three masters with --cluster-enabled, joined by `redis-cli --cluster create`, no replicas. */
export async function startRedisCluster(): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'slotq-cluster-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const children = ports.map((p) => startServer(dir, ['--port', String(p), '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${p}.conf`), '--cluster-node-timeout', '5000']));
  try {
    for (const p of ports) await waitFor(() => answers(['-p', String(p), 'ping']), 20_000, `redis-server on port ${p} (is redis-server installed? scripts/provision.sh installs it)`);
    await cli(['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const p of ports) await waitFor(async () => (await cli(['-p', String(p), 'cluster', 'info'])).includes('cluster_state:ok'), 30_000, `cluster state ok on ${p}`);
  } catch (err) {
    await stopAll(children, dir);
    throw err;
  }
  return {
    // Any node is enough; name two to show the list form.
    url: `redis://127.0.0.1:${ports[0]},redis://127.0.0.1:${ports[1]}`,
    env: { SLOTQ_REDIS_CLUSTER: 'true' },
    stop: () => stopAll(children, dir),
  };
}

/**
 * A Redis that speaks only TLS (certificates made here by openssl, signed by a CA of our own) and wants a
 * password; with `user`, slotq connects as that ACL user (created with exactly `user.rules`) instead.
 */
export async function startTlsRedis(password: string, user?: { name: string; password: string; rules: string[] }): Promise<LocalRedis & { caFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'slotq-tls-'));
  const f = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir, timeout: 30_000 });
  await ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=slotq test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  await ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', f('server.key'), '-out', f('server.csr'));
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('san.ext'), '-out', f('server.pem'));
  const port = await freePort();
  const child = startServer(dir, [
    '--port', '0', '--tls-port', String(port), '--tls-cert-file', f('server.pem'), '--tls-key-file', f('server.key'),
    '--tls-ca-cert-file', f('ca.pem'), '--tls-auth-clients', 'no', '--requirepass', password,
  ]);
  const tlsCli = ['--tls', '--cacert', f('ca.pem'), '-p', String(port), '--no-auth-warning', '-a', password];
  try {
    await waitFor(() => answers([...tlsCli, 'ping']), 20_000, `TLS redis-server on port ${port} (is redis-server installed? scripts/provision.sh installs it)`);
    if (user) await cli([...tlsCli, 'acl', 'setuser', user.name, 'reset', 'on', `>${user.password}`, ...user.rules]);
  } catch (err) {
    await stopAll([child], dir);
    throw err;
  }
  return {
    url: user ? `rediss://${user.name}:${user.password}@127.0.0.1:${port}` : `rediss://:${password}@127.0.0.1:${port}`,
    caFile: f('ca.pem'),
    env: { SLOTQ_REDIS_TLS_CA: f('ca.pem') },
    stop: () => stopAll([child], dir),
  };
}

/** One plain redis-server on loopback, started with extra arguments (e.g. `--proto-max-bulk-len 1mb`). */
export async function startRedis(args: string[] = []): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'slotq-redis-'));
  const port = await freePort();
  const child = startServer(dir, ['--port', String(port), ...args]);
  try {
    await waitFor(() => answers(['-p', String(port), 'ping']), 20_000, `redis-server on port ${port} (is redis-server installed? scripts/provision.sh installs it)`);
  } catch (err) {
    await stopAll([child], dir);
    throw err;
  }
  return { url: `redis://127.0.0.1:${port}`, env: {}, stop: () => stopAll([child], dir) };
}
