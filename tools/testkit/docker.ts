import { LABELS } from '../../src/shared/keys.js';
import type { ContainerDriver } from '../../src/worker/engine/container-driver.js';
import { DockerDriver } from '../../src/worker/engine/docker-driver.js';

/**
 * Docker for tests and tools, through slotq's own port (ContainerDriver): dockerode stays behind
 * src/worker/engine/docker-driver.ts.
 */
let shared: ContainerDriver | undefined;
export const driver = (): ContainerDriver => (shared ??= new DockerDriver());

/** IDs of the slot containers labelled with the prefix (and the worker, when given). */
export async function containersOf(prefix: string, workerId?: string, d: ContainerDriver = driver()): Promise<string[]> {
  const filters = [`${LABELS.prefix}=${prefix}`, ...(workerId ? [`${LABELS.worker}=${workerId}`] : [])];
  return (await d.listManaged(filters)).map((c) => c.id);
}

/** IDs of slotq's helper containers (the helper volume's fill containers, any state): each lives only while a worker fills the volume. */
export async function helperContainers(d: ContainerDriver = driver()): Promise<string[]> {
  return (await d.listManaged([`${LABELS.helper}=true`])).map((c) => c.id);
}

/** Force-removes containers (gone already is fine). */
export async function removeContainers(ids: readonly string[], d: ContainerDriver = driver()): Promise<void> {
  await Promise.all(ids.map((id) => d.remove(id)));
}

/** Whether a process whose command line contains `needle` runs in the container (false once it is gone). */
export async function runsIn(containerId: string, needle: string, d: ContainerDriver = driver()): Promise<boolean> {
  try {
    const ps = await d.exec(containerId, ['ps', '-eo', 'args'], { timeoutMs: 10_000 });
    // `ps` lists itself and this exec's argv never contains the needle, so any match is the process looked for.
    return ps.stdout.toString().split('\n').some((line) => line.includes(needle));
  } catch (err) {
    if (!(await d.isRunning(containerId).catch(() => false))) return false;
    throw err;
  }
}

/**
 * The container dies at once, as if it crashed: killed and removed (`docker rm -f`). Returns false when
 * it was not running any more.
 */
export async function killContainer(containerId: string, d: ContainerDriver = driver()): Promise<boolean> {
  if (!(await d.isRunning(containerId))) return false;
  await d.remove(containerId);
  return true;
}
