import Docker from 'dockerode';
import { slotCreateOptions } from './create-options.js';
import { PassThrough, Readable, type Duplex } from 'node:stream';
import type { ContainerDeathCause, ContainerDriver, ContainerSpec, EngineRuntime, EngineStorage, ImageConfig, ManagedContainer, VolumeContent } from './container-driver.js';
import type { AttachedProcess, ExecOptions, ExecOutput } from '../executor/exec-port.js';
import { withDeadline } from '../../shared/deadline.js';
import { ImageUnusableError, SlotBrokenError, SlotqError, toError } from '../../shared/errors.js';
import type { EgressPolicy } from '../../shared/egress.js';
import { applyEgress } from './egress.js';
import { LABELS } from '../../shared/keys.js';
import { BoundedCapture, CAPTURE_HEAD_BYTES } from '../executor/bounded-capture.js';
import { CHANNEL_TARGET, makeChannelDir, removeChannelDir, type ChannelDir } from '../executor/fifo-channel.js';
import { EMPTY_TREE_DIGEST, FILL_IMAGE, FILL_MOUNT, fillImageTar, treeDigest } from '../executor/helper-digest.js';

const HELPER_LABEL = 'org.slotq.helper';
/** Rounds of check, fill or wait on the helper volume (250 ms apart while another worker fills it). */
const FILL_ROUNDS = 80;
/** A fill container older than this belongs to a worker that died filling. */
const STALE_FILLER_S = 60;

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number } | null)?.statusCode;

