import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { runUp, type UpHandle } from '../../src/cli/up.js';
import { createLogger, loadConfig } from '../../src/index.js';
import { harness, redisUrl, type Harness } from '../support/harness.js';

const run = promisify(execFile);
const slotq = (...args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: process.cwd(), timeout: 60_000 });

let h: Harness;
let up: UpHandle | undefined;
afterEach(async () => {
  await up?.stop();
  up = undefined;
  await h?.close();
});

describe('slotq CLI', () => {
  it('lists every command, each with --help naming its flags and env variables', async () => {
    const { stdout: top } = await slotq('--help');
    for (const c of ['worker', 'board', 'up', 'demo', 'status', 'purge']) expect(top).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
    // The bench and the chaos run are tools of the repository (npm run bench / chaos), not commands of the package.
    for (const c of ['bench', 'chaos']) expect(top).not.toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
    const { stdout: upHelp } = await slotq('up', '--help');
    for (const v of ['REDIS_URL', 'SLOTQ_PREFIX', 'SLOTQ_LOG_LEVEL', 'SLOTQ_SLOTS', 'SLOTQ_IMAGE', 'SLOTQ_NETWORK', 'SLOTQ_MEMORY_MB', 'SLOTQ_CPUS', 'SLOTQ_PIDS', 'SLOTQ_DEFAULT_TIMEOUT_S', 'SLOTQ_BOARD_PORT', '--pretty']) {
      expect(upHelp).toContain(v);
    }
  });

  it('rejects a bad option with a message that names it', async () => {
    const err = (await slotq('worker', '--worker-id', 'a:b').catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('--worker-id');
    const bad = (await slotq('board', '--port', 'eighty').catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('boardPort');
  });

  it('`up` runs a worker and the board in one process against a Redis that answers', async () => {
    h = harness();
    up = await runUp({ config: loadConfig({ redisUrl: redisUrl(), prefix: h.prefix, slots: 1, boardPort: 0, gatewayPort: 0 }), logger: createLogger({ level: 'silent' }), board: { host: '127.0.0.1' } });
    const health = (await (await fetch(`${up.board.url}/healthz`)).json()) as { ok: boolean; workers: number };
    expect(health).toMatchObject({ ok: true, workers: 1 });
    expect(await (await fetch(`${up.gateway.url}/v1/health`)).json()).toMatchObject({ status: 'ok', redis: true });
    const b = await h.backend();
    const slot = await b.acquire();
    expect(slot.workerId).toBe(up.worker.workerId);
    const [r] = await b.executeBatch([[slot, 'bash', { command: 'echo up' }]]);
    expect(r!.output).toBe('up\n');
    await b.release(slot);
  });
});
