import { randomBytes } from 'node:crypto';
import { InternalError } from '../../shared/errors.js';
import { CAPTURE_HEAD_BYTES, CAPTURE_TAIL_BYTES } from './bounded-capture.js';
import { FIFO_SWITCH_SH } from './fifo-channel.js';
import { HELPER_BIN, HELPER_SH } from './helper-bundle.js';

/**
 * The executor's wire protocol, all of it: the supervisor script that runs in every slot, how a call is
 * encoded for it, and how its answer is framed.
 *
 * The supervisor is a loop in slotq's own static busybox shell (HELPER_SH, mounted read-only), so it needs
 * nothing from the image; its PATH is the helper's. User commands run in the image's own shell with the
 * image's PATH; slotq's internal scripts (path checks, files, artifacts) run in the helper's shell.
 *
 * Request (worker → supervisor): "<op> <id> <nonce> <stdinBytes>\n<payload, $'…'-quoted on one line>\n<stdin bytes>",
 * or, for an op s or i command over BODY_MIN_BYTES: "<op> <id> <nonce> <stdinBytes> <cmdBytes>\n<command bytes><stdin bytes>"
 * (read in bulk with head -c and run from a file: the shell's read takes a syscall per byte, ~90 µs under gVisor);
 *   op s: a user command, `<image sh> -c <payload> sh`, in a process group of its own (setsid);
 *   op i: an internal script, the same in the helper's sh;
 *   op t: a statement for the slot's persistent shell (the image's bash, else its sh).
 * State lives in <dir> on its own small tmpfs (/run/slotq), out of the way of the command's /tmp.
 * Reply, all on stdout: "READY <pid> <dir>\n" once; per call, the command's stdout, written straight into the
 * stream, then "<nonce>R <exitCode> <stderrBytes>\n" and the call's stderr (kept in a file while it runs;
 * when over HEAD+TAIL bytes only its first HEAD and last TAIL bytes are sent). The random per-call nonce
 * marks where the command's stdout ends. The worker keeps only a bounded head and tail of stdout.
 * On timeout the worker first sends "k <id>\n" on the same input: the launcher (native/slotq-spawn.c) kills the
 * call's group itself, with no new process in the slot (a fork bomb may hold every pid) and no dockerd.
 * "<id> <pgid>" of the running call is in <dir>/pid, for the worker's out-of-band kill when that goes
 * unanswered (no launcher, a wedged one); the id makes a late kill harmless to the next call. After each call the rest of its process group is killed.
 * On EOF it kills its stateful shell and exits.
 */
