import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/shared/logger.js';
import { ImageCache } from '../../src/worker/images/image-cache.js';
import type { ImagePreparer, PreparedImage } from '../../src/worker/images/image-prepare.js';

function cache(budgetBytes: number, images: Array<[string, number, number]>, inUse: string[], failing: string[] = []): { run: () => Promise<void>; removed: string[]; forgotten: string[] } {
  const ready = new Map(images.map(([image, sizeBytes, usedAtMs]) => [image, { prepared: { image, sizeBytes } as PreparedImage, usedAtMs }]));
  const removed: string[] = [];
  const forgotten: string[] = [];
  const c = new ImageCache({
    removeImage: async (image) => {
      if (failing.includes(image)) throw new Error('conflict: image is being used by a container');
      removed.push(image);
      return Promise.resolve();
    },
    budgetBytes,
    preparer: { ready } as unknown as ImagePreparer,
    inUse: () => new Set(inUse),
    forget: (image) => void (forgotten.push(image), ready.delete(image)),
    log: silentLogger(),
  });
  return { run: () => c.trim(), removed, forgotten };
}

describe('image cache (SLOTQ_IMAGE_CACHE_GB)', () => {
  it('removes the least recently used images until under the budget, skipping those in use', async () => {
    const c = cache(250, [['c', 100, 3], ['a', 100, 1], ['b', 100, 2], ['d', 100, 4]], ['a']);
    await c.run();
    expect(c.removed).toEqual(['b', 'c']);
    expect(c.forgotten).toEqual(['b', 'c']);
  });

  it('keeps everything with no budget, and an image the engine refuses to remove', async () => {
    const none = cache(0, [['a', 100, 1]], []);
    await none.run();
    expect(none.removed).toEqual([]);
    const refused = cache(50, [['a', 100, 1], ['b', 100, 2]], [], ['a']);
    await refused.run();
    expect(refused.removed).toEqual(['b']);
    expect(refused.forgotten).toEqual(['b']);
  });
});
