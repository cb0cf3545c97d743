import type { EgressPolicy } from '../../shared/calls/egress.js';
import type { AttachedProcess, ExecOutput } from '../executor/exec-port.js';
import type { SessionShells } from '../executor/executor-protocol.js';
import type { RunRequest, RunResult } from '../executor/session.js';

/**
 * The tools' one port to their slot: what a call needs of it. The worker's SlotRuntime (lifecycle/) implements
 * it; the tools never see containers, queues or the slot's life.
 */

/** What a slot offers beyond its shells: the image's tmux, and whether it has no network. */
export interface SlotOffer extends SessionShells {
  tmux: string;
  networkIsolated: boolean;
  /** The slot's user as Docker's User ('' = the image's default, root) and its uid: the executor runs as it. */
  user?: string;
  uid?: number;
}

/** Runs one request on the slot's executor (the slot handles sessions, fallback and broken containers). */
export type SlotRunner = (req: RunRequest) => Promise<RunResult>;

/** What a call needs of its slot: the runner, what its image offers, and container access for artifacts. */
export interface SlotAccess {
  run: SlotRunner;
  offer: SlotOffer;
  io: ArtifactIo;
  /** Sets the slot's egress policy from outside it (the harness's acquire with network); absent: refused. */
  egress?(policy: EgressPolicy): Promise<void>;
}

/**
 * Container access the artifact helpers need beyond the slot's executor (for outputs over its capture),
 * through the slot's runtime (which tells a dead container apart). Scripts run in slotq's helper shell, in a
 * process group killed at the deadline.
 */
export interface ArtifactIo {
  /** One-shot exec of a script; stdout comes back whole up to INTERNAL_STDOUT_BYTES (its capture counts the rest). */
  exec(script: string, timeoutMs: number): Promise<ExecOutput>;
  /**
   * A one-shot script with streamed stdout (no size cap; the caller closes it). Runs as the container's user
   * inside its mounts (Docker's archive API cannot see tmpfs mounts).
   */
  stream(script: string, timeoutMs: number): Promise<AttachedProcess>;
}

/**
 * The most stdout a one-shot script keeps (ArtifactIo.exec): above the largest a script prints by design
 * (a 5 MB read; 5 000 list entries of PATH_MAX names, ~21 MB), so memory stays bounded whatever runs.
 */
export const INTERNAL_STDOUT_BYTES = 32 * 1024 * 1024;
