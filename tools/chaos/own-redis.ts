import Docker from 'dockerode';
import { connect, createServer } from 'node:net';

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
 * A Redis of the chaos run's own, in a container from slotq-redis:test (no persistence), published on a
 * fixed 127.0.0.1 port so clients reconnect to the same URL after `docker restart`.
 */
export class OwnRedis {
  private constructor(
    private readonly container: Docker.Container,
    readonly port: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(runId: string, docker: Docker = new Docker()): Promise<OwnRedis> {
    const port = await freePort();
    const container = await docker.createContainer({
      Image: CHAOS_REDIS_IMAGE,
      Labels: { [CHAOS_REDIS_LABEL]: runId },
      ExposedPorts: { '6379/tcp': {} },
      HostConfig: { PortBindings: { '6379/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
    });
    const redis = new OwnRedis(container, port);
    try {
      await container.start();
      await redis.waitReady();
    } catch (err) {
      await redis.remove();
      throw err;
    }
    return redis;
  }

  /**
   * `docker restart`: Redis comes back empty (no persistence) on the same port. With outageMs, it is
   * stopped, left down that long, then started (a slow restart).
   */
  async restart(outageMs = 0): Promise<void> {
    if (outageMs > 0) {
      await this.container.stop({ t: 1 });
      await new Promise((r) => setTimeout(r, outageMs));
      await this.container.start();
    } else {
      await this.container.restart({ t: 1 });
    }
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
    try {
      await this.container.remove({ force: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
}
