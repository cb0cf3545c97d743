import { randomBytes } from 'node:crypto';
import type { ExecutionResult, JobItem, TmuxArgs } from '../../shared/calls/schemas.js';
import { failure, succeed } from './call-result.js';
import { shellQuote } from '../executor/executor-protocol.js';
import { HELPER_BIN } from '../executor/helper-bundle.js';
import { renderCapture } from './output.js';
import type { RunRequest, RunResult } from '../executor/session.js';

/**
 * The original's tmux tool (original-system.md §3.5): one tmux session per slot, for TUI-style work. It runs
 * the image's own tmux (found on its PATH at start) in the image's sh; the server's socket, the pane's output
 * log (for `stream`) and the stream offset live in the executor's state directory, so a reset clears them.
 */
const STATE = '/run/slotq';
const SOCK = `${STATE}/tmux.sock`;
const LOG = `${STATE}/tmux.log`;
const OFFSET = `${STATE}/tmux.off`;
const SESSION = 'slotq';
const MAX_STREAM_BYTES = 200_000;

const clamp = (v: number | undefined, lo: number, hi: number, dflt: number): number => (v === undefined ? dflt : Math.min(hi, Math.max(lo, Math.round(v))));

/** Starts the session unless it runs; `reset` also rewinds the stream. */
function ensureScript(tmux: string, width: number, height: number, resetStream: boolean): string {
  const t = `${shellQuote(tmux)} -S ${SOCK}`;
  return [
    `if ! ${t} has-session -t ${SESSION} 2>/dev/null; then`,
    `  ${t} new-session -d -s ${SESSION} -x ${width} -y ${height} -c /workspace || exit 1`,
    `  ${t} set-option -t ${SESSION} history-limit 20000 >/dev/null`,
    `  : > ${LOG}; echo 0 > ${OFFSET}`,
    `  ${t} pipe-pane -t ${SESSION} -o ${shellQuote(`exec ${HELPER_BIN}/cat >> ${LOG}`)}`,
    'fi',
    ...(resetStream ? [`echo 0 > ${OFFSET}`] : []),
  ].join('\n');
}

/** The keys to send: with `block`, the last command also signals a wait channel, and Enter ends it. */
function keysScript(tmux: string, keys: string[], block: boolean, channel: string): string {
  const list = [...keys];
  if (block) {
    const enter = (k: string | undefined): boolean => k === 'Enter' || k === 'C-m';
    if (enter(list.at(-1))) list.pop();
    const last = list.pop() ?? '';
    list.push(`${last}${last.trim() ? '; ' : ''}${tmux} wait-for -S ${channel}`, 'Enter');
  }
  return `${shellQuote(tmux)} -S ${SOCK} send-keys -t ${SESSION} -- ${list.map(shellQuote).join(' ')} || exit 1`;
}

