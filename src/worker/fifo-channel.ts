import { randomBytes } from 'node:crypto';
import { constants, open } from 'node:fs';
import { chown, mkdir, rm, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { InternalError } from '../shared/errors.js';
import { HELPER_SH } from './helper-bundle.js';

/**
 * The fast channel (SLOTQ_CHANNEL=fifo): a slot's calls and their answers travel over a pair of FIFOs in a
 * per-container directory that the worker and the container both see (a bind mount), so dockerd and
 * containerd-shim copy no per-call byte. The attached exec stream stays open as the session's lifeline
 * (its end is the supervisor's death) and as the fallback: when the FIFOs cannot be set up (no shared
 * filesystem, gVisor, a directory the slot's user cannot write), the session keeps using the stream.
 *
 * Handshake, started by the worker with a request of op `f` on the stream: the supervisor makes the FIFOs
 * `i` and `o`, holds `i` open read-write (so the worker's non-blocking open for writing finds a reader), says
 * FIFO on the stream, then switches its stdin and stdout to them and says FREADY on `o`. The worker unlinks
 * both names once FREADY arrives: no process started later in the container can open them by path.
 *
 * Threat model: the directory is the slot's own (only its container mounts it), mode 0700, owned by the
 * slot's user. A call's command runs as that user and inherits the supervisor's stdout, exactly as on the
 * stream; it cannot forge an answer because each call's end marker carries a random nonce that only the
 * supervisor reads (from its stdin, never the command's). A command of the same slot that reads the
 * supervisor's descriptors through /proc can see its own slot's later calls, as on the stream: slots never
 * share a channel, so no other trajectory's calls or results are reachable.
 */

/** Where the slot's channel directory is mounted inside its container. */
export const CHANNEL_TARGET = '/run/slotq-ch';

/** The supervisor's side of the handshake (op f), in its helper shell; never fails the loop. */
export const FIFO_SWITCH_SH = `rm -f ${CHANNEL_TARGET}/i ${CHANNEL_TARGET}/o; if mkfifo -m 600 ${CHANNEL_TARGET}/i ${CHANNEL_TARGET}/o && exec 3<>${CHANNEL_TARGET}/i; then printf 'FIFO\\n'; exec 1>${CHANNEL_TARGET}/o 0<${CHANNEL_TARGET}/i 3<&-; printf 'FREADY\\n'; else printf 'NOFIFO\\n'; fi`;

/** The handshake request, in the supervisor's request format (op f, no payload). */
export const FIFO_REQUEST = "f 0 0 0\n''\n";

/** How long the handshake may take before the session falls back to the stream. */
export const FIFO_HANDSHAKE_MS = 3000;

/** The worker's ends of an established channel. */
export interface FifoChannel {
  /** Requests to the supervisor. */
  input: Socket;
  /** Everything the supervisor writes (paused until the session listens). */
  output: Socket;
  close(): void;
}

/** A fresh channel directory for one container (0700, the slot user's), or none when this process cannot make one. */
export async function makeChannelDir(c: { localDir: string; hostDir: string; uid: number; gid: number }): Promise<{ local: string; host: string } | undefined> {
  const name = randomBytes(12).toString('hex');
  const local = `${c.localDir}/${name}`;
  try {
    await mkdir(local, { recursive: true, mode: 0o700 });
    await chown(local, c.uid, c.gid);
  } catch {
    await removeChannelDir(local);
    return undefined; // no channel for this container: its session uses the stream
  }
  return { local, host: `${c.hostDir}/${name}` };
}

export const removeChannelDir = async (dir: string | undefined): Promise<void> => void (dir && (await rm(dir, { recursive: true, force: true }).catch(() => undefined)));

/** Kills a supervisor left blocked in a failed handshake (a one-shot exec of the helper's shell). */
export const killPidArgv = (pid: number): string[] => [HELPER_SH, '-c', `kill -9 ${pid}`];

const openFd = promisify(open);

/** Engines on which a handshake failed: their later sessions use the stream without trying again. */
const failedOn = new WeakSet<object>();
export const channelFailedOn = (engine: object): boolean => failedOn.has(engine);
export const markChannelFailed = (engine: object): void => void failedOn.add(engine);

/**
 * Opens the worker's ends of the FIFOs the supervisor announced in `dir` (the worker's view of the slot's
 * channel directory) and waits for FREADY on them.
 */
export async function connectFifos(dir: string, timeoutMs: number): Promise<FifoChannel> {
  // Writer first: the supervisor holds `i` open, so this non-blocking open finds a reader. `o` read-write:
  // the open never blocks and a read never sees EOF before the supervisor opens its end.
  const inFd = await openFd(`${dir}/i`, constants.O_WRONLY | constants.O_NONBLOCK);
  let outFd: number;
  try {
    outFd = await openFd(`${dir}/o`, constants.O_RDWR | constants.O_NONBLOCK);
  } catch (err) {
    new Socket({ fd: inFd, readable: false, writable: true }).destroy();
    throw err;
  }
  const input = new Socket({ fd: inFd, readable: false, writable: true });
  const output = new Socket({ fd: outFd, readable: true, writable: false });
  input.on('error', () => undefined); // the session hears of a dead supervisor through its lifeline
  const close = (): void => {
    input.destroy();
    output.destroy();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => done(new InternalError(`the executor's FIFO channel did not answer within ${timeoutMs} ms`)), timeoutMs);
      const onData = (chunk: Buffer): void => {
        seen += chunk.toString('latin1');
        if (seen === 'FREADY\n') done();
        else if (!'FREADY\n'.startsWith(seen)) done(new InternalError(`unexpected bytes on the executor's FIFO channel: ${JSON.stringify(seen.slice(0, 40))}`));
      };
      const onEnd = (): void => done(new InternalError("the executor's FIFO channel closed during the handshake"));
      const done = (err?: Error): void => {
        clearTimeout(timer);
        output.off('data', onData).off('end', onEnd).off('error', onEnd);
        output.pause();
        if (err) reject(err);
        else resolve();
      };
      output.on('data', onData).on('end', onEnd).on('error', onEnd);
    });
  } catch (err) {
    close();
    throw err;
  }
  await Promise.all([unlink(`${dir}/i`), unlink(`${dir}/o`)]);
  return { input, output, close };
}
