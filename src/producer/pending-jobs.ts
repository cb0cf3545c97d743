import type { ExecutionResult, JobItem } from '../shared/calls/schemas.js';

interface PendingJob {
  workerId: string;
  createdAtMs: number;
  /** Consecutive watchdog rounds that found the job missing from Redis. */
  misses: number;
  /** Whether its add reached Redis (resolved), and why it failed when it did not. */
  added: boolean;
  addError?: string;
  /** Rounds it was given up while its results may still be on their way (the job finished, or is gone). */
  giveUpRounds: number;
  deadlineMs: number;
  items: Map<number, JobItem>;
  results: ExecutionResult[];
  done: () => void;
}

/**
 * Results the backend is waiting for, keyed by job ID and item index (never by completion order).
 * Every job has a deadline, and all of a worker's jobs can be failed at once when it dies.
 */
export class PendingJobs {
  private readonly jobs = new Map<string, PendingJob>();

  get size(): number {
    return this.jobs.size;
  }

  /** Registers a job; resolves when every item has a result (from the worker or a failure). */
  wait(jobId: string, workerId: string, items: JobItem[], results: ExecutionResult[], deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.jobs.set(jobId, { workerId, createdAtMs: Date.now(), misses: 0, added: false, giveUpRounds: 0, deadlineMs, items: new Map(items.map((i) => [i.index, i])), results, done: resolve });
    });
  }

  /** Stores results that arrived for a job; unknown jobs (stale, or another run's) are ignored. */
  deliver(jobId: string, results: ReadonlyArray<readonly [number, ExecutionResult]>): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    for (const [index, result] of results) {
      if (!job.items.delete(index)) continue;
      job.results[index] = result;
    }
    if (job.items.size === 0) this.finish(jobId, job);
  }

  /** Jobs waiting longer than minAgeMs: [jobId, workerId]. */
  olderThan(minAgeMs: number): Array<[string, string]> {
    const cutoff = Date.now() - minAgeMs;
    return [...this.jobs].filter(([, j]) => j.createdAtMs < cutoff).map(([id, j]) => [id, j.workerId]);
  }

  /** Records whether a job was found in Redis; returns how many rounds in a row it was missing. */
  noteMissing(jobId: string, missing: boolean): number {
    const job = this.jobs.get(jobId);
    if (!job) return 0;
    job.misses = missing ? job.misses + 1 : 0;
    return job.misses;
  }

  /** The job, while it waits for results. */
  get(jobId: string): Readonly<Pick<PendingJob, 'workerId' | 'deadlineMs' | 'added' | 'addError'>> | undefined {
    return this.jobs.get(jobId);
  }

  /** Waiting jobs: [jobId, job]. */
  entries(): Array<[string, Readonly<Pick<PendingJob, 'workerId' | 'deadlineMs' | 'added' | 'addError'>>]> {
    return [...this.jobs];
  }

  /** The job's add resolved (it is in Redis), or failed (err). */
  noteAdded(jobId: string, err?: string): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    if (err === undefined) job.added = true;
    else job.addError = err;
  }

  /** Counts a round in which the job was given up but its results may still arrive; returns the count. */
  noteGiveUpRound(jobId: string): number {
    const job = this.jobs.get(jobId);
    return job ? ++job.giveUpRounds : 0;
  }

  /** Gives every outstanding item of the job the result resultFor makes. */
  settle(jobId: string, resultFor: (item: JobItem) => ExecutionResult): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    for (const item of job.items.values()) job.results[item.index] = resultFor(item);
    job.items.clear();
    this.finish(jobId, job);
  }

  workers(): Set<string> {
    return new Set([...this.jobs.values()].map((j) => j.workerId));
  }

  private finish(jobId: string, job: PendingJob): void {
    this.jobs.delete(jobId);
    job.done();
  }
}
