import { statfs } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecutionResult, Slot, SlotBackend } from '../../src/index.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';
import { allocatedBytes } from '../../src/worker/engine/layer-usage.js';
import type { SlotWorker } from '../../src/worker/slot-worker.js';
import { harness, waitFor, type Harness } from '../support/harness.js';

const MB = 2 ** 20;
const ROOTFS_MB = 600;
/** What other work on this shared machine may take from its disk while a call runs (its own 1.5 GB would show). */
const NEIGHBOUR_NOISE_MB = 512;
/** How the filler writes (DIAG_WRITE: another writer, e.g. 'dd if=/dev/zero bs=64M count=24 >', to measure it). */
const WRITE = process.env['DIAG_WRITE'] ?? 'head -c 1500M /dev/zero >';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const driver = new DockerDriver();
const run = async (b: SlotBackend, slot: Slot, command: string): Promise<ExecutionResult> => (await b.executeBatch([[slot, 'bash', { command, timeout: 60 }]]))[0]!;

interface Setup {
  b: SlotBackend;
  slot: Slot;
  /** Free bytes of the docker data root. */
  hostFree: () => Promise<number>;
  /** Bytes the slot's writable layer holds now. */
  layerBytes: () => Promise<number>;
}

/** One root slot with SLOTQ_ROOTFS_MB=600 and small tmpfs caps (64 MB /workspace and /tmp; /dev/shm is Docker's 64 MB). */
async function cappedSlot(): Promise<Setup> {
  h = harness();
  const w: SlotWorker = await h.worker({ slots: 1, warmSpares: 0, memoryMb: 512, workspaceMb: 64, tmpMb: 64, rootfsMb: ROOTFS_MB, user: '0' });
  const b = await h.backend();
  const slot = await b.acquire('filler');
  const { dataRoot } = await driver.storage();
  const hostFree = async (): Promise<number> => {
    const s = await statfs(dataRoot);
    return s.bavail * s.bsize;
  };
  const layerBytes = async (): Promise<number> => {
    const dir = await driver.writableLayer(w.slots.get(slot.slotId)!.containerId);
    return dir ? allocatedBytes(dir) : 0;
  };
  return { b, slot, hostFree, layerBytes };
}

