import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BoardMetrics } from '../../src/cli/board/board-metrics.js';
import type { ClusterSnapshot } from '../../src/cli/board/cluster-snapshot.js';
import { renderSlotsPage } from '../../src/cli/board/slots-page.js';
import { LATENCY_BUCKETS_S, decodeWorkerStats } from '../../src/shared/worker-stats.js';
import type { WorkerEventMap } from '../../src/worker/worker-events.js';
import { WorkerMetrics } from '../../src/worker/worker-metrics.js';

function countedWorker(): WorkerMetrics {
  const events = new EventEmitter<WorkerEventMap>();
  const m = new WorkerMetrics(events);
  events.emit('call:done', { tool: 'bash', slotId: 's0', success: true, durationMs: 3 });
  events.emit('call:done', { tool: 'bash', slotId: 's0', success: true, durationMs: 40 });
  events.emit('call:done', { tool: 'bash', slotId: 's0', success: false, code: 'TOOL_FAILED', durationMs: 400_000 });
  events.emit('call:done', { tool: 'rm -rf /|x', slotId: 's1', success: false, code: 'UNKNOWN_TOOL', durationMs: 1 });
  events.emit('container:created', { containerId: 'c1' });
  events.emit('container:created', { containerId: 'c2' });
  events.emit('container:failed', { error: 'no space' });
  return m;
}

describe('worker stats: counted in the worker, published as a hash, decoded by the board', () => {
  it('round-trips calls by tool and outcome, cumulative latency buckets and container counters', () => {
    const stats = decodeWorkerStats(countedWorker().toHash(1, 1234));
    expect(stats.calls).toEqual([
      { tool: 'bash', outcome: 'ok', count: 2 },
      { tool: 'bash', outcome: 'TOOL_FAILED', count: 1 },
      { tool: 'other', outcome: 'UNKNOWN_TOOL', count: 1 },
    ].sort((a, b) => `${a.tool}|${a.outcome}`.localeCompare(`${b.tool}|${b.outcome}`)));
    const bash = stats.latency.find((l) => l.tool === 'bash')!;
    expect(bash.count).toBe(3);
    expect(bash.sumS).toBeCloseTo(400.043, 3);
    expect(bash.cumulative).toHaveLength(LATENCY_BUCKETS_S.length);
    expect(bash.cumulative[0]).toBe(1); // 3 ms <= 5 ms
    expect(bash.cumulative[LATENCY_BUCKETS_S.indexOf(0.05)]).toBe(2); // 40 ms <= 50 ms
    expect(bash.cumulative.at(-1)).toBe(2); // 400 s is only in +Inf
    expect(stats).toMatchObject({ containersCreated: 2, containersFailed: 1, brokenSlots: 1, updatedAtMs: 1234 });
  });

  it('ignores fields it does not know', () => {
    expect(decodeWorkerStats({ junk: '1', 'h|bash|99': '5', 'c|bash': 'x' })).toMatchObject({ calls: [], containersCreated: 0 });
  });
});

const snapshot = (): ClusterSnapshot => ({
  prefix: '{p}',
  takenAtMs: Date.now(),
  workers: [
    {
      workerId: 'w1',
      alive: true,
      state: 'up',
      host: 'h',
      runtime: 'runsc',
      image: 'img:1',
      ageMs: 5000,
      slots: [
        { slotId: 'w1-s0', state: 'held', trajectoryId: '<script>t1</script>', heldForMs: 1500, containerId: 'abc' },
        { slotId: 'w1-s1', state: 'free', trajectoryId: '', heldForMs: undefined, containerId: 'def' },
      ],
      queue: { waiting: 3, active: 1 },
      stats: decodeWorkerStats(countedWorker().toHash(0)),
    },
  ],
});

describe('board /metrics and /slots rendering', () => {
  it('serves every metric family with per-worker labels, the histogram included', async () => {
    const text = await new BoardMetrics(() => Promise.resolve(snapshot())).render();
    expect(text).toContain('slotq_calls_total{worker="w1",tool="bash",outcome="ok"} 2');
    expect(text).toContain('# TYPE slotq_call_duration_seconds histogram');
    expect(text).toContain('slotq_call_duration_seconds_bucket{worker="w1",tool="bash",le="0.005"} 1');
    expect(text).toContain('slotq_call_duration_seconds_bucket{worker="w1",tool="bash",le="+Inf"} 3');
    expect(text).toContain('slotq_call_duration_seconds_count{worker="w1",tool="bash"} 3');
    expect(text).toContain('slotq_queue_jobs{worker="w1",state="waiting"} 3');
    expect(text).toContain('slotq_slots{worker="w1",state="held"} 1');
    expect(text).toContain('slotq_slots{worker="w1",state="broken"} 0');
    expect(text).toContain('slotq_container_starts_total{worker="w1"} 2');
    expect(text).toContain('slotq_container_failures_total{worker="w1"} 1');
    expect(text).toContain('slotq_worker_info{worker="w1",runtime="runsc",image="img:1"} 1');
    expect(text).toContain('slotq_workers{state="up"} 1');
  });

  it('drops a worker from /metrics once it is gone from the snapshot', async () => {
    let snap = snapshot();
    const m = new BoardMetrics(() => Promise.resolve(snap));
    expect(await m.render()).toContain('worker="w1"');
    snap = { ...snap, workers: [] };
    expect(await m.render()).not.toContain('worker="w1"');
  });

  it('renders the slots page with holders, states and ages, HTML-escaped', () => {
    const html = renderSlotsPage(snapshot());
    expect(html).toContain('&lt;script&gt;t1&lt;/script&gt;');
    expect(html).not.toContain('<script>t1');
    expect(html).toMatch(/<td>w1-s0<\/td><td>held<\/td>/);
    expect(html).toContain('<td>1.5</td>');
    expect(html).toContain('href="queues/queue/w-w1"');
    expect(html).toContain('<td>h</td><td>runsc</td><td>img:1</td>');
  });
});
