/**
 * The registry keys of per-trajectory images (acquire with `image`), under the same hash-tagged root as the
 * rest, so a Redis Cluster keeps them in one slot. Members of the lex-ordered sorted sets (all at score 0)
 * start with the image, then IMAGE_SEPARATOR: one image's entries are one lex range.
 */
export interface ImageKeys {
  /** Sorted set (lex): `<image> <workerId> <slotId>` of free (warm) on-demand slots. */
  readonly free: string;
  /** Sorted set (lex): `<image> <seq, 16 digits> <waiterId>`: each image's waiters, first come first served. */
  readonly waiters: string;
  /** List of waiter IDs that found no worker with on-demand capacity (served as capacity comes back). */
  readonly pending: string;
  /** Sorted set (lex): `<image> <workerId>`: which worker holds which image locally. */
  readonly located: string;
  /** Sorted set: workerId → on-demand containers it can still create. */
  readonly capacity: string;
  /** Hash: `seq` (waiter counter), `w:<workerId>` → JSON list of the images it published. */
  readonly meta: string;
  /**
   * Sorted set (lex): `<workerId> <ms, 16 digits> <waiterId>`: capacity an acquire reserved on a worker for a
   * provision job, until the job reaches the worker (or the worker reclaims it: the job never came).
   */
  readonly reserved: string;
}

/** Separates the parts of a member (image references never contain a space). */
export const IMAGE_SEPARATOR = ' ';

export function imageKeys(root: string): ImageKeys {
  return { free: `${root}:ifree`, waiters: `${root}:iwaiters`, pending: `${root}:ipending`, located: `${root}:ilocated`, capacity: `${root}:icapacity`, meta: `${root}:imeta`, reserved: `${root}:ireserved` };
}

/** KEYS[11..17] of every registry script, in the order registry-image-lib.ts names them. */
export const imageKeyList = (k: ImageKeys): string[] => [k.free, k.waiters, k.pending, k.located, k.capacity, k.meta, k.reserved];

/** What an image reference may look like (Docker's grammar, loosely; never a space). */
export const IMAGE_REF = /^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$/;