describe(`SLOTQ_ROOTFS_MB (${ROOTFS_MB}): no slot takes more host disk than its caps`, () => {
  it('1.5 GB written into /, /root, /var, /workspace, /tmp and /dev/shm each ends in a typed disk_full; the host loses at most the caps; the slot works after rm', async () => {
    const s = await cappedSlot();
    for (const dir of ['/', '/root/', '/var/', '/workspace/', '/tmp/', '/dev/shm/']) {
      const file = `${dir}big`;
      const rootfs = !['/workspace/', '/tmp/', '/dev/shm/'].includes(dir);
      const freeBefore = await s.hostFree();
      const r = await run(s.b, s.slot, `${WRITE} ${file}`);
      expect(r.success, file).toBe(false);
      expect(r.metadata, `${file}: ${r.error}`).toMatchObject({ code: 'TOOL_FAILED', retryable: false, cause: 'disk_full' });
      if (rootfs) expect(r.error).toMatch(new RegExp(`root filesystem reached SLOTQ_ROOTFS_MB \\(${ROOTFS_MB} MB\\).*delete files.*release with reset`));
      else expect(r.output).toMatch(/No space left on device/);
      // The layer is measured exactly; the host's free space moves with the neighbours' work too.
      const layerMb = (await s.layerBytes()) / MB;
      const lostMb = (freeBefore - (await s.hostFree())) / MB;
      if (process.env['DIAG_WRITE']) console.log(`${file}: layer ${layerMb.toFixed(1)} MB, host lost ${lostMb.toFixed(1)} MB, ${r.metadata.durationMs} ms`);
      expect(layerMb, file).toBeLessThanOrEqual(ROOTFS_MB);
      expect(lostMb, file).toBeLessThan(ROOTFS_MB + NEIGHBOUR_NOISE_MB);
      // On a host too loaded for the kill to land under the cap, the container goes instead (nothing to remove).
      if (rootfs && r.metadata['workspaceLost'] !== true) {
        // Until files are removed, any call that writes more fails the same way; reading still works.
        const again = await run(s.b, s.slot, `head -c 10M /dev/zero > ${file}2`);
        expect(again.metadata, again.error).toMatchObject({ code: 'TOOL_FAILED', retryable: false, cause: 'disk_full' });
        expect(await run(s.b, s.slot, 'echo still')).toMatchObject({ success: true, output: 'still\n' });
      }
      const cleaned = await run(s.b, s.slot, `rm -f ${file} ${file}2 && head -c 10M /dev/zero > ${file}3 && wc -c < ${file}3 && rm ${file}3`);
      expect(cleaned, cleaned.error).toMatchObject({ success: true, output: `${10 * MB}\n` });
    }
  });

  it('a background process that writes past the cap is killed (the files stay until removed), or at worst its container goes', async () => {
    const s = await cappedSlot();
    const freeBefore = await s.hostFree();
    // A group of its own, so the call's end does not take it along; the call returns once it writes.
    const started = await run(s.b, s.slot, `setsid sh -c '${WRITE} /bg' </dev/null >/dev/null 2>&1 & while [ ! -s /bg ]; do sleep 0.01; done; echo started`);
    expect(started).toMatchObject({ success: true, output: 'started\n' });
    // Calls made meanwhile that write nothing may be failed as disk_full too: the layer grew while they ran.
    const polls: ExecutionResult[] = [];
    await waitFor(async () => (polls[polls.length] = await run(s.b, s.slot, 'pgrep -x head || echo none')).output === 'none\n', 60_000, 'the background writer to be gone');
    expect((await s.layerBytes()) / MB).toBeLessThanOrEqual(ROOTFS_MB);
    expect((freeBefore - (await s.hostFree())) / MB).toBeLessThan(ROOTFS_MB + NEIGHBOUR_NOISE_MB);
    for (const r of polls.filter((p) => !p.success)) expect(r.metadata, r.error).toMatchObject({ retryable: false, cause: 'disk_full' });
    // On a host too loaded for the kill to land under the cap, the container goes instead (the last resort):
    // then a poll said so. Otherwise the writer was killed and its file stays until removed.
    if (polls.some((r) => r.metadata['workspaceLost'] === true)) return;
    const size = Number((await run(s.b, s.slot, 'stat -c %s /bg')).output.trim());
    expect(size / MB).toBeGreaterThan(0);
    expect(size / MB).toBeLessThan(ROOTFS_MB);
    const cleaned = await run(s.b, s.slot, 'rm /bg && echo x > /after && cat /after');
    expect(cleaned).toMatchObject({ success: true, output: 'x\n' });
  });

  it('fallocate past the cap (any size in one syscall): the call is disk_full and the container is replaced at once, so the host gets its disk back', async () => {
    const s = await cappedSlot();
    await run(s.b, s.slot, 'echo keep > /workspace/old');
    const freeBefore = await s.hostFree();
    const r = await run(s.b, s.slot, 'fallocate -l 1500M /big && echo reserved');
    expect(r.metadata, r.error).toMatchObject({ code: 'TOOL_FAILED', retryable: false, cause: 'disk_full', workspaceLost: true });
    expect(r.error).toMatch(new RegExp(`SLOTQ_ROOTFS_MB \\(${ROOTFS_MB} MB\\).*container was replaced`));
    expect((await s.layerBytes()) / MB).toBeLessThan(ROOTFS_MB);
    expect((freeBefore - (await s.hostFree())) / MB).toBeLessThan(NEIGHBOUR_NOISE_MB);
    // The next call runs on the new container: nothing of the old one is left, and it works.
    const after = await run(s.b, s.slot, 'ls /big /workspace/old 2>&1; echo ok');
    expect(after.success).toBe(true);
    expect(after.output).toMatch(/No such file[\s\S]*No such file[\s\S]*ok\n$/);
  });

  it('a background fallocate past the cap: the container is replaced and the next call says so (not retryable, disk_full)', async () => {
    const s = await cappedSlot();
    const freeBefore = await s.hostFree();
    // The call returns once the writer is in a session of its own (the call's end kills its group, not it).
    const started = await run(s.b, s.slot, `setsid sh -c 'touch /ready; sleep 0.5; fallocate -l 1500M /big' </dev/null >/dev/null 2>&1 & while [ ! -e /ready ]; do sleep 0.01; done; echo started`);
    expect(started).toMatchObject({ success: true, output: 'started\n' });
    let next: ExecutionResult | undefined;
    await waitFor(async () => !(next = await run(s.b, s.slot, 'echo hi')).success, 60_000, 'the slot to be replaced');
    // Between calls: the next call is not run and says the container was replaced; during one: that call says so.
    expect(next!.metadata, next!.error).toMatchObject({ retryable: false, cause: 'disk_full', workspaceLost: true });
    expect(['SLOT_BROKEN', 'TOOL_FAILED']).toContain(next!.metadata.code);
    expect(await run(s.b, s.slot, 'ls /ready 2>&1 || echo gone')).toMatchObject({ output: expect.stringMatching(/gone\n$/) as unknown });
    expect((freeBefore - (await s.hostFree())) / MB).toBeLessThan(NEIGHBOUR_NOISE_MB);
  });
});
