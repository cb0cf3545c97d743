import type { RunResult } from '../executor/session.js';

/**
 * What a failed call did to its own slot, from the supervisor's flags and the call's output: in RL these
 * are the model's failures, scored and never retried, so the result says which one it was
 * (`metadata.cause`) and what it means for the next call.
 */
export interface InsideCause {
  cause: 'oom' | 'pids_exhausted' | 'disk_full' | 'exited_stateful_shell';
  note: string;
}

const ENOSPC = 'No space left on device';
/** What the engine's storage-opt size (a quota) reports at the cap. */
const EDQUOT = 'Disk quota exceeded';

/** The first of the causes that applies to a failed call, or undefined (a plain non-zero exit). */
export function insideCause(r: RunResult, outputText: string, stateful: boolean): InsideCause | undefined {
  const f = r.flags ?? {};
  const restarted = stateful && f.shellExited ? '; the stateful shell ended with it, so its cd, variables and functions are gone' : '';
  if (f.oomKills !== undefined) return { cause: 'oom', note: `the slot ran out of memory and the kernel killed a process (files in /workspace and /tmp count towards the limit)${restarted}` };
  if (f.pidsRefused !== undefined) return { cause: 'pids_exhausted', note: `the slot hit its process limit: forks were refused${restarted}` };
  if (outputText.includes(ENOSPC)) return { cause: 'disk_full', note: `a filesystem of the slot is full (/workspace and /tmp have a size cap): delete files to go on${restarted}` };
  if (outputText.includes(EDQUOT)) return { cause: 'disk_full', note: `the slot's root filesystem reached its cap (SLOTQ_ROOTFS_MB): delete files or release with reset${restarted}` };
  if (stateful && f.shellExited) return { cause: 'exited_stateful_shell', note: 'the stateful shell ended (exit, or a signal): its cd, variables and functions are gone; the next call starts a new one in /workspace' };
  return undefined;
}
