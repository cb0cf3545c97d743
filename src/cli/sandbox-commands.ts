import { createWriteStream, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import Table from 'cli-table3';
import { extract } from 'tar-stream';
import { SlotBackend } from '../producer/slot-backend.js';
import type { ExecResult } from '../producer/sandbox.js';
import { loadConfig, type SlotqConfig } from '../shared/config.js';
import { InvalidArgsError } from '../shared/errors.js';
import { keysFor } from '../shared/keys.js';
import { connectRedis, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry/registry.js';
import { affinityKey, affinityScope } from '../shared/registry/affinity.js';
import type { Slot } from '../shared/calls/schemas.js';
import { configFrom, withCommon, type Opts } from './cli-options.js';

/**
 * Docker-like verbs on held trajectories: `slotq exec`, `ps`, `cp`, `logs`, `rm`. A trajectory named here is a
 * named hold: the CLI's namespace (every slotq CLI process shares it) and a lease of --ttl seconds renewed
 * at each use, so the slot outlives one CLI process and goes back (reset) TTL after its last use, or at `rm`.
 */
export const CLI_NAMESPACE = 'slotq-cli';
/** The registry's owner scope of the CLI's holds (affinity.ts). */
const CLI_SCOPE = affinityScope('', CLI_NAMESPACE);
const DEFAULT_TTL_S = 3600;
const LOG_KEEP = 1000;

const withHold = (cmd: Command): Command =>
  withCommon(cmd)
    .addOption(new Option('--ttl <s>', 'seconds the hold lasts after its last use').default(String(DEFAULT_TTL_S)))
    .option('--image <image>', "the trajectory's own image (at its first use)")
    .option('--acquire-timeout <s>', 'how long to wait for a free slot', '60')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'));

async function withSlot<T>(o: Opts, trajectory: string, fn: (b: SlotBackend, s: Slot, config: SlotqConfig) => Promise<T>): Promise<T> {
  const ttlS = Number(o['ttl'] ?? DEFAULT_TTL_S);
  if (!Number.isFinite(ttlS) || ttlS < 1 || ttlS > 86_400) throw new InvalidArgsError('--ttl must be 1..86400 seconds');
  const config = loadConfig({ ...configFrom(o), leaseTtlMs: Math.round(ttlS * 1000), logLevel: 'silent' });
  const b = new SlotBackend({ ...config, namespace: CLI_NAMESPACE });
  await b.start();
  let release = false;
  try {
    const s = await b.acquire(trajectory, { timeoutMs: Number(o['acquireTimeout'] ?? 60) * 1000, ...(typeof o['image'] === 'string' ? { image: o['image'] } : {}) });
    const out = await fn(b, s, config);
    release = o['release'] === true;
    if (release) await b.release(s, { resetWorkspace: true });
    return out;
  } finally {
    await b.stop({ keepLeases: !release });
  }
}

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at <= 0) {
      // docker's `-e NAME` passes this process's value.
      if (process.env[p] !== undefined) env[p] = process.env[p];
      continue;
    }
    env[p.slice(0, at)] = p.slice(at + 1);
  }
  return env;
}
const collect = (v: string, prev: string[]): string[] => [...prev, v];

async function readStdin(): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** `TRAJECTORY:/path` names a slot's path; anything else is local. */
function slotPath(arg: string): { trajectory: string; path: string } | undefined {
  const m = /^([^/:][^:]*):(\/.*)$/.exec(arg);
  return m ? { trajectory: m[1]!, path: m[2]! } : undefined;
}

async function logCall(config: SlotqConfig, trajectory: string, entry: Record<string, unknown>, ttlS: number): Promise<void> {
  const redis = connectRedis(config, { name: 'slotq-cli' });
  try {
    const key = keysFor(config.prefix).cliLog(trajectory);
    await redis.multi().rpush(key, JSON.stringify(entry)).ltrim(key, -LOG_KEEP, -1).expire(key, Math.ceil(ttlS)).exec();
  } finally {
    redis.disconnect();
  }
}

