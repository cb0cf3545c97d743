import Docker from 'dockerode';
import { slotCreateOptions } from './create-options.js';
import { PassThrough, Readable, type Duplex } from 'node:stream';
import type { ContainerDeathCause, ContainerDriver, ContainerSpec, EngineRuntime, EngineStorage, ImageConfig, ManagedContainer, VolumeContent } from './container-driver.js';
import type { AttachedProcess, ExecOptions, ExecOutput } from '../executor/exec-port.js';
import { withDeadline } from '../../shared/deadline.js';
import { SlotBrokenError, SlotqError } from '../../shared/errors.js';
import type { EgressPolicy } from '../../shared/calls/egress.js';
import { applyEgress } from './egress.js';
import { LABELS } from '../../shared/keys.js';
import { BoundedCapture, CAPTURE_HEAD_BYTES } from '../executor/bounded-capture.js';
import type { ChannelDir } from '../executor/fifo-channel.js';
import { FILL_IMAGE, FILL_MOUNT } from '../executor/helper-digest.js';
import { ChannelDirs } from './channel-dirs.js';
import { DeathWatch } from './death-watch.js';
import { statusOf } from './engine-status.js';
import { fillHelperVolume, HELPER_LABEL, type FillContainer, type HelperFillEngine } from './helper-fill.js';

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
  /** The slots' FIFO channel directories (channel-dirs.ts). */
  private readonly channels = new ChannelDirs();
  /** Exec streams by container, ended with its lifeline or the engine's die events (death-watch.ts): under gVisor an exec's stream can outlive its killed container. */
  private readonly deaths = new DeathWatch(() => this.docker.getEvents({ filters: { type: ['container'], event: ['die', 'destroy'], label: [`${LABELS.managed}=true`] } }));
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

  /** Fills and checks the helper volume (helper-fill.ts) through this driver's engine calls. */
  async ensureVolume(name: string, content: VolumeContent): Promise<void> {
    await fillHelperVolume(this.fillEngine, name, content);
  }

  /** The dockerode calls of the helper-volume fill. */
  private readonly fillEngine: HelperFillEngine = {
    imageExists: (image) => this.imageExists(image),
    importImage: async (tar, repo, tag) => {
      const progress = await this.docker.importImage(Readable.from([tar]), { repo, tag });
      let text = '';
      for await (const chunk of progress) text += String(chunk);
      return text;
    },
    hasVolume: (name) => this.hasVolume(name),
    createVolume: async (name) => void (await this.docker.createVolume({ Name: name, Labels: { [HELPER_LABEL]: 'true' } })),
    removeVolume: async (name) => void (await this.docker.getVolume(name).remove()),
    withFiller: (volume, fn) => this.withFiller(volume, fn),
    fillersOf: async (volume) => (await this.docker.listContainers({ all: true, filters: { label: [`${HELPER_LABEL}=true`], volume: [volume] } })).length,
    createdFillers: async () => (await this.docker.listContainers({ all: true, filters: { label: [`${HELPER_LABEL}=true`], status: ['created'] } })).map((c) => ({ id: c.Id, createdS: c.Created })),
    removeContainer: async (id) => void (await this.docker.getContainer(id).remove({ force: true })),
  };

  private async withFiller<T>(volume: string, fn: (c: FillContainer) => Promise<T>): Promise<T> {
    // NoCopy: Docker would otherwise copy the image's files under the mount point into an empty volume.
    const mount = { Type: 'volume', Source: volume, Target: FILL_MOUNT, VolumeOptions: { NoCopy: true } } as Docker.MountSettings;
    const c = await this.docker.createContainer({ Image: FILL_IMAGE, Entrypoint: ['/nonexistent'], Cmd: [], NetworkDisabled: true, HostConfig: { Mounts: [mount] }, Labels: { [HELPER_LABEL]: 'true' } });
    try {
      return await fn({ getArchive: (path) => c.getArchive({ path }), putArchive: async (tar, path) => void (await c.putArchive(tar, { path })) });
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
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
    const channel = await this.channels.make(spec);
    const storageBytes = await this.storageBytes(spec);
    const container = await this.docker.createContainer(slotCreateOptions(spec, channel?.bind, storageBytes)).catch(async (err: unknown) => {
      await this.channels.discard(channel);
      throw err;
    });
    this.channels.register(container.id, channel, spec);
    try {
      const lifeline = (await container.attach({ stream: true, stdin: true, hijack: true })) as Duplex;
      lifeline.on('error', () => undefined); // ends with the container
      for (const ev of ['end', 'close']) lifeline.once(ev, () => this.deaths.ended(container.id)); // died by itself, or removed
      if (spec.runtime !== 'runc') this.deaths.watch();
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
    await this.channels.release(id);
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
    const stream = this.deaths.track(id, await exec.start({ hijack: true, stdin: opts.stdin !== undefined }));
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
    return this.deaths.track(id, await exec.start({ hijack: true, stdin }));
  }
}