export const SUPERVISOR_SCRIPT = String.raw`
HB=$1 TB=$2 SH=$3 SS=$4
U=$PATH
PATH=${HELPER_BIN}
R=/run/slotq
[ -w "$R" ] || R=/tmp/.slotq
D=$R/$$
mkdir -p "$D" || exit 97
cd /workspace || exit 98
spid=
start_stateful() {
  rm -f "$D/sin" "$D/sout"
  mkfifo "$D/sin" "$D/sout" || return 1
  # The wrapper reports the shell's real exit status (exit N, kill -9 $$) through the same fifo as the
  # calls, opening it read-write, which never blocks, in case the shell died between calls; its "x" says so.
  PATH=$U ${HELPER_BIN}/setsid ${HELPER_SH} -c 'case $3 in *bash) "$3" --noprofile --norc -s < "$2" & ;; *) "$3" -s < "$2" & ;; esac; wait $! 2>/dev/null; echo $? x 1<>"$1"' sh "$D/sout" "$D/sin" "$SS" </dev/null 5>&- &
  spid=$!
  exec 8<> "$D/sin" 9<> "$D/sout"
  printf 'cd /workspace\n' >&8
}
# The launcher (native/slotq-spawn.c), when the helper has one. At the first call the supervisor hands it its
# input and the header it has just read: from then on the launcher reads the requests (buffered, where the
# shell's read takes two syscalls a byte), runs op s and op i itself (one vfork and exec, where the shell forks
# and execs setsid and sh), checks the cgroup counters, writes every end line and stderr (no wc, no cat), and
# forwards op t here, on fd 0 from then on; the answer "<status>|<flags>" goes back on fd 5. "ok" says it
# runs. If it dies, this loop reads EOF and ends; if this shell dies, so does the launcher (PR_SET_PDEATHSIG).
launcher=
start_launcher() {
  [ -x ${HELPER_BIN}/slotq-spawn ] || return 1
  rm -f "$D/tq" "$D/tr"
  mkfifo "$D/tq" "$D/tr" || return 1
  last=$!
  # Its stdin is ours, explicitly (an asynchronous command's is /dev/null otherwise).
  exec 4<&0
  ${HELPER_BIN}/slotq-spawn "$D" "$SH" "$U" ${HELPER_SH} ${HELPER_BIN} "$HB" "$TB" <&4 3> "$D/tq" 5< "$D/tr" 4<&- 8>&- 9>&- &
  # No fork (pids used up): nothing would ever open the other ends.
  [ "$!" != "$last" ] || { exec 4<&-; return 1; }
  exec 0< "$D/tq" 5> "$D/tr"
  # The header it takes over goes on fd 5, not in its argv: /proc shows argv to commands, and it holds the nonce.
  # Both ends are open: the names go, so no command can open them (read a nonce, forge an answer).
  rm -f "$D/tq" "$D/tr"
  if read -r ok && [ "$ok" = ok ] && printf '%s %s %s %s %s\n' "$op" "$id" "$nonce" "$inlen" "$clen" >&5; then exec 4<&-; launcher=1; return 0; fi
  exec 0<&4 4<&- 5>&-
  return 1
}
# The slot's cgroup counters of OOM kills and refused forks (v1 or v2 layout): read with builtins only, no
# fork (a fork bomb may hold every pid). A call that fails while one of them grows is flagged with it.
counters() {
  oc=0 pc=0
  for f in /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events; do
    [ -r "$f" ] && while read -r k v; do [ "$k" = oom_kill ] && oc=$v; done < "$f"
  done
  for f in /sys/fs/cgroup/pids/pids.events /sys/fs/cgroup/pids.events; do
    [ -r "$f" ] && while read -r k v; do [ "$k" = max ] && pc=$v; done < "$f"
  done
}
counters; o0=$oc p0=$pc
printf 'READY %s %s\n' "$$" "$D"
exec 2>/dev/null
while IFS=' ' read -r op id nonce inlen clen; do
  # "k <id>": the worker's in-band kill of a timed-out call (the launcher acts on it); here it came too late.
  [ "$op" = k ] && continue
  if [ -z "$launcher$nolauncher" ] && [ "$op" != f ]; then start_launcher && continue; nolauncher=1; fi
  if [ "${'${clen:-0}'}" -gt 0 ]; then enc="''"; head -c "$clen" > "$D/c" || exit 95; else IFS= read -r enc || break; fi
  # op f: move to the FIFO channel (fifo-channel.ts).
  [ "$op" = f ] && { ${FIFO_SWITCH_SH}; continue; }
  # If the state can't be written (directory removed, disk full), exit rather than run a cut-off
  # command: the worker sees the session die and starts a new one.
  [ -d "$D" ] || exit 96
  fl=
  eval "c=$enc"
  if [ "$inlen" -gt 0 ]; then head -c "$inlen" > "$D/i" || exit 95; else : > "$D/i" || exit 95; fi
  if [ "$op" = t ]; then
    if [ -z "$spid" ] || ! kill -0 "$spid"; then start_stateful; fi
    echo "$id $spid" > "$D/pid"
    # stdout goes through fd 7, re-made from the shell's own stdout at every call, so a command that closes
    # or moves its stdout (exec >&-) does it for itself only: the shell gets its stdout back afterwards.
    printf 'exec 7>&1; %s >&7 <%s 2>%s; echo $? >%s\n' "$c" "$D/i" "$D/e" "$D/sout" >&8
    # fd 9 stays open (read-write) for the shell's life: no per-call open for a signal to interrupt.
    rc= ex=
    while [ -z "$rc" ]; do read -r rc ex <&9 || break; done
    # "<rc> x" comes from the wrapper: the shell itself ended.
    if [ -n "$ex" ] || ! kill -0 "$spid"; then exec 8>&- 9>&-; spid=; fl=' exit'; fi
  else
    # Over 128 KiB a command cannot be one argument (E2BIG): run it from a file instead. ${"${#c}"} counts
    # characters in a UTF-8 locale, up to 4 bytes each.
    if [ "${'${clen:-0}'}" -gt 0 ]; then set -- "$D/c"; elif [ "${"${#c}"}" -gt 32000 ]; then printf '%s' "$c" > "$D/c"; set -- "$D/c"; else set -- -c "$c" sh; fi
    if [ "$op" = i ]; then
      ${HELPER_BIN}/setsid ${HELPER_SH} "$@" < "$D/i" 2> "$D/e" &
    else
      PATH=$U ${HELPER_BIN}/setsid "$SH" "$@" < "$D/i" 2> "$D/e" &
    fi
    pid=$!
    echo "$id $pid" > "$D/pid"
    wait "$pid"
    rc=$?
    kill -9 -"$pid"
  fi
  # Launcher: it checks the counters and writes the end line.
  [ -n "$launcher" ] && { printf '%s|%s\n' "$rc" "$fl" >&5; continue; }
  if [ "$rc" != 0 ]; then
    counters
    [ "$oc" != "$o0" ] && fl="$fl oom=$oc" && o0=$oc
    [ "$pc" != "$p0" ] && fl="$fl pids=$pc" && p0=$pc
  fi
  es=0
  [ -s "$D/e" ] && es=$(wc -c < "$D/e")
  # A failed fork (the slot's pids used up) must not break the end line.
  [ -n "$es" ] || es=0
  printf '%sR %s %s%s\n' "$nonce" "$rc" "$es" "$fl"
  if [ "$es" -gt $((HB + TB)) ]; then head -c "$HB" "$D/e"; tail -c "$TB" "$D/e"; elif [ "$es" -gt 0 ]; then cat "$D/e"; fi
  : > "$D/e"
done
[ -n "$spid" ] && kill -9 -"$spid"
# The launcher died (killed by a command, say) during a call: its command's group goes too.
[ -n "$launcher" ] && read -r i g < "$D/pid" && kill -9 -"$g"
rm -rf "$D"
`;

