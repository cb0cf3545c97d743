import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { close, constants, fstat, lstat, open, type Stats } from 'node:fs';
import { chmod, lchown, mkdir, rm, unlink } from 'node:fs/promises';
import { Socket } from 'node:net';
import { promisify } from 'node:util';
import { InternalError } from '../../shared/errors.js';
import { HELPER_SH } from './helper-bundle.js';

/**
 * The fast channel (SLOTQ_CHANNEL=fifo): a slot's calls and their answers travel over a pair of FIFOs in a
 * per-container directory that the worker and the container both see (a bind mount), so dockerd and
 * containerd-shim copy no per-call byte. The attached exec stream stays open as the session's lifeline
 * (its end is the supervisor's death) and as the fallback: when the FIFOs cannot be set up (no shared
 * filesystem, gVisor, a worker that cannot make FIFOs for the slot's user), that session keeps the stream.
 *
 * Handshake, started by the worker for each session: it makes two FIFOs with random names (0600, the slot
 * user's) in the directory and sends a request of op `f` naming them on the stream. The supervisor only
 * opens them (it makes nothing): holds `i` open read-write (so the worker's non-blocking open for writing
 * finds a reader), says FIFO on the stream, then switches its stdin and stdout to them and says FREADY on `o`. The worker unlinks both names once FREADY arrives (or the handshake fails):
 * no process started later in the container can open them by path.
 *
 * Threat model: the directory is the slot's own (only its container mounts it), made by the worker, mode
 * 0311 (the worker alone may write it; nobody may list it, not even a slot running as the same uid), and
 * mounted read-only: the slot cannot put a byte, a name or a symlink in it (FIFO I/O is no filesystem
 * write, so the read-only mount does not stop the channel). The worker opens each name with O_NOFOLLOW and
 * checks by fstat that it holds the very FIFO it made (S_ISFIFO, same inode): nothing in a slot can make
 * the worker open another file or another slot's descriptor. A call's command runs as the slot's user and
 * inherits the supervisor's stdout, exactly as on the stream; it cannot forge an answer because each call's
 * end marker carries a random nonce that only the supervisor reads (from its stdin, never the command's).
 * A command of the same slot that reads the supervisor's descriptors through /proc can see its own slot's
 * later calls, as on the stream: slots never share a channel, so no other trajectory's calls or results are
 * reachable. A failed handshake costs that session the fast path only; a container whose handshakes fail
 * CHANNEL_MAX_FAILURES times in a row stops trying.
 */

/** Where the slot's channel directory is mounted inside its container (read-only). */
export const CHANNEL_TARGET = '/run/slotq-ch';

/** A channel directory: writable by its owner (the worker) only, listable by nobody without CAP_DAC_READ_SEARCH. */
export const CHANNEL_DIR_MODE = 0o311;

/**
 * The supervisor's side of the handshake (op f: the names of `i` and `o` in the id and nonce fields), in its
 * helper shell; never fails the loop (`command exec`: a failed redirection does not end the shell).
 */
export const FIFO_SWITCH_SH = `C=${CHANNEL_TARGET}; if [ -p "$C/$id" ] && [ -p "$C/$nonce" ] && command exec 3<>"$C/$id"; then printf 'FIFO\\n'; exec 1>"$C/$nonce" 0<"$C/$id" 3<&-; printf 'FREADY\\n'; else printf 'NOFIFO\\n'; fi`;

/** The handshake request for FIFOs `i` and `o`, in the supervisor's request format (op f, no payload). */
export const fifoRequest = (names: { i: string; o: string }): string => `f ${names.i} ${names.o} 0\n''\n`;

/** How long the handshake may take before the session falls back to the stream. */
export const FIFO_HANDSHAKE_MS = 3000;

/** Failed handshakes in a row after which a container's sessions stay on the stream. */
export const CHANNEL_MAX_FAILURES = 3;

/** This process's path of a container's channel directory, and the slot user who opens its FIFOs. */
export interface ChannelDir {
  path: string;
  uid: number;
  gid: number;
}

/** The worker's ends of an established channel. */
export interface FifoChannel {
  /** Requests to the supervisor. */
  input: Socket;
  /** Everything the supervisor writes (paused until the session listens). */
  output: Socket;
  close(): void;
}

/**
 * A fresh channel directory for one container (the worker's, CHANNEL_DIR_MODE), or none when this process
 * cannot make one or cannot give the slot's user a FIFO.
 */
export async function makeChannelDir(c: { localDir: string; hostDir: string; uid: number; gid: number }): Promise<{ local: string; host: string } | undefined> {
  // A worker not running as root cannot hand a FIFO to another uid (chown).
  const self = process.getuid?.();
  if (self !== undefined && self !== 0 && self !== c.uid) return undefined;
  const name = randomBytes(12).toString('hex');
  const local = `${c.localDir}/${name}`;
  try {
    await mkdir(c.localDir, { recursive: true, mode: 0o755 });
    await mkdir(local, { mode: CHANNEL_DIR_MODE });
    await chmod(local, CHANNEL_DIR_MODE); // not the umask's
  } catch {
    await removeChannelDir(local);
    return undefined; // no channel for this container: its sessions use the stream
  }
  return { local, host: `${c.hostDir}/${name}` };
}

