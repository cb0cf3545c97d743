import type { ErrorCode } from '../shared/errors.js';

/** A tool call finished (successfully or not) on one of the worker's slots. */
export interface CallDoneEvent {
  tool: string;
  slotId: string;
  success: boolean;
  code?: ErrorCode;
  /** Wall time of the call on the worker, executor round trip included. */
  durationMs: number;
}

export interface ContainerCreatedEvent {
  containerId: string;
}

export interface ContainerFailedEvent {
  error: string;
}

/** Events of `SlotWorker.events` (a typed node EventEmitter). Listeners must not throw. */
export interface WorkerEventMap {
  'call:done': [CallDoneEvent];
  'container:created': [ContainerCreatedEvent];
  'container:failed': [ContainerFailedEvent];
}
