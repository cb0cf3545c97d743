import type { Readable, Writable } from 'node:stream';
import type { Capture } from './frame-parser.js';

/** What a slot container is made from. */
export interface ContainerSpec {
  image: string;
  name?: string;
  labels: Record<string, string>;
  network: string;
  memoryMb: number;
  /** Size-capped tmpfs mounts (path → MB), writable by the image's user (uid 1000). */
  tmpfsMb: Record<string, number>;
  cpus: number;
  pids: number;
  /** Main process; its death ends the container. */
  cmd: string[];
}

export interface ManagedContainer {
  id: string;
  labels: Record<string, string>;
  running: boolean;
}

/** A long-lived attached process in a container (the slot's executor session). */
export interface AttachedProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Closes the connection; the process sees EOF on stdin. */
  close(): void;
}

export interface ExecOutput {
  exitCode: number;
  /** The whole stream, or its head and tail when capBytes was given and exceeded (see the captures). */
  stdout: Buffer;
  stderr: Buffer;
  stdoutCapture: Capture;
  stderrCapture: Capture;
}

/** The worker's only port to Docker. */
export interface ContainerDriver {
  ping(): Promise<void>;
  imageExists(image: string): Promise<boolean>;
  /** Creates and starts a container whose life is tied to this process (it ends when the process dies); returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  /** Removes a container; succeeds when it is already gone. */
  remove(id: string): Promise<void>;
  isRunning(id: string): Promise<boolean>;
  listManaged(labelFilters: string[]): Promise<ManagedContainer[]>;
  attach(id: string, argv: string[]): Promise<AttachedProcess>;
  /** One-shot exec with a deadline (the fallback and the out-of-band kill path). */
  /** capBytes: keep only the first and last capBytes of each stream (bounded memory). */
  exec(id: string, argv: string[], opts?: { stdin?: Buffer; timeoutMs?: number; capBytes?: number }): Promise<ExecOutput>;
}
