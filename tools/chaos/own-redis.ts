import { connect, createServer } from 'node:net';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { driver } from '../testkit/docker.js';

export const CHAOS_REDIS_IMAGE = 'slotq-redis:test';
/** Label of the chaos run's own Redis containers (not a slot label: it does not count as a leaked slot). */
export const CHAOS_REDIS_LABEL = 'org.slotq.chaos-redis';

/** A free TCP port on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => resolve(port));
      });
  });
}

/** True when a Redis answers PING on host:port within timeoutMs. */
function pings(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (b: Buffer) => done(b.toString().startsWith('+PONG')));
  });
}

/**
 * A Redis of the chaos run's own, in a container from slotq-redis:test (no persistence) started with
 * testcontainers, published on a fixed 127.0.0.1 port so clients reconnect to the same URL after a restart.
 */
export class OwnRedis {
  private constructor(
    private readonly container: StartedTestContainer,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(runId: string): Promise<OwnRedis> {
    process.env['TESTCONTAINERS_RYUK_DISABLED'] ??= 'true'; // the Ryuk image cannot be pulled without a registry
    const port = await freePort();
    const container = await new GenericContainer(CHAOS_REDIS_IMAGE)
      .withLabels({ [CHAOS_REDIS_LABEL]: runId })
      .withExposedPorts({ container: 6379, host: port })
      .withPullPolicy({ shouldPull: () => false })
      // Not a log wait: after a restart testcontainers reads the log from the container's StartedAt, and on a
      // busy engine Redis can print its "Ready" line before that stamp, so the wait would never see it.
      .withWaitStrategy(Wait.forSuccessfulCommand('redis-cli ping').withStartupTimeout(30_000))
      .start();
    const redis = new OwnRedis(container, port);
    try {
      await redis.waitReady();
    } catch (err) {
      await redis.remove();
      throw err;
    }
    return redis;
  }

  /**
   * Redis comes back empty (no persistence) on the same port. With outageMs, it is stopped, left down
   * that long, then started again (a slow restart); else a plain restart.
   */
  async restart(outageMs = 0): Promise<void> {
    if (outageMs > 0) {
      await this.container.stop({ remove: false, timeout: 1000 });
      await new Promise((r) => setTimeout(r, outageMs));
    }
    await this.container.restart({ timeout: 1000 });
    await this.waitReady();
  }

  private async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await pings(this.port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the chaos Redis on 127.0.0.1:${this.port} did not answer PING within ${timeoutMs} ms`);
  }

  async remove(): Promise<void> {
    await driver().remove(this.container.getId());
  }
}
