import type { ContainerSpec } from './container-driver.js';

/**
 * The engine's create options for a slot container (dockerode's ContainerCreateOptions, built here as plain
 * data so docker-driver.ts stays the only file that imports dockerode). channelBind: "host:target" of the
 * per-slot call channel directory, when there is one. storageBytes: the engine's storage-opt size, when it enforces one.
 */
export function slotCreateOptions(spec: ContainerSpec, channelBind: string | undefined, storageBytes?: number) {
  return {
    Image: spec.image,
    ...(spec.name ? { name: spec.name } : {}),
    Entrypoint: spec.entrypoint,
    Cmd: [],
    User: spec.mainUser ?? spec.user,
    Env: spec.env,
    Labels: spec.labels,
    WorkingDir: '/workspace',
    Tty: false,
    // The main process reads this stdin, attached by this worker: when the worker dies, for any reason,
    // dockerd closes it, the main process exits and the container removes itself (AutoRemove).
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    // No network: also no libnetwork sandbox, whose prestart hook (a re-exec of dockerd per container) was
    // about half of a container start's CPU here. runc still brings up loopback in the new namespace.
    ...(spec.network === 'none' ? { NetworkDisabled: true } : {}),
    HostConfig: {
      Init: true,
      AutoRemove: true,
      NetworkMode: spec.network,
      Runtime: spec.runtime,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: spec.pids,
      ReadonlyRootfs: spec.readOnlyRootfs,
      ...(storageBytes !== undefined ? { StorageOpt: { size: String(storageBytes) } } : {}),
      // Binds (not Mounts): a host path the engine does not have is made, not refused, and the handshake falls back.
      ...(channelBind ? { Binds: [channelBind] } : {}),
      Mounts: spec.volumes.map((v) => ({ Type: 'volume' as const, Source: v.name, Target: v.target, ReadOnly: v.readOnly })),
      Tmpfs: Object.fromEntries(Object.entries(spec.tmpfs).map(([path, t]) => [path, `rw,exec,nosuid,nodev,size=${t.sizeMb}m,uid=${t.uid},gid=${t.gid},mode=0755`])),
      Memory: spec.memoryMb * 1024 * 1024,
      MemorySwap: spec.memoryMb * 1024 * 1024,
      NanoCpus: Math.round(spec.cpus * 1e9),
    },
  };
}
