import { afterEach, expect, it, vi } from 'vitest';
import type { ExecutionResult } from '../../src/index.js';
import type { SlotBackend } from '../../src/producer/slot-backend.js';
import { Registry } from '../../src/shared/registry/registry.js';
import { SWEEP_INTERVAL_MS } from '../../src/worker/lifecycle/dead-worker-reaper.js';
import { harness, type Harness } from '../support/harness.js';
import { startRedisSentinel, type LocalSentinelRedis } from '../support/redis-servers.js';

let h: Harness | undefined;
let rig: LocalSentinelRedis | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  await rig?.stop();
  h = undefined;
  rig = undefined;
});

const TIMEOUT_S = 5;
const SLACK_MS = 15_000;
/** A call's deadline as the producer holds it (its timeout plus the slack); a result later than this hung. */
const DEADLINE_MS = TIMEOUT_S * 1000 + SLACK_MS;
/** Past the deadline, what the test allows for the producer's own give-up round (watchdog, fence). */
const ANSWER_MARGIN_MS = 5000;
/**
 * The master dies this long after the first worker started (its first reaper sweep): its next sweep then
 * falls due inside the outage, so it runs as soon as heartbeats are back; without a grace it would take
 * the other worker's expired entry for a death.
 */
const KILL_AFTER_START_MS = SWEEP_INTERVAL_MS - 2000;
const SUCCESSES_AFTER_RECOVERY = 5;

interface Answered {
  callId: string;
  sentAtMs: number;
  answeredAtMs: number;
  result: ExecutionResult | undefined;
  /** The call was not answered within its deadline and the margin. */
  hung: boolean;
}

/** One bash call, answered or marked hung once its deadline and the margin have passed. */
async function call(b: SlotBackend, slot: Awaited<ReturnType<SlotBackend['acquire']>>, callId: string, command: string): Promise<Answered> {
  const sentAtMs = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), DEADLINE_MS + ANSWER_MARGIN_MS)));
  try {
    const result = await Promise.race([b.executeBatch([[slot, 'bash', { command }]], { timeoutS: TIMEOUT_S }).then((rs) => rs[0]), hung]);
    return { callId, sentAtMs, answeredAtMs: Date.now(), result, hung: result === undefined };
  } finally {
    clearTimeout(timer);
  }
}

const summary = (a: Answered): string => `${a.callId} ${a.result ? `${a.result.executionId} success=${a.result.success} code=${a.result.metadata.code ?? '-'} retryable=${a.result.metadata.retryable ?? '-'}` : 'HUNG'} after ${a.answeredAtMs - a.sentAtMs} ms`;

/** Each call spends a moment in the slot, so the kill lands while calls are running (and their results on their way). */
const command = (callId: string): string => `sleep 0.3; echo ${callId} >> /workspace/ledger`;
const STREAMS = 2;
/** Shorter than the failover (~3 s here): every worker's registry entry expires before the new master is there. */
const WORKER_LOST_MS = 2000;

