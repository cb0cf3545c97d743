import type { EgressPolicy } from '../../shared/calls/egress.js';
import type { ContainerExec } from '../executor/exec-port.js';

/** A size-capped tmpfs owned by the user commands run as. */
export interface TmpfsMount {
  sizeMb: number;
  uid: number;
  gid: number;
}

/** What a slot container is made from. */
export interface ContainerSpec {
  image: string;
  name?: string;
  labels: Record<string, string>;
  network: string;
  /** OCI runtime (Docker's HostConfig.Runtime): runc, runsc (gVisor), ... */
  runtime: string;
  memoryMb: number;
  cpus: number;
  pids: number;
  /** Docker's User for the commands run in it (execs): a name or uid[:gid]; empty for the image's default. */
  user: string;
  /**
   * Who the container's main process (the lifeline) runs as, when not `user`: a uid of its own, so that
   * nothing a command does (kill -9 -1, even as root without CAP_KILL) can end the container.
   */
  mainUser?: string;
  /** Added to the image's Env (which is kept). */
  env: string[];
  /** Main process; replaces the image's ENTRYPOINT and CMD. Its death ends the container. */
  entrypoint: string[];
  /** Size-capped tmpfs mounts (path → size and owner). */
  tmpfs: Record<string, TmpfsMount>;
  /** Named volumes (slotq's helper, mounted read-only). */
  volumes: Array<{ name: string; target: string; readOnly: boolean }>;
  readOnlyRootfs: boolean;
  /** SLOTQ_ROOTFS_MB in bytes: create() applies it as the engine's storage-opt size when probeStorageOpt found it enforced. */
  rootfsCapBytes?: number;
  /**
   * The FIFO channel (fifo-channel.ts): each container gets a directory of its own under localDir (this
   * process's view) mounted read-only from hostDir (the engine's view of the same directory); the worker
   * owns it and makes each handshake's FIFOs there for uid:gid, the slot's user.
   */
  channel?: { localDir: string; hostDir: string; uid: number; gid: number };
}

/** What slotq reads from an image. */
export interface ImageConfig {
  /** Config.User ('' when unset, i.e. root). */
  user: string;
  env: string[];
  sizeBytes: number;
}

/** A runtime the engine offers (docker info's Runtimes). */
export interface EngineRuntime {
  path: string;
  args: string[];
}

export interface ManagedContainer {
  id: string;
  labels: Record<string, string>;
  running: boolean;
}

/** What a volume must hold: a tar, and the treeDigest of its files. */
export interface VolumeContent {
  tar: Buffer;
  digest: string;
}

/** The engine's storage (docker info): its driver (overlay2, btrfs, zfs, ...) and data root. */
export interface EngineStorage {
  driver: string;
  dataRoot: string;
}

export type ContainerDeathCause = 'oom' | 'killed' | 'unknown';

/** The worker's only port to Docker. */
export interface ContainerDriver extends ContainerExec {
  ping(): Promise<void>;
  /** The OCI runtimes the engine offers, by name. */
  runtimes(): Promise<Record<string, EngineRuntime>>;
  imageExists(image: string): Promise<boolean>;
  /** The image's config, or undefined when it is not on this engine. */
  inspectImage(image: string): Promise<ImageConfig | undefined>;
  /** Removes an image, not forced (the engine refuses one a container uses); optional: SLOTQ_IMAGE_CACHE_GB needs it. */
  removeImage?(image: string): Promise<void>;
  /** Pulls an image, reporting progress; rejects on any error event or past the deadline. */
  pullImage(image: string, opts: { timeoutMs: number; onProgress?: (status: string) => void }): Promise<void>;
  /**
   * Makes sure a named volume exists and holds exactly the tar's files, checked by their digest (treeDigest)
   * before it is used: an empty volume is filled, one that differs (tampered, half filled) is emptied and
   * filled again, and one that differs while containers use it fails with an ImageUnusableError.
   */
  ensureVolume(name: string, content: VolumeContent): Promise<void>;
  /** Whether a named volume exists (its content unchecked). */
  hasVolume?(name: string): Promise<boolean>;
  /** Creates and starts a container whose life is tied to this process (it ends when the process dies); returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  /** Removes a container; succeeds when it is already gone. */
  remove(id: string): Promise<void>;
  isRunning(id: string): Promise<boolean>;
  /** Applies an egress policy to a container's network namespace (egress.ts); optional: without it a policy is refused. */
  setEgress?(id: string, policy: EgressPolicy): Promise<void>;
  /**
   * Why a container that is gone died, from the engine's events since sinceMs: 'oom' when the kernel's
   * OOM killer struck inside it (its own doing), 'killed' when someone outside killed or removed it,
   * 'unknown' otherwise. Optional: a driver without it reports every death as from outside.
   */
  deathCause?(id: string, sinceMs: number): Promise<ContainerDeathCause>;
  listManaged(labelFilters: string[]): Promise<ManagedContainer[]>;
  /** The engine's storage driver and data root. Optional: SLOTQ_ROOTFS_MB needs it. */
  storage?(): Promise<EngineStorage>;
  /**
   * Whether the engine enforces a container's storage-opt size: creates (never starts) a throwaway container
   * of image with one and removes it. undefined when accepted (create() applies spec.rootfsCapBytes from then
   * on), else the engine's refusal.
   */
  probeStorageOpt?(image: string, labels: Record<string, string>): Promise<string | undefined>;
  /** The host path of a container's writable layer (overlay2's UpperDir), undefined when the engine has none. */
  writableLayer?(id: string): Promise<string | undefined>;
}
