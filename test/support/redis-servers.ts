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

/** A master with one replica, watched by three sentinels (quorum 2), and a way to kill the master. */
export interface LocalSentinelRedis extends LocalRedis {
  /** SLOTQ_REDIS_SENTINELS for slotq. */
  sentinels: string;
  masterPort: number;
  /** SIGKILLs the current master (no shutdown, no last words); resolves once it is gone. */
  killMaster(): Promise<void>;
  /** The master's port as the sentinels report it now. */
  masterPortNow(): Promise<number>;
}

/**
 * Processes on loopback: a master, a replica of it, and three sentinels with a fast failover
 * (down-after-milliseconds 2000, failover-timeout 10000), ready once the sentinels know the replica
 * and each other (so a failover can reach its quorum).
 */
export async function startRedisSentinel(): Promise<LocalSentinelRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'slotq-sentinel-'));
  const masterPort = await freePort();
  const replicaPort = await freePort();
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  const master = startServer(dir, ['--port', String(masterPort), '--dbfilename', `m-${masterPort}.rdb`]);
  const replica = startServer(dir, ['--port', String(replicaPort), '--dbfilename', `r-${replicaPort}.rdb`, '--replicaof', '127.0.0.1', String(masterPort)]);
  const children = [master, replica];
  for (const p of sentinelPorts) {
    const conf = join(dir, `sentinel-${p}.conf`);
    writeFileSync(conf, [`port ${p}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor mymaster 127.0.0.1 ${masterPort} 2`, 'sentinel down-after-milliseconds mymaster 2000', 'sentinel failover-timeout mymaster 10000', 'sentinel parallel-syncs mymaster 1', ''].join('\n'));
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    child.on('error', () => undefined);
    children.push(child);
  }
  const masterInfo = async (p: number): Promise<Map<string, string>> => {
    const lines = (await cli(['-p', String(p), 'sentinel', 'master', 'mymaster'])).trim().split('\n');
    const m = new Map<string, string>();
    for (let i = 0; i + 1 < lines.length; i += 2) m.set(lines[i]!.trim(), lines[i + 1]!.trim());
    return m;
  };
  try {
    for (const p of [masterPort, replicaPort, ...sentinelPorts]) await waitFor(() => answers(['-p', String(p), 'ping']), 20_000, `redis-server on port ${p} (is redis-server installed? scripts/provision.sh installs it)`);
    await waitFor(async () => (await cli(['-p', String(replicaPort), 'info', 'replication'])).includes('master_link_status:up'), 20_000, 'the replica in sync');
    for (const p of sentinelPorts) {
      await waitFor(
        async () => {
          const m = await masterInfo(p).catch(() => new Map<string, string>());
          return m.get('num-slaves') === '1' && m.get('num-other-sentinels') === '2';
        },
        30_000,
        `sentinel on ${p} knowing the replica and the other sentinels`,
      );
    }
  } catch (err) {
    await stopAll(children, dir);
    throw err;
  }
  const masterPortNow = async (): Promise<number> => Number((await cli(['-p', String(sentinelPorts[0]), 'sentinel', 'get-master-addr-by-name', 'mymaster'])).trim().split('\n')[1]);
  return {
    url: 'redis://127.0.0.1:6379', // credentials only: the sentinels give the master's address
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    env: { SLOTQ_REDIS_SENTINELS: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',') },
    masterPort,
    masterPortNow,
    async killMaster() {
      const port = await masterPortNow();
      const victim = port === masterPort ? master : port === replicaPort ? replica : undefined;
      if (!victim) throw new Error(`the sentinels name port ${port} as master: not one of this rig's servers`);
      const exited = new Promise((r) => victim.once('exit', r));
      victim.kill('SIGKILL');
      await exited;
    },
    stop: () => stopAll(children, dir),
  };
}
