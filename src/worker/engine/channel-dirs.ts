import type { ContainerSpec } from './container-driver.js';
import { CHANNEL_TARGET, makeChannelDir, removeChannelDir, type ChannelDir } from '../executor/fifo-channel.js';

/** A channel directory made for a container being created: this process's path and the bind the container mounts. */
export interface NewChannel {
  local: string;
  /** The container's bind of it (read-only at CHANNEL_TARGET). */
  bind: string;
}

/** The slots' FIFO channel directories, by container: made before a container is created, removed with it. */
export class ChannelDirs {
  /** Container id → this process's path of its channel directory, and the slot's user. */
  private readonly dirs = new Map<string, ChannelDir>();

  /** Makes the channel directory a container of the spec mounts (undefined when it has none). */
  async make(spec: ContainerSpec): Promise<NewChannel | undefined> {
    const channel = spec.channel && (await makeChannelDir(spec.channel));
    return channel ? { local: channel.local, bind: `${channel.host}:${CHANNEL_TARGET}:ro` } : undefined;
  }

  /** The container was not created: its channel directory goes. */
  async discard(channel: NewChannel | undefined): Promise<void> {
    await removeChannelDir(channel ? channel.local : undefined);
  }

  /** The container was created: its channel directory is kept until it is removed. */
  register(id: string, channel: NewChannel | undefined, spec: ContainerSpec): void {
    if (channel && spec.channel) this.dirs.set(id, { path: channel.local, uid: spec.channel.uid, gid: spec.channel.gid });
  }

  get(id: string): ChannelDir | undefined {
    return this.dirs.get(id);
  }

  /** The container is being removed: so is its channel directory. */
  async release(id: string): Promise<void> {
    await removeChannelDir(this.dirs.get(id)?.path);
    this.dirs.delete(id);
  }
}
