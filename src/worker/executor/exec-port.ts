import type { Readable, Writable } from 'node:stream';
import type { Capture } from './bounded-capture.js';
import type { ChannelDir } from './fifo-channel.js';

/** A long-lived attached process in a container (the slot's executor session). */
export interface AttachedProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Closes the connection; the process sees EOF on stdin. */
  close(): void;
}


/** A one-shot exec's options. Memory is bounded whatever the command prints: only the bytes below are kept. */
export interface ExecOptions {
  stdin?: Buffer;
  timeoutMs?: number;
  /** The first and last capBytes of each stream are kept, the middle only counted (default CAPTURE_HEAD_BYTES). */
  capBytes?: number;
  /** Keep stdout whole up to this many bytes instead (slotq's own scripts, which bound what they print); past it only counted. */
  wholeStdoutBytes?: number;
  /** Run as this user (Docker's User: name, uid or uid:gid) instead of the slot's. */
  user?: string;
}


export interface ExecOutput {
  exitCode: number;
  /** The whole stream, or what was kept of it when it outgrew the bounds (the captures' totalBytes say). */
  stdout: Buffer;
  stderr: Buffer;
  stdoutCapture: Capture;
  stderrCapture: Capture;
}


/**
 * What the executor needs of a container engine: an attached process, a one-shot exec, and the container's
 * channel directory. The engine's ContainerDriver (engine/container-driver.ts) extends it.
 */
export interface ContainerExec {
  attach(id: string, argv: string[]): Promise<AttachedProcess>;
  /** This process's path of the container's channel directory and the slot user's uid:gid, when it has one (ContainerSpec.channel). */
  channelDir?(id: string): ChannelDir | undefined;
  /** One-shot exec with a deadline (the fallback and the out-of-band kill path); its output is always bounded (ExecOptions). */
  exec(id: string, argv: string[], opts?: ExecOptions): Promise<ExecOutput>;
}