/** The image's shells the supervisor hands user commands to. */
export interface SessionShells {
  /** The image's /bin/sh ('' when it has none: op s is never sent then). */
  sh: string;
  /** The persistent shell for op t: the image's bash, else its sh ('' when neither). */
  stateful: string;
}

/** Runs the supervisor in the helper's shell. */
export const supervisorArgv = (shells: SessionShells): string[] => [HELPER_SH, '-c', SUPERVISOR_SCRIPT, 'slotq', String(CAPTURE_HEAD_BYTES), String(CAPTURE_TAIL_BYTES), shells.sh, shells.stateful];

/**
 * The container's main process: the helper's cat reads its stdin, which the worker holds open, and exits on
 * EOF. So a container ends (and removes itself) within moments of its worker dying, even a SIGKILLed one.
 */
export const CONTAINER_MAIN_CMD = [`${HELPER_BIN}/cat`];

/** The operations of a request. */
export type Op = 's' | 'i' | 't';

/** Quotes any string (no NUL) as one line of `$'…'`, which the helper's shell (busybox ash) decodes. */
export const encodeCommand = (command: string): string =>
  `$'${command.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r')}'`;

/** POSIX single-quoting, for a statement the image's own shell (dash, ash, bash) parses. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The statement a stateful call sends to the persistent shell: plain `eval`, so errors read like the shell's own. */
export const statefulStatement = (command: string): string => `eval ${shellQuote(command)}`;

export const newNonce = (): string => `@sq${randomBytes(10).toString('hex')}@`;

/** The bytes of one request. */
/** The in-band kill of call id (the launcher's; the supervisor's loop skips one that comes late). */
export const killLine = (id: number): string => `k ${id}\n`;

export function encodeRequest(op: Op, id: number, nonce: string, command: string, stdin: Buffer): Buffer | string {
  if (op !== 't' && Buffer.byteLength(command) > BODY_MIN_BYTES) {
    const body = Buffer.from(command);
    return Buffer.concat([Buffer.from(`${op} ${id} ${nonce} ${stdin.length} ${body.length}\n`), body, stdin]);
  }
  const payload = op === 't' ? statefulStatement(command) : command;
  const header = `${op} ${id} ${nonce} ${stdin.length}\n${encodeCommand(payload)}\n`;
  return stdin.length ? Buffer.concat([Buffer.from(header), stdin]) : header;
}

/** Op s and i commands longer than this go as raw bytes the supervisor reads in bulk (one exec of head, not a syscall a byte). */
export const BODY_MIN_BYTES = 1024;

