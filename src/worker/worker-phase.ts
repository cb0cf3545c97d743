/** Where a SlotWorker is in its life; the parts it wires read it to decide what they may do. */
export type WorkerPhase = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';
