import Docker from 'dockerode';

const docker = new Docker();

/** Whether a process whose command line contains `needle` runs in the container. */
export async function runsIn(containerId: string, needle: string): Promise<boolean> {
  try {
    const top = (await docker.getContainer(containerId).top()) as { Processes?: string[][] };
    return (top.Processes ?? []).some((p) => p.join(' ').includes(needle));
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404 || (err as { statusCode?: number }).statusCode === 409) return false;
    throw err;
  }
}

/** docker kill: the container's processes die at once, as if it crashed. */
export async function killContainer(containerId: string): Promise<void> {
  await docker.getContainer(containerId).kill();
}

/** Polls until fn returns true; throws after timeoutMs. */
export async function waitUntil(fn: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
