import { Worker, type Job, type JobJson, type Processor, type WorkerOptions } from 'bullmq';
import type { FetchProbes } from './fetch-probe.js';

/**
 * BullMQ's Worker, with the one round trip the worker needs per job started the moment BullMQ hands a
 * job out (fetch-probe.ts): the job's lease check, and whether the queue is now empty. When it is,
 * the fetch BullMQ makes right after a job is skipped: the loop goes straight to its blocking wait,
 * which a producer's next add ends. The queue, its jobs, locks and events are BullMQ's own (Bull Board
 * shows them as before). Built with autorun off: call run() once the constructor has returned.
 */
export class ProbingWorker extends Worker {
  private probes: FetchProbes | undefined;

  constructor(name: string, processor: Processor, opts: WorkerOptions, probes: FetchProbes) {
    super(name, processor, { ...opts, autorun: false });
    this.probes = probes;
    probes.bind({ wait: this.keys['wait']!, prioritized: this.keys['prioritized']!, marker: this.keys['marker']! });
  }

  protected override createJob(data: JobJson, jobId: string): Job {
    const job = super.createJob(data, jobId);
    this.probes?.start(job.id, job.data);
    return job;
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    if (await this.probes?.queueIdle()) return this.nextJobFromJobData(undefined, undefined, token);
    return super.moveToActive(token, name);
  }
}
