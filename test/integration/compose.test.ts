import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const run = promisify(execFile);
const ROOT = process.cwd();
const FILE = join(ROOT, 'docker-compose.yml');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  container_name?: string;
  depends_on?: Record<string, unknown>;
}

/** The compose CLI this machine has: the v2 plugin, else Debian's docker-compose (v1), else none. */
async function composeCli(): Promise<string[] | undefined> {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    try {
      await run(cmd[0]!, [...cmd.slice(1), 'version'], { timeout: 20_000 });
      return cmd;
    } catch {
      // not installed: try the next one
    }
  }
  return undefined;
}

describe('docker-compose.yml', () => {
  it('is a valid compose file (`compose config` when a compose CLI is installed)', async () => {
    const cli = await composeCli();
    if (cli) {
      const { stdout } = await run(cli[0]!, [...cli.slice(1), '-f', FILE, 'config'], { cwd: ROOT, timeout: 60_000 });
      expect(stdout).toMatch(/services:/);
      for (const s of ['redis:', 'worker:', 'board:']) expect(stdout).toContain(s);
    }
    // Without one (docker.io 20.10 has no compose plugin), the structural checks below are the validation.
    expect(() => parse(readFileSync(FILE, 'utf8'), { merge: true }) as unknown).not.toThrow();
  });

  it('has redis, a scalable worker with the Docker socket, and the board on SLOTQ_BOARD_PORT', () => {
    const doc = parse(readFileSync(FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> };
    const { redis, worker, board } = doc.services;
    expect(Object.keys(doc.services).sort()).toEqual(['board', 'redis', 'worker']);
    expect(redis?.image).toBeTruthy();

    // Scalable with `--scale worker=N`: no fixed container name, no published host port.
    expect(worker?.container_name).toBeUndefined();
    expect(worker?.ports).toBeUndefined();
    expect(worker?.command).toEqual(['worker']);
    expect(worker?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(worker?.environment?.['REDIS_URL']).toBe('redis://redis:6379');
    expect(worker?.depends_on).toHaveProperty('redis');

    expect(board?.command).toEqual(['board']);
    expect(board?.environment?.['REDIS_URL']).toBe('redis://redis:6379');
    expect(board?.ports?.some((p) => p.endsWith(':3000') && p.includes('SLOTQ_BOARD_PORT'))).toBe(true);

    // Worker and board run slotq's own image, built from docker/slotq.Dockerfile on a Node 20 base.
    for (const s of [worker!, board!]) {
      expect(s.build?.dockerfile).toBe('docker/slotq.Dockerfile');
      expect(existsSync(join(ROOT, s.build!.context, s.build!.dockerfile))).toBe(true);
      expect(s.build?.args?.['BASE']).toMatch(/node:20-bookworm-slim/);
    }
    // Every variable of contract §8 a worker needs is passed through.
    for (const v of ['SLOTQ_PREFIX', 'SLOTQ_IMAGE', 'SLOTQ_SLOTS', 'SLOTQ_NETWORK', 'SLOTQ_MEMORY_MB', 'SLOTQ_CPUS', 'SLOTQ_PIDS', 'SLOTQ_DEFAULT_TIMEOUT_S', 'SLOTQ_LOG_LEVEL']) {
      expect(worker?.environment, v).toHaveProperty(v);
    }
  });

  it('the slotq Dockerfile takes its Node base as a build argument and runs the CLI', () => {
    const text = readFileSync(join(ROOT, 'docker/slotq.Dockerfile'), 'utf8');
    expect(text).toMatch(/^ARG BASE=node:20-bookworm-slim$/m);
    expect(text).toMatch(/^FROM \$\{BASE\}$/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "\/app\/bin\/slotq\.js"\]$/m);
  });
});
