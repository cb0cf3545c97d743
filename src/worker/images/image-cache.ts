import type { Logger } from 'pino';
import { toError } from '../../shared/errors.js';
import type { ImagePreparer } from './image-prepare.js';
import type { ContainerDriver } from '../engine/container-driver.js';

export interface ImageCacheDeps {
  /** Removes an image from the engine (not forced: the engine refuses one a container uses). */
  removeImage: (image: string) => Promise<void>;
  /** SLOTQ_IMAGE_CACHE_GB in bytes; 0 keeps every image. */
  budgetBytes: number;
  /** The on-demand images this worker pulled or used, with their size and when they were last used. */
  preparer: ImagePreparer;
  /** Images that must stay: the worker's own, and those a container runs or is being made of. */
  inUse: () => Set<string>;
  /** The image is gone from the engine. */
  forget: (image: string) => void;
  log: Logger;
}

/**
 * Keeps the on-demand images a worker pulled or used within a disk budget: beyond it, removes the least
 * recently used ones, never one in use (and the engine itself refuses to remove an image a container uses).
 * One trim at a time.
 */
export class ImageCache {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly deps: ImageCacheDeps) {}

  trim(): Promise<void> {
    if (this.deps.budgetBytes <= 0) return Promise.resolve();
    this.chain = this.chain.then(() => this.run()).catch((err: unknown) => this.deps.log.warn({ err: toError(err).message }, 'trimming the image cache failed'));
    return this.chain;
  }

  private async run(): Promise<void> {
    const entries = [...this.deps.preparer.ready.entries()].sort((a, b) => a[1].usedAtMs - b[1].usedAtMs);
    let total = entries.reduce((n, [, r]) => n + r.prepared.sizeBytes, 0);
    for (const [image, r] of entries) {
      if (total <= this.deps.budgetBytes) return;
      if (this.deps.inUse().has(image)) continue;
      try {
        await this.deps.removeImage(image);
        this.deps.forget(image);
        total -= r.prepared.sizeBytes;
        this.deps.log.info({ image, sizeMb: Math.round(r.prepared.sizeBytes / 1e6), budgetMb: Math.round(this.deps.budgetBytes / 1e6) }, 'removed an unused on-demand image (SLOTQ_IMAGE_CACHE_GB)');
      } catch (err) {
        this.deps.log.warn({ image, err: toError(err).message }, 'could not remove an unused on-demand image');
      }
    }
  }
}

/** A worker's image cache over its driver (SLOTQ_IMAGE_CACHE_GB): no budget, and a warning, when the driver cannot remove images. */
export function imageCacheFor(driver: ContainerDriver, imageCacheGb: number, deps: Omit<ImageCacheDeps, 'removeImage' | 'budgetBytes'>): ImageCache {
  const remover = driver.removeImage?.bind(driver);
  if (imageCacheGb > 0 && !remover) deps.log.warn('SLOTQ_IMAGE_CACHE_GB is set but this Docker driver cannot remove images: no image is evicted');
  return new ImageCache({
    removeImage: remover ?? (() => Promise.reject(new Error('the driver cannot remove images'))),
    budgetBytes: remover ? imageCacheGb * 1e9 : 0,
    ...deps,
  });
}
