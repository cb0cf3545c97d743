import { z } from 'zod';
import { parseEnvFields } from '../../shared/config.js';

/** A worker's settings for per-trajectory images (acquire with `image`), beside SlotqConfig. */
export interface ImageOptions {
  /** SLOTQ_IMAGES: images or patterns (`*`, `?`) a trajectory may ask for; SLOTQ_IMAGE is always allowed. */
  images?: string | readonly string[];
  /** SLOTQ_ONDEMAND_SLOTS: containers this worker runs for such requests, beside its fixed pool. */
  ondemandSlots?: number | string;
  /** SLOTQ_WARM_PER_IMAGE: released on-demand containers kept ready per image (the rest are removed). */
  warmPerImage?: number | string;
  /** SLOTQ_IMAGE_CACHE_GB: local images beyond this size are removed, least recently used first, never one in use (0: never). */
  imageCacheGb?: number | string;
  /** SLOTQ_PULL_TIMEOUT_S: how long an on-demand pull may take (then the acquire fails, retryable). */
  pullTimeoutS?: number | string;
  /** SLOTQ_RESERVATION_RECLAIM_MS: capacity an acquire reserved on this worker comes back when no provision job came within this. */
  reservationReclaimMs?: number | string;
}

export type ImageSettings = Readonly<{ allow: readonly string[]; ondemandSlots: number; warmPerImage: number; imageCacheGb: number; pullTimeoutS: number; reservationReclaimMs: number }>;

/** A provision job reaches its worker within milliseconds; one that has not after this never will (its producer died, or could not send it). */
export const RESERVATION_RECLAIM_MS = 30_000;

const int = (max: number) => z.coerce.number().int().min(0).max(max);
const fields = {
  images: { env: 'SLOTQ_IMAGES', schema: z.union([z.string(), z.array(z.string())]).default('') },
  ondemandSlots: { env: 'SLOTQ_ONDEMAND_SLOTS', schema: int(1024).default(4) },
  warmPerImage: { env: 'SLOTQ_WARM_PER_IMAGE', schema: int(1024).default(0) },
  imageCacheGb: { env: 'SLOTQ_IMAGE_CACHE_GB', schema: z.coerce.number().min(0).max(1_000_000).default(0) },
  pullTimeoutS: { env: 'SLOTQ_PULL_TIMEOUT_S', schema: z.coerce.number().min(1).max(86_400).default(900) },
  reservationReclaimMs: { env: 'SLOTQ_RESERVATION_RECLAIM_MS', schema: z.coerce.number().int().min(100).max(3_600_000).default(RESERVATION_RECLAIM_MS) },
} as const;

/** Options win over environment variables; a bad value is a ConfigError naming it (config.ts's loader). */
export function loadImageSettings(defaultImage: string, opts: ImageOptions = {}, env: NodeJS.ProcessEnv = process.env): ImageSettings {
  const out = parseEnvFields(fields, opts, env);
  const list = typeof out['images'] === 'string' ? out['images'].split(/[\s,]+/) : (out['images'] as string[]);
  const allow = [...new Set([defaultImage, ...list.map((s) => s.trim()).filter(Boolean)])];
  return Object.freeze({ ...(out as Omit<ImageSettings, 'allow'>), allow });
}

/** Whether an allow-list entry (exact, or with `*` and `?` globs) matches the image. */
export function imageAllowed(allow: readonly string[], image: string): boolean {
  return allow.some((p) => p === image || (/[*?]/.test(p) && new RegExp(`^${p.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(image)));
}
