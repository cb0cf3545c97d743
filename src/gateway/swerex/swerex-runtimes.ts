import type { Logger } from 'pino';
import type { Slot } from '../../shared/calls/schemas.js';
import { toError } from '../../shared/errors.js';
import type { Session, SessionManager } from '../sessions.js';

/** One SWE-ReX base URL's state: its gateway session, its slot, the names of its bash sessions. */
export interface SwerexRuntime {
  readonly trajectoryId: string;
  readonly sessionId: string;
  readonly slot: Slot;
  readonly shells: Set<string>;
}

/**
 * The slots behind /swerex/{trajectory_id}: the first call that needs one opens a gateway session (TTL as any
 * other: an agent that vanishes leaks nothing) and acquires a slot for the trajectory in it; /close releases it.
 */
export class SwerexRuntimes {
  private readonly runtimes = new Map<string, Promise<SwerexRuntime>>();

  constructor(
    private readonly sessions: SessionManager,
    private readonly ttlS: number,
    private readonly log: Logger,
  ) {}

  /** The runtime of a trajectory, its slot acquired on first use (concurrent first calls share one acquire). */
  async get(trajectoryId: string): Promise<SwerexRuntime> {
    let p = this.runtimes.get(trajectoryId);
    if (!p) {
      p = this.open(trajectoryId);
      this.runtimes.set(trajectoryId, p);
      p.catch(() => this.runtimes.delete(trajectoryId));
    }
    return p;
  }

  /** Runs fn in the runtime's gateway session (renewing it); an expired session drops the runtime. */
  async use<T>(trajectoryId: string, fn: (rt: SwerexRuntime, s: Session) => Promise<T>): Promise<T> {
    const rt = await this.get(trajectoryId);
    try {
      return await this.sessions.use(rt.sessionId, (s) => fn(rt, s));
    } catch (err) {
      if (!this.sessions.has(rt.sessionId)) this.runtimes.delete(trajectoryId);
      throw err;
    }
  }

  /** /close: the slot released (with reset), the gateway session closed. A trajectory never used is a no-op. */
  async close(trajectoryId: string): Promise<void> {
    const p = this.runtimes.get(trajectoryId);
    if (!p) return;
    this.runtimes.delete(trajectoryId);
    const rt = await p.catch(() => undefined);
    if (!rt || !this.sessions.has(rt.sessionId)) return;
    await this.sessions
      .use(rt.sessionId, (s) => s.backend.release(rt.slot, { resetWorkspace: true }))
      .catch((err: unknown) => this.log.warn({ trajectoryId, err: toError(err).message }, 'swerex slot release failed'));
    await this.sessions.close(rt.sessionId, { reason: 'swerex /close' }).catch(() => undefined);
  }

  private async open(trajectoryId: string): Promise<SwerexRuntime> {
    const s = await this.sessions.open(this.ttlS, `swerex:${trajectoryId}`);
    try {
      const slot = await this.sessions.use(s.id, (sess) => sess.backend.acquire(trajectoryId));
      this.log.info({ trajectoryId, session: s.id, slotId: slot.slotId }, 'swerex runtime opened');
      return { trajectoryId, sessionId: s.id, slot, shells: new Set() };
    } catch (err) {
      await this.sessions.close(s.id, { reason: 'swerex acquire failed' }).catch(() => undefined);
      throw err;
    }
  }
}
