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

/** Debian's docker-compose (v1.29), which `scripts/provision.sh` installs: it validates a file with `config`. */
const COMPOSE = process.env['SLOTQ_COMPOSE'] ?? 'docker-compose';

describe('docker-compose.yml', () => {
  it('is a valid compose file: `docker-compose config` accepts it and resolves every service', async () => {
    const { stdout } = await run(COMPOSE, ['-f', FILE, 'config'], { cwd: ROOT, timeout: 60_000 }).catch((err: unknown) => {
      const e = err as { code?: unknown; stderr?: string; message: string };
      if (e.code === 'ENOENT') throw new Error(`${COMPOSE} is not installed: run \`bash scripts/provision.sh\` (installs Debian's docker-compose)`);
      throw new Error(`${COMPOSE} config rejected docker-compose.yml: ${e.stderr ?? e.message}`);
    });
    const resolved = parse(stdout) as { services: Record<string, Service> };
    expect(Object.keys(resolved.services).sort()).toEqual(['board', 'gateway', 'redis', 'worker']);
  });

  it('has redis, a scalable worker with the Docker socket, and the board on SLOTQ_BOARD_PORT', () => {
    const doc = parse(readFileSync(FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> };
    const { redis, worker, board } = doc.services;
    expect(Object.keys(doc.services).sort()).toEqual(['board', 'gateway', 'redis', 'worker']);
    expect(redis?.image).toBeTruthy();

    // Scalable with `--scale worker=N`: no fixed container name, no published host port.
    expect(worker?.container_name).toBeUndefined();
    expect(worker?.ports).toBeUndefined();
    expect(worker?.command).toEqual(['worker']);
    expect(worker?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    // The FIFO channel: the worker's channel directory is a host directory at the same path for the engine.
    const channelDir = worker?.environment?.['SLOTQ_CHANNEL_DIR'];
    expect(channelDir).toBeTruthy();
    expect(worker?.volumes).toContain(`${channelDir}:${channelDir}`);
    expect(worker?.environment?.['REDIS_URL']).toBe('redis://redis:6379');
    expect(worker?.depends_on).toHaveProperty('redis');

    expect(board?.command).toEqual(['board']);
    expect(board?.environment?.['REDIS_URL']).toBe('redis://redis:6379');
    expect(board?.ports?.some((p) => p.endsWith(':3000') && p.includes('SLOTQ_BOARD_PORT'))).toBe(true);

    // The gateway (Python clients): loopback-published, token-protected, on slotq's image.
    const { gateway } = doc.services;
    expect(gateway?.command).toEqual(['gateway']);
    expect(gateway?.environment?.['REDIS_URL']).toBe('redis://redis:6379');
    expect(gateway?.environment).toHaveProperty('SLOTQ_GATEWAY_TOKEN');
    expect(gateway?.ports?.some((p) => p.startsWith('127.0.0.1:') && p.endsWith(':9001'))).toBe(true);
    expect(gateway?.build?.dockerfile).toBe('docker/slotq.Dockerfile');

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
