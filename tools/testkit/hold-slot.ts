/**
 * A producer that dies holding slots (a child process of a test or of the chaos run, then SIGKILLed):
 * acquires SLOTQ_HOLD_SLOTS slots (default 1), writes a file in each, prints `HELD <slotIds> <ok|failed>`
 * and idles. Configured through the usual env (REDIS_URL, SLOTQ_PREFIX, SLOTQ_LEASE_TTL_MS).
 * Started with `startSlotHolder` (processes.ts).
 */
import { SlotBackend } from '../../src/producer/slot-backend.js';
import type { Slot } from '../../src/shared/calls/schemas.js';

const count = Number(process.env['SLOTQ_HOLD_SLOTS'] ?? 1);
const backend = new SlotBackend();
await backend.start();
const slots: Slot[] = [];
for (let i = 0; i < count; i++) slots.push(await backend.acquire(`doomed-${i}`));
const results = await backend.executeBatch(slots.map((s) => [s, 'write_file', { path: 'left-behind.txt', content: 'x' }] as const));
console.log(`HELD ${slots.map((s) => s.slotId).join(',')} ${results.every((r) => r.success) ? 'ok' : 'failed'}`);
setInterval(() => undefined, 1 << 30);