export async function removeChannelDir(dir: string | undefined): Promise<void> {
  if (!dir) return;
  failures.delete(dir);
  await chmod(dir, 0o700).catch(() => undefined); // its owner may list it again (a worker not running as root)
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}

/** Consecutive failed handshakes by channel directory (one per container; forgotten with the directory). */
const failures = new Map<string, number>();
export const channelGivenUp = (dir: string): boolean => (failures.get(dir) ?? 0) >= CHANNEL_MAX_FAILURES;
export const noteChannelResult = (dir: string, ok: boolean): void => void (ok ? failures.delete(dir) : failures.set(dir, (failures.get(dir) ?? 0) + 1));

/** Kills a supervisor left blocked in a failed handshake (a one-shot exec of the helper's shell). */
export const killPidArgv = (pid: number): string[] => [HELPER_SH, '-c', `kill -9 ${pid}`];

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const lstatPath = promisify(lstat);
const closeFd = promisify(close);
const run = promisify(execFile);

interface FifoPair {
  i: string;
  o: string;
  /** Their inodes, to tell the FIFO the worker made from anything else found under its name. */
  ino: { i: number; o: number };
}

/** Two FIFOs with fresh random names, 0600, owned by the slot's user (Node has no mkfifo: coreutils' makes both). */
async function makeFifoPair(ch: ChannelDir): Promise<FifoPair> {
  const [i, o] = [`i${randomBytes(12).toString('hex')}`, `o${randomBytes(12).toString('hex')}`];
  try {
    await run('mkfifo', ['-m', '600', '--', `${ch.path}/${i}`, `${ch.path}/${o}`], { timeout: FIFO_HANDSHAKE_MS });
    await Promise.all([lchown(`${ch.path}/${i}`, ch.uid, ch.gid), lchown(`${ch.path}/${o}`, ch.uid, ch.gid)]);
    const [si, so] = await Promise.all([lstatPath(`${ch.path}/${i}`), lstatPath(`${ch.path}/${o}`)]);
    if (!si.isFIFO() || !so.isFIFO()) throw new InternalError('mkfifo made something other than FIFOs');
    return { i, o, ino: { i: si.ino, o: so.ino } };
  } catch (err) {
    await unlinkPair(ch.path, { i, o });
    throw err;
  }
}

const unlinkPair = (dir: string, p: { i: string; o: string }): Promise<unknown> => Promise.all([unlink(`${dir}/${p.i}`).catch(() => undefined), unlink(`${dir}/${p.o}`).catch(() => undefined)]);

/** Opens `path` without following a symlink, and only if it is still the FIFO of inode `ino`. */
export async function openOwnFifo(path: string, flags: number, ino: number | undefined): Promise<number> {
  const fd = await openFd(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  let st: Stats | undefined;
  try {
    st = await fstatFd(fd);
  } catch {
    st = undefined;
  }
  if (st?.isFIFO() && (ino === undefined || st.ino === ino)) return fd;
  await closeFd(fd);
  throw new InternalError(`${path} is not the FIFO the worker made`);
}

/** One handshake's FIFOs, from before the request until FREADY, or its failure; the names go in both cases. */
export class FifoHandshake {
  private constructor(
    private readonly dir: string,
    private readonly pair: FifoPair,
  ) {}

  static async prepare(ch: ChannelDir): Promise<FifoHandshake> {
    return new FifoHandshake(ch.path, await makeFifoPair(ch));
  }

  /** The op f request naming this handshake's FIFOs. */
  get request(): string {
    return fifoRequest(this.pair);
  }

  /** Unlinks the names (again: idempotent). */
  async discard(): Promise<void> {
    await unlinkPair(this.dir, this.pair);
  }

  /**
   * After the supervisor said FIFO: opens the worker's ends, waits for FREADY on `o`, unlinks both names.
   * In this order: the supervisor holds `i` open read-write, so the non-blocking open for writing finds a
   * reader; its own open of `o` waits for the worker's, so its `i` has the worker's writer before it drops its
   * own (else its first read could see EOF).
   */
  async connect(timeoutMs: number): Promise<FifoChannel> {
    const inFd = await openOwnFifo(`${this.dir}/${this.pair.i}`, constants.O_WRONLY, this.pair.ino.i);
    let outFd: number;
    try {
      // Read-write: the open never blocks and a read never sees EOF before the supervisor opens its end.
      outFd = await openOwnFifo(`${this.dir}/${this.pair.o}`, constants.O_RDWR, this.pair.ino.o);
    } catch (err) {
      await closeFd(inFd);
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
      await awaitFready(output, timeoutMs);
    } catch (err) {
      close();
      throw err;
    }
    await this.discard();
    return { input, output, close };
  }
}

function awaitFready(output: Socket, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
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
}
