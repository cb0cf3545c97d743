import type { Logger } from 'pino';
import type { SlotqConfig } from '../shared/config.js';
import { SlotqError, toError } from '../shared/errors.js';
import { randomId } from '../shared/ids.js';
import { SlotBackend } from '../producer/slot-backend.js';

/** A session id that is not (or no longer) open: 404, retryable, the client opens a new session. */
export class UnknownSessionError extends SlotqError {
  constructor(id: string) {
    super('BACKEND_STOPPED', `Unknown session ${id}: it was closed, expired after its TTL (its slots were released with reset), or the gateway restarted; open a new session`);
  }
}

export interface Session {
  readonly id: string;
  readonly backend: SlotBackend;
  readonly ttlMs: number;
  readonly client: string;
  lastSeenMs: number;
  inflight: number;
}

export interface SessionManagerOptions {
  config: SlotqConfig;
  logger: Logger;
  maxSessions?: number;
  /** How often idle sessions are looked for (default: a quarter of the shortest TTL, 250 ms..1 s). */
  sweepMs?: number;
}

/**
 * Sessions of the gateway: each is one SlotBackend (one producer with its own leases, and its own trajectory
 * IDs unless it opened with a namespace). Every request
 * and keepalive renews it; one idle for longer than its TTL (no request in flight) is closed, which
 * releases its slots with reset, so a client killed by SIGKILL leaks nothing.
 */
export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly closing = new Set<Promise<void>>();
  private readonly log: Logger;
  private readonly maxSessions: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: SessionManagerOptions) {
    this.log = opts.logger;
    this.maxSessions = opts.maxSessions ?? 1024;
    this.timer = setInterval(() => this.sweep(), opts.sweepMs ?? 250);
    this.timer.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** namespace: shared with the sessions (and producers) that name the same one; without it the session's trajectory IDs are its own. */
  async open(ttlS: number, client = '', namespace?: string): Promise<Session> {
    if (this.stopped) throw new SlotqError('BACKEND_STOPPED', 'The gateway is shutting down');
    if (this.sessions.size >= this.maxSessions) throw new SlotqError('NO_SLOT', `The gateway holds ${this.maxSessions} sessions already; close some or retry later`);
    const backend = new SlotBackend({ ...this.opts.config, logger: this.log, ...(namespace === undefined ? {} : { namespace }) });
    await backend.start();
    const session: Session = { id: `s${randomId(16)}`, backend, ttlMs: Math.round(ttlS * 1000), client, lastSeenMs: Date.now(), inflight: 0 };
    this.sessions.set(session.id, session);
    this.log.info({ session: session.id, producerId: backend.producerId, ttlS, client, namespace: namespace ?? '' }, 'session opened');
    return session;
  }

  /** Runs fn for the session, which counts as in use (never idle) until fn settles. */
  async use<T>(id: string, fn: (s: Session) => Promise<T>): Promise<T> {
    const s = this.sessions.get(id);
    if (!s) throw new UnknownSessionError(id);
    s.inflight++;
    s.lastSeenMs = Date.now();
    try {
      return await fn(s);
    } finally {
      s.inflight--;
      s.lastSeenMs = Date.now();
    }
  }

  has(id: string): boolean {
    return this.sessions.has(id);
  }

  keepalive(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new UnknownSessionError(id);
    s.lastSeenMs = Date.now();
    return s;
  }

  /** Closes the session: stop() releases its slots with reset and fails its calls in flight (BACKEND_STOPPED). */
  async close(id: string, opts: { purge?: boolean; reason?: string } = {}): Promise<void> {
    const s = this.sessions.get(id);
    if (!s) throw new UnknownSessionError(id);
    this.sessions.delete(id);
    this.log.info({ session: id, reason: opts.reason ?? 'closed by the client', purge: opts.purge ?? false }, 'session closing');
    const done = s.backend.stop({ purge: opts.purge ?? false }).catch((err: unknown) => this.log.warn({ session: id, err: toError(err).message }, 'session stop failed'));
    this.closing.add(done);
    try {
      await done;
    } finally {
      this.closing.delete(done);
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.inflight === 0 && now - s.lastSeenMs > s.ttlMs) {
        this.close(s.id, { reason: `idle for more than its TTL (${s.ttlMs} ms)` }).catch(() => undefined);
      }
    }
  }

  /** Closes every session (their slots released with reset) and waits for closings in progress. */
  async closeAll(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.sessions.keys()].map((id) => this.close(id, { reason: 'gateway stopping' }).catch(() => undefined)));
    await Promise.all([...this.closing]);
  }
}
