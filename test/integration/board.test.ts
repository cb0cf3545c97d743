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

const TOKEN = 'board-test-token-0123456789';
const BASIC = `Basic ${Buffer.from(`anyone:${TOKEN}`).toString('base64')}`;
const open = async (o: { host?: string; token?: string; readWrite?: boolean; showJobData?: boolean } = {}): Promise<BoardHandle> =>
  (board = await startBoard({
    config: loadConfig({ redisUrl: redisUrl(), prefix: h.prefix, ...(o.token ? { boardToken: o.token } : {}) }),
    logger: createLogger({ level: 'silent' }),
    port: 0,
    host: o.host ?? '127.0.0.1',
    pollMs: 100,
    ...(o.readWrite ? { readWrite: true } : {}),
    ...(o.showJobData ? { showJobData: true } : {}),
  }));
const get = async (path: string, headers: Record<string, string> = {}): Promise<Response> => fetch(`${board!.url}${path}`, { headers });
/** The completed jobs of a queue as Bull Board's API serves them. */
const completedJobs = async (queueName: string, headers: Record<string, string> = {}): Promise<Array<{ id: string; data: unknown }>> => {
  const body = (await (await get(`/queues/api/queues?activeQueue=${queueName}&status=completed`, headers)).json()) as { queues: Array<{ name: string; jobs: Array<{ id: string; data: unknown }> }> };
  return body.queues.find((q) => q.name === queueName)?.jobs ?? [];
};
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

  it('refuses to listen beyond loopback without a token, and to be writable without one', async () => {
    h = harness();
    await expect(open({ host: '0.0.0.0' })).rejects.toThrow(/SLOTQ_BOARD_TOKEN/);
    await expect(open({ readWrite: true })).rejects.toThrow(/SLOTQ_BOARD_TOKEN/);
    expect(() => loadConfig({ boardToken: 'short' })).toThrow(/SLOTQ_BOARD_TOKEN|boardToken/);
  });

  it('with a token: every route but /healthz needs it, writes are refused, job data is hidden unless asked for', async () => {
    h = harness();
    const w = await h.worker({ slots: 1 });
    const b = await h.backend();
    const slot = await b.acquire('traj-secret');
    const [r] = await b.executeBatch([[slot, 'write_file', { path: 'k.txt', content: 'file-secret-42' }], [slot, 'bash', { command: 'echo command-secret-42' }]]);
    expect(r!.success).toBe(true);
    await open({ host: '0.0.0.0', token: TOKEN });
    expect((await get('/healthz')).status).toBe(200);
    for (const path of ['/', '/queues', '/queues/api/queues', '/slots.json', '/metrics']) expect((await get(path)).status, path).toBe(401);
    expect((await get('/metrics', { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await get('/metrics', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await get('/slots.json', { authorization: BASIC })).status).toBe(200);

    const jobs = await completedJobs(w.queueName, { authorization: BASIC });
    expect(jobs.length).toBeGreaterThan(0);
    const shown = JSON.stringify(jobs);
    expect(shown).toContain('"tool":"bash"');
    for (const secret of ['file-secret-42', 'command-secret-42', slot.leaseId]) expect(shown).not.toContain(secret);
    // Write actions are refused (the board is read-only unless started with --read-write).
    const retry = await fetch(`${board!.url}/queues/api/queues/${w.queueName}/${jobs[0]!.id}/retry/completed`, { method: 'PUT', headers: { authorization: BASIC } });
    expect(retry.status).toBe(405);
    await board!.close();

    // The operator opts in: the same jobs with their data.
    board = await open({ token: TOKEN, showJobData: true });
    const full = JSON.stringify(await completedJobs(w.queueName, { authorization: BASIC }));
    for (const secret of ['file-secret-42', 'command-secret-42', slot.leaseId]) expect(full).toContain(secret);
    await b.release(slot);
  });

  it('shows the board in a real browser only with the token, with job data hidden (screenshots in test-results/)', async () => {
    h = harness();
    const w = await h.worker({ slots: 1 });
    await open({ host: '0.0.0.0', token: TOKEN });
    const b = await h.backend();
    const slot = await b.acquire('traj-browser');
    const [r] = await b.executeBatch([[slot, 'bash', { command: 'echo from-the-browser-test' }]]);
    expect(r!.success).toBe(true);
    const jobId = jobIdOf(r!.executionId);
    mkdirSync(SHOTS, { recursive: true });

    browser = await openBrowser();
    const page = await browser.context.newPage();
    // No token, no board: Chromium meets the basic-auth challenge with no credentials to give.
    const denied = await page.goto(`${board!.url}/`).then((res) => `status ${res?.status()}`, (err: Error) => err.message);
    expect(denied).toMatch(/status 401|ERR_INVALID_AUTH_CREDENTIALS/);
    expect(await page.getByRole('link', { name: w.queueName }).count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'board-no-token.png'), fullPage: true });

    await page.setExtraHTTPHeaders({ authorization: BASIC });
    await page.goto(`${board!.url}/`);
    await page.getByRole('link', { name: w.queueName }).first().waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, 'board-queues.png'), fullPage: true });

    await page.getByRole('link', { name: w.queueName }).first().click();
    await page.getByText('COMPLETED', { exact: false }).first().click();
    await page.getByText(jobId, { exact: true }).first().waitFor({ timeout: 15_000 });
    expect(page.url()).toContain(`/queues/queue/${w.queueName}`);
    await page.getByText('are hidden: start the board with --show-job-data', { exact: false }).first().waitFor({ timeout: 15_000 });
    expect(await page.content()).not.toContain('from-the-browser-test');
    await page.screenshot({ path: join(SHOTS, 'board-completed-job.png'), fullPage: true });

    await page.goto(`${board!.url}/slots`);
    await page.getByText('traj-browser').waitFor({ timeout: 5_000 });
    await page.screenshot({ path: join(SHOTS, 'board-slots.png'), fullPage: true });
    await b.release(slot);
  });
});
