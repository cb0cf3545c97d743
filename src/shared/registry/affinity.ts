import { z } from 'zod';
import { InvalidArgsError } from '../errors.js';

/**
 * A trajectory ID belongs to its owner. The registry's affinity key (the field of the `trajectories`
 * hash, `affinity` on the slot record) is `<scope>\x1f<trajectoryId>`: scope `p:<producerId>` by default,
 * or `n:<namespace>` for producers that pass the same namespace. The scope never holds \x1f (checked
 * here), so the first \x1f splits the key unambiguously whatever the trajectory ID holds, and a namespace
 * can never equal a producer's scope. The plain trajectory ID stays on the slot record, for display.
 */
export const AFFINITY_SEPARATOR = '\x1f';

/** A namespace: shared by cooperating producers of one training run (printable, 1..128 characters). */
export const namespaceSchema = z
  .string()
  .min(1)
  .max(128)
  .refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20 || c === '\u007f'), 'must be printable (no control characters)');

/** The owner scope of a producer's trajectories: its namespace when it names one, else its own ID. */
export function affinityScope(producerId: string, namespace?: string): string {
  if (namespace !== undefined) {
    const ns = namespaceSchema.safeParse(namespace);
    if (!ns.success) throw new InvalidArgsError(`namespace ${JSON.stringify(namespace)} ${ns.error.issues[0]?.message ?? 'is not valid'}`);
    return `n:${ns.data}`;
  }
  if (producerId.length === 0 || producerId.includes(AFFINITY_SEPARATOR)) throw new InvalidArgsError(`producerId ${JSON.stringify(producerId)} must be non-empty and hold no \\x1f`);
  return `p:${producerId}`;
}

/** The registry's affinity key of a trajectory within a scope (from affinityScope). */
export const affinityKey = (scope: string, trajectoryId: string): string => `${scope}${AFFINITY_SEPARATOR}${trajectoryId}`;