/** Whether an inspect finds its object: false on 404, other errors thrown. */
async function found(inspect: Promise<unknown>): Promise<boolean> {
  try {
    await inspect;
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

/** ContainerDriver over dockerode (DOCKER_HOST or the local socket). */
export class DockerDriver implements ContainerDriver {
  private readonly lifelines = new Map<string, Duplex>();
  /** Container id → this process's path of its channel directory, and the slot's user. */
  private readonly channels = new Map<string, ChannelDir>();
  /** Exec streams by container, ended with its lifeline: under gVisor an exec's stream can outlive its killed container. */
  private readonly execStreams = new Map<string, Set<Duplex>>();
  private deathWatch: Promise<void> | undefined;
  /** The user execs run as, for containers whose main process runs as another (spec.mainUser). */
  private readonly execUsers = new Map<string, string>();
  /** Whether the engine took a storage-opt size (probeStorageOpt): create() applies spec.rootfsCapBytes then. */
  private storageOpt: { countsImage: boolean } | undefined;
  private storageInfo: Promise<EngineStorage> | undefined;
  private readonly imageBytes = new Map<string, number>();
  constructor(private readonly docker: Docker = new Docker()) {}

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new Error('Docker engine is not reachable: start it (`bash scripts/provision.sh` does on Debian) or set DOCKER_HOST', { cause: err });
    }
  }

  async runtimes(): Promise<Record<string, EngineRuntime>> {
    const info = (await this.docker.info()) as { Runtimes?: Record<string, { path?: string; runtimeArgs?: string[] }> };
    return Object.fromEntries(Object.entries(info.Runtimes ?? {}).map(([name, r]) => [name, { path: r.path ?? '', args: r.runtimeArgs ?? [] }]));
  }

  async imageExists(image: string): Promise<boolean> {
    return found(this.docker.getImage(image).inspect());
  }

  async inspectImage(image: string): Promise<ImageConfig | undefined> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return { user: info.Config?.User ?? '', env: info.Config?.Env ?? [], sizeBytes: info.Size ?? 0 };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  /** Removes an image (not forced: the engine refuses one a container uses); gone already is fine. */
  async removeImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).remove();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
  }

  async pullImage(image: string, opts: { timeoutMs: number; onProgress?: (status: string) => void }): Promise<void> {
    const stream = (await withDeadline(this.docker.pull(image), opts.timeoutMs, () => new Error(`pulling ${image}: no answer within ${opts.timeoutMs} ms`))) as NodeJS.ReadableStream & { destroy?: () => void };
    // followProgress reports {error} events as ordinary progress and still "finishes": check every event.
    await withDeadline(
      new Promise<void>((resolve, reject) => {
        let failed: string | undefined;
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : failed ? reject(new Error(failed)) : resolve()),
          (ev: { status?: string; error?: string; errorDetail?: { message?: string }; id?: string; progress?: string }) => {
            if (ev.error || ev.errorDetail) failed ??= ev.errorDetail?.message ?? ev.error ?? 'pull failed';
            else if (ev.status) opts.onProgress?.(`${ev.id ? `${ev.id}: ` : ''}${ev.status}${ev.progress ? ` ${ev.progress}` : ''}`);
          },
        );
      }),
      opts.timeoutMs,
      () => (stream.destroy?.(), new Error(`pulling ${image} took longer than ${opts.timeoutMs} ms`)),
    );
  }

  async hasVolume(name: string): Promise<boolean> {
    return found(this.docker.getVolume(name).inspect());
  }

  /**
   * Fills and checks the helper volume through a never-started container of FILL_IMAGE (an empty /v that
   * slotq imports itself), the volume mounted NoCopy so no image content lands in it. The volume is used
   * only when its tree's digest is the bundle's; otherwise it is emptied (removed and made anew) and filled.
   */
  async ensureVolume(name: string, content: VolumeContent): Promise<void> {
    await this.importFillImage();
    let previous: string | undefined;
    let fillError: unknown;
    for (let round = 0; round < FILL_ROUNDS; round++) {
      await this.removeStaleFillers();
      if (!(await this.hasVolume(name))) await this.docker.createVolume({ Name: name, Labels: { [HELPER_LABEL]: 'true' } });
      const found = await this.withFiller(name, async (c) => {
        // getArchive, read to its end: a HEAD (infoArchive) left its socket open and the process alive.
        const read = async (): Promise<string> => treeDigest(await c.getArchive({ path: FILL_MOUNT }), FILL_MOUNT.slice(1));
        const digest = await read();
        if (digest !== EMPTY_TREE_DIGEST) return digest;
        // Another worker that found it empty too may be filling it now ("file exists"): look again.
        const filled = await c.putArchive(content.tar, { path: FILL_MOUNT }).then(
          () => true,
          (err: unknown) => ((fillError = err), false),
        );
        return filled ? read() : undefined;
      });
      if (found === content.digest) return;
      if (found === undefined) {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      // Tampered, half filled by a worker that died, or being filled right now by another worker: emptied
      // only when no one else fills it and it read the same twice (another worker's fill may just have ended).
      const settled = found === previous;
      previous = found;
      if (!settled || (await this.othersFilling(name))) {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      try {
        await this.docker.getVolume(name).remove();
      } catch (err) {
        if (statusOf(err) === 404 || (await this.othersFilling(name))) continue;
        if (statusOf(err) === 409) throw new ImageUnusableError(`slotq's helper volume ${name} does not hold slotq's helper (digest ${found.slice(0, 12)}, expected ${content.digest.slice(0, 12)}: changed or half filled) and containers use it, so it cannot be refilled: remove them and the volume (docker volume rm ${name})`, { cause: err });
        throw err;
      }
    }
    throw new ImageUnusableError(`slotq's helper volume ${name} still does not hold slotq's helper after ${FILL_ROUNDS} tries (other workers kept filling it?${fillError ? ` the last fill failed: ${toError(fillError).message}` : ''}): remove it (docker volume rm ${name}) and start again`, fillError ? { cause: fillError } : {});
  }

  /** FILL_IMAGE, imported once per engine from its tar (a name no registry serves). */
  private async importFillImage(): Promise<void> {
    if (await this.imageExists(FILL_IMAGE)) return;
    const [repo, tag] = FILL_IMAGE.split(':') as [string, string];
    const progress = await this.docker.importImage(Readable.from([await fillImageTar()]), { repo, tag });
    let text = '';
    for await (const chunk of progress) text += String(chunk);
    if (/"error"/.test(text) || !(await this.imageExists(FILL_IMAGE))) throw new Error(`importing ${FILL_IMAGE} failed: ${text.slice(0, 300)}`);
  }

  private async withFiller<T>(volume: string, fn: (c: Docker.Container) => Promise<T>): Promise<T> {
    // NoCopy: Docker would otherwise copy the image's files under the mount point into an empty volume.
    const mount = { Type: 'volume', Source: volume, Target: FILL_MOUNT, VolumeOptions: { NoCopy: true } } as Docker.MountSettings;
    const c = await this.docker.createContainer({ Image: FILL_IMAGE, Entrypoint: ['/nonexistent'], Cmd: [], NetworkDisabled: true, HostConfig: { Mounts: [mount] }, Labels: { [HELPER_LABEL]: 'true' } });
    try {
      return await fn(c);
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  /** Whether another process's fill container holds the volume (ours are removed before this is asked). */
  private async othersFilling(volume: string): Promise<boolean> {
    return (await this.docker.listContainers({ all: true, filters: { label: [`${HELPER_LABEL}=true`], volume: [volume] } })).length > 0;
  }

  /** Fill containers left by a worker that died while filling (never started, so nothing removes them). */
  private async removeStaleFillers(): Promise<void> {
    const stale = await this.docker.listContainers({ all: true, filters: { label: [`${HELPER_LABEL}=true`], status: ['created'] } });
    for (const old of stale) if (Date.now() / 1000 - old.Created > STALE_FILLER_S) await this.docker.getContainer(old.Id).remove({ force: true }).catch(() => undefined);
  }

  /** Asked of the engine once (planRootfs and probeStorageOpt both need it; it does not change while it runs). */
  storage(): Promise<EngineStorage> {
    this.storageInfo ??= this.docker.info().then((info: { Driver?: string; DockerRootDir?: string }) => ({ driver: info.Driver ?? '', dataRoot: info.DockerRootDir ?? '' }));
    this.storageInfo.catch(() => (this.storageInfo = undefined));
    return this.storageInfo;
  }

  async probeStorageOpt(image: string, labels: Record<string, string>): Promise<string | undefined> {
    // On btrfs (and zfs) the size counts the image's bytes too: the cap comes on top of them.
    const countsImage = ['btrfs', 'zfs'].includes((await this.storage()).driver);
    const size = (countsImage ? ((await this.inspectImage(image))?.sizeBytes ?? 0) : 0) + 2 ** 30;
    try {
      const c = await this.docker.createContainer({ Image: image, Entrypoint: ['/nonexistent'], Cmd: [], Labels: labels, HostConfig: { StorageOpt: { size: String(size) } } });
      await c.remove({ force: true });
    } catch (err) {
      const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
      if (/storage.?opt|quota|not supported/i.test(message)) return message;
      throw err;
    }
    this.storageOpt = { countsImage };
    return undefined;
  }

  async writableLayer(id: string): Promise<string | undefined> {
    const { GraphDriver: g } = (await this.docker.getContainer(id).inspect()) as unknown as { GraphDriver: { Name: string; Data: Record<string, string> | null } };
    return /^overlay2?$/.test(g.Name) ? g.Data?.['UpperDir'] : undefined;
  }

  /** The storage-opt size for a container of the image: the cap, plus the image where the engine counts it. */
  private async storageBytes(spec: ContainerSpec): Promise<number | undefined> {
    if (!this.storageOpt || !spec.rootfsCapBytes) return undefined;
    if (!this.storageOpt.countsImage) return spec.rootfsCapBytes;
    // An image's size, asked once per image (not at every container this worker creates of it).
    let size = this.imageBytes.get(spec.image);
    if (size === undefined) this.imageBytes.set(spec.image, (size = (await this.inspectImage(spec.image))?.sizeBytes ?? 0));
    return spec.rootfsCapBytes + size;
  }

  async create(spec: ContainerSpec): Promise<string> {
    const channel = spec.channel && (await makeChannelDir(spec.channel));
    const storageBytes = await this.storageBytes(spec);
    const container = await this.docker.createContainer(slotCreateOptions(spec, channel ? `${channel.host}:${CHANNEL_TARGET}:ro` : undefined, storageBytes)).catch(async (err: unknown) => {
      await removeChannelDir(channel ? channel.local : undefined);
      throw err;
    });
    if (channel && spec.channel) this.channels.set(container.id, { path: channel.local, uid: spec.channel.uid, gid: spec.channel.gid });
    try {
      const lifeline = (await container.attach({ stream: true, stdin: true, hijack: true })) as Duplex;
      lifeline.on('error', () => undefined); // ends with the container
      for (const ev of ['end', 'close']) lifeline.once(ev, () => this.endExecStreams(container.id)); // died by itself, or removed
      if (spec.runtime !== 'runc') this.watchDeaths();
      this.lifelines.set(container.id, lifeline);
      if (spec.mainUser !== undefined) this.execUsers.set(container.id, spec.user);
      await container.start();
    } catch (err) {
      await this.remove(container.id);
      throw err;
    }
    return container.id;
  }

  channelDir(id: string): ChannelDir | undefined {
    return this.channels.get(id);
  }

  async remove(id: string): Promise<void> {
    this.lifelines.get(id)?.destroy();
    this.lifelines.delete(id);
    this.execUsers.delete(id);
    await removeChannelDir(this.channels.get(id)?.path);
    this.channels.delete(id);
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      const code = statusOf(err);
      if (code === 404) return;
      if (code !== 409) throw err;
      await this.waitGone(id); // AutoRemove is already removing it
    }
  }

  private async waitGone(id: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        await this.docker.getContainer(id).inspect();
      } catch (err) {
        if (statusOf(err) === 404) return;
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async setEgress(id: string, policy: EgressPolicy): Promise<void> {
    const info = await this.docker.getContainer(id).inspect();
    if (info.HostConfig.Runtime === 'runsc') throw new SlotqError('INVALID_ARGS', "egress policy cannot be enforced on a gVisor (runsc) slot: its network stack is gVisor's own; use network: 'none' on a worker with SLOTQ_NETWORK=none", { retryable: false, details: { cause: 'egress_unenforceable' } });
    if (!info.State.Pid) throw new SlotBrokenError(`container ${id.slice(0, 12)} is not running`);
    await applyEgress(info.State.Pid, policy);
  }

  async isRunning(id: string): Promise<boolean> {
    try {
      return (await this.docker.getContainer(id).inspect()).State.Running;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  async deathCause(id: string, sinceMs: number): Promise<ContainerDeathCause> {
    // With `until` the engine answers from its event log and ends the stream.
    const stream = await this.docker.getEvents({ since: Math.floor(sinceMs / 1000) - 1, until: (Date.now() / 1000).toFixed(3) as unknown as number, filters: { container: [id], type: ['container'] } });
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    const actions = text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { Action?: string }).Action ?? '');
    // A kill (docker kill, rm -f, stop) is from outside, even after an OOM that only took one process.
    if (actions.some((a) => a === 'kill' || a.startsWith('kill'))) return 'killed';
    if (actions.includes('oom')) return 'oom';
    return actions.some((a) => a === 'die' || a === 'destroy') ? 'killed' : 'unknown';
  }

  async listManaged(labelFilters: string[]): Promise<ManagedContainer[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: labelFilters } });
    return list.map((c) => ({ id: c.Id, labels: c.Labels, running: c.State === 'running' }));
  }

  async attach(id: string, argv: string[]): Promise<AttachedProcess> {
    const stream = await this.startExec(id, argv, true);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.docker.modem.demuxStream(stream, stdout, stderr);
    const end = (): void => {
      stdout.end();
      stderr.end();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', (err: Error) => stdout.destroy(err));
    return { stdin: stream, stdout, stderr, close: () => stream.destroy() };
  }

  async exec(id: string, argv: string[], opts: ExecOptions = {}): Promise<ExecOutput> {
    const exec = await this.getContainerExec(id, argv, opts.stdin !== undefined, opts.user);
    const stream = this.track(id, await exec.start({ hijack: true, stdin: opts.stdin !== undefined }));
    // Never the whole stream: a command printing 200 MB keeps a few hundred KB here (head and tail, the rest counted).
    const cap = opts.capBytes ?? CAPTURE_HEAD_BYTES;
    const out = opts.wholeStdoutBytes === undefined ? new BoundedCapture(cap, cap) : new BoundedCapture(opts.wholeStdoutBytes, 0);
    const err = new BoundedCapture(cap, cap);
    const stdout = new PassThrough().on('data', (b: Buffer) => out.push(b));
    const stderr = new PassThrough().on('data', (b: Buffer) => err.push(b));
    this.docker.modem.demuxStream(stream, stdout, stderr);
    if (opts.stdin !== undefined) stream.end(opts.stdin);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy();
        reject(new Error(`docker exec did not finish within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs ?? 60_000);
      stream.on('end', () => (clearTimeout(timer), resolve()));
      stream.on('close', () => (clearTimeout(timer), resolve()));
      stream.on('error', (e: Error) => (clearTimeout(timer), reject(e)));
    });
    const info = await exec.inspect();
    const [o, e] = [out.result(), err.result()];
    return { exitCode: info.ExitCode ?? -1, stdout: Buffer.concat([o.head, o.tail]), stderr: Buffer.concat([e.head, e.tail]), stdoutCapture: o, stderrCapture: e };
  }

  private async getContainerExec(id: string, argv: string[], stdin: boolean, asUser?: string): Promise<Docker.Exec> {
    try {
      const user = asUser ?? this.execUsers.get(id);
      return await this.docker.getContainer(id).exec({ Cmd: argv, AttachStdin: stdin, AttachStdout: true, AttachStderr: true, Tty: false, WorkingDir: '/workspace', ...(user !== undefined ? { User: user } : {}) });
    } catch (err) {
      const code = statusOf(err);
      if (code === 404 || code === 409) throw new SlotBrokenError(`container ${id.slice(0, 12)} is gone or not running`, { cause: err });
      throw err;
    }
  }

  private async startExec(id: string, argv: string[], stdin: boolean): Promise<Duplex> {
    const exec = await this.getContainerExec(id, argv, stdin);
    return this.track(id, await exec.start({ hijack: true, stdin }));
  }

  private track(id: string, stream: Duplex): Duplex {
    const set = this.execStreams.get(id) ?? new Set<Duplex>();
    this.execStreams.set(id, set.add(stream));
    stream.once('close', () => set.delete(stream));
    return stream;
  }

  /**
   * Under gVisor neither an exec's stream nor the lifeline ends when the container is killed: the engine's
   * `die` events end its exec streams instead. One unref'd events stream per driver, restarted when it ends.
   */
  private watchDeaths(): void {
    this.deathWatch ??= this.docker.getEvents({ filters: { type: ['container'], event: ['die', 'destroy'], label: [`${LABELS.managed}=true`] } }).then(
      (events) => {
        (events as { socket?: { unref?: () => void } }).socket?.unref?.();
        let buf = '';
        events.on('data', (chunk: Buffer) => {
          buf += chunk.toString('utf8');
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const id = /"id":"([0-9a-f]{64})"/.exec(buf.slice(0, nl))?.[1];
            buf = buf.slice(nl + 1);
            if (id && this.execStreams.has(id)) this.endExecStreams(id);
          }
        });
        const again = (): void => void (this.deathWatch = undefined);
        events.on('end', again);
        events.on('error', again);
      },
      () => void (this.deathWatch = undefined),
    );
  }

  private endExecStreams(id: string): void {
    for (const stream of this.execStreams.get(id) ?? []) stream.destroy(new Error(`container ${id.slice(0, 12)} ended`));
    this.execStreams.delete(id);
  }
}
