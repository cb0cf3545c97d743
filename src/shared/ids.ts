import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** Short random id: lowercase hex. */
export const randomId = (bytes = 6): string => randomBytes(bytes).toString('hex');

/** A worker id: readable host part plus randomness. No colons (BullMQ forbids them). */
export const newWorkerId = (): string => `${hostname().replace(/[^A-Za-z0-9-]/g, '').slice(0, 20) || 'host'}-${randomId(4)}`;
export const newProducerId = (): string => `p${randomId(5)}`;
