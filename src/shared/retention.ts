/**
 * How long slotq keeps what nobody collects: one place for these numbers (the Lua of the registry gets
 * them as arguments, never as literals).
 */

/** How long a producer's inbox keeps results and grants nobody popped (a producer that died). */
export const INBOX_TTL_MS = 600_000;

/**
 * Retention of BullMQ jobs once finished. BullMQ applies a job's own `removeOnComplete`/`removeOnFail`
 * when the job has one (the producer adds every job with these) and the Worker's option only to jobs
 * added without: both use this object, so there is one value.
 */
export const JOB_RETENTION = {
  removeOnComplete: { age: 300, count: 100 },
  removeOnFail: { age: 3600, count: 1000 },
} as const;
