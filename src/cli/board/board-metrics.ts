import { Counter, Gauge, Histogram, Registry, type MetricType } from 'prom-client';
import { LATENCY_BUCKETS_S } from '../../shared/worker-stats.js';
import type { ClusterSnapshot } from './cluster-snapshot.js';

type Labels = 'worker' | 'tool';
const LATENCY_METRIC = 'slotq_call_duration_seconds';
const LATENCY_HELP = 'Tool-call wall time on the worker, by worker and tool';

/** A histogram whose buckets come from the workers' published counts, not from observe() here. */
class PublishedLatency extends Histogram<Labels> {
  constructor(
    registry: Registry,
    private readonly current: () => ClusterSnapshot,
  ) {
    super({ name: LATENCY_METRIC, help: LATENCY_HELP, labelNames: ['worker', 'tool'], buckets: [...LATENCY_BUCKETS_S], registers: [registry] });
  }

  override get(): ReturnType<Histogram<Labels>['get']> {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    const bucket = `${LATENCY_METRIC}_bucket`;
    for (const w of this.current().workers) {
      for (const l of w.stats.latency) {
        const labels = { worker: w.workerId, tool: l.tool };
        LATENCY_BUCKETS_S.forEach((le, i) => values.push({ metricName: bucket, labels: { ...labels, le }, value: l.cumulative[i] ?? 0 }));
        values.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: l.count });
        values.push({ metricName: `${LATENCY_METRIC}_sum`, labels, value: l.sumS });
        values.push({ metricName: `${LATENCY_METRIC}_count`, labels, value: l.count });
      }
    }
    return Promise.resolve({ name: LATENCY_METRIC, help: LATENCY_HELP, type: 'histogram' as unknown as MetricType /* the typings say enum, the runtime uses strings */, aggregator: 'sum', collect: () => undefined, values });
  }

  /** What prom-client's registry reads for the text format (not in its typings): the same values. */
  getForPromString(): ReturnType<Histogram<Labels>['get']> {
    return this.get();
  }
}

/**
 * The board's /metrics: one prom-client registry whose values are all taken from a cluster snapshot at
 * scrape time, so every worker shows up, whichever process serves the page.
 */
export class BoardMetrics {
  readonly registry = new Registry();
  private snapshot: ClusterSnapshot = { prefix: '', takenAtMs: 0, workers: [] };

  constructor(private readonly source: () => Promise<ClusterSnapshot>) {
    const registers = [this.registry];
    const snap = (): ClusterSnapshot => this.snapshot;
    new Counter({
      name: 'slotq_calls_total', help: 'Tool calls by worker, tool and outcome (ok, or the error code)', labelNames: ['worker', 'tool', 'outcome'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) for (const c of w.stats.calls) this.inc({ worker: w.workerId, tool: c.tool, outcome: c.outcome }, c.count);
      },
    });
    new PublishedLatency(this.registry, snap);
    new Gauge({
      name: 'slotq_queue_jobs', help: "Jobs in a worker's BullMQ queue by state (waiting = queue depth)", labelNames: ['worker', 'state'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) for (const [state, n] of Object.entries(w.queue)) this.set({ worker: w.workerId, state }, n);
      },
    });
    new Gauge({
      name: 'slotq_slots', help: 'Slots by worker and state (free, held, resetting, broken)', labelNames: ['worker', 'state'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) {
          const counts: Record<string, number> = { free: 0, held: 0, resetting: 0, broken: w.stats.brokenSlots };
          for (const s of w.slots) counts[s.state] = (counts[s.state] ?? 0) + 1;
          for (const [state, n] of Object.entries(counts)) this.set({ worker: w.workerId, state }, n);
        }
      },
    });
    this.workerCounters(registers, snap);
  }

  private workerCounters(registers: Registry[], snap: () => ClusterSnapshot): void {
    new Counter({
      name: 'slotq_container_starts_total', help: 'Slot containers created, by worker', labelNames: ['worker'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) this.inc({ worker: w.workerId }, w.stats.containersCreated);
      },
    });
    new Counter({
      name: 'slotq_container_failures_total', help: 'Slot container creations that failed, by worker', labelNames: ['worker'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) this.inc({ worker: w.workerId }, w.stats.containersFailed);
      },
    });
    new Gauge({
      name: 'slotq_worker_info', help: "1 per registered worker, labelled with its slots' OCI runtime (runc, runsc) and image", labelNames: ['worker', 'runtime', 'image'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) this.set({ worker: w.workerId, runtime: w.runtime, image: w.image }, 1);
      },
    });
    new Gauge({
      name: 'slotq_workers', help: 'Registered workers by state (up, draining, gone)', labelNames: ['state'], registers,
      collect() {
        this.reset();
        for (const w of snap().workers) this.inc({ state: w.state });
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Takes a fresh snapshot and renders every metric in the Prometheus text format. */
  async render(): Promise<string> {
    this.snapshot = await this.source();
    return this.registry.metrics();
  }
}
