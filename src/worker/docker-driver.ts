import Docker from 'dockerode';
import { slotCreateOptions } from './create-options.js';
import { PassThrough, type Duplex } from 'node:stream';
import type { AttachedProcess, ContainerDeathCause, ContainerDriver, ContainerSpec, EngineRuntime, EngineStorage, ExecOutput, ImageConfig, ManagedContainer } from './container-driver.js';
import { withDeadline } from '../shared/deadline.js';
import { SlotBrokenError } from '../shared/errors.js';
import { LABELS } from '../shared/keys.js';
import { BoundedCapture } from './bounded-capture.js';
import { CHANNEL_TARGET, makeChannelDir, removeChannelDir } from './fifo-channel.js';

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
  /** Container id → this process's path of its channel directory. */
  private readonly channels = new Map<string, string>();
  /** Exec streams by container, ended with its lifeline: under gVisor an exec's stream can outlive its killed container. */
  private readonly execStreams = new Map<string, Set<Duplex>>();
  private deathWatch: Promise<void> | undefined;
  /** The user execs run as, for containers whose main process runs as another (spec.mainUser). */
  private readonly execUsers = new Map<string, string>();
  /** Whether the engine took a storage-opt size (probeStorageOpt): create() applies spec.rootfsCapBytes then. */
  private storageOpt: { countsImage: boolean } | undefined;
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

  async ensureVolume(name: string, tar: Buffer, marker: string, viaImage: string): Promise<void> {
    if (!(await this.hasVolume(name))) await this.docker.createVolume({ Name: name, Labels: { 'org.slotq.helper': 'true' } });
    // Fill containers left by a worker that died while filling (never started, so nothing removes them).
    const stale = await this.docker.listContainers({ all: true, filters: { label: ['org.slotq.helper=true'], status: ['created'] } });
    for (const old of stale) if (Date.now() / 1000 - old.Created > 60) await this.docker.getContainer(old.Id).remove({ force: true }).catch(() => undefined);
    // A container that is never started gives the archive API a view of the volume.
    const c = await this.docker.createContainer({ Image: viaImage, Entrypoint: ['/nonexistent'], Cmd: [], HostConfig: { Mounts: [{ Type: 'volume', Source: name, Target: '/v' }] }, Labels: { 'org.slotq.helper': 'true' } });
    try {
      let has = true;
      try {
        // getArchive, read to its end: a HEAD (infoArchive) left its socket open and the process alive.
        const tar = await c.getArchive({ path: `/v/${marker}` });
        for await (const chunk of tar) void chunk;
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        has = false;
      }
      if (!has) await c.putArchive(tar, { path: '/v' });
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  async storage(): Promise<EngineStorage> {
    const info = (await this.docker.info()) as { Driver?: string; DockerRootDir?: string };
    return { driver: info.Driver ?? '', dataRoot: info.DockerRootDir ?? '' };
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
    return spec.rootfsCapBytes + (this.storageOpt.countsImage ? ((await this.inspectImage(spec.image))?.sizeBytes ?? 0) : 0);
  }

  async create(spec: ContainerSpec): Promise<string> {
    const channel = spec.channel && (await makeChannelDir(spec.channel));
    const storageBytes = await this.storageBytes(spec);
    const container = await this.docker.createContainer(slotCreateOptions(spec, channel ? `${channel.host}:${CHANNEL_TARGET}` : undefined, storageBytes)).catch(async (err: unknown) => {
      await removeChannelDir(channel ? channel.local : undefined);
      throw err;
    });
    if (channel) this.channels.set(container.id, channel.local);
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

  channelDir(id: string): string | undefined {
    return this.channels.get(id);
  }

  async remove(id: string): Promise<void> {
    this.lifelines.get(id)?.destroy();
    this.lifelines.delete(id);
    this.execUsers.delete(id);
    await removeChannelDir(this.channels.get(id));
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

  async exec(id: string, argv: string[], opts: { stdin?: Buffer; timeoutMs?: number; capBytes?: number } = {}): Promise<ExecOutput> {
    const exec = await this.getContainerExec(id, argv, opts.stdin !== undefined);
    const stream = this.track(id, await exec.start({ hijack: true, stdin: opts.stdin !== undefined }));
    const [headCap, tailCap] = opts.capBytes === undefined ? [Number.MAX_SAFE_INTEGER, 0] : [opts.capBytes, opts.capBytes];
    const out = new BoundedCapture(headCap, tailCap);
    const err = new BoundedCapture(headCap, tailCap);
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

  private async getContainerExec(id: string, argv: string[], stdin: boolean): Promise<Docker.Exec> {
    try {
      const user = this.execUsers.get(id);
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