export async function runTmux(run: (req: RunRequest) => Promise<RunResult>, tmux: string | undefined, item: JobItem, args: TmuxArgs, timeoutS: number): Promise<ExecutionResult> {
  if (!tmux) return failure(item, 'UNKNOWN_TOOL', "tmux is not available in this slot: its image has no tmux on its PATH (install tmux in the image to use this tool)", { cause: 'no_tmux_in_image', stateful: true });
  const width = clamp(args.pane_width, 20, 500, 120);
  const height = clamp(args.pane_height, 10, 200, 40);
  const t = `${shellQuote(tmux)} -S ${SOCK}`;
  const exec = async (command: string, extraS = 0): Promise<RunResult> => run({ mode: 's', command, timeoutMs: (timeoutS + extraS) * 1000 });
  const meta = { stateful: true };
  const fail = (r: RunResult, what: string): ExecutionResult =>
    r.timedOut
      ? failure(item, 'TIMEOUT', `tmux ${what} timed out after ${timeoutS}s`, { ...meta, timedOut: true, exitCode: -1 })
      : failure(item, 'TOOL_FAILED', `tmux ${what} failed (exit ${r.exitCode}): ${renderCapture(r.stderr, 2000).text.trim()}`, { ...meta, exitCode: r.exitCode });
  switch (args.action) {
    case 'stop': {
      const r = await exec(`${t} kill-server 2>/dev/null; rm -f ${LOG} ${OFFSET}; true`);
      return r.exitCode === 0 ? succeed(item, 'stopped', r.durationMs, meta) : fail(r, 'stop');
    }
    case 'start': {
      const r = await exec(ensureScript(tmux, width, height, true));
      if (r.exitCode !== 0) return fail(r, 'start');
      return succeed(item, 'started', r.durationMs, { ...meta, pane_width: width, pane_height: height, socket: SOCK, session: SESSION, recording: LOG });
    }
    case 'send_keys': {
      const keys = args.keys === undefined ? [] : typeof args.keys === 'string' ? [args.keys] : args.keys;
      const channel = `keys_${randomBytes(6).toString('hex')}`;
      // Waits stay inside the call's timeout, which the caller's deadline counts (at most once).
      const budgetS = Math.max(1, timeoutS - 1);
      const maxWaitS = clamp(args.max_wait_s, 1, budgetS, budgetS);
      const minWaitS = Math.min(args.min_wait_s ?? 0, budgetS);
      const wait = args.block ? `${HELPER_BIN}/timeout ${maxWaitS} ${t} wait-for ${channel} || { ${t} kill-server 2>/dev/null; exit 124; }` : minWaitS > 0 ? `${HELPER_BIN}/sleep ${minWaitS}` : ':';
      const r = await exec([ensureScript(tmux, width, height, false), keysScript(tmux, keys, args.block, channel), wait].join('\n'), 1);
      if (r.exitCode === 124 || r.exitCode === 143) return failure(item, 'TIMEOUT', `tmux blocked keys timed out after ${maxWaitS}s; the tmux session was torn down`, { ...meta, timedOut: true, exitCode: -1 });
      return r.exitCode === 0 ? succeed(item, 'ok', r.durationMs, { ...meta, blocked: args.block }) : fail(r, 'send_keys');
    }
    case 'capture': {
      const r = await exec(`${ensureScript(tmux, width, height, false)}\n${t} capture-pane -p -t ${SESSION}${args.capture_entire ? ' -S -' : ''}`);
      if (r.exitCode !== 0) return fail(r, 'capture');
      const out = renderCapture(r.stdout);
      return succeed(item, out.text, r.durationMs, { ...meta, ...(out.truncated ? { truncated: true } : {}) });
    }
    case 'stream': {
      const maxBytes = clamp(args.max_bytes, 1, MAX_STREAM_BYTES, MAX_STREAM_BYTES);
      const read = [
        ensureScript(tmux, width, height, args.reset),
        `off=$(${HELPER_BIN}/cat ${OFFSET} 2>/dev/null); off=\${off:-0}`,
        'echo "$off"',
        `${HELPER_BIN}/tail -c +$((off + 1)) ${LOG} | ${HELPER_BIN}/head -c ${maxBytes}`,
      ].join('\n');
      const r = await exec(read);
      if (r.exitCode !== 0) return fail(r, 'stream');
      const buf = r.stdout.head;
      const nl = buf.indexOf(0x0a);
      const offset = Number(buf.subarray(0, nl).toString());
      const chunk = buf.subarray(nl + 1);
      // Partial lines are never returned, except a line longer than max_bytes (a progress bar), which would
      // otherwise hold the stream in place for ever.
      const cut = chunk.lastIndexOf(0x0a) + 1;
      const complete = cut === 0 && chunk.length >= maxBytes ? chunk : chunk.subarray(0, cut);
      const next = offset + complete.length;
      if (complete.length > 0) await exec(`echo ${next} > ${OFFSET}`);
      return succeed(item, complete.toString('utf8'), r.durationMs, { ...meta, stream: LOG, offset: next, recording: true });
    }
  }
}
