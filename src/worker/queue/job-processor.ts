import type { Job } from 'bullmq';
import type { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { InvalidArgsError, SlotqError, codeOf, toError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import { callTimeoutS, callsJobSchema, describeZodError, jobPayloadSchema, type CallsJob, type ExecutionResult, type JobItem } from '../../shared/calls/schemas.js';
import { startCalls, type StartKeys, type StartStatus } from '../../shared/calls/call-fence.js';
import { mayHaveRun, neverRan } from '../../shared/calls/call-outcome.js';
import { failure } from '../tools/call-result.js';
import type { ContainerDriver } from '../engine/container-driver.js';
import { leasePairs, type FetchProbes } from './fetch-probe.js';
import { replyResults } from './reply.js';
import type { ImageSlots } from '../images/image-slots.js';
import { diskFullResult, type RootfsGuard } from '../lifecycle/rootfs-guard.js';
import type { SlotResetter } from '../lifecycle/slot-resetter.js';
import type { SlotRuntime } from '../lifecycle/slot-runtime.js';
import { executeSlotCall } from '../harness/sandbox-tools.js';
import { SANDBOX_TOOLS } from '../../shared/calls/sandbox-schemas.js';
import type { RunRequest } from '../executor/session.js';

/** Harness execs of one slot that run at once beside its FIFO, by default. */
export const EXEC_BESIDE_LIMIT = 8;
import type { WorkerEventMap } from '../worker-events.js';

/** A call marked started when its job was fetched starts without asking Redis again if it waited less than this. */
const LEASE_RECHECK_AFTER_MS = 20;

export interface JobProcessorDeps {
  workerId: string;
  slots: ReadonlyMap<string, SlotRuntime>;
  redis: Redis;
  keys: Keys;
  driver: ContainerDriver;
  resetter: SlotResetter<SlotRuntime>;
  /** On-demand slots (acquire with image): made by provision jobs, retired on reset. */
  images?: Pick<ImageSlots, 'provision' | 'owns' | 'retire' | 'replaceBroken'>;
  events: EventEmitter<WorkerEventMap>;
  log: Logger;
  /** Lease checks already made when the job was handed out (else the processor makes its own). */
  probes?: Pick<FetchProbes, 'take'>;
  /** The worker's incarnation, and whether its registration is fresh (liveness.ts): calls start only then. */
  liveness: { readonly epoch: string; fresh(): boolean };
  /** The bound of one reply message (SLOTQ_REPLY_CHUNK_BYTES; default config.ts's REPLY_CHUNK_BYTES). */
  replyChunkBytes?: number;
  /** SLOTQ_ROOTFS_MB's watcher, where the engine does not enforce it (rootfs-guard.ts). */
  rootfs?: Pick<RootfsGuard<SlotRuntime>, 'around'>;
  /** Harness execs that may run at once beside a busy slot's FIFO (default EXEC_BESIDE_LIMIT). */
  execConcurrency?: number;
}

/** Why a call is not started: its job was given up (fenced) or is gone, or this worker may have been declared lost. */
const NOT_STARTED: Record<Exclude<StartStatus, 'ok'>, string> = {
  gone: 'Not run: its job is gone from Redis',
  fenced: 'Not run: its caller gave it up (its worker stopped answering in time)',
  stale: 'Not run: this worker lost contact with the registry long enough to be declared lost',
};

/**
 * Runs the jobs of the worker's queue: a reset job resets its slot; a calls job has its leases checked,
 * its calls queued on their slots in item order (FIFO per slot), and exactly one result per call sent to
 * the producer's inbox. An invalid payload is a failed result, never a crashed worker.
 */
export class JobProcessor {
  constructor(private readonly deps: JobProcessorDeps) {}

  async process(job: Job): Promise<unknown> {
    const parsed = jobPayloadSchema.safeParse(job.data);
    if (!parsed.success) return this.rejectInvalid(job, describeZodError(parsed.error));
    const payload = parsed.data;
    if (payload.kind === 'provision') {
      this.deps.images?.provision(payload.image, payload.waiterId); // in the background: a pull can take minutes
      return { provision: payload.image };
    }
    if (payload.kind === 'reset') {
      await (this.deps.images?.owns(payload.slotId) ? this.deps.images.retire(payload.slotId) : this.deps.resetter.reset(payload.slotId));
      return { reset: payload.slotId };
    }
    // A batch always gets one result per call: infrastructure trouble becomes retryable INTERNAL results.
    const results = await this.runCalls(payload, job.id ?? '').catch((err: unknown) =>
      payload.items.map((it): [number, ExecutionResult] => [it.index, failure(it, 'INTERNAL', `The worker could not run this call: ${toError(err).message}`)]),
    );
    await replyResults(this.deps.redis, this.deps.keys.inbox(payload.producerId), job.id ?? '', results, this.replyOptions());
    return { calls: results.length, failed: results.filter(([, r]) => !r.success).length };
  }

  private async runCalls(job: CallsJob, jobId: string): Promise<Array<[number, ExecutionResult]>> {
    const pairs = leasePairs(job.items);
    const current = new Map(pairs.map(([s], i) => [s, i]));
    const startKeys = { job: this.deps.keys.job(this.deps.workerId, jobId), worker: this.deps.keys.worker(this.deps.workerId), slots: this.deps.keys.slots };
    // Each slot's first call is marked started now (by the fetch's probe, else here), as it starts at once
    // when its slot is idle; the others are marked when they start (call-fence.ts).
    const firsts = pairs.map(([slotId]) => job.items.find((it) => it.slotId === slotId)!);
    // checkedAtMs: the leases were checked no earlier than this (the probe's send, or this claim's).
    const claimedAtMs = Date.now();
    const { checkedAtMs, ...claim } =
      (await this.deps.probes?.take(jobId, pairs)) ??
      { ...(await startCalls(this.deps.redis, startKeys, this.deps.liveness.epoch, firsts.map((it, i) => [it.index, it.slotId, pairs[i]![1]] as const))), checkedAtMs: claimedAtMs };
    const marked = new Set(claim.status === 'ok' ? firsts.filter((it, i) => claim.valid[i] && it.leaseId === pairs[i]![1]).map((it) => it.index) : []);
    // Enqueue synchronously, in item order: this is what keeps each slot FIFO.
    const runs = job.items.map((item): Promise<[number, ExecutionResult]> => {
      if (claim.status !== 'ok') return Promise.resolve([item.index, neverRan(item, NOT_STARTED[claim.status])]);
      const slot = this.deps.slots.get(item.slotId);
      if (!slot) return Promise.resolve([item.index, neverRan(item, `Slot ${item.slotId} is not served by worker ${this.deps.workerId} (it was stopped or replaced)`)]);
      const i = current.get(item.slotId)!;
      if (!claim.valid[i] || item.leaseId !== pairs[i]![1]) {
        return Promise.resolve([item.index, failure(item, 'LEASE_LOST', `Slot ${item.slotId} is not held by this caller any more (released, or its lease expired): acquire a slot again`)]);
      }
      const log = this.deps.log.child({ jobId, slotId: item.slotId, executionId: item.executionId });
      const start = { keys: startKeys, checkedAtMs, marked: marked.has(item.index) };
      // A harness exec on a busy slot runs beside its FIFO (up to a limit): harness execs are not ordered.
      const beside = item.tool === SANDBOX_TOOLS.exec ? slot.beside(this.deps.execConcurrency ?? EXEC_BESIDE_LIMIT, () => this.startAndRun(slot, item, start, job, log, true)) : undefined;
      return (beside ?? slot.enqueue(() => this.startAndRun(slot, item, start, job, log))).then((r) => [item.index, r]);
    });
    return Promise.all(runs);
  }

  /**
   * One call, never throwing (one call's error must not answer its job's others, which go on running): an
   * error before it started means it never ran (and it is not run); one after, that it may have.
   */
  private async startAndRun(slot: SlotRuntime, item: JobItem, start: { keys: StartKeys; checkedAtMs: number; marked: boolean }, job: CallsJob, log: Logger, beside = false): Promise<ExecutionResult> {
    let refused: ExecutionResult | undefined;
    try {
      refused = await this.refusal(item, start, job);
    } catch (err) {
      return neverRan(item, `Not run: the worker could not check that it may start it (${toError(err).message})`);
    }
    if (refused) return refused;
    try {
      return await this.runOne(slot, item, log, beside);
    } catch (err) {
      log.warn({ err: toError(err).message }, 'a call failed in the worker');
      return mayHaveRun(item, `The worker failed while running this call (${toError(err).message})`);
    }
  }

  /**
   * At most once (contract §3): checked when the call starts, after it waited behind earlier calls on its
   * slot. A call that cannot end before the producer gives it up never starts; nor does one whose job was
   * given up (fenced) or whose worker may have been declared lost meanwhile; and a call whose lease went
   * (released, expired) never runs for the slot's next holder. A call not marked started when its job was
   * fetched, or marked but kept waiting, is marked now, in the same script that checks all this.
   */
  private async refusal(item: JobItem, start: { keys: StartKeys; checkedAtMs: number; marked: boolean }, job: Pick<CallsJob, 'deadlineAtMs' | 'startMarginMs'>): Promise<ExecutionResult | undefined> {
    const now = Date.now();
    const timeoutMs = callTimeoutS(item) * 1000;
    if (job.deadlineAtMs !== undefined && now + timeoutMs + (job.startMarginMs ?? 0) > job.deadlineAtMs) {
      return neverRan(item, `Not run: it waited ${Math.round((now - start.checkedAtMs) / 1000)} s behind earlier calls on slot ${item.slotId} and could no longer end before its caller gives it up`);
    }
    if (!this.deps.liveness.fresh()) return neverRan(item, NOT_STARTED.stale);
    if (start.marked && now - start.checkedAtMs <= LEASE_RECHECK_AFTER_MS) return undefined;
    const { status, valid } = await startCalls(this.deps.redis, start.keys, this.deps.liveness.epoch, [[item.index, item.slotId, item.leaseId]]);
    if (status !== 'ok') return neverRan(item, NOT_STARTED[status]);
    if (!valid[0]) return failure(item, 'LEASE_LOST', `Not run: slot ${item.slotId} was released or its lease expired while this call waited: acquire a slot again`);
    return undefined;
  }

  private async runOne(slot: SlotRuntime, item: JobItem, log: Logger, beside = false): Promise<ExecutionResult> {
    const startedMs = performance.now();
    let result: ExecutionResult;
    if (slot.workspaceLost) {
      // The container died under the previous call and was replaced: say so before running anything.
      slot.workspaceLost = false;
      // When the slot itself killed it (OOM), that is the model's doing too: not retryable.
      const own = slot.lostCause === 'oom' || slot.lostCause === 'disk_full' ? { retryable: false, cause: slot.lostCause } : slot.lostCause ? { cause: slot.lostCause } : {};
      const why = slot.lostCause === 'oom' ? 'was killed by the kernel when the slot exhausted its memory, and' : slot.lostCause === 'disk_full' ? 'took more disk than SLOTQ_ROOTFS_MB at once (a background fallocate, say), so it' : 'died and';
      result = failure(item, 'SLOT_BROKEN', `This slot's container ${why} was replaced by a fresh one: the trajectory's workspace (files, processes, shell state) is gone. This call was not run; later calls run on the new container.`, { workspaceLost: true, ...own });
    } else {
      try {
        const rootfs = this.deps.rootfs;
        const access = beside ? { run: (req: RunRequest) => slot.runBeside(req), offer: slot.offer, io: slot.io } : slot;
        result = await (rootfs ? rootfs.around(slot, () => executeSlotCall(access, item), (note, r, lost) => diskFullResult(item, note, r, lost)) : executeSlotCall(access, item));
      } catch (err) {
        const code = codeOf(err);
        result = failure(item, code, toError(err).message, err instanceof SlotqError ? { ...err.details, retryable: err.retryable } : {});
        // Replace it now, inside the slot's FIFO, so the calls queued behind this one see the new container.
        if (code === 'SLOT_BROKEN') await (this.deps.images?.owns(slot.slotId) ? this.deps.images.replaceBroken(slot) : this.deps.resetter.replaceBroken(slot));
      }
    }
    this.deps.events.emit('call:done', { tool: item.tool, slotId: slot.slotId, success: result.success, durationMs: performance.now() - startedMs, ...(result.metadata.code ? { code: result.metadata.code } : {}) });
    log.debug({ tool: item.tool, success: result.success, code: result.metadata.code, ms: result.metadata.durationMs }, 'call done');
    return result;
  }


  private replyOptions(): { chunkBytes?: number } {
    return this.deps.replyChunkBytes === undefined ? {} : { chunkBytes: this.deps.replyChunkBytes };
  }

  /** An invalid payload is a failed result (INVALID_ARGS) when it says where to reply, else a failed job. */
  private async rejectInvalid(job: Job, why: string): Promise<unknown> {
    this.deps.log.warn({ jobId: job.id, why }, 'invalid job payload');
    const data = (typeof job.data === 'object' && job.data !== null ? job.data : {}) as Record<string, unknown>;
    const loose = callsJobSchema.pick({ producerId: true }).safeParse(data);
    if (!loose.success) throw new InvalidArgsError(`Invalid job payload: ${why}`);
    const items = Array.isArray(data['items']) ? (data['items'] as unknown[]) : [];
    const str = (v: unknown, dflt: string): string => (typeof v === 'string' ? v : dflt);
    const results = items.map((raw, i): [number, ExecutionResult] => {
      const it = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      const index = typeof it['index'] === 'number' ? it['index'] : i;
      const ids = { executionId: str(it['executionId'], `${job.id}-${index}`), slotId: str(it['slotId'], '') };
      return [index, failure(ids, 'INVALID_ARGS', `Invalid job payload: ${why}`)];
    });
    await replyResults(this.deps.redis, this.deps.keys.inbox(loose.data.producerId), job.id ?? '', results, this.replyOptions());
    return { invalid: why };
  }
}
