import type { ContainerDriver, ContainerSpec, ManagedContainer } from '../../src/worker/engine/container-driver.js';
import type { ContainerSource, ManagedSlot } from '../../src/worker/lifecycle/slot-set.js';

type FakePort = Pick<ContainerDriver, 'create' | 'remove' | 'isRunning' | 'listManaged'>;

/** An in-memory ContainerDriver for unit tests of the worker's parts: containers are records, nothing runs. */
export class FakeDriver implements FakePort {
  readonly containers = new Map<string, { labels: Record<string, string>; running: boolean }>();
  readonly removed: string[] = [];
  private seq = 0;
  /** create() fails while this is set (then clears it when `once`). */
  failCreate: { message: string; once: boolean } | undefined;

  create(spec: Pick<ContainerSpec, 'labels'>): Promise<string> {
    if (this.failCreate) {
      const { message, once } = this.failCreate;
      if (once) this.failCreate = undefined;
      return Promise.reject(new Error(message));
    }
    const id = `c${++this.seq}`;
    this.containers.set(id, { labels: { ...spec.labels }, running: true });
    return Promise.resolve(id);
  }

  remove(id: string): Promise<void> {
    if (this.containers.delete(id)) this.removed.push(id);
    return Promise.resolve();
  }

  isRunning(id: string): Promise<boolean> {
    return Promise.resolve(this.containers.get(id)?.running ?? false);
  }

  listManaged(labelFilters: string[]): Promise<ManagedContainer[]> {
    const match = (labels: Record<string, string>): boolean => labelFilters.every((f) => labels[f.slice(0, f.indexOf('='))] === f.slice(f.indexOf('=') + 1));
    return Promise.resolve([...this.containers].filter(([, c]) => match(c.labels)).map(([id, c]) => ({ id, labels: c.labels, running: c.running })));
  }

  /** A ContainerSource creating containers with these labels (what the worker's pool does). */
  source(labels: Record<string, string> = {}): ContainerSource {
    return { create: () => this.create({ labels }), take: () => this.create({ labels }) };
  }
}

/** A slot without an executor: a FIFO, a container ID, and a session that opens unless told to fail. */
export class FakeSlot implements ManagedSlot {
  brokenReason: string | undefined;
  workspaceLost = false;
  sessionOpen = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly slotId: string,
    public containerId: string,
    private readonly failOpen: (containerId: string) => boolean = () => false,
  ) {}

  enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  openSession(): Promise<void> {
    if (this.failOpen(this.containerId)) return Promise.reject(new Error(`no session on ${this.containerId}`));
    this.sessionOpen = true;
    return Promise.resolve();
  }

  async attachContainer(containerId: string): Promise<void> {
    this.containerId = containerId;
    this.brokenReason = undefined;
    await this.openSession();
  }

  close(): void {
    this.sessionOpen = false;
  }
}
