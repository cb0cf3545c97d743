import { z } from 'zod';

/**
 * A slot's egress policy (acquire's `network`), enforced outside the slot by its worker: 'none' (loopback
 * only), or an allow list of `host:port`, `ip:port`, `ip` or CIDR entries (host names are resolved by the
 * worker when the policy is applied). Refused where the worker cannot enforce it.
 */
const entry = z
  .string()
  .max(300)
  .regex(/^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+|[0-9a-f:]+)(:\d{1,5})?(\/\d{1,3})?$/i, 'an allow entry is host:port, ip, ip:port or a CIDR such as 10.0.0.0/8');
export const egressPolicySchema = z.union([z.literal('none'), z.strictObject({ allow: z.array(entry).max(256) })]);
export type EgressPolicy = z.infer<typeof egressPolicySchema>;

/** One allow-list entry parsed: an address or CIDR (resolved from a host name by the worker) and an optional port. */
export interface EgressRule {
  host: string;
  cidr?: number;
  port?: number;
}

export function parseAllowEntry(e: string): EgressRule {
  const m = /^(\[([0-9a-f:]+)\]|([^:/]+)|([0-9a-f:]+))(?::(\d{1,5}))?(?:\/(\d{1,3}))?$/i.exec(e);
  if (!m) throw new Error(`bad allow entry ${e}`);
  const host = m[2] ?? m[3] ?? m[4] ?? '';
  return { host, ...(m[5] ? { port: Number(m[5]) } : {}), ...(m[6] ? { cidr: Number(m[6]) } : {}) };
}
