import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startBoard, type BoardHandle } from '../../src/cli/board.js';
import { createLogger, loadConfig } from '../../src/index.js';
import { keysFor } from '../../src/shared/keys.js';
import { openBrowser } from '../support/browser.js';
import { harness, redisUrl, waitFor, type Harness } from '../support/harness.js';

const SHOTS = join(process.cwd(), 'test-results');
let h: Harness;
let board: BoardHandle | undefined;
let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;

afterEach(async () => {
  await browser?.close();
  browser = undefined;
  await board?.close();
  board = undefined;
  await h?.close();
});

const open = async (): Promise<BoardHandle> =>
  (board = await startBoard({ config: loadConfig({ redisUrl: redisUrl(), prefix: h.prefix }), logger: createLogger({ level: 'silent' }), port: 0, host: '127.0.0.1', pollMs: 100 }));
const get = async (path: string): Promise<Response> => fetch(`${board!.url}${path}`);
const queueNames = async (): Promise<string[]> => ((await (await get('/queues/api/queues')).json()) as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort();
/** Job ID of a call: executionIds are `<jobId>-<index>`. */
const jobIdOf = (executionId: string): string => executionId.replace(/-\d+$/, '');

describe('slotq board', () => {
  it('follows workers as they come and go, and serves /slots, /metrics and /healthz for every worker', async () => {
    h = harness();
    const w1 = await h.worker({ slots: 2, workerLostMs: 2000 });
    await open();
    expect(await queueNames()).toEqual([w1.queueName]);
    const health = await get('/healthz');
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, redis: 'up' });

    const w2 = await h.worker({ slots: 1, workerLostMs: 2000 });
    await waitFor(async () => (await queueNames()).length === 2, 10_000, 'the second worker queue on the board');
    expect(await queueNames()).toEqual([w1.queueName, w2.queueName].sort());

    const b = await h.backend();
    const slot = await b.acquire('traj-on-board');
    const [r] = await b.executeBatch([[slot, 'bash', { command: 'echo board' }]]);
    expect(r!.success).toBe(true);

    const slots = (await (await get('/slots.json')).json()) as { workers: Array<{ workerId: string; slots: Array<{ slotId: string; state: string; trajectoryId: string; heldForMs?: number }> }> };
    const held = slots.workers.flatMap((w) => w.slots.map((s) => ({ ...s, workerId: w.workerId }))).find((s) => s.slotId === slot.slotId);
    expect(held).toMatchObject({ workerId: slot.workerId, state: 'held', trajectoryId: 'traj-on-board' });
    expect(held!.heldForMs).toBeGreaterThanOrEqual(0);
    const html = await (await fetch(`${board!.url}/slots`, { headers: { accept: 'text/html' } })).text();
    expect(html).toContain('traj-on-board');

    // Counters the worker publishes with its heartbeat, served by the board's /metrics.
    const owner = slot.workerId;
    const callsLine = `slotq_calls_total{worker="${owner}",tool="bash",outcome="ok"} 1`;
    await waitFor(async () => (await (await get('/metrics')).text()).includes(callsLine), 15_000, 'the call in /metrics');
    const metrics = await (await get('/metrics')).text();
    expect(metrics).toContain(`slotq_call_duration_seconds_count{worker="${owner}",tool="bash"} 1`);
    expect(metrics).toContain(`slotq_slots{worker="${owner}",state="held"} 1`);
    expect(metrics).toContain(`slotq_slots{worker="${w1.workerId === owner ? w2.workerId : w1.workerId}",state="held"} 0`);
    expect(metrics).toMatch(new RegExp(`slotq_container_starts_total\\{worker="${owner}"\\} [1-9]`));
    expect(metrics).toContain(`slotq_queue_jobs{worker="${owner}",state="completed"} 1`);
    expect(metrics).toContain('slotq_workers{state="up"} 2');

    await b.release(slot);
    const leaving = owner === w1.workerId ? w2 : w1;
    await leaving.stop();
    await waitFor(async () => (await queueNames()).length === 1, 10_000, 'the stopped worker queue to leave the board');
    expect(await queueNames()).toEqual([(leaving === w1 ? w2 : w1).queueName]);
    expect(await (await get('/metrics')).text()).not.toContain(`worker="${leaving.workerId}"`);
    // The stats hash lives with a TTL while the worker does, and unregistering deletes it.
    const redis = h.redis();
    const stayed = leaving === w1 ? w2 : w1;
    await waitFor(async () => (await redis.pttl(keysFor(h.prefix).workerStats(stayed.workerId))) > 0, 10_000, 'the stats hash of the live worker');
    expect(await redis.exists(keysFor(h.prefix).workerStats(leaving.workerId))).toBe(0);
  });

  it('shows the worker queue and a completed job in a real browser (screenshots in test-results/)', async () => {
    h = harness();
    const w = await h.worker({ slots: 1 });
    await open();
    const b = await h.backend();
    const slot = await b.acquire('traj-browser');
    const [r] = await b.executeBatch([[slot, 'bash', { command: 'echo from-the-browser-test' }]]);
    expect(r!.success).toBe(true);
    const jobId = jobIdOf(r!.executionId);
    mkdirSync(SHOTS, { recursive: true });

    browser = await openBrowser();
    const page = await browser.context.newPage();
    await page.goto(`${board!.url}/`);
    await page.getByRole('link', { name: w.queueName }).first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, 'board-queues.png'), fullPage: true });

    await page.getByRole('link', { name: w.queueName }).first().click();
    await page.getByText('COMPLETED', { exact: false }).first().click();
    await page.getByText(jobId, { exact: true }).first().waitFor({ timeout: 15_000 });
    expect(page.url()).toContain(`/queues/queue/${w.queueName}`);
    await page.screenshot({ path: join(SHOTS, 'board-completed-job.png'), fullPage: true });

    await page.goto(`${board!.url}/slots`);
    await page.getByText('traj-browser').waitFor({ timeout: 5_000 });
    await page.screenshot({ path: join(SHOTS, 'board-slots.png'), fullPage: true });
    await b.release(slot);
  });
});
