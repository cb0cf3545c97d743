import type { Readable } from 'node:stream';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { affinityScope } from '../shared/registry/affinity.js';
import { fenceJob } from '../shared/calls/call-fence.js';
import { withDeadline } from '../shared/deadline.js';
import { givenUp, mayHaveRun } from '../shared/calls/call-outcome.js';
import { loadConfig, type SlotqConfig, type SlotqOptions } from '../shared/config.js';
import { BackendStoppedError, InvalidArgsError, SlotqError, toError } from '../shared/errors.js';
import { egressPolicySchema, type EgressPolicy } from '../shared/calls/egress.js';
import { SANDBOX_TOOLS } from '../shared/calls/sandbox-schemas.js';
import { newProducerId, randomId } from '../shared/ids.js';
import { keysFor, type Keys } from '../shared/keys.js';
import { silentLogger } from '../shared/logger.js';
import { connectRedis, verifyRedis } from '../shared/redis.js';
import { Registry } from '../shared/registry/registry.js';
import { JOB_RETENTION } from '../shared/retention.js';
import { clampTimeoutS, describeZodError, slotSchema, type CallsJob, type ExecutionResult, type InboxMessage, type JobItem, type ProvisionJob, type ResetJob, type Slot } from '../shared/calls/schemas.js';
import type {
  ArchiveArtifactsOptions,
  ArchiveArtifactsResult,
  ListArtifactsOptions,
  ListArtifactsResult,
  ReadArtifactOptions,
  ReadArtifactResult,
} from '../shared/calls/artifact-schemas.js';
import type { ToolBackend, ToolRequest } from '../shared/calls/tool-backend.js';
import { archiveArtifactsCall, listArtifactsCall, readArtifactCall, toArchiveArtifactsResult, toListArtifactsResult, toReadArtifactResult, type ArtifactCall } from './artifacts.js';
import { Inbox } from './inbox.js';
import { downloadIn, execIn, readFileIn, uploadIn, writeFileIn, type ExecOptions, type ExecResult, type FileOptions, type SandboxCall } from './sandbox.js';
import { SlotLeases } from './slot-leases.js';
import { PendingJobs } from './pending-jobs.js';
import { SlotClock } from './slot-clock.js';

export interface SlotBackendOptions extends SlotqOptions {
  producerId?: string;
  /**
   * Producers that pass the same namespace share trajectories: only for cooperating producers of one
   * training run. Without it a trajectory ID is this producer's own: another producer naming the same ID
   * gets another slot (and never sees this one's workspace or lease).
   */
  namespace?: string;
  logger?: Logger;
  /** Slack past the sum of a slot's call timeouts before its calls are given up (default 60 s). */
  deadlineSlackMs?: number;
}

// Results travel through the inbox: completed jobs are kept only briefly, for the board and debugging.
const JOB_OPTS = { ...JOB_RETENTION, attempts: 1 } as const;
/** Slack on top of the call timeouts before a job is given up (queueing, container start). */
const DEADLINE_SLACK_MS = 60_000;
const WATCHDOG_MS = 1000;
/** Rounds a given-up job that finished (or is gone) waits for results that may still be on their way. */
const RESULT_WAIT_ROUNDS = 2;
/** How long past its deadline a job whose fence cannot reach Redis keeps being retried. */
const FENCE_GRACE_MS = 30_000;
/** A worker's queue unused this long is closed once the worker is gone (workers come and go for days). */
const QUEUE_IDLE_MS = 5000;

/**
 * The producer side of slotq: acquires slots (affinity, FIFO waiters, leases), sends tool calls to the
 * owning workers as BullMQ jobs (one per worker's share of a batch), and returns results in request order.
 */
