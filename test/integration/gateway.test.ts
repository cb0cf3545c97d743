import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { checkListenAddress, isLoopback, makeTokenCheck } from '../../src/gateway/auth.js';
import { startGateway, type GatewayHandle } from '../../src/gateway/gateway.js';
import { harness, redisUrl, type Harness } from '../support/harness.js';

const TOKEN = 'gateway-test-token-0123456789';
let h: Harness | undefined;
let gw: GatewayHandle | undefined;
afterEach(async () => {
  await gw?.close(); // first: its sessions are SlotBackends the harness does not know
  gw = undefined;
  await h?.close();
  h = undefined;
});

async function start(opts: { token?: string; maxBodyBytes?: number } = {}): Promise<GatewayHandle> {
  h = harness();
  const config = loadConfig({ redisUrl: redisUrl(), prefix: h.prefix, gatewayPort: 0, logLevel: 'silent' });
  gw = await startGateway({ config, logger: createLogger({ level: 'silent' }), ...opts });
  return gw;
}

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string; retryable: boolean } }).error;

describe('gateway auth', () => {
  it('compares the token in constant time and says whether it is missing or wrong', () => {
    const check = makeTokenCheck(TOKEN);
    expect(check(`Bearer ${TOKEN}`)).toEqual({ ok: true });
    const message = (v: ReturnType<typeof check>): string => (v.ok ? '' : v.message);
    expect(message(check(undefined))).toContain('Missing bearer token');
    expect(message(check('Basic abc'))).toContain('Missing bearer token');
    expect(message(check(`Bearer ${TOKEN}x`))).toContain('Wrong bearer token');
  });

  it('listens without a token on loopback only', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '[::1]']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.org']) expect(isLoopback(host), host).toBe(false);
    expect(() => checkListenAddress('0.0.0.0', undefined)).toThrow(/Refusing to listen on 0.0.0.0 without a token/);
    expect(() => checkListenAddress('0.0.0.0', TOKEN)).not.toThrow();
  });

  it('answers 401 without the right token, and serves health and OpenAPI to anyone', async () => {
    const g = await start({ token: TOKEN });
    const missing = await post(`${g.url}/v1/sessions`, '{}');
    expect(missing.status).toBe(401);
    const m = await errorOf(missing);
    expect(m.code).toBe('UNAUTHORIZED');
    expect(m.message).toContain('Missing');
    const wrong = await post(`${g.url}/v1/sessions`, '{}', { authorization: 'Bearer nope' });
    const w = await errorOf(wrong);
    expect(w.code).toBe('UNAUTHORIZED');
    expect(w.message).toContain('Wrong');
    expect((await post(`${g.url}/v1/sessions`, '{}', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await fetch(`${g.url}/v1/health`)).status).toBe(200);
    const doc = (await (await fetch(`${g.url}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/v1/sessions/{session_id}/execute_batch');
  });
});

describe('gateway HTTP edge', () => {
  it('answers malformed JSON, unknown fields, wrong media types and oversized bodies with 400 and a contract code', async () => {
    const g = await start({ maxBodyBytes: 4096 });
    const { session_id } = (await (await post(`${g.url}/v1/sessions`, '{}')).json()) as { session_id: string };
    const batch = `${g.url}/v1/sessions/${session_id}/execute_batch`;
    const cases: Array<[Response, string]> = [
      [await post(batch, '{"requests": ['), 'INVALID_ARGS'],
      [await post(batch, '{"requests": [], "extra": true}'), 'INVALID_ARGS'],
      [await post(batch, 'requests', { 'content-type': 'text/plain' }), 'INVALID_ARGS'],
      [await post(batch, JSON.stringify({ requests: [], pad: 'x'.repeat(5000) })), 'TOO_LARGE'],
    ];
    for (const [res, code] of cases) {
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({ code, retryable: false });
    }
    const unknown = await post(`${g.url}/v1/sessions/sNOPE/execute_batch`, '{"requests": []}');
    expect(unknown.status).toBe(404);
    expect(await errorOf(unknown)).toMatchObject({ code: 'BACKEND_STOPPED', retryable: true });
  });

  it('gives each session its own trajectories: two sessions acquiring traj-0 get different slots, two naming one namespace the same', async () => {
    const g = await start();
    await h!.worker({ slots: 3 });
    type Opened = { session_id: string; namespace?: string };
    const open = async (body: object): Promise<Opened> => (await (await post(`${g.url}/v1/sessions`, JSON.stringify(body))).json()) as Opened;
    const acquire = async (sid: string): Promise<Record<string, string>> =>
      ((await (await post(`${g.url}/v1/sessions/${sid}/acquire`, '{"trajectory_id": "traj-0", "timeout_s": 60}')).json()) as { slot: Record<string, string> }).slot;
    const run = async (sid: string, slot: object, command: string): Promise<string> =>
      ((await (await post(`${g.url}/v1/sessions/${sid}/execute_batch`, JSON.stringify({ requests: [{ slot, tool: 'bash', args: { command } }] }))).json()) as { results: Array<{ output: string }> }).results[0]!.output;
    const [a, b] = [await open({}), await open({})];
    const [sa, sb] = await Promise.all([acquire(a.session_id), acquire(b.session_id)]);
    expect(sa['slot_id']).not.toBe(sb['slot_id']);
    expect(sa['lease_id']).not.toBe(sb['lease_id']);
    await run(a.session_id, sa, 'echo mine > /workspace/a.txt');
    expect(await run(b.session_id, sb, 'ls -A /workspace | wc -l')).toBe('0\n');
    // Opt-in: sessions that name the same namespace share traj-0 (its slot, its workspace).
    const [n1, n2] = [await open({ namespace: 'run-42' }), await open({ namespace: 'run-42' })];
    expect(n1.namespace).toBe('run-42');
    const [s1, s2] = await Promise.all([acquire(n1.session_id), acquire(n2.session_id)]);
    expect(s2['slot_id']).toBe(s1['slot_id']);
    expect(new Set([sa['slot_id'], sb['slot_id'], s1['slot_id']]).size).toBe(3);
    await run(n1.session_id, s1, 'echo ours > /workspace/n.txt');
    expect(await run(n2.session_id, s2, 'cat /workspace/n.txt')).toBe('ours\n');
    const bad = await post(`${g.url}/v1/sessions`, JSON.stringify({ namespace: 'a\u0001b' }));
    expect(bad.status).toBe(400);
  });

  it('closes an idle session after its TTL and releases its slots with reset', async () => {
    const g = await start();
    await h!.worker({ slots: 1 });
    const { session_id } = (await (await post(`${g.url}/v1/sessions`, '{"ttl_s": 1}')).json()) as { session_id: string };
    const base = `${g.url}/v1/sessions/${session_id}`;
    const { slot } = (await (await post(`${base}/acquire`, '{"trajectory_id": "idle", "timeout_s": 60}')).json()) as { slot: Record<string, unknown> };
    const run = await post(`${base}/execute_batch`, JSON.stringify({ requests: [{ slot, tool: 'bash', args: { command: 'echo x > left-behind' } }] }));
    expect(((await run.json()) as { results: Array<{ success: boolean }> }).results[0]?.success).toBe(true);
    // No keepalive: the session goes, and the one slot comes back reset to whoever asks next.
    const b = await h!.backend();
    const next = await b.acquire('next', { timeoutMs: 60_000 });
    expect(g.sessions.size).toBe(0);
    const [r] = await b.executeBatch([[next, 'bash', { command: 'test ! -e left-behind' }]]);
    expect(r!.success).toBe(true);
    await b.release(next);
  });
});
