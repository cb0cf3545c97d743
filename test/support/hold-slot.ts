// Acquires one slot and holds it until killed: a producer that dies without releasing.
import { SlotBackend } from '../../src/index.js';

const backend = new SlotBackend({ leaseTtlMs: Number(process.env['SLOTQ_LEASE_TTL_MS'] ?? 2000) });
await backend.start();
const slot = await backend.acquire('doomed-producer');
await backend.executeBatch([[slot, 'write_file', { path: 'left-behind.txt', content: 'x' }]]);
console.log(`HELD ${slot.slotId}`);
setInterval(() => undefined, 1 << 30);
