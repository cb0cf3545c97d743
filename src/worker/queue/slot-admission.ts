import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Keys } from '../../shared/keys.js';
import type { ExecutionResult, JobItem } from '../../shared/calls/schemas.js';
import { failure } from '../tools/call-result.js';
import { replyResults } from './reply.js';

/**
 * Calls jobs one slot may hold at once. Each holds one of the worker's BullMQ concurrency while its calls
 * wait in the slot's FIFO; a job beyond this for a slot gets its calls on that slot refused at once.
 */
export const SLOT_JOBS_LIMIT = 8;
/** Concurrency kept beyond every slot at its limit: reset and provision jobs, refusals on their way out. */
const SPARE_JOBS = 8;

type Process = (job: Job) => Promise<unknown>;
type Item = Pick<JobItem, 'index' | 'executionId' | 'slotId'>;

/**
 * Keeps one busy slot from holding the BullMQ concurrency its worker's other slots need: the worker runs
 * `concurrency(slots)` jobs at once, each slot holds at most `limitPerSlot` of them, so every slot always
 * finds room. The calls of a job for a slot at its limit are not run: each gets INTERNAL, retryable, with
 * `metadata.cause: 'slot_queue_full'` (the rest of the job runs). They are refused rather than put back in
 * the queue: put back, they would come back after later calls for the same slot and run out of order.
 */
export class SlotAdmission {
  /** slotId → calls jobs holding it (admitted, not finished). */
  private readonly held = new Map<string, number>();

  constructor(
    private readonly deps: { workerId: string; redis: Redis; keys: Keys; log: Logger; limitPerSlot?: number },
  ) {}

  get limitPerSlot(): number {
    return this.deps.limitPerSlot ?? SLOT_JOBS_LIMIT;
  }

  /** BullMQ concurrency for a worker that serves up to `slots` slots: each at its limit, and room to spare. */
  concurrency(slots: number): number {
    return Math.max(1, slots) * this.limitPerSlot + SPARE_JOBS;
  }

  /** The job processor, behind the per-slot limit (reset, provision and malformed jobs pass as they are). */
  wrap(process: Process): Process {
    return async (job) => {
      const items = callItems(job.data);
      if (!items) return process(job);
      const slots = [...new Set(items.map((i) => i.slotId))];
      const full = new Set(slots.filter((s) => (this.held.get(s) ?? 0) >= this.limitPerSlot));
      const taken = slots.filter((s) => !full.has(s));
      for (const s of taken) this.held.set(s, (this.held.get(s) ?? 0) + 1);
      try {
        if (full.size > 0) await this.refuse(job, items.filter((i) => full.has(i.slotId)));
        if (taken.length === 0) return { calls: 0, refused: items.length };
        return await process(full.size > 0 ? withItems(job, (it) => !full.has(it.slotId)) : job);
      } finally {
        for (const s of taken) {
          const n = (this.held.get(s) ?? 1) - 1;
          if (n > 0) this.held.set(s, n);
          else this.held.delete(s);
        }
      }
    };
  }

  private async refuse(job: Job, items: Item[]): Promise<void> {
    const data = job.data as { producerId: string };
    this.deps.log.warn({ jobId: job.id, slots: [...new Set(items.map((i) => i.slotId))], calls: items.length }, 'slot has too many jobs waiting; calls refused');
    const why = (it: Item): string => `Not run: slot ${it.slotId} already has ${this.limitPerSlot} jobs waiting on worker ${this.deps.workerId}; retry it once earlier calls on the slot answered`;
    const results = items.map((it): [number, ExecutionResult] => [it.index, failure(it, 'INTERNAL', why(it), { retryable: true, cause: 'slot_queue_full' })]);
    await replyResults(this.deps.redis, this.deps.keys.inbox(data.producerId), job.id ?? '', results);
  }
}

/** The items of a calls job, enough of them to count and refuse; undefined for anything else (the processor judges it). */
function callItems(data: unknown): Item[] | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as { kind?: unknown; producerId?: unknown; items?: unknown };
  if (d.kind !== 'calls' || typeof d.producerId !== 'string' || !Array.isArray(d.items)) return undefined;
  const items = d.items as Array<Partial<Item> | null>;
  const ok = items.every((i) => i !== null && typeof i === 'object' && typeof i.slotId === 'string' && typeof i.executionId === 'string' && typeof i.index === 'number');
  return ok ? (items as Item[]) : undefined;
}

/** The same job with only the items kept (its id, and everything else, read through). */
function withItems(job: Job, keep: (item: Item) => boolean): Job {
  const data = job.data as { items: Item[] };
  return Object.create(job, { data: { value: { ...data, items: data.items.filter(keep) } } }) as Job;
}
