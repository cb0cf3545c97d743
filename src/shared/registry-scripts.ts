import { ACQUIRE_IMAGE, CLAIM_PENDING, FAIL_IMAGE_WAITER, PUBLISH_IMAGES, RETIRE_IMAGE_SLOT, TAKE_RESERVATION, TRIM_IMAGE_SLOT } from './registry-image-lua.js';
import { ACQUIRE, ADD_SLOT, CANCEL_WAITER, CHECK_LEASES, DRAIN_WORKER, GRANTED_TO, HEARTBEAT, REAP_DEAD_WORKER, REAP_LEASES, REGISTER_WORKER, RELEASE, RENEW, UNREGISTER_WORKER } from './registry-lua.js';

/** Each script, and whether it also takes the worker keys (KEYS[18..20]). */
export const REGISTRY_SCRIPTS = {
  slotqAcquire: { lua: ACQUIRE, perWorker: false },
  slotqCancelWaiter: { lua: CANCEL_WAITER, perWorker: false },
  slotqGrantedTo: { lua: GRANTED_TO, perWorker: false },
  slotqRelease: { lua: RELEASE, perWorker: false },
  slotqRenew: { lua: RENEW, perWorker: false },
  slotqCheckLeases: { lua: CHECK_LEASES, perWorker: false },
  slotqReapLeases: { lua: REAP_LEASES, perWorker: false },
  slotqRegisterWorker: { lua: REGISTER_WORKER, perWorker: true },
  slotqHeartbeat: { lua: HEARTBEAT, perWorker: true },
  slotqAddSlot: { lua: ADD_SLOT, perWorker: true },
  slotqDrainWorker: { lua: DRAIN_WORKER, perWorker: true },
  slotqUnregisterWorker: { lua: UNREGISTER_WORKER, perWorker: true },
  slotqReapDeadWorker: { lua: REAP_DEAD_WORKER, perWorker: true },
  slotqAcquireImage: { lua: ACQUIRE_IMAGE, perWorker: false },
  slotqPublishImages: { lua: PUBLISH_IMAGES, perWorker: true },
  slotqRetireImageSlot: { lua: RETIRE_IMAGE_SLOT, perWorker: true },
  slotqTrimImageSlot: { lua: TRIM_IMAGE_SLOT, perWorker: true },
  slotqFailImageWaiter: { lua: FAIL_IMAGE_WAITER, perWorker: true },
  slotqClaimPending: { lua: CLAIM_PENDING, perWorker: true },
  slotqTakeReservation: { lua: TAKE_RESERVATION, perWorker: true },
} as const;