it(
  'through a Sentinel failover (master SIGKILLed mid-run): work resumes, every call is answered, none answered retryable ran, none ran twice',
  async () => {
    rig = await startRedisSentinel();
    h = harness();
    const redis = { redisUrl: rig.url, redisSentinels: rig.sentinels };
    // Two workers whose heartbeats (TTL 0.7 × 2 s) expire during the failover: the first one back must not reap the other.
    // Which workers the reapers declare dead (a spy that only listens: the real reaping runs as ever).
    const reaps = vi.spyOn(Registry.prototype, 'reapDeadWorkers');
    const startedAtMs = Date.now();
    for (let w = 0; w < STREAMS; w++) await h.worker({ ...redis, slots: 1, warmSpares: 0, workerLostMs: WORKER_LOST_MS });
    const b = await h.backend({ ...redis, deadlineSlackMs: SLACK_MS });
    const slots = await Promise.all(Array.from({ length: STREAMS }, (_, s) => b.acquire(`sentinel-run-${s}`)));
    const answered: Answered[] = [];
    let killedAtMs = 0;
    let firstSuccessAfterKillMs: number | undefined;
    let killing: Promise<void> | undefined;
    // Streams of calls, one per slot; the master dies KILL_AFTER_START_MS after the first worker started.
    const stream = async (s: number): Promise<void> => {
      for (let i = 0, successesAfter = 0; successesAfter < SUCCESSES_AFTER_RECOVERY; i++) {
        if (killedAtMs && Date.now() - killedAtMs > 90_000) return; // never recovered: the assertions below say so
        const a = await call(b, slots[s]!, `s${s}c${i}`, command(`s${s}c${i}`));
        answered.push(a);
        if (!killing && Date.now() - startedAtMs >= KILL_AFTER_START_MS) killing = rig!.killMaster().then(() => void (killedAtMs = Date.now()));
        if (killedAtMs && a.sentAtMs > killedAtMs && a.result?.success) {
          firstSuccessAfterKillMs ??= a.answeredAtMs - killedAtMs;
          successesAfter++;
        }
      }
    };
    await Promise.all(slots.map((_, s) => stream(s)));
    await killing;
    // The ledgers, read by calls of their own (retried until the slot answers again).
    const lines: string[] = [];
    let unread = 0;
    for (const slot of slots) {
      let ledger: string | undefined;
      for (let tries = 0; ledger === undefined && tries < 5; tries++) {
        const read = await call(b, slot, 'read', 'cat /workspace/ledger');
        if (read.result?.success) ledger = read.result.output;
      }
      if (ledger === undefined) unread++;
      lines.push(...(ledger ?? '').split('\n').filter(Boolean));
    }
    const workersAt = new Map((await Promise.all(slots.map(async (slot) => (await b.executeBatch([[slot, 'bash', { command: 'hostname' }]]))[0]!))).map((r) => [r.slotId, r.success]));
    const reaped = (await Promise.all(reaps.mock.results.map(async (r) => (r.type === 'return' ? await r.value.catch(() => []) : [])))).flat();
    const report = [
      `reaped: ${reaped.join(' ') || 'none'}`,
      `slots: ${[...workersAt.keys()].join(' ')}`,
      `kill at +${killedAtMs - answered[0]!.sentAtMs} ms; first success (of a call sent after it) ${firstSuccessAfterKillMs ?? 'never'} ms after it; master port ${await rig.masterPortNow()} (was ${rig.masterPort})`,
      ...answered.map((a) => `${summary(a)}; sent at ${a.sentAtMs - killedAtMs} ms from the kill`),
      `ledgers: ${lines.join(' ')}`,
    ].join('\n');
    console.log(report);

    expect(unread, report).toBe(0);
    // No live worker was taken for dead because its heartbeat expired through the failover.
    expect(reaped.filter((id) => h!.workers.some((w) => w.workerId === id)), report).toEqual([]);
    expect(firstSuccessAfterKillMs, report).toBeDefined();
    expect(firstSuccessAfterKillMs!, report).toBeLessThan(30_000);
    expect(answered.filter((a) => a.hung).map((a) => a.callId), report).toEqual([]);
    const retryableRan = answered.filter((a) => a.result?.metadata.retryable === true && lines.includes(a.callId)).map(summary);
    expect(retryableRan, report).toEqual([]);
    const twice = lines.filter((id, i) => lines.indexOf(id) !== i);
    expect(twice, report).toEqual([]);
    // Once work resumed it stays resumed: every call sent after the first success is answered with success.
    const resumedAtMs = killedAtMs + (firstSuccessAfterKillMs ?? 0);
    expect(answered.filter((a) => a.sentAtMs > resumedAtMs && !a.result?.success).map(summary), report).toEqual([]);
    // Every call that succeeded ran, once.
    expect(answered.filter((a) => a.result?.success && !lines.includes(a.callId)).map(summary), report).toEqual([]);
    for (const slot of slots) await b.release(slot);
  },
  240_000,
);
