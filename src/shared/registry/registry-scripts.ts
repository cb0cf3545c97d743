import { ACQUIRE_IMAGE, CLAIM_PENDING, FAIL_IMAGE_WAITER, PUBLISH_IMAGES, RETIRE_IMAGE_SLOT, TAKE_RESERVATION, TRIM_IMAGE_SLOT } from './registry-image-lua.js';
import { ACQUIRE, ADD_SLOT, CANCEL_WAITER, CHECK_LEASES, DRAIN_WORKER, GRANTED_TO, HEARTBEAT, REAP_DEAD_WORKER, REAP_LEASES, REGISTER_WORKER, RELEASE, RENEW, UNREGISTER_WORKER } from './registry-lua.js';
import { once } from './registry-once.js';

/**
 * Each script, whether it also takes the worker keys (KEYS[18..20]), and whether it answers once
 * (registry-once.ts: one more key, last, per call). A script without `once` gives the same answer and
 * state when run twice by itself: read-only, or it sets values from its ARGV (RENEW, HEARTBEAT,
 * REGISTER_WORKER, PUBLISH_IMAGES, DRAIN_WORKER, UNREGISTER_WORKER, REAP_DEAD_WORKER).
 */
const table = {
  slotqAcquire: { lua: ACQUIRE, perWorker: false, once: true },
  slotqCancelWaiter: { lua: CANCEL_WAITER, perWorker: false, once: true },
  slotqGrantedTo: { lua: GRANTED_TO, perWorker: false, once: false },
  slotqRelease: { lua: RELEASE, perWorker: false, once: true },
  slotqRenew: { lua: RENEW, perWorker: false, once: false },
  slotqCheckLeases: { lua: CHECK_LEASES, perWorker: false, once: false },
  slotqReapLeases: { lua: REAP_LEASES, perWorker: false, once: true },
  slotqRegisterWorker: { lua: REGISTER_WORKER, perWorker: true, once: false },
  slotqHeartbeat: { lua: HEARTBEAT, perWorker: true, once: false },
  slotqAddSlot: { lua: ADD_SLOT, perWorker: true, once: true },
  slotqDrainWorker: { lua: DRAIN_WORKER, perWorker: true, once: false },
  slotqUnregisterWorker: { lua: UNREGISTER_WORKER, perWorker: true, once: false },
  slotqReapDeadWorker: { lua: REAP_DEAD_WORKER, perWorker: true, once: false },
  slotqAcquireImage: { lua: ACQUIRE_IMAGE, perWorker: false, once: true },
  slotqPublishImages: { lua: PUBLISH_IMAGES, perWorker: true, once: false },
  slotqRetireImageSlot: { lua: RETIRE_IMAGE_SLOT, perWorker: true, once: true },
  slotqTrimImageSlot: { lua: TRIM_IMAGE_SLOT, perWorker: true, once: true },
  slotqFailImageWaiter: { lua: FAIL_IMAGE_WAITER, perWorker: true, once: true },
  slotqClaimPending: { lua: CLAIM_PENDING, perWorker: true, once: true },
  slotqTakeReservation: { lua: TAKE_RESERVATION, perWorker: true, once: true },
} as const;

export const REGISTRY_SCRIPTS = Object.fromEntries(
  Object.entries(table).map(([name, s]) => [name, { ...s, lua: s.once ? once(s.lua) : s.lua }]),
) as { [N in keyof typeof table]: (typeof table)[N] };
