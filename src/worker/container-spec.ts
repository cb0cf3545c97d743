import { hostname } from 'node:os';
import type { SlotqConfig } from '../shared/config.js';
import { LABELS } from '../shared/keys.js';
import type { ContainerSpec } from './container-driver.js';
import { CONTAINER_MAIN_CMD } from './supervisor-script.js';

/** What every slot container of a worker is made from: limits, tmpfs caps and labels (contract §7). */
export function slotContainerSpec(c: SlotqConfig, workerId: string): ContainerSpec {
  return {
    image: c.image,
    cmd: CONTAINER_MAIN_CMD,
    network: c.network,
    memoryMb: c.memoryMb,
    // /run/slotq holds the executor's own state, apart from anything a command can fill.
    tmpfsMb: { '/run/slotq': 32, ...(c.workspaceMb > 0 ? { '/workspace': c.workspaceMb } : {}), ...(c.tmpMb > 0 ? { '/tmp': c.tmpMb } : {}) },
    cpus: c.cpus,
    pids: c.pids,
    labels: { [LABELS.managed]: 'true', [LABELS.prefix]: c.prefix, [LABELS.worker]: workerId, [LABELS.host]: hostname() },
  };
}
