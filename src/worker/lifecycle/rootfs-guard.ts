import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { toError } from '../../shared/errors.js';
import type { ExecutionResult, JobItem } from '../../shared/calls/schemas.js';
import { allocatedBytes } from '../engine/layer-usage.js';

/** What the guard needs of a slot: its current container, its FIFO, and a way to kill the call running in it. */
export interface GuardedSlot {
  readonly slotId: string;
  readonly containerId: string;
  killCurrentCall(): boolean;
  enqueue<T>(fn: () => Promise<T>): Promise<T>;
}

export interface RootfsGuardDeps<S extends GuardedSlot> {
  capMb: number;
  /** The docker data root (statfs of it is the trigger: while its free space does not fall, nothing is walked). */
  dataRoot: string;
  slots: ReadonlyMap<string, S>;
  /** The host path of a container's writable layer (overlay2's UpperDir). */
  layerDir: (containerId: string) => Promise<string | undefined>;
  /** Kills every process of the slot's user in the container (background writers); the lifeline stays. */
  killAll: (containerId: string) => Promise<void>;
  /** Removes the slot's container at once and gives it a new one (a layer past the cap); told: the call's result says so. */
  discard: (slot: S, told: boolean) => Promise<void>;
  log: Logger;
}

/**
 * Headroom under the cap where the guard acts (the trigger: cap - 256 MB, at least half the cap). At full
 * speed (dd or head from /dev/zero, about 0.9 GB/s on this machine: 90 MB a tick) a call's layer ended at
 * most 92 MB past the trigger; a background writer, which outlives the call's kill, 173 MB (docs/rootfs-cap.md).
 */
export const ROOTFS_HEADROOM_MB = 256;
/** Tick while a call runs or the host's free space falls; when all is quiet (statfs only: cheap); and right after a kill. */
const FAST_TICK_MS = 100;
const IDLE_TICK_MS = 250;
const HOT_TICK_MS = 25;
/** How long after a kill the guard ticks hot. */
const HOT_FOR_MS = 2000;
/** A fall of the data root's free space this large since the last walk makes the next tick walk every slot's layer. */
const FALL_TRIGGER_BYTES = 4 * 2 ** 20;
/** Every slot's layer is walked at least this often, whatever statfs says (another process freeing space hides a writer). */
const WALK_EVERY_MS = 5000;
/** A layer that still grows (by 32 MB: more than an in-band kill lets through) this long after a kill has a background writer: everything is killed. */
const KILL_GRACE_MS = 50;
const STILL_GROWING_BYTES = 32 * 2 ** 20;
/** Growth between calls, over the trigger, that counts as a background writer (not a flush of what the last call wrote). */
const IDLE_SLACK_BYTES = 8 * 2 ** 20;
/** What a call over the trigger may add (ext4 allocates extent blocks when it writes back what an earlier call wrote). */
const CALL_SLACK_BYTES = 2 ** 20;

interface Call {
  startedAtMs: number;
  limitBytes: number;
  killed: boolean;
}

interface Layer {
  containerId: string;
  dir: Promise<string | undefined>;
  usedBytes: number;
  /** What the layer may hold while no call runs: the trigger, or what the last call left (background writers are killed past it). */
  idleLimitBytes: number;
  call: Call | undefined;
  /** When the last call ended, and when the measure that gave usedBytes started (a measure older than a call's edge says nothing about it). */
  callEndedAtMs: number;
  measuredAtMs: number;
  /** Its container is being replaced (past the cap between calls). */
  discarding: boolean;
  /** The last kill in the slot (a call, or all of it) and the layer's size then: growth after it is a background writer. */
  killedAtMs: number;
  bytesAtKill: number;
  /** A kill of every process under way: a call waits for it before it starts. */
  killing: Promise<void> | undefined;
  /** A tick's measure of it is under way (a slow one, many files, holds up only this slot's). */
  walking: boolean;
}

/**
 * SLOTQ_ROOTFS_MB where the engine cannot enforce a storage-opt size (overlay2 on ext4): measures each
 * slot's writable layer and, when it reaches the trigger, kills the running call (its result becomes
 * disk_full); a later call that writes more while the layer is over the trigger is killed the same way
 * (deleting files works); a background writer has every process of the slot's user killed; a layer past
 * the cap itself (fallocate) loses its container at once. Reset gives the slot a new container, hence an
 * empty layer.
 */
export class RootfsGuard<S extends GuardedSlot = GuardedSlot> {
  private readonly layers = new Map<string, Layer>();
  private readonly triggerBytes: number;
  private readonly capBytes: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private calls = 0;
  private freeAtWalk = Number.POSITIVE_INFINITY;
  private walkedAtMs = 0;
  private hotUntilMs = 0;

