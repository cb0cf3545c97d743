import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/index.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { ContainerDriver } from '../../src/worker/engine/container-driver.js';
import { planRootfs } from '../../src/worker/lifecycle/rootfs-plan.js';

const root = mkdtempSync(`${tmpdir()}/slotq-rootfs-plan-`);
mkdirSync(`${root}/overlay2`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

type StoragePort = Pick<ContainerDriver, 'storage' | 'probeStorageOpt' | 'writableLayer'>;
/** The storage part of a driver: what the engine says about itself (pure logic: no engine here). */
const engine = (driver: string, dataRoot: string, refusal: string | undefined): StoragePort => ({
  storage: () => Promise.resolve({ driver, dataRoot }),
  probeStorageOpt: () => Promise.resolve(refusal),
  writableLayer: () => Promise.resolve(undefined),
});
const plan = (port: StoragePort, rootfsMb = 2048) => planRootfs(port as ContainerDriver, loadConfig({ rootfsMb }, {}), {}, silentLogger());
const OVERLAY_EXT4 = "--storage-opt is supported only for overlay over xfs with 'pquota' mount option";

describe('planRootfs: who enforces SLOTQ_ROOTFS_MB', () => {
  it('the engine, when it takes a storage-opt size (btrfs with quotas, zfs, overlay2 on xfs with pquota)', async () => {
    expect(await plan(engine('btrfs', root, undefined))).toEqual({ kind: 'engine', driver: 'btrfs' });
  });

  it("the worker's watcher, when the engine refuses it and the overlay2 data root is readable here", async () => {
    expect(await plan(engine('overlay2', root, OVERLAY_EXT4))).toEqual({ kind: 'watcher', dataRoot: root });
  });

  it('nobody with SLOTQ_ROOTFS_MB=0 (explicitly no cap)', async () => {
    expect(await plan(engine('overlay2', '/nonexistent', OVERLAY_EXT4), 0)).toEqual({ kind: 'off' });
  });

  it('refuses to start when neither can hold the cap, saying how to fix it', async () => {
    for (const port of [engine('overlay2', `${root}/missing`, OVERLAY_EXT4), engine('vfs', root, 'not supported'), { storage: undefined } as unknown as StoragePort]) {
      const err = await plan(port).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/SLOTQ_ROOTFS_MB=2048.*data root.*SLOTQ_ROOTFS_MB=0/);
    }
  });
});
