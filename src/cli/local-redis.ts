import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { raceDeadline } from '../shared/deadline.js';
import { createRedis, redactUrl } from '../shared/redis.js';

/** Is there a Redis answering PING at url within timeoutMs? */
export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const redis = createRedis(url, { name: 'slotq-probe' });
  redis.on('error', () => undefined); // a refused connection is the answer here, not a crash
  try {
    return (await raceDeadline(redis.ping().then(() => true, () => false), timeoutMs)) === true;
  } finally {
    redis.disconnect();
  }
}

const LOCAL = /^redis:\/\/(127\.0\.0\.1|localhost)(:(\d+))?\/?$/;

/**
 * For `slotq up`: when nothing answers at a local URL (redis://127.0.0.1:PORT), starts `redis-server`
 * there (no persistence) as a child process and returns it; returns undefined when a Redis already answers.
 */
export async function ensureLocalRedis(url: string, log: Logger): Promise<ChildProcess | undefined> {
  if (await redisAnswers(url)) {
    log.info({ redis: redactUrl(url) }, 'redis answers');
    return undefined;
  }
  const m = LOCAL.exec(url);
  if (!m) throw new Error(`Redis at ${redactUrl(url)} does not answer, and slotq up only starts a local one (redis://127.0.0.1:PORT): start it or fix REDIS_URL`);
  const port = m[3] ?? '6379';
  // Its own process group: a Ctrl-C in the terminal must not stop Redis before the worker has drained.
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', port, '--save', '', '--appendonly', 'no'], { stdio: 'ignore', detached: true });
  const failed = new Promise<Error>((resolve) => {
    child.once('error', (err) => resolve(new Error(`could not start redis-server (${err.message}): install it (apt-get install redis-server) or set REDIS_URL`)));
    child.once('exit', (code) => resolve(new Error(`redis-server exited with code ${code} (is port ${port} taken?)`)));
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const outcome = await Promise.race([failed, redisAnswers(url, 500)]);
    if (outcome instanceof Error) throw outcome;
    if (outcome) {
      log.info({ redis: redactUrl(url), pid: child.pid }, 'started a local redis-server (stops with slotq up)');
      return child;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  throw new Error(`redis-server on port ${port} did not answer within 10 s`);
}
