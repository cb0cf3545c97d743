import type { ExecOptions, ExecResult } from '../../producer/sandbox.js';
import { MAX_TIMEOUT_S } from '../../shared/calls/schemas.js';
import { SWEREX_CLASS, SwerexWireError, bashObservation, pyRepr, type BashAction } from './swerex-wire.js';

/** Runs argv in the trajectory's slot (bound by the caller). */
export type SlotExec = (argv: string[], opts: ExecOptions) => Promise<ExecResult>;

/** Where a named session keeps its state in the slot (name hex-encoded, so any name is a safe file name). */
export const STATE_DIR = '/tmp/.slotq-swerex';
export const statePath = (session: string): string => `${STATE_DIR}/${Buffer.from(session, 'utf8').toString('hex')}.sh`;

/** On stderr when the command does not parse; the run's own output is on stdout (2>&1). */
const SYNTAX_MARK = '__SLOTQ_SWEREX_SYNTAX__';

/**
 * A named bash session, emulated: every run_in_session is one bash in the slot that restores the session's state
 * (cwd, shell and environment variables, functions, aliases) from a file, runs the command with stderr merged into
 * stdout (a pty's view), and saves the state again on exit (an EXIT trap, so `exit 3` keeps it too). A timeout kills
 * the run's process group before it saves, so the session stays as it was before that command: nothing is lost.
 * Not kept across calls: background jobs, shell options (set -e, ...), traps. $1 state file, $2 command, $3 fresh|run.
 */
const WRAPPER = String.raw`__sx_state=$1; __sx_cmd=$2; __sx_mode=$3; shift 3
if ! __sx_err=$("$BASH" -n -c "$__sx_cmd" 2>&1); then builtin printf '%s\n%s' ${SYNTAX_MARK} "$__sx_err" >&2; exit 2; fi
__sx_skip() { case $1 in BASH*|EUID|UID|PPID|SHELLOPTS|BASHOPTS|FUNCNAME|GROUPS|PIPESTATUS|RANDOM|SRANDOM|SECONDS|LINENO|EPOCHSECONDS|EPOCHREALTIME|HISTCMD|_|DIRSTACK|COMP_*|OPTIND|OPTARG|PWD|OLDPWD|SHLVL|__sx_*) return 0;; esac; return 1; }
__sx_dump() {
  __sx_rc=$?
  command mkdir -p ${STATE_DIR}
  builtin set -- $(builtin compgen -v)
  {
    builtin printf '__sx_keep=%q\n' " $* "
    for __sx_v in $(builtin compgen -v); do __sx_skip "$__sx_v" || builtin declare -p "$__sx_v" 2>/dev/null; done
    for __sx_v in $(builtin compgen -A function); do case $__sx_v in __sx_*) ;; *) builtin declare -f "$__sx_v";; esac; done
    builtin alias -p
    builtin printf 'builtin cd -- %q\n' "$PWD"
  } > "$__sx_state.tmp" 2>/dev/null && command mv -f "$__sx_state.tmp" "$__sx_state"
  return $__sx_rc
}
if [ "$__sx_mode" = run ] && [ -f "$__sx_state" ]; then
  builtin source "$__sx_state" >/dev/null 2>&1
  for __sx_v in $(builtin compgen -e); do case "$__sx_keep" in *" $__sx_v "*) ;; *) __sx_skip "$__sx_v" || builtin unset "$__sx_v";; esac; done
fi
builtin shopt -s expand_aliases
builtin trap __sx_dump EXIT
exec 2>&1 </dev/null
builtin eval "$__sx_cmd"`;

const timeoutOf = (t: number | null): number => (t === null ? MAX_TIMEOUT_S : t);

async function runWrapped(exec: SlotExec, session: string, command: string, mode: 'fresh' | 'run', timeoutS: number): Promise<ExecResult> {
  return exec(['bash', '-c', WRAPPER, 'swerex', statePath(session), command, mode], { timeoutS });
}

/** Infrastructure trouble (no bash, a lost worker, a broken slot) as their base exception, the slotq code kept. */
function infraError(r: ExecResult): SwerexWireError {
  if (r.exitCode === 127 && !r.code && /bash/.test(r.stdout + r.stderr)) {
    return new SwerexWireError(SWEREX_CLASS.base, 'slotq emulates bash sessions with the image\'s bash, and this image has none');
  }
  return new SwerexWireError(SWEREX_CLASS.base, `slotq ${r.code ?? 'INTERNAL'}: ${r.error ?? 'the call did not run to an exit code'}`, { slotq_code: r.code ?? 'INTERNAL', retryable: r.retryable ?? false });
}

/** create_session: a fresh state, then the startup files sourced (their state kept). */
export async function startSession(exec: SlotExec, session: string, startupSource: readonly string[], startupTimeoutS: number): Promise<string> {
  const command = startupSource.map((p) => `builtin source ${shQuote(p)}`).join('\n') || ':';
  const r = await runWrapped(exec, session, command, 'fresh', Math.max(startupTimeoutS, 10));
  if (r.timedOut) throw new SwerexWireError(SWEREX_CLASS.timeout, `timeout after ${startupTimeoutS} seconds while starting session ${pyRepr(session)}`);
  if (r.code) throw infraError(r);
  return r.stdout;
}

/** run_in_session for a bash action: their BashObservation, or their exceptions (check=raise, timeout, syntax). */
export async function runInSession(exec: SlotExec, a: BashAction) {
  if (a.is_interactive_command || a.is_interactive_quit) {
    throw new SwerexWireError(SWEREX_CLASS.notImplemented, 'slotq\'s emulated bash sessions run each command to its end: interactive commands (is_interactive_command, is_interactive_quit) are not supported');
  }
  const timeoutS = timeoutOf(a.timeout);
  const r = await runWrapped(exec, a.session, a.command, 'run', timeoutS);
  if (r.timedOut) throw new SwerexWireError(SWEREX_CLASS.timeout, `timeout after ${timeoutS} seconds while running command ${pyRepr(a.command)}`);
  if (r.code) throw infraError(r);
  if (r.stderr.startsWith(SYNTAX_MARK)) {
    const stderr = r.stderr.slice(SYNTAX_MARK.length + 1);
    throw new SwerexWireError(SWEREX_CLASS.syntax, `Error (exit code 2) while checking bash command \n${pyRepr(a.command)}\n---- Stderr ----\n${stderr}\n---- Stdout ----\n`, { bash_stdout: '', bash_stderr: stderr });
  }
  const output = r.stdout;
  if (a.check === 'ignore') return bashObservation(output, null);
  if (a.check === 'raise' && r.exitCode !== 0) {
    const msg = `Command ${pyRepr(a.command)} failed with exit code ${r.exitCode}. Here is the output:\n${pyRepr(output)}`;
    throw new SwerexWireError(SWEREX_CLASS.nonZero, a.error_msg ? `${a.error_msg}: ${msg}` : msg);
  }
  return bashObservation(output, r.exitCode);
}

/** close_session: the state file goes. */
export async function dropSession(exec: SlotExec, session: string): Promise<void> {
  const p = statePath(session);
  await exec(['rm', '-f', '--', p, `${p}.tmp`], { timeoutS: 10 });
}

export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
