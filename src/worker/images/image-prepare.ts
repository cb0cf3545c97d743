import type { Logger } from 'pino';
import type { SlotqConfig } from '../../shared/config.js';
import { withDeadline } from '../../shared/deadline.js';
import { ImageUnusableError, SlotUnavailableError, toError } from '../../shared/errors.js';
import type { ContainerDriver, ContainerSpec } from '../engine/container-driver.js';
import { slotContainerSpec } from '../engine/container-spec.js';
import { profileImage } from '../engine/image-profile.js';
import type { SlotOffer } from '../tools/slot-access.js';
import { offerOf } from '../lifecycle/slot-runtime.js';

/** What a worker needs to make slot containers of an image: their spec and what the image offers. */
export interface PreparedImage {
  image: string;
  spec: ContainerSpec;
  offer: SlotOffer;
  sizeBytes: number;
}

/**
 * Gets on-demand images ready on this worker: pulled when missing (one pull per image however many ask at
 * once), then profiled like the worker's own image. A failure is forgotten, so the next request tries again.
 */
export class ImagePreparer {
  private readonly pending = new Map<string, Promise<PreparedImage>>();
  /** Images prepared here, with when they were last used (for the cache's LRU). */
  readonly ready = new Map<string, { prepared: PreparedImage; usedAtMs: number }>();

  constructor(
    private readonly driver: ContainerDriver,
    private readonly config: SlotqConfig,
    private readonly workerId: string,
    private readonly pullTimeoutMs: number,
    private readonly log: Logger,
    /** Called once an image is ready (the worker publishes where images are). */
    private readonly onReady: () => void,
    /** Pull progress (at most every 2 s; undefined when the pull ended), for the board. */
    private readonly onProgress: (image: string, status: string | undefined) => void = () => undefined,
  ) {}

  prepare(image: string): Promise<PreparedImage> {
    const ready = this.ready.get(image);
    if (ready) {
      ready.usedAtMs = Date.now();
      return Promise.resolve(ready.prepared);
    }
    let p = this.pending.get(image);
    if (!p) {
      p = this.load(image).finally(() => this.pending.delete(image));
      this.pending.set(image, p);
      p.then(
        (prepared) => {
          this.ready.set(image, { prepared, usedAtMs: Date.now() });
          this.onReady();
        },
        () => undefined,
      );
    }
    return p;
  }

  /** Forgets an image (it was removed from the engine). */
  forget(image: string): void {
    this.ready.delete(image);
  }

  private async load(image: string): Promise<PreparedImage> {
    const c: SlotqConfig = { ...this.config, image, pull: 'never' };
    let info = await this.driver.inspectImage(image);
    if (!info) {
      await this.pull(image);
      info = await this.driver.inspectImage(image);
      if (!info) throw new ImageUnusableError(`image ${image} is still missing after a pull`);
    }
    const profile = await profileImage(this.driver, c, slotContainerSpec(c, this.workerId), this.log);
    const offer: SlotOffer = offerOf(profile, c.network);
    return { image, spec: slotContainerSpec(c, this.workerId, profile), offer, sizeBytes: info.sizeBytes };
  }

  private async pull(image: string): Promise<void> {
    if (this.config.pull === 'never') {
      throw new ImageUnusableError(`image ${image} is not on the Docker engine of worker ${this.workerId} and SLOTQ_PULL=never: build or pull it there first`);
    }
    const t0 = Date.now();
    this.log.info({ image }, 'pulling an on-demand image');
    let last = 0;
    const timedOut = (): SlotUnavailableError => new SlotUnavailableError(`pulling image ${image} did not finish within ${Math.round(this.pullTimeoutMs / 1000)} s (SLOTQ_PULL_TIMEOUT_S) on worker ${this.workerId}: retry later`);
    try {
      const pulling = this.driver.pullImage(image, {
        timeoutMs: this.pullTimeoutMs,
        onProgress: (status) => {
          if (Date.now() - last < 2000) return; // a line every 2 s at most
          last = Date.now();
          this.log.info({ image, status }, 'pull progress');
          this.onProgress(image, status);
        },
      });
      await withDeadline(pulling, this.pullTimeoutMs, timedOut).finally(() => this.onProgress(image, undefined));
    } catch (err) {
      if (err instanceof SlotUnavailableError || Date.now() - t0 >= this.pullTimeoutMs - 100) throw timedOut();
      if (/no space left on device/i.test(toError(err).message)) {
        throw new SlotUnavailableError(`the disk of worker ${this.workerId} is full: pulling image ${image} failed (${toError(err).message}); lower SLOTQ_IMAGE_CACHE_GB or free space, then retry`);
      }
      throw new ImageUnusableError(`image ${image} is not on the Docker engine of worker ${this.workerId} and could not be pulled (${toError(err).message}): check its name and registry access`, { cause: err });
    }
    this.log.info({ image, ms: Date.now() - t0 }, 'on-demand image pulled');
  }
}
