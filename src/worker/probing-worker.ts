import { Worker, type Job, type JobJson, type Processor, type WorkerOptions } from 'bullmq';
import type { FetchProbes } from './fetch-probe.js';

/** BullMQ's blocking wait for a job (BZPOPMIN on the queue's marker): private in its typings. */
type BlockingWait = (blockUntil: number) => Promise<number>;

/**
 * BullMQ's Worker, with the one round trip the worker needs per job started the moment BullMQ hands a
 * job out (fetch-probe.ts): the job's lease check, and whether the queue is now empty (then the marker
 * BullMQ set for the job is removed). When it was empty, the fetch BullMQ makes right after that job is
 * skipped and the loop goes straight to its blocking wait, which a producer's next add ends.
 *
 * Skipping is safe only while no marker was consumed since that job was handed out: a blocking wait
 * that popped one must be followed by a real fetch. So a skip is armed only by a job this class fetched,
 * is used by the very next fetch, and is disarmed by any blocking wait. The queue, its jobs, locks and
 * events are BullMQ's own (Bull Board shows them as before). Autorun is off: call run() after the constructor.
 */
export class ProbingWorker extends Worker {
  private probes: FetchProbes | undefined;
  private armed: Promise<boolean> | undefined;
  private readonly canSkip: boolean;

  constructor(name: string, processor: Processor, opts: WorkerOptions, probes: FetchProbes) {
    super(name, processor, { ...opts, autorun: false });
    this.probes = probes;
    probes.bind({ wait: this.keys['wait']!, prioritized: this.keys['prioritized']!, marker: this.keys['marker']! });
    const self = this as unknown as { waitForJob?: BlockingWait };
    const wait = self.waitForJob?.bind(this);
    this.canSkip = typeof wait === 'function';
    if (wait) {
      self.waitForJob = (blockUntil) => {
        this.armed = undefined;
        return wait(blockUntil);
      };
    }
  }

  protected override createJob(data: JobJson, jobId: string): Job {
    const job = super.createJob(data, jobId);
    this.probes?.start(job.id, job.data);
    return job;
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    const armed = this.armed;
    this.armed = undefined;
    if (armed && (await armed)) return this.nextJobFromJobData(undefined, undefined, token);
    const job = await super.moveToActive(token, name);
    if (job && this.canSkip) this.armed = this.probes?.idleAfter(job.id);
    return job;
  }
}