export class SlotBackend implements ToolBackend {
  readonly config: SlotqConfig;
  readonly producerId: string;
  /** The namespace this producer shares trajectories in (undefined: its trajectories are its own). */
  readonly namespace: string | undefined;
  /** The owner scope of its trajectory IDs in the registry (affinity.ts). */
  private readonly scope: string;
  readonly keys: Keys;
  private readonly log: Logger;
  private redis: Redis | undefined;
  private registry: Registry | undefined;
  private inbox: Inbox | undefined;
  private readonly queues = new Map<string, { queue: Queue; usedAtMs: number }>();
  private readonly pending = new PendingJobs();
  private readonly slotClock: SlotClock;
  private leases: SlotLeases | undefined;
  private timers: NodeJS.Timeout[] = [];
  private batchSeq = 0;
  /** When this producer's Redis link last dropped or came back (a failover, a restart). */
  private redisLinkChangedAtMs = Number.NEGATIVE_INFINITY;
  /** Per start(): job IDs never repeat, even for a producer restarted with the same producerId. */
  private runId = '';
  private started = false;

  constructor(opts: SlotBackendOptions = {}) {
    this.config = loadConfig(opts);
    this.producerId = opts.producerId ?? newProducerId();
    this.namespace = opts.namespace;
    this.scope = affinityScope(this.producerId, opts.namespace);
    this.keys = keysFor(this.config.prefix);
    this.log = (opts.logger ?? silentLogger()).child({ producerId: this.producerId });
    this.slotClock = new SlotClock(opts.deadlineSlackMs ?? DEADLINE_SLACK_MS);
  }

  get defaultTimeoutS(): number {
    return this.config.defaultTimeoutS;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.redis = connectRedis(this.config, { name: `slotq-producer-${this.producerId}` });
    const blocking = connectRedis(this.config, { blocking: true, name: `slotq-producer-${this.producerId}-inbox` });
    try {
      await verifyRedis(this.redis, this.config.redisUrl);
    } catch (err) {
      this.redis.disconnect();
      blocking.disconnect();
      throw err;
    }
    // Registered after the first ready: only a later drop or return of the link (failover, restart) counts.
    const linkChanged = (): void => void (this.redisLinkChangedAtMs = Date.now());
    this.redis.on('close', linkChanged).on('ready', linkChanged);
    this.registry = new Registry(this.redis, this.keys);
    this.runId = randomId(3);
    this.leases = new SlotLeases(this.registry, this.producerId, this.scope, this.config.leaseTtlMs, this.log, {
      provision: async (workerId, image, waiterId) => void (await this.queueFor(workerId).add('provision', { v: 1, kind: 'provision', image, waiterId } satisfies ProvisionJob, { ...JOB_OPTS, jobId: `prov-${waiterId}` })),
      reset: async (workerId, slotId) => void (await this.queueFor(workerId).add('reset', { v: 1, kind: 'reset', slotId } satisfies ResetJob, { ...JOB_OPTS, jobId: `reset-${slotId}-${randomId(4)}` })),
    });
    this.inbox = new Inbox(blocking, this.keys.inbox(this.producerId), (m) => this.onInbox(m), this.log);
    this.inbox.start();
    this.timers.push(every(Math.max(500, Math.round(this.config.leaseTtlMs / 3)), () => this.leases?.renew() ?? Promise.resolve()));
    this.timers.push(every(WATCHDOG_MS, () => this.watchdog()));
    this.started = true;
  }

  private requireStarted(): Registry {
    if (!this.started || !this.registry) throw new BackendStoppedError();
    return this.registry;
  }

  /** image: the trajectory's own image (a worker makes a container of it on demand; see docs/images.md "A trajectory's own image"). */
  /**
   * network: the slot's egress policy, enforced by its worker outside the slot ('none', or { allow: [...] }:
   * host:port, ip:port, ip or CIDR); a policy the worker cannot enforce is refused (the slot goes back, the
   * acquire throws INVALID_ARGS). A slot with a policy is always released with a reset.
   */
  async acquire(trajectoryId: string = randomId(8), opts: { timeoutMs?: number; image?: string; network?: EgressPolicy } = {}): Promise<Slot> {
    this.requireStarted();
    const policy = opts.network === undefined ? undefined : egressPolicySchema.safeParse(opts.network);
    if (policy && !policy.success) throw new InvalidArgsError(`acquire: network must be 'none' or { allow: [...] }: ${describeZodError(policy.error)}`);
    const slot = await this.leases!.acquire(trajectoryId, opts.timeoutMs ?? 60_000, opts.image);
    if (!policy) return slot;
    this.policed.add(slot.slotId);
    const [r] = await this.executeBatch([[slot, SANDBOX_TOOLS.network, { policy: policy.data }]]);
    if (r!.success) return slot;
    await this.release(slot).catch(() => undefined);
    throw new SlotqError(r!.metadata.code ?? 'INTERNAL', `acquire: the egress policy was not applied: ${r!.error}`, { retryable: r!.metadata.retryable ?? false, details: { cause: r!.metadata['cause'] } });
  }

