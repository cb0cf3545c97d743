import type Docker from 'dockerode';
import { expectedOutput, round } from './stats.js';

/** The comparison point: one plain `docker exec` per call through dockerode (exec, start, read to end, inspect). */
export async function dockerExecOnce(docker: Docker, containerId: string, command: string): Promise<boolean> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: ['sh', '-c', command], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const info = await exec.inspect();
  // The stream is multiplexed (8-byte frame headers); the payload is all this check needs.
  return info.ExitCode === 0 && Buffer.concat(chunks).toString('latin1').includes(expectedOutput(command));
}

export interface BaselineSerial {
  samplesMs: number[];
  failures: number;
}

/** One call at a time on one container. */
export async function baselineSerial(docker: Docker, containerId: string, command: string, iterations: number, warmup: number): Promise<BaselineSerial> {
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
}

/** One lane per container, each running `callsPerLane` calls back to back: total calls/s. */
export async function baselineConcurrent(docker: Docker, containerIds: readonly string[], command: string, callsPerLane: number): Promise<ThroughputRun> {
  let failures = 0;
  const lane = async (id: string): Promise<void> => {
    for (let i = 0; i < callsPerLane; i++) if (!(await dockerExecOnce(docker, id, command))) failures++;
  };
  const t0 = performance.now();
  await Promise.all(containerIds.map(lane));
  const seconds = (performance.now() - t0) / 1000;
  const calls = containerIds.length * callsPerLane;
  return { inFlight: containerIds.length, calls, seconds: round(seconds), callsPerS: round((calls - failures) / seconds, 1), failures };
}
