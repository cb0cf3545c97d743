import { hostname } from 'node:os';
import { runtimeFor, type SlotqConfig } from '../../shared/config.js';
import { LABELS } from '../../shared/keys.js';
import type { ContainerSpec } from './container-driver.js';
import { HELPER_DIR } from '../executor/helper-bundle.js';
import type { ImageProfile } from './image-profile.js';
import { CONTAINER_MAIN_CMD } from '../executor/executor-protocol.js';

/** The executor's own state: a small tmpfs apart from anything a command can fill. */
export const EXECUTOR_STATE_DIR = '/run/slotq';

/** The lifeline's uid:gid, distinct from the slot user's uid (65532 is distroless' nonroot). */
export const lifelineUser = (userUid: number): string => (userUid === 65532 ? '65531:65531' : '65532:65532');

/**
 * Under gVisor the pids limit also counts the sandbox's own host threads (about 60 idle, more with every exec
 * and under load); at the limit the Sentry cannot start a thread and the whole container dies (exit 2).
 */
export const GVISOR_PIDS_HEADROOM = 512;

/** A worker's subdirectory of the channel directory (its id, kept to path-safe characters). */
export const channelSubdir = (workerId: string): string => workerId.replace(/[^A-Za-z0-9_.-]/g, '_');

/** What every slot container of a worker is made from: limits, tmpfs caps and labels (contract §7). */
export function slotContainerSpec(c: SlotqConfig, workerId: string, profile?: ImageProfile): ContainerSpec {
  const owner = { uid: profile?.uid ?? 0, gid: profile?.gid ?? 0 };
  const runtime = runtimeFor(c, c.image);
  return {
    image: c.image,
    entrypoint: CONTAINER_MAIN_CMD,
    // Explicit, since the container's own User is the lifeline's: the image's default user is its uid:gid.
    user: profile ? profile.user || `${owner.uid}:${owner.gid}` : (c.user ?? ''),
    // The lifeline runs as a uid of its own (not the user's, never root): commands cannot signal it.
    ...(profile ? { mainUser: lifelineUser(owner.uid) } : {}),
    env: profile?.env ?? [],
    network: c.network,
    runtime,
    memoryMb: c.memoryMb,
    tmpfs: {
      [EXECUTOR_STATE_DIR]: { sizeMb: 32, ...owner },
      ...(c.workspaceMb > 0 ? { '/workspace': { sizeMb: c.workspaceMb, ...owner } } : {}),
      ...(c.tmpMb > 0 ? { '/tmp': { sizeMb: c.tmpMb, ...owner } } : {}),
    },
    volumes: profile ? [{ name: profile.helperVolume, target: HELPER_DIR, readOnly: true }] : [],
    readOnlyRootfs: c.readOnlyRootfs,
    // Applied by the engine where it enforces a storage-opt size; else the worker's watcher holds it (rootfs-plan.ts).
    ...(c.rootfsMb > 0 ? { rootfsCapBytes: c.rootfsMb * 2 ** 20 } : {}),
    // The FIFO channel needs the host's kernel to join the two ends: not under gVisor (its own kernel).
    // One subdirectory per worker: removed when it stops, or by another worker's reaper when it died.
    ...(profile && c.channel === 'fifo' && runtime === 'runc' ? { channel: { localDir: `${c.channelDir}/${channelSubdir(workerId)}`, hostDir: `${c.channelHostDir ?? c.channelDir}/${channelSubdir(workerId)}`, ...owner } } : {}),
    cpus: c.cpus,
    pids: runtime === 'runsc' ? c.pids + GVISOR_PIDS_HEADROOM : c.pids,
    labels: { [LABELS.managed]: 'true', [LABELS.prefix]: c.prefix, [LABELS.worker]: workerId, [LABELS.host]: hostname() },
  };
}
