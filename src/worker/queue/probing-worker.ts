import { Worker, type Job, type Processor, type Span, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { FetchProbes, ProbeReply } from './fetch-probe.js';

/** BullMQ's blocking wait for a job (BZPOPMIN on the queue's marker): private in its typings. */
type BlockingWait = (blockUntil: number) => Promise<number>;

/**
 * BullMQ's Worker, with the one more thing the worker needs per job asked of Redis in the same round
 * trip as the fetch: right behind each fetch, on the same connection, a probe (fetch-probe.ts) checks
 * the leases of the job it handed out and says whether the queue is now empty (then the marker BullMQ
 * set for that job is removed). When it was empty, the fetch BullMQ makes right after a job is skipped
 * and the loop goes straight to its blocking wait, which a producer's next add ends.
 *
 * Skipping is safe only while no marker was consumed since that job was handed out: a blocking wait
 * that popped one must be followed by a real fetch. So a skip is armed only by a job this class fetched,
 * is used by the very next fetch, and is disarmed by any blocking wait (and not armed while one is in flight). The queue, its jobs, locks and
 * events are BullMQ's own (Bull Board shows them as before). Autorun is off: call run() after the constructor.
 * It overrides BullMQ internals (moveToActive, handleCompleted, the private waitForJob), so package.json pins
 * BullMQ's exact version; test/integration/fetch-probe.test.ts is what tells whether a new version still fits.
 */
export class ProbingWorker extends Worker {
  private probes: FetchProbes | undefined;
  private armed: Promise<boolean> | undefined;
  private readonly canSkip: boolean;
  /** The probe of the last job fetched, while it may still be on its way. */
  private lastProbe: Promise<unknown> | undefined;
  /** Blocking waits in flight (a fetch made while one is may not arm a skip: the wait may pop a marker). */
  private blockingWaits = 0;

  /** connection: a Redis client (not options): BullMQ fetches on it, and so does the probe. */
  constructor(name: string, processor: Processor, opts: WorkerOptions & { connection: Redis }, probes: FetchProbes) {
    super(name, processor, { ...opts, autorun: false });
    this.probes = probes;
    probes.bind(opts.connection, this.keys);
    const self = this as unknown as { waitForJob?: BlockingWait };
    const wait = self.waitForJob?.bind(this);
    this.canSkip = typeof wait === 'function';
    if (wait) {
      self.waitForJob = async (blockUntil) => {
        this.armed = undefined;
        this.blockingWaits++;
        try {
          // Let the last job's probe remove its marker first, or this wait would wake at once for it.
          const probe = this.lastProbe;
          this.lastProbe = undefined;
          await probe?.catch(() => undefined);
          return await wait(blockUntil);
        } finally {
          this.blockingWaits--;
        }
      };
    }
  }

  /**
   * A completed job does not fetch the next one (BullMQ's default does, in the same script): every job
   * is then handed out by moveToActive above, with its probe. Otherwise a producer that adds its next
   * job the moment it has the previous result races the completion: the job comes unprobed, and the
   * add's wake-up ends in an empty fetch.
   */
  protected override handleCompleted(result: unknown, job: Job, token: string, _fetchNext?: () => boolean, span?: Span): Promise<Job> {
    return super.handleCompleted(result, job, token, () => false, span);
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    const armed = this.armed;
    this.armed = undefined;
    if (armed && (await armed)) return this.nextJobFromJobData(undefined, undefined, token);
    const probes = this.probes;
    const probe = probes?.probeAfterNextCommand(); // goes out right behind the fetch
    const job = await super.moveToActive(token, name);
    if (job?.id && probe && probes) {
      probes.attach(job.id, probe);
      this.lastProbe = probe;
      if (this.canSkip && this.blockingWaits === 0) this.armed = probe.then((p: ProbeReply) => p.jobId === job.id && p.idle, () => false);
    } else {
      probe?.catch(() => undefined);
    }
    return job;
  }
}
