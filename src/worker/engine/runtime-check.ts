import { ConfigError } from '../../shared/errors.js';
import type { EngineRuntime } from './container-driver.js';

/** How to register gVisor with dockerd (docs/images.md "Isolation tiers"; scripts/provision.sh does it). */
export const RUNSC_REGISTRATION =
  'add {"runtimes":{"runsc":{"path":"/usr/bin/runsc","runtimeArgs":["--network=none"]}}} to /etc/docker/daemon.json (merged with what is there; `apt-get install runsc` on Debian), then `kill -HUP $(pidof dockerd)`; `bash scripts/provision.sh` does all of it';

/** True when the runtime is gVisor's runsc (by its name or its binary). */
export const isGvisor = (name: string, r: EngineRuntime | undefined): boolean => name === 'runsc' || /(^|\/)runsc$/.test(r?.path ?? '');

/**
 * Checks, at a worker's start, that the engine offers the runtime its slots need, and that the network it
 * asks for can work under it. Throws one line saying what to do.
 */
export function checkRuntime(offered: Record<string, EngineRuntime>, runtime: string, network: string): void {
  const r = offered[runtime];
  if (!r) {
    const how = runtime === 'runsc' ? RUNSC_REGISTRATION : `register it in /etc/docker/daemon.json under "runtimes", then \`kill -HUP $(pidof dockerd)\``;
    throw new ConfigError(`SLOTQ_RUNTIME=${runtime}: the Docker engine offers no runtime "${runtime}" (it has: ${Object.keys(offered).sort().join(', ') || 'none'}): ${how}`);
  }
  if (network !== 'none' && isGvisor(runtime, r) && r.args.includes('--network=none')) {
    throw new ConfigError(
      `SLOTQ_NETWORK=${network} with SLOTQ_RUNTIME=${runtime}: this runtime is registered with --network=none, so its slots can have no network: ` +
        'use SLOTQ_NETWORK=none, or register a second gVisor runtime without --network=none (where runsc supports networking on this host) and name it in SLOTQ_RUNTIME',
    );
  }
}
