import type { Duplex } from 'node:stream';

/** The engine's events stream, as the death watch reads it. */
export interface EngineEvents {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'error', fn: () => void): unknown;
}

/**
 * Exec streams by container, ended with the container: under gVisor neither an exec's stream nor the
 * lifeline ends when the container is killed, so the engine's `die` events end its exec streams instead.
 * One unref'd events stream per driver (opened by `open`), restarted when it ends.
 */
export class DeathWatch {
  private readonly execStreams = new Map<string, Set<Duplex>>();
  private watching: Promise<void> | undefined;

  /** open: the engine's die and destroy events of slotq's containers. */
  constructor(private readonly open: () => Promise<EngineEvents>) {}

  /** Keeps the stream until the container ends (or the stream closes). */
  track(id: string, stream: Duplex): Duplex {
    const set = this.execStreams.get(id) ?? new Set<Duplex>();
    this.execStreams.set(id, set.add(stream));
    stream.once('close', () => set.delete(stream));
    return stream;
  }

  /** Starts the events stream unless it runs. */
  watch(): void {
    this.watching ??= this.open().then(
      (events) => {
        (events as { socket?: { unref?: () => void } }).socket?.unref?.();
        let buf = '';
        events.on('data', (chunk: Buffer) => {
          buf += chunk.toString('utf8');
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const id = /"id":"([0-9a-f]{64})"/.exec(buf.slice(0, nl))?.[1];
            buf = buf.slice(nl + 1);
            if (id && this.execStreams.has(id)) this.ended(id);
          }
        });
        const again = (): void => void (this.watching = undefined);
        events.on('end', again);
        events.on('error', again);
      },
      () => void (this.watching = undefined),
    );
  }

  /** The container ended: its exec streams end too. */
  ended(id: string): void {
    for (const stream of this.execStreams.get(id) ?? []) stream.destroy(new Error(`container ${id.slice(0, 12)} ended`));
    this.execStreams.delete(id);
  }
}
