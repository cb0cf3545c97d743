import type { ContainerDriver } from '../../src/worker/engine/container-driver.js';
import { cpuPerCallUs, cpuSnapshot, type CpuSnapshot } from './cpu.js';
import { expectedOutput, round } from './stats.js';

/**
 * The comparison point: one plain `docker exec` per call (exec, start, read to end, inspect), through
 * the driver's one-shot exec (dockerode underneath, like slotq's own fallback path).
 */
export async function dockerExecOnce(docker: ContainerDriver, containerId: string, command: string): Promise<boolean> {
  const out = await docker.exec(containerId, ['sh', '-c', command], { timeoutMs: 60_000 });
  return out.exitCode === 0 && out.stdout.toString('latin1').includes(expectedOutput(command));
}

export interface BaselineSerial {
  samplesMs: number[];
  failures: number;
}

/** One call at a time on one container. */
export async function baselineSerial(docker: ContainerDriver, containerId: string, command: string, iterations: number, warmup: number): Promise<BaselineSerial> {
  const samplesMs: number[] = [];
  let failures = 0;
  for (let i = 0; i < warmup + iterations; i++) {
    const t0 = performance.now();
    const ok = await dockerExecOnce(docker, containerId, command);
    const ms = performance.now() - t0;
    if (!ok) failures++;
    if (i >= warmup) samplesMs.push(ms);
  }
  return { samplesMs, failures };
}

export interface ThroughputRun {
  inFlight: number;
  calls: number;
  seconds: number;
  /** Successful calls per second (failed calls do not count). */
  callsPerS: number;
  failures: number;
  /** slotq only: median time a call spent inside its slot (metadata.durationMs). */
  inSlotP50Ms?: number;
  /** µs of CPU per call by component over the run (cpu.ts). */
  cpuUs?: CpuSnapshot;
}

/** One lane per container, each running `callsPerLane` calls back to back: total calls/s. */
export async function baselineConcurrent(docker: ContainerDriver, containerIds: readonly string[], command: string, callsPerLane: number): Promise<ThroughputRun> {
  let failures = 0;
  const lane = async (id: string): Promise<void> => {
    for (let i = 0; i < callsPerLane; i++) if (!(await dockerExecOnce(docker, id, command))) failures++;
  };
  const cpu0 = cpuSnapshot();
  const t0 = performance.now();
  await Promise.all(containerIds.map(lane));
  const seconds = (performance.now() - t0) / 1000;
  const calls = containerIds.length * callsPerLane;
  const cpuUs = cpuPerCallUs(cpu0, cpuSnapshot(), calls);
  return { inFlight: containerIds.length, calls, seconds: round(seconds), callsPerS: round((calls - failures) / seconds, 1), failures, cpuUs };
}