  /** Slots this producer gave an egress policy: released with a reset, so no next holder inherits it. */
  private readonly policed = new Set<string>();

  async release(slot: Slot, opts: { resetWorkspace?: boolean } = {}): Promise<void> {
    const registry = this.requireStarted();
    const s = this.checkSlot(slot);
    this.leases!.forget(s);
    const policed = this.policed.delete(s.slotId);
    const outcome = await registry.release(s.slotId, s.leaseId, (opts.resetWorkspace ?? false) || policed);
    if (outcome === 'resetting') {
      const job: ResetJob = { v: 1, kind: 'reset', slotId: s.slotId };
      await this.queueFor(s.workerId).add('reset', job, { ...JOB_OPTS, jobId: `reset-${s.slotId}-${randomId(4)}` });
    } else if (outcome === 'lost' || outcome === 'gone') {
      this.log.warn({ slotId: s.slotId, outcome }, 'release of a slot this caller no longer holds');
    }
  }

  async executeBatch(requests: ReadonlyArray<ToolRequest>, opts: { timeoutS?: number } = {}): Promise<ExecutionResult[]> {
    this.requireStarted();
    if (!Array.isArray(requests)) throw new InvalidArgsError('executeBatch expects an array of [slot, tool, args] tuples');
    if (requests.length === 0) return [];
    const batchId = `${this.producerId}-${this.runId}-${++this.batchSeq}`;
    const defaultTimeoutS = clampTimeoutS(opts.timeoutS ?? this.config.defaultTimeoutS);
    const byWorker = new Map<string, JobItem[]>();
    requests.forEach((req, index) => {
      if (!Array.isArray(req) || req.length < 2) throw new InvalidArgsError(`executeBatch request ${index} is not a [slot, tool, args] tuple`);
      const slot = this.checkSlot(req[0], index);
      const args: unknown = req[2] ?? {};
      const item: JobItem = {
        index,
        executionId: '',
        slotId: slot.slotId,
        leaseId: slot.leaseId,
        tool: String(req[1]),
        args: (typeof args === 'object' && !Array.isArray(args) ? args : { value: args }) as Record<string, unknown>,
        timeoutS: defaultTimeoutS,
      };
      const list = byWorker.get(slot.workerId) ?? [];
      list.push(item);
      byWorker.set(slot.workerId, list);
    });
    const results = new Array<ExecutionResult>(requests.length);
    const waits: Array<Promise<void>> = [];
    let k = 0;
    for (const [workerId, items] of byWorker) {
      const jobId = `${batchId}-${k++}`;
      for (const item of items) item.executionId = `${jobId}-${item.index}`;
      const deadlineAtMs = this.slotClock.deadline(jobId, items);
      waits.push(this.pending.wait(jobId, workerId, items, results, deadlineAtMs).finally(() => this.slotClock.done(jobId, items)));
      const data: CallsJob = { v: 1, kind: 'calls', batchId, producerId: this.producerId, items, deadlineAtMs, startMarginMs: this.slotClock.startMarginMs };
      this.queueFor(workerId)
        .add('calls', data, { ...JOB_OPTS, jobId })
        .then(
          () => this.pending.noteAdded(jobId),
          (err: unknown) => {
            // Given up at once, fenced first: an add that did reach Redis must not run later.
            this.pending.noteAdded(jobId, toError(err).message);
            void this.giveUp(jobId, `Could not enqueue the call (${toError(err).message})`, Date.now());
          },
        );
    }
    await Promise.all(waits);
    return results;
  }

