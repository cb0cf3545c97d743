import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { SlotqError } from '../shared/errors.js';
import { LABELS, type Keys } from '../shared/keys.js';
import type { Registry } from '../shared/registry.js';
import { callsJobSchema, type ExecutionResult } from '../shared/schemas.js';
import type { ContainerDriver } from './container-driver.js';
import { replyResults } from './reply.js';
import { failure } from './tools.js';

/** What the housekeeping jobs of a worker need. */
export interface WorkerContext {
  workerId: string;
  prefix: string;
  redis: Redis;
  keys: Keys;
  registry: Registry;
  driver: ContainerDriver;
  log: Logger;
}

const queueOf = (ctx: WorkerContext, workerId: string): Queue => new Queue(ctx.keys.queueName(workerId), { connection: ctx.redis, prefix: ctx.keys.root });

/** Removes registry entries and queues of workers whose heartbeat expired, and their containers on this host. */
export async function reapDeadWorkers(ctx: WorkerContext): Promise<void> {
  for (const id of await ctx.registry.reapDeadWorkers()) {
    const q = queueOf(ctx, id);
    await q.obliterate({ force: true }).catch((err: unknown) => ctx.log.warn({ err, deadWorker: id }, 'could not remove a dead worker queue'));
    await q.close();
  }
  const mine = await ctx.driver.listManaged([`${LABELS.prefix}=${ctx.prefix}`, `${LABELS.host}=${hostname()}`]);
  for (const c of mine) {
    const owner = c.labels[LABELS.worker];
    if (owner && owner !== ctx.workerId && !(await ctx.registry.workerAlive(owner))) {
      ctx.log.info({ containerId: c.id.slice(0, 12), deadWorker: owner }, 'removing container left by a dead worker');
      await ctx.driver.remove(c.id);
    }
  }
}

/** An invalid payload is a failed result (INVALID_ARGS) when it says where to reply, else a failed job. */
export async function rejectInvalidPayload(ctx: WorkerContext, job: Job, why: string): Promise<unknown> {
  ctx.log.warn({ jobId: job.id, why }, 'invalid job payload');
  const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as Record<string, unknown>;
  const loose = callsJobSchema.pick({ producerId: true }).safeParse(data);
  if (!loose.success) throw new SlotqError('INVALID_ARGS', `Invalid job payload: ${why}`);
  const items = Array.isArray(data['items']) ? (data['items'] as unknown[]) : [];
  const str = (v: unknown, dflt: string): string => (typeof v === 'string' ? v : dflt);
  const results = items.map((raw, i): [number, ExecutionResult] => {
    const it = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const index = typeof it['index'] === 'number' ? it['index'] : i;
    const ids = { executionId: str(it['executionId'], `${job.id}-${index}`), slotId: str(it['slotId'], '') };
    return [index, failure(ids, 'INVALID_ARGS', `Invalid job payload: ${why}`)];
  });
  await replyResults(ctx.redis, ctx.keys.inbox(loose.data.producerId), job.id ?? '', results);
  return { invalid: why };
}

/** Jobs still waiting in a stopping worker's queue get WORKER_LOST results, then the queue is removed. */
export async function failWaitingJobs(ctx: WorkerContext): Promise<void> {
  const q = queueOf(ctx, ctx.workerId);
  try {
    for (const job of await q.getJobs(['waiting', 'prioritized', 'delayed', 'active'])) {
      const parsed = callsJobSchema.safeParse(job.data);
      if (!parsed.success) continue;
      const message = `Worker ${ctx.workerId} stopped before running this call: retry it on another slot`;
      const results = parsed.data.items.map((it): [number, ExecutionResult] => [it.index, failure(it, 'WORKER_LOST', message)]);
      await replyResults(ctx.redis, ctx.keys.inbox(parsed.data.producerId), job.id ?? '', results);
    }
    await q.obliterate({ force: true });
  } finally {
    await q.close();
  }
}
