import type { ManagedProcess } from '../testkit/processes.js';
import type { RssReport } from './scenario.js';

/** Samples the resident memory of processes (`ps -o rss=`) and of this process, every intervalMs. */
export class RssSampler {
  private readonly procs = new Set<ManagedProcess>();
  private readonly series = new Map<string, number[]>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();

  constructor(
    private readonly intervalMs = 2000,
    private readonly selfName = 'producer (chaos process)',
  ) {}

  watch(proc: ManagedProcess): void {
    this.procs.add(proc);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sample());
    }, this.intervalMs);
    this.sampling = this.sample();
  }

  private record(name: string, kb: number): void {
    const s = this.series.get(name);
    if (s) s.push(kb);
    else this.series.set(name, [kb]);
  }

  private async sample(): Promise<void> {
    this.record(this.selfName, Math.round(process.memoryUsage().rss / 1024));
    for (const p of this.procs) {
      const kb = await p.rssKb().catch(() => undefined);
      if (kb !== undefined) this.record(p.name, kb);
      else if (!p.running) this.procs.delete(p);
    }
  }

  /** Stops sampling; one report per process that was sampled at least once. */
  async stop(): Promise<RssReport[]> {
    clearInterval(this.timer);
    await this.sampling;
    return [...this.series].map(([process, kb]) => report(process, kb));
  }
}

/** Start, end, max, and the samples at a quarter, half and three quarters of the process's sampled life. */
function report(process: string, kb: number[]): RssReport {
  const at = (f: number): number => kb[Math.min(kb.length - 1, Math.floor(f * kb.length))]!;
  return { process, samples: kb.length, startKb: kb[0]!, endKb: kb.at(-1)!, maxKb: Math.max(...kb), quartersKb: [at(0.25), at(0.5), at(0.75)] };
}