  /** Reads a file of the slot (contract §5): a call in the slot's FIFO like any tool call; never throws per call. */
  async readArtifact(slot: Slot, path: string, opts?: ReadArtifactOptions): Promise<ReadArtifactResult> {
    return toReadArtifactResult(await this.artifactCall(slot, readArtifactCall(path, opts)));
  }

  /** Lists a directory (or one file) of the slot, sorted; `truncated` only when entries were left out. */
  async listArtifacts(slot: Slot, path?: string, opts?: ListArtifactsOptions): Promise<ListArtifactsResult> {
    return toListArtifactsResult(await this.artifactCall(slot, listArtifactsCall(path, opts)));
  }

  /** A tar.gz (base64) of a directory's regular files or of one file, member names relative to `path`. */
  async archiveArtifacts(slot: Slot, path?: string, opts?: ArchiveArtifactsOptions): Promise<ArchiveArtifactsResult> {
    return toArchiveArtifactsResult(await this.artifactCall(slot, archiveArtifactsCall(path, opts)));
  }

  // The harness's surface (docs/harnesses.md): any path, any user, bytes and directories. Not the model's tools.

  /** Runs a command (a string under the image's sh -c, an array as argv) in the slot; never throws per call. */
  async exec(slot: Slot, command: string | readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return execIn(this.sandboxCall(slot), command, opts);
  }

  /** Writes bytes at an absolute path of the slot, making parent directories; throws a typed SlotqError. */
  async writeFile(slot: Slot, path: string, data: string | Uint8Array, opts?: FileOptions & { mode?: number }): Promise<void> {
    return writeFileIn(this.sandboxCall(slot), path, data, opts);
  }

  /** Reads a file at an absolute path of the slot whole (NOT_FOUND, TOO_LARGE, PERMISSION_DENIED are typed). */
  async readFile(slot: Slot, path: string, opts?: FileOptions & { maxBytes?: number }): Promise<Uint8Array> {
    return readFileIn(this.sandboxCall(slot), path, opts);
  }

  /** Unpacks a local directory (or a tar stream) into targetDir of the slot. */
  async upload(slot: Slot, source: string | Readable, targetDir: string, opts?: FileOptions): Promise<void> {
    return uploadIn(this.sandboxCall(slot), source, targetDir, opts);
  }

  /** A tar stream of a directory or file of the slot, its members named from the path's basename. */
  async download(slot: Slot, path: string, opts?: FileOptions & { maxBytes?: number }): Promise<Readable> {
    return downloadIn(this.sandboxCall(slot), path, opts);
  }

  private sandboxCall(slot: Slot): SandboxCall {
    const held = this.checkSlot(slot);
    return async (tool, args) => (await this.executeBatch([[held, tool, args]]))[0]!;
  }

  private async artifactCall(slot: Slot, [tool, args]: ArtifactCall): Promise<ExecutionResult> {
    const [result] = await this.executeBatch([[slot, tool, args]]);
    return result!;
  }