  constructor(private readonly deps: RootfsGuardDeps<S>) {
    this.capBytes = deps.capMb * 2 ** 20;
    this.triggerBytes = Math.max(this.capBytes - ROOTFS_HEADROOM_MB * 2 ** 20, Math.floor(this.capBytes / 2));
  }

  /** The error a killed call gets: what happened and what to do. */
  get note(): string {
    return `The slot's root filesystem reached SLOTQ_ROOTFS_MB (${this.deps.capMb} MB) and slotq killed the call: delete files (outside /workspace and /tmp too) or release with reset`;
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /**
   * Runs a call under the guard (inside the slot's FIFO). When the guard killed it, or it ended past its
   * limit, the result is diskFull(note, what the call returned or undefined when it threw, workspaceLost);
   * a layer past the cap itself (fallocate reserves any size in one syscall) loses its container at once.
   */
  async around<T>(slot: S, fn: () => Promise<T>, diskFull: (note: string, value: T | undefined, workspaceLost: boolean) => T): Promise<T> {
    const layer = this.layerOf(slot);
    while (layer.killing) await layer.killing;
    // Over the trigger already: the baseline must be exact, since growth from it (past a slack) fails the call.
    if (layer.usedBytes >= this.triggerBytes) await this.measure(layer);
    const call: Call = { startedAtMs: performance.now(), limitBytes: Math.max(this.triggerBytes, layer.usedBytes + CALL_SLACK_BYTES), killed: false };
    const freeAtStart = await this.freeBytes();
    layer.call = call;
    this.calls++;
    this.schedule(0);
    let value: T | undefined;
    try {
      value = await fn();
    } catch (err) {
      if (!call.killed) throw err;
    } finally {
      this.calls--;
      layer.call = undefined;
      layer.callEndedAtMs = performance.now();
    }
    // What the call left (its group is gone): measured when it may matter, whatever the ticks saw meanwhile.
    if (call.killed || layer.usedBytes >= this.triggerBytes || (await this.freeBytes()) < freeAtStart - FALL_TRIGGER_BYTES) await this.measure(layer);
    if (layer.usedBytes > this.capBytes) {
      layer.discarding = true;
      this.deps.log.warn({ slotId: slot.slotId, usedMb: Math.round(layer.usedBytes / 2 ** 20), capMb: this.deps.capMb }, 'a call took the layer past the rootfs cap at once: replacing the container');
      await this.deps.discard(slot, true);
      return diskFull(`${this.note}. It took ${Math.round(layer.usedBytes / 2 ** 20)} MB at once (fallocate, say), so the slot's container was replaced: its workspace (files, processes, shell state) is gone`, value, true);
    }
    layer.idleLimitBytes = Math.max(this.triggerBytes, layer.usedBytes);
    return call.killed || layer.usedBytes > call.limitBytes ? diskFull(this.note, value, false) : (value as T);
  }

  private layerOf(slot: S): Layer {
    const known = this.layers.get(slot.slotId);
    if (known?.containerId === slot.containerId) return known;
    const dir = this.deps.layerDir(slot.containerId).catch((err: unknown) => (this.deps.log.warn({ slotId: slot.slotId, err: toError(err).message }, 'no writable layer found for the slot'), undefined));
    const layer: Layer = { containerId: slot.containerId, dir, usedBytes: 0, idleLimitBytes: this.triggerBytes, call: undefined, callEndedAtMs: 0, measuredAtMs: 0, discarding: false, walking: false, killedAtMs: 0, bytesAtKill: 0, killing: undefined };
    this.layers.set(slot.slotId, layer);
    return layer;
  }

  /** Measures the layer; returns when the measure started (usedBytes keeps the newest one's). */
  private async measure(layer: Layer): Promise<number> {
    const startedAtMs = performance.now();
    const dir = await layer.dir;
    const used = dir ? await allocatedBytes(dir).catch(() => undefined) : undefined;
    if (used !== undefined && startedAtMs >= layer.measuredAtMs) Object.assign(layer, { usedBytes: used, measuredAtMs: startedAtMs });
    return startedAtMs;
  }

  private async freeBytes(): Promise<number> {
    const s = await statfs(this.deps.dataRoot);
    return s.bavail * s.bsize;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private ticking = false;

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    let falling = false;
    try {
      const free = await this.freeBytes();
      falling = free < this.freeAtWalk - FALL_TRIGGER_BYTES;
      if (falling || Date.now() - this.walkedAtMs >= WALK_EVERY_MS) {
        this.walkedAtMs = Date.now();
        this.freeAtWalk = free;
        this.walkAll();
      } else if (free > this.freeAtWalk) this.freeAtWalk = free;
    } catch (err) {
      this.deps.log.warn({ err: toError(err).message }, 'the rootfs guard could not measure');
    } finally {
      this.ticking = false;
      this.schedule(Date.now() < this.hotUntilMs ? HOT_TICK_MS : falling || this.calls > 0 ? FAST_TICK_MS : IDLE_TICK_MS);
    }
  }

  /** Measures every slot's layer, each on its own: the tick does not wait for them. */
  private walkAll(): void {
    for (const [slotId, layer] of this.layers) if (this.deps.slots.get(slotId)?.containerId !== layer.containerId) this.layers.delete(slotId);
    for (const slot of this.deps.slots.values()) {
      const layer = this.layerOf(slot);
      if (layer.walking) continue;
      layer.walking = true;
      this.measure(layer)
        .then((at) => this.enforce(slot, layer, at))
        .catch((err: unknown) => this.deps.log.warn({ slotId: slot.slotId, err: toError(err).message }, 'the rootfs guard could not measure a slot'))
        .finally(() => (layer.walking = false));
    }
  }

  /** measuredAtMs: when the measure started; one from before the current call (or before the last call's end) is not its. */
  private enforce(slot: S, layer: Layer, measuredAtMs: number): void {
    const call = layer.call;
    const used = layer.usedBytes;
    const now = Date.now();
    const at = { slotId: slot.slotId, usedMb: Math.round(used / 2 ** 20), capMb: this.deps.capMb };
    if (call ? measuredAtMs < call.startedAtMs : measuredAtMs < layer.callEndedAtMs) return;
    if (!call && used > this.capBytes) {
      if (layer.discarding) return;
      layer.discarding = true;
      this.deps.log.warn(at, 'the layer went past the rootfs cap between calls: replacing the container');
      // In the slot's FIFO, and only if the slot still has that container.
      void slot.enqueue(async () => (slot.containerId === layer.containerId ? this.deps.discard(slot, false) : undefined)).catch(() => undefined);
    } else if (layer.killedAtMs && now - layer.killedAtMs >= KILL_GRACE_MS && now - layer.killedAtMs < HOT_FOR_MS && used > layer.bytesAtKill + STILL_GROWING_BYTES) {
      this.deps.log.warn(at, 'the layer still grows after a kill (a background writer): killing every process of the slot');
      this.killAll(slot, layer);
    } else if (call && !call.killed && used > call.limitBytes) {
      this.deps.log.warn(at, 'rootfs cap reached: killing the call');
      this.killed(layer);
      if (!slot.killCurrentCall()) this.killAll(slot, layer);
    } else if (!call && used > layer.idleLimitBytes + IDLE_SLACK_BYTES) {
      layer.idleLimitBytes = used;
      this.deps.log.warn(at, 'rootfs cap reached between calls (a background process): killing every process of the slot');
      this.killAll(slot, layer);
    }
  }

  private killed(layer: Layer): void {
    if (layer.call) layer.call.killed = true;
    Object.assign(layer, { killedAtMs: Date.now(), bytesAtKill: layer.usedBytes });
    this.hotUntilMs = Date.now() + HOT_FOR_MS;
  }

  /** At once; a call that starts meanwhile waits for it (around), and one running is failed as disk_full. */
  private killAll(slot: S, layer: Layer): void {
    this.killed(layer);
    if (layer.killing) return;
    layer.killing = this.deps
      .killAll(layer.containerId)
      .catch((err: unknown) => this.deps.log.warn({ slotId: slot.slotId, err: toError(err).message }, 'killing the processes of a slot over its rootfs cap failed'))
      .finally(() => (layer.killing = undefined));
  }
}

/** A call the guard stopped: TOOL_FAILED, not retryable (the slot's own doing), cause disk_full, with what it printed. */
export function diskFullResult(item: Pick<JobItem, 'executionId' | 'slotId'>, note: string, r: ExecutionResult | undefined, workspaceLost: boolean): ExecutionResult {
  const metadata = { ...(r?.metadata ?? { durationMs: 0 }) };
  delete metadata.timedOut;
  return { success: false, output: r?.output ?? '', error: note, executionId: item.executionId, slotId: item.slotId, metadata: { ...metadata, code: 'TOOL_FAILED', retryable: false, cause: 'disk_full', ...(workspaceLost ? { workspaceLost } : {}) } };
}
