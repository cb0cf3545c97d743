import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Slot, SlotBackend } from '../../src/index.js';
import { harness, type Harness } from '../support/harness.js';

const run = promisify(execFile);
const IMAGE = 'slotq-test-busybox:latest';

/**
 * acquire's network policy, enforced by the worker outside the slot. The servers are the test's own: two
 * containers on the same Docker bridge, so nothing here reaches past this machine.
 */
describe('egress policy per slot', () => {
  let h: Harness;
  let b: SlotBackend;
  const servers: Array<{ name: string; ip: string }> = [];
  beforeAll(async () => {
    for (const n of ['a', 'b']) {
      const name = `slotq-egress-${n}-${process.pid}`;
      await run('docker', ['run', '-d', '--rm', '--name', name, '--label', 'org.slotq.test=egress', IMAGE, 'sh', '-c', `mkdir -p /tmp/w && echo from-${n} > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w`]);
      const { stdout } = await run('docker', ['inspect', '-f', '{{.NetworkSettings.IPAddress}}', name]);
      servers.push({ name, ip: stdout.trim() });
    }
    h = harness();
    await h.worker({ image: IMAGE, network: 'bridge', slots: 2 });
    b = await h.backend();
  }, 120_000);
  afterAll(async () => {
    await h?.close();
    await Promise.all(servers.map((s) => run('docker', ['rm', '-f', s.name]).catch(() => undefined)));
  });
  const get = async (s: Slot, ip: string): Promise<string> => (await b.exec(s, `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 8080 | tail -n 1 | grep . || echo blocked`)).stdout.trim();

  it('an allow list lets through only what it names; none cuts all but loopback; release resets it', async () => {
    const [a, c] = [servers[0]!, servers[1]!];
    const open = await b.acquire('open');
    expect(await get(open, a.ip)).toBe('from-a'); // the worker's network, no policy
    const allowed = await b.acquire('allow-a', { network: { allow: [`${a.ip}:8080`] } });
    expect(await get(allowed, a.ip)).toBe('from-a');
    expect(await get(allowed, c.ip)).toBe('blocked');
    // The slot cannot lift it: it has no capability for it, and the rules live in its namespace, set from outside.
    expect((await b.exec(allowed, 'iptables -F 2>&1; ip link set lo down 2>&1; true')).exitCode).toBe(0);
    expect(await get(allowed, c.ip)).toBe('blocked');
    await b.release(open);
    await b.release(allowed); // forced reset: the next holder gets a fresh container with the worker's network
    const none = await b.acquire('none', { network: 'none' });
    expect(await get(none, a.ip)).toBe('blocked');
    expect((await b.exec(none, "mkdir -p /tmp/l && echo local > /tmp/l/index.html && httpd -p 127.0.0.1:9000 -h /tmp/l && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 9000 | tail -n 1")).stdout.trim()).toBe('local'); // loopback stays
    await b.release(none);
    const after = await b.acquire('after');
    expect(await get(after, a.ip)).toBe('from-a');
    await b.release(after);
  }, 120_000);

  it('refuses what it cannot enforce: a malformed policy, a host that does not resolve', async () => {
    await expect(b.acquire('bad', { network: { allow: ['not a host!'] } })).rejects.toMatchObject({ code: 'INVALID_ARGS' });
    await expect(b.acquire('nohost', { network: { allow: ['no-such-host.invalid:443'] } })).rejects.toMatchObject({ code: 'INVALID_ARGS', message: expect.stringMatching(/does not resolve/) as unknown });
  }, 60_000);
});

describe('egress policy on a worker without a network', () => {
  let h: Harness;
  afterAll(async () => {
    await h?.close();
  });
  it("'none' is met already; an allow list is refused, saying why", async () => {
    h = harness();
    await h.worker({ image: IMAGE, slots: 1 });
    const b = await h.backend();
    const s = await b.acquire('n', { network: 'none' });
    await b.release(s);
    await expect(b.acquire('n2', { network: { allow: ['10.0.0.1:443'] } })).rejects.toMatchObject({ code: 'INVALID_ARGS', message: expect.stringMatching(/SLOTQ_NETWORK=none/) as unknown });
  }, 60_000);
});
