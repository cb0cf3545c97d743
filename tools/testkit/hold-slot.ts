/**
 * A producer that dies holding slots (run as a child process by the chaos run, then SIGKILLed):
 * acquires SLOTQ_CHAOS_HOLD slots, writes a file in each, prints `HELD <slotIds> <ok|failed>` and idles.
 * Configured through the usual env (REDIS_URL, SLOTQ_PREFIX, SLOTQ_LEASE_TTL_MS).
 */
import { SlotBackend } from '../../producer/slot-backend.js';
import type { Slot } from '../../shared/schemas.js';

const count = Number(process.env['SLOTQ_CHAOS_HOLD'] ?? 1);
const backend = new SlotBackend();
await backend.start();
const slots: Slot[] = [];
for (let i = 0; i < count; i++) slots.push(await backend.acquire(`doomed-${i}`));
const results = await backend.executeBatch(slots.map((s) => [s, 'write_file', { path: 'left-behind.txt', content: 'x' }] as const));
console.log(`HELD ${slots.map((s) => s.slotId).join(',')} ${results.every((r) => r.success) ? 'ok' : 'failed'}`);
setInterval(() => undefined, 1 << 30);