/** Untars a download into dst: into it when it is a directory, else as dst itself (docker cp's rule). */
async function untarTo(tar: Readable, dst: string): Promise<void> {
  const into = existsSync(dst) && statSync(dst).isDirectory();
  const staging = mkdtempSync(join(into ? dst : dirname(resolve(dst)), '.slotq-cp-'));
  try {
    const ex = extract();
    const done = pipeline(tar, ex);
    for await (const entry of ex) {
      const name = entry.header.name.replace(/\/+$/, '');
      const target = resolve(staging, name);
      if (!target.startsWith(staging + '/')) throw new InvalidArgsError(`the archive's member ${name} escapes the target`);
      if (entry.header.type === 'directory') await mkdir(target, { recursive: true });
      else if (entry.header.type === 'symlink') await mkdir(dirname(target), { recursive: true }).then(() => symlink(entry.header.linkname ?? '', target));
      else if (entry.header.type === 'file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target, { mode: entry.header.mode ?? 0o644 }));
        continue;
      }
      entry.resume();
    }
    await done;
    const [top] = await readdir(staging);
    if (top === undefined) throw new InvalidArgsError('the download was empty');
    renameSync(join(staging, top), into ? join(dst, top) : dst);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function printExec(r: ExecResult, json: boolean): void {
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  if (r.code && !r.timedOut) process.stderr.write(`slotq: ${r.code}: ${r.error ?? ''}\n`);
  if (r.timedOut) process.stderr.write(`slotq: timed out; the command's process group was killed\n`);
}

/**
 * Each verb is one short process: once its action is done it exits (stdout to a pipe is written
 * synchronously on Linux), so nothing left open (a Redis socket being closed, a stdin pipe) holds it.
 */
const exitWhenDone = <A extends unknown[]>(fn: (...a: A) => Promise<void>) => async (...a: A): Promise<void> => {
  await fn(...a);
  process.stdout.write('', () => process.exit(process.exitCode ?? 0));
};

export function registerSandboxCommands(program: Command): void {
  withHold(program.command('exec'))
    .description('run a command in a held trajectory\'s slot (acquired at first use): slotq exec [-w CWD] [-e K=V] [-u USER] [-i] TRAJECTORY -- CMD...')
    .argument('<trajectory>')
    .argument('<command...>')
    .option('-w, --workdir <dir>', 'working directory (default /workspace)')
    .option('-e, --env <K=V>', 'environment variable (repeatable)', collect, [] as string[])
    .option('-u, --user <user>', 'user name or uid')
    .option('-i, --interactive', 'pass this process\'s stdin to the command')
    .option('-t, --timeout <s>', 'seconds before the command\'s process group is killed', '600')
    .action(exitWhenDone(async (trajectory: string, command: string[], o: Opts & { env: string[] }) => {
      const stdin = o['interactive'] ? await readStdin() : undefined;
      const ttlS = Number(o['ttl'] ?? DEFAULT_TTL_S);
      const json = o['output'] === 'json';
      const r = await withSlot(o, trajectory, async (b, s, config) => {
        const user = typeof o['user'] === 'string' ? (/^\d+$/.test(o['user']) ? Number(o['user']) : o['user']) : undefined;
        const res = await b.exec(s, command, {
          ...(typeof o['workdir'] === 'string' ? { cwd: o['workdir'] } : {}),
          env: parseEnv(o.env),
          ...(user !== undefined ? { user } : {}),
          ...(stdin ? { stdin } : {}),
          timeoutS: Number(o['timeout']),
        });
        await logCall(config, trajectory, { at: new Date().toISOString(), command, exitCode: res.exitCode, ...(res.code ? { code: res.code } : {}), durationMs: res.durationMs, stdoutTail: res.stdout.slice(-2000), stderrTail: res.stderr.slice(-2000) }, ttlS).catch(() => undefined);
        return res;
      });
      printExec(r, json);
      // docker's convention: the command's own exit code; 124 for a timeout; 125 when slotq could not run it.
      process.exitCode = r.timedOut ? 124 : r.code ? 125 : r.exitCode;
    }));

  withHold(program.command('cp'))
    .description('copy files or directories between this machine and a held trajectory\'s slot: slotq cp SRC DST, either side TRAJECTORY:/path')
    .argument('<src>')
    .argument('<dst>')
    .option('-u, --user <user>', 'user name or uid that reads or owns the files in the slot')
    .action(exitWhenDone(async (src: string, dst: string, o: Opts) => {
      const from = slotPath(src);
      const to = slotPath(dst);
      if (!!from === !!to) throw new InvalidArgsError('slotq cp: exactly one of SRC and DST is TRAJECTORY:/path');
      const user = typeof o['user'] === 'string' ? { user: /^\d+$/.test(o['user']) ? Number(o['user']) : o['user'] } : {};
      if (to) {
        await withSlot(o, to.trajectory, async (b, s) => {
          if (statSync(src).isDirectory()) await b.upload(s, src, to.path.endsWith('/') ? `${to.path}${basename(resolve(src))}` : to.path, user);
          else await b.writeFile(s, to.path.endsWith('/') ? `${to.path}${basename(src)}` : to.path, readFileSync(src), { mode: statSync(src).mode & 0o7777, ...user });
        });
      } else {
        await withSlot(o, from!.trajectory, async (b, s) => untarTo(await b.download(s, from!.path, user), dst));
      }
    }));

  withCommon(program.command('ps'))
    .description('the held slots: trajectory, worker, slot, held for')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('-a, --all', 'every held slot, not only the CLI\'s named holds')
    .action(exitWhenDone(async (o: Opts) => {
      const config = loadConfig(configFrom(o));
      const redis = connectRedis(config, { name: 'slotq-ps' });
      try {
        await verifyRedis(redis, config.redisUrl);
        const registry = new Registry(redis, keysFor(config.prefix));
        const rows: Array<Record<string, unknown>> = [];
        const now = Date.now();
        for (const wid of (await registry.listWorkers()).sort()) {
          for (const s of await registry.workerSlots(wid)) {
            if (s['state'] !== 'held') continue;
            const cli = String(s['affinity'] ?? '').startsWith(affinityKey(CLI_SCOPE, ''));
            if (!o['all'] && !cli) continue;
            rows.push({ trajectory: s['trajectoryId'] ?? '', worker: wid, slot: s.slotId, container: String(s['containerId'] ?? '').slice(0, 12), image: s['image'] ?? '', heldForS: s['heldAtMs'] ? Math.round((now - Number(s['heldAtMs'])) / 1000) : null, expiresInS: s['leaseExpMs'] ? Math.round((Number(s['leaseExpMs']) - now) / 1000) : null });
          }
        }
        if (o['output'] === 'json') return console.log(JSON.stringify(rows));
        const t = new Table({ head: ['trajectory', 'worker', 'slot', 'container', 'image', 'held (s)', 'expires in (s)'] });
        for (const r of rows) t.push([r['trajectory'], r['worker'], r['slot'], r['container'], r['image'], r['heldForS'] ?? '', r['expiresInS'] ?? ''].map(String));
        console.log(rows.length ? t.toString() : 'no held slots');
      } finally {
        redis.disconnect();
      }
    }));

  withCommon(program.command('logs'))
    .description('what `slotq exec` ran in a held trajectory: time, command, exit code, the tails of its output')
    .argument('<trajectory>')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('-n, --tail <n>', 'only the last n entries', '100')
    .action(exitWhenDone(async (trajectory: string, o: Opts) => {
      const config = loadConfig(configFrom(o));
      const redis = connectRedis(config, { name: 'slotq-logs' });
      try {
        const raw = await redis.lrange(keysFor(config.prefix).cliLog(trajectory), -Number(o['tail'] ?? 100), -1);
        const entries = raw.map((r) => JSON.parse(r) as { at: string; command: string[]; exitCode: number; code?: string; durationMs: number; stdoutTail?: string; stderrTail?: string });
        if (o['output'] === 'json') return console.log(JSON.stringify(entries));
        if (!entries.length) return console.log(`no exec log for trajectory ${trajectory}`);
        for (const e of entries) {
          console.log(`${e.at} exit=${e.exitCode}${e.code ? ` ${e.code}` : ''} ${e.durationMs}ms $ ${e.command.join(' ')}`);
          if (e.stdoutTail) process.stdout.write(e.stdoutTail.replace(/^/gm, '  | '));
          if (e.stderrTail) process.stdout.write(e.stderrTail.replace(/^/gm, '  ! '));
          if (e.stdoutTail || e.stderrTail) console.log();
        }
      } finally {
        redis.disconnect();
      }
    }));

  withHold(program.command('rm'))
    .description('release a held trajectory\'s slot (its workspace is reset) and forget its log')
    .argument('<trajectory>')
    .action(exitWhenDone(async (trajectory: string, o: Opts) => {
      await withSlot({ ...o, release: true }, trajectory, async (_b, _s, config) => {
        const redis = connectRedis(config, { name: 'slotq-rm' });
        await redis.del(keysFor(config.prefix).cliLog(trajectory)).finally(() => redis.disconnect());
      });
      console.log(`released ${trajectory}`);
    }));
}
