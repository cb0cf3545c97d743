import { describe, expect, it } from 'vitest';
import { SlotqError } from '../../src/shared/errors.js';
import { imageAllowed, loadImageSettings } from '../../src/worker/images/image-options.js';

describe('image options (SLOTQ_IMAGES and friends)', () => {
  it('allows only SLOTQ_IMAGE by default, with 4 on-demand slots and nothing kept warm', () => {
    const s = loadImageSettings('slotq-sandbox:latest', {}, {});
    expect(s).toMatchObject({ allow: ['slotq-sandbox:latest'], ondemandSlots: 4, warmPerImage: 0, imageCacheGb: 0, pullTimeoutS: 900, reservationReclaimMs: 30_000 });
    expect(imageAllowed(s.allow, 'slotq-sandbox:latest')).toBe(true);
    expect(imageAllowed(s.allow, 'python:3.12')).toBe(false);
  });

  it('reads a list with globs from the environment; options win', () => {
    const s = loadImageSettings('base:1', {}, { SLOTQ_IMAGES: 'swe-task-*, python:3.1? ghcr.io/org/img:v1', SLOTQ_ONDEMAND_SLOTS: '8' });
    expect(s.ondemandSlots).toBe(8);
    for (const ok of ['base:1', 'swe-task-123:latest', 'python:3.12', 'ghcr.io/org/img:v1']) expect(imageAllowed(s.allow, ok), ok).toBe(true);
    for (const no of ['python:3.123', 'ghcr.io/org/img:v2', 'xswe-task-1', 'base:10']) expect(imageAllowed(s.allow, no), no).toBe(false);
    expect(loadImageSettings('base:1', { images: ['a:1'], ondemandSlots: 0 }, { SLOTQ_IMAGES: 'b:*' })).toMatchObject({ allow: ['base:1', 'a:1'], ondemandSlots: 0 });
  });

  it('names the variable of a bad value', () => {
    expect(() => loadImageSettings('b', {}, { SLOTQ_WARM_PER_IMAGE: '-1' })).toThrow(SlotqError);
    expect(() => loadImageSettings('b', {}, { SLOTQ_ONDEMAND_SLOTS: 'many' })).toThrow(/SLOTQ_ONDEMAND_SLOTS/);
    expect(() => loadImageSettings('b', {}, { SLOTQ_RESERVATION_RECLAIM_MS: '0' })).toThrow(/SLOTQ_RESERVATION_RECLAIM_MS/);
  });
});