/** Parses the supervisor's "READY <pid> <dir>" greeting out of what it printed so far. */
export const parseReady = (text: string): { pid: number; dir: string } | undefined => {
  const m = /READY (\d+) (\S+)\n/.exec(text);
  return m ? { pid: Number(m[1]), dir: m[2]! } : undefined;
};

/** Longest end line the worker waits for before calling the stream broken. */
export const MAX_END_LINE_BYTES = 96;

/**
 * What the supervisor saw happen in the slot during a failed call: the stateful shell ended (`exit`), and
 * the slot's cgroup counters of OOM kills and refused forks when they grew (their new totals).
 */
export interface EndFlags {
  shellExited?: true;
  oomKills?: number;
  pidsRefused?: number;
}

/** The end-of-call line that follows the nonce: "R <exitCode> <stderrBytes>[ exit][ oom=N][ pids=N]". */
export function parseEndLine(line: string): { exitCode: number; stderrBytes: number; flags: EndFlags } {
  const m = /^R (-?\d+) (\d+)((?: [a-z]+(?:=\d+)?)*)$/.exec(line);
  if (!m) throw new InternalError(`executor end line is malformed: ${JSON.stringify(line.slice(0, 80))}`);
  const flags: EndFlags = {};
  for (const f of m[3]!.trim().split(' ').filter(Boolean)) {
    const [k, v] = f.split('=');
    if (k === 'exit') flags.shellExited = true;
    else if (k === 'oom') flags.oomKills = Number(v);
    else if (k === 'pids') flags.pidsRefused = Number(v);
  }
  return { exitCode: Number(m[1]), stderrBytes: Number(m[2]), flags };
}

/**
 * The out-of-band kill of a call's process group (a `docker exec` of the helper's shell). It forks nothing
 * (a fork bomb may hold every pid) and acts only if the pid file still names this call. For a stateful
 * call it also unblocks the supervisor.
 */
export function killArgv(dir: string, id: number, stateful: boolean): string[] {
  const unblock = stateful ? `; exec 3<>${dir}/sout; echo 137 >&3` : '';
  return [HELPER_SH, '-c', `read -r i g < ${dir}/pid; [ "$i" = ${id} ] || exit 0; kill -9 -"$g" 2>/dev/null${unblock}; true`];
}

/**
 * Finds a marker in a byte stream fed in arbitrary chunks. Bytes before the marker are passed on as
 * soon as they cannot be the start of it; what follows the marker is returned to the caller.
 */
export class MarkerScanner {
  private carry: Buffer = Buffer.alloc(0);
  constructor(private readonly marker: Buffer) {}

  /** `data`: bytes before the marker (or safe so far); `rest`: bytes after it when `found`. */
  feed(chunk: Buffer): { data: Buffer; found: boolean; rest: Buffer } {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const at = buf.indexOf(this.marker);
    if (at >= 0) {
      this.carry = Buffer.alloc(0);
      return { data: buf.subarray(0, at), found: true, rest: buf.subarray(at + this.marker.length) };
    }
    const keep = Math.min(buf.length, this.marker.length - 1);
    this.carry = Buffer.from(buf.subarray(buf.length - keep));
    return { data: buf.subarray(0, buf.length - keep), found: false, rest: Buffer.alloc(0) };
  }
}

/**
 * One call over a plain `docker exec` (the fallback when no session can start, and artifact streams): the
 * script runs in a process group of its own, and the whole group is killed after timeoutS. User commands
 * (op s, t) run in the image's sh with the image's PATH; internal scripts (op i) in the helper's.
 */
export function oneShotArgv(op: Op, shells: SessionShells, command: string, timeoutS: number): string[] {
  const run = op === 'i' ? [HELPER_SH, '-c', `PATH=${HELPER_BIN}\n${command}`, 'slotq'] : [shells.sh, '-c', command, 'sh'];
  // The watchdog is a group of its own too, so it goes with its sleep when the call ends first.
  // An asynchronous command's stdin is /dev/null unless redirected: hand it ours explicitly.
  const guard = `S=${HELPER_BIN}/setsid; exec 3<&0; $S "$@" <&3 3<&- & p=$!; exec 3<&-; $S ${HELPER_SH} -c "${HELPER_BIN}/sleep ${timeoutS}; kill -9 -$p" & w=$!; wait $p; rc=$?; kill -9 -$p -$w 2>/dev/null; exit $rc`;
  return [HELPER_SH, '-c', guard, 'slotq', ...run];
}