  private checkSlot(slot: unknown, index?: number): Slot {
    const parsed = slotSchema.safeParse(slot);
    if (!parsed.success) throw new InvalidArgsError(`${index === undefined ? 'argument' : `request ${index}`} is not a Slot from acquire(): ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim());
    return parsed.data;
  }

  private queueFor(workerId: string): Queue {
    let q = this.queues.get(workerId);
    if (!q) {
      const queue = new Queue(this.keys.queueName(workerId), { connection: this.redis!, prefix: this.keys.root });
      queue.on('error', (err) => this.log.warn({ err: err.message, workerId }, 'queue error'));
      q = { queue, usedAtMs: 0 };
      this.queues.set(workerId, q);
    }
    q.usedAtMs = Date.now();
    return q.queue;
  }

  /** How many worker queues this backend holds open (bounded by the live workers it talks to). */
  get openQueues(): number {
    return this.queues.size;
  }

  /** Closes the queues of workers that are gone, once nothing of ours waits on them. */
  private async pruneQueues(): Promise<void> {
    const busy = this.pending.workers();
    const idleSince = Date.now() - QUEUE_IDLE_MS;
    const stale = (workerId: string): boolean => !busy.has(workerId) && (this.queues.get(workerId)?.usedAtMs ?? Infinity) < idleSince;
    for (const workerId of [...this.queues.keys()].filter(stale)) {
      if (!this.registry || (await this.registry.workerAlive(workerId))) continue;
      const q = this.queues.get(workerId);
      if (!q || !stale(workerId)) continue; // used again while we asked Redis
      this.queues.delete(workerId);
      await q.queue.close().catch(() => undefined);
      this.log.debug({ workerId }, 'closed the queue of a worker that left');
    }
  }

  private onInbox(msg: InboxMessage): void {
    if (msg.t === 'results') this.pending.deliver(msg.jobId, msg.results);
    else if (msg.t === 'refused') this.leases?.onRefused(msg.waiterId, msg.code, msg.message, msg.retryable);
    else this.leases?.onGrant(msg.waiterId, msg.slot);
  }

  /** Gives up calls whose worker died, whose deadline passed or whose job vanished; nothing waits forever. */
  private async watchdog(): Promise<void> {
    await this.pruneQueues().catch((err: unknown) => this.log.warn({ err: toError(err).message }, 'pruning worker queues failed'));
    if (this.pending.size === 0 || !this.registry) return;
    const now = Date.now();
    const lost = new Map<string, string>();
    for (const [jobId, j] of this.pending.entries()) {
      if (j.addError !== undefined) lost.set(jobId, `Could not enqueue the call (${j.addError})`);
      else if (j.deadlineMs < now) lost.set(jobId, 'No result before the call deadline: the worker is stuck or lost the job');
    }
    // Through a failover or a restart every worker's heartbeat expired with Redis: a worker is taken for
    // lost only once the workers have had twice SLOTQ_WORKER_LOST_MS to register again (deadlines still hold).
    const judgeWorkers = now - this.redisLinkChangedAtMs >= 2 * this.config.workerLostMs;
    for (const workerId of judgeWorkers ? this.pending.workers() : []) {
      if (await bounded(this.registry.workerAlive(workerId), 'asking whether a worker is alive').catch(() => true)) continue;
      const why = `Worker ${workerId} that owns this slot is gone (crashed, stopped, or unresponsive past its heartbeat TTL)`;
      for (const [jobId, j] of this.pending.entries()) if (j.workerId === workerId && !lost.has(jobId)) lost.set(jobId, why);
    }
    for (const jobId of await bounded(this.vanishedJobs(), 'looking for vanished jobs').catch((err: unknown) => (this.log.warn({ err: toError(err).message }, 'checking pending jobs failed'), []))) {
      if (!lost.has(jobId)) lost.set(jobId, 'The job carrying this call vanished from Redis (was Redis restarted?)');
    }
    for (const [jobId, why] of lost) await this.giveUp(jobId, why, now);
  }

  /**
   * Answers a job's outstanding calls once it is sure which can still start: none, after the fence
   * (call-fence.ts). A call that had started may have run (`outcome: unknown`, not retryable); one that had
   * not never will (`not_run`, retryable). A job that finished, or is gone after its add, may still have
   * results on their way: it waits a few rounds for them first. When Redis cannot be reached to fence it,
   * it tries again each round until well past its deadline, then says the calls may have run.
   */
  private async giveUp(jobId: string, why: string, nowMs: number): Promise<void> {
    const job = this.pending.get(jobId);
    if (!job || !this.redis) return;
    let fence: Awaited<ReturnType<typeof fenceJob>>;
    try {
      fence = await bounded(fenceJob(this.redis, this.keys.job(job.workerId, jobId)), 'fencing a job');
    } catch (err) {
      this.log.warn({ err: toError(err).message, jobId }, 'could not fence a job being given up; trying again');
      if (nowMs > job.deadlineMs + FENCE_GRACE_MS) this.pending.settle(jobId, (it) => mayHaveRun(it, `${why}; Redis could not be reached to fence it off`));
      return;
    }
    const mayHaveResults = fence.state === 'finished' || (fence.state === 'absent' && job.added);
    if (mayHaveResults && this.pending.noteGiveUpRound(jobId) < RESULT_WAIT_ROUNDS) return;
    this.log.warn({ jobId, workerId: job.workerId, fence: fence.state, started: [...fence.started] }, 'gave up a job');
    this.pending.settle(jobId, (it) => givenUp(it, fence, job.added, why));
  }

  /** stop()'s give-up of a job: BACKEND_STOPPED, retryable only for calls that never started (fenced). */
  private async fenceForStop(jobId: string, workerId: string, added: boolean, why: string): Promise<void> {
    const fence = this.redis ? await withDeadline(fenceJob(this.redis, this.keys.job(workerId, jobId)), 2000, () => new Error('fencing took over 2 s')).catch(() => undefined) : undefined;
    this.pending.settle(jobId, (it) => givenUp(it, fence, added, why, 'BACKEND_STOPPED'));
  }

  /** Jobs gone from Redis without a result (Redis restarted without persistence): two rounds in a row. */
  private async vanishedJobs(): Promise<string[]> {
    const old = this.pending.olderThan(2 * WATCHDOG_MS);
    if (old.length === 0 || !this.redis) return [];
    const pipe = this.redis.pipeline();
    // Its data, not the key: a job fenced while its add was on its way is a hash with the fence alone.
    for (const [jobId, workerId] of old) pipe.hexists(this.keys.job(workerId, jobId), 'data');
    const res = (await pipe.exec()) ?? [];
    // Two rounds in a row: a result pushed just before the job was removed has had time to arrive.
    return old.filter(([jobId], i) => this.pending.noteMissing(jobId, res[i]?.[1] === 0) >= 2).map(([jobId]) => jobId);
  }

  /** Acquires waiting in this process for a slot grant. */
  get waitingAcquires(): number {
    return this.leases?.waiterCount ?? 0;
  }

  /** Releases every slot this backend holds (with reset); purge also drops this producer's keys. */
  /**
   * keepLeases: leave the held slots held (their leases renewed once, then left to expire after the lease
   * TTL unless another producer of the namespace renews them) instead of releasing them: what a CLI's
   * named hold uses, so a slot outlives the process that acquired it.
   */
  async stop(opts: { purge?: boolean; keepLeases?: boolean } = {}): Promise<void> {
    if (!this.started) return;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Calls still waiting are fenced first, as any give-up (a call that had started may have run, one that
    // had not never will), and before the releases reset their workspaces.
    const why = 'SlotBackend.stop() was called before this call finished';
    await Promise.all(this.pending.entries().map(([jobId, job]) => this.fenceForStop(jobId, job.workerId, job.added, why)));
    if (opts.keepLeases) await this.leases?.renew();
    else for (const slot of this.leases?.heldSlots() ?? []) await this.release(slot, { resetWorkspace: true }).catch(() => undefined);
    this.started = false;
    await this.leases?.cancelAll(new BackendStoppedError('SlotBackend.stop() was called while this acquire was waiting'));
    await this.inbox?.stop();
    if (opts.purge) await this.redis?.del(this.keys.inbox(this.producerId)).catch(() => undefined);
    await Promise.all([...this.queues.values()].map((q) => q.queue.close().catch(() => undefined)));
    this.queues.clear();
    this.redis?.disconnect();
  }
}

/** A watchdog round's Redis command, bounded: a Redis that takes connections but does not answer must not wedge the round. */
const WATCHDOG_COMMAND_MS = 5000;
const bounded = <T>(p: Promise<T>, what: string): Promise<T> => withDeadline(p, WATCHDOG_COMMAND_MS, () => new Error(`${what} took over ${WATCHDOG_COMMAND_MS} ms`));

/** Runs fn every ms, never two at a time (while Redis is slow, rounds would otherwise pile up). */
function every(ms: number, fn: () => Promise<void>): NodeJS.Timeout {
  let running = false;
  return setInterval(() => {
    if (running) return;
    running = true;
    fn().finally(() => (running = false)).catch(() => undefined);
  }, ms);
}


