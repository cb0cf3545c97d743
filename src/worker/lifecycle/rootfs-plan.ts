import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { SlotqConfig } from '../../shared/config.js';
import { ConfigError, toError } from '../../shared/errors.js';
import type { ContainerDriver } from '../engine/container-driver.js';
import { HELPER_SH } from '../executor/helper-bundle.js';
import { RootfsGuard, type GuardedSlot } from './rootfs-guard.js';

/** How SLOTQ_ROOTFS_MB is enforced on this worker's engine (docs/security.md "Disk, memory and processes"). */
export type RootfsPlan = { kind: 'off' } | { kind: 'engine'; driver: string } | { kind: 'watcher'; dataRoot: string };

const FIX = 'run the worker where it can read the docker data root at the engine\'s path (on the engine\'s host as root, or with it mounted read-only at the same path), or use a storage driver that enforces --storage-opt size (overlay2 on xfs with pquota, btrfs with quotas, zfs), or set SLOTQ_ROOTFS_MB=0 (no cap: a slot can fill the host\'s disk)';

/**
 * Decides once per worker, before any slot exists: the engine's storage-opt size when it takes one (a
 * throwaway container is created with it), else the worker's watcher over overlay2's writable layers;
 * when neither can hold the cap, the worker refuses to start.
 */
export async function planRootfs(driver: ContainerDriver, c: SlotqConfig, labels: Record<string, string>, log: Logger): Promise<RootfsPlan> {
  if (c.rootfsMb === 0) {
    log.warn('SLOTQ_ROOTFS_MB=0: the slots\' writable layer (/, /root, /var, ...) has no cap, so one slot can fill the host\'s disk');
    return { kind: 'off' };
  }
  if (!driver.storage || !driver.probeStorageOpt || !driver.writableLayer) throw new ConfigError(`SLOTQ_ROOTFS_MB=${c.rootfsMb} needs a container driver that reports its storage: ${FIX}`);
  const storage = await driver.storage();
  const refusal = await driver.probeStorageOpt(c.image, labels);
  if (refusal === undefined) {
    log.info({ storageDriver: storage.driver, rootfsMb: c.rootfsMb }, 'rootfs cap: enforced by the engine (storage-opt size)');
    return { kind: 'engine', driver: storage.driver };
  }
  const why = `SLOTQ_ROOTFS_MB=${c.rootfsMb} cannot be enforced: the engine refuses a storage-opt size ("${refusal}")`;
  if (!/^overlay2?$/.test(storage.driver)) throw new ConfigError(`${why} and its storage driver (${storage.driver}) has no writable layer slotq can measure: ${FIX}`);
  try {
    await access(`${storage.dataRoot}/${storage.driver}`, constants.R_OK | constants.X_OK);
  } catch (err) {
    throw new ConfigError(`${why} and this process cannot read the docker data root ${storage.dataRoot} to measure the slots' writable layers (${toError(err).message}): ${FIX}`);
  }
  log.info({ storageDriver: storage.driver, dataRoot: storage.dataRoot, rootfsMb: c.rootfsMb }, 'rootfs cap: enforced by the worker\'s watcher (the engine refuses storage-opt here)');
  return { kind: 'watcher', dataRoot: storage.dataRoot };
}

/** Kills every process the slot's user can signal: not the lifeline (a uid of its own), not the init. */
const KILL_ALL_ARGV = [HELPER_SH, '-c', 'kill -9 -1; true'];

/** The watcher for a worker's slots, after checking it sees a real slot's writable layer. */
export async function startRootfsGuard<S extends GuardedSlot>(driver: ContainerDriver, plan: Extract<RootfsPlan, { kind: 'watcher' }>, c: SlotqConfig, slots: ReadonlyMap<string, S>, discard: (slot: S, told: boolean) => Promise<void>, log: Logger): Promise<RootfsGuard<S>> {
  const layerDir = async (id: string): Promise<string | undefined> => driver.writableLayer?.(id);
  const first = [...slots.values()][0];
  if (first) {
    const dir = await layerDir(first.containerId);
    try {
      if (!dir) throw new Error('the engine reports no UpperDir');
      await access(dir, constants.R_OK | constants.X_OK);
    } catch (err) {
      throw new ConfigError(`SLOTQ_ROOTFS_MB=${c.rootfsMb}: this process cannot read a slot's writable layer ${dir ?? ''} (${toError(err).message}): ${FIX}`);
    }
  }
  const killAll = async (id: string): Promise<void> => void (await driver.exec(id, KILL_ALL_ARGV, { timeoutMs: 5000 }));
  const guard = new RootfsGuard<S>({ capMb: c.rootfsMb, dataRoot: plan.dataRoot, slots, layerDir, killAll, discard, log });
  guard.start();
  return guard;
}
