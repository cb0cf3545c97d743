/**
 * The executor that runs inside every slot: a shell loop on one attached exec stream. It runs under bash
 * when the image has it (job control gives each call its own process group without an extra exec), else
 * under POSIX sh with `setsid`. It needs nothing but a shell and coreutils.
 *
 * Request (worker → supervisor):  "<op> <id> <nonce> <stdinBytes>\n<command, printf-%b encoded>\n<stdin bytes>"
 *   op s: stateless call, a fresh `sh` in its own process group, so the whole group can be killed;
 *   op t: stateful call, run in one long-lived bash per session.
 * State lives in <dir> on its own small tmpfs (/run/slotq), out of the way of the command's /tmp.
 * Reply, all on stdout: "READY <pid> <dir>\n" once; per call, the command's stdout, written straight into the
 * stream, then "<nonce>R <exitCode> <stderrBytes>\n" and the call's stderr (kept in a file while it runs;
 * when over HEAD+TAIL bytes only its first HEAD and last TAIL bytes are sent). The random per-call nonce
 * marks where the command's stdout ends. The worker keeps only a bounded head and tail of stdout, so memory
 * is bounded whatever a command prints.
 * "<id> <pgid>" of the running call is in <dir>/pid, for the worker's out-of-band kill on timeout (the id
 * makes a late kill harmless to the next call).
 * After each stateless call the rest of its process group (background children) is killed.
 * On EOF it kills its stateful shell and exits. (A container ends with its worker through the main
 * process's stdin, see CONTAINER_MAIN_CMD.)
 */
export const SUPERVISOR_SCRIPT = String.raw`
HB=$1 TB=$2
if [ -n "$BASH_VERSION" ]; then set -m; SPAWN=; else SPAWN=setsid; fi
R=/run/slotq
[ -w "$R" ] || R=/tmp/.slotq
D=$R/$$
mkdir -p "$D" || exit 97
cd /workspace || exit 98
spid=
start_stateful() {
  rm -f "$D/sin" "$D/sout"
  mkfifo "$D/sin" "$D/sout" || return 1
  # The wrapper reports bash's real exit status (exit N, kill -9 $$) through the same fifo as the calls,
  # opening it read-write, which never blocks, in case bash died between calls. (wait's stderr is
  # silenced: dash would print "Killed" there.)
  $SPAWN sh -c 'bash --noprofile --norc -s < "$2" & wait $! 2>/dev/null; echo $? 1<>"$1"' slotq-stateful "$D/sout" "$D/sin" &
  spid=$!
  exec 8<> "$D/sin" 9<> "$D/sout"
  printf 'cd /workspace\n' >&8
}
printf 'READY %s %s\n' "$$" "$D"
exec 2>/dev/null
while IFS=' ' read -r op id nonce inlen; do
  IFS= read -r enc || break
  # If the state can't be written (directory removed, disk full), exit rather than run a cut-off
  # command: the worker sees the session die, answers with a retryable error and starts a new one.
  [ -d "$D" ] || exit 96
  printf '%b' "$enc" > "$D/c" || exit 95
  if [ "$inlen" -gt 0 ]; then head -c "$inlen" > "$D/i" || exit 95; else : > "$D/i" || exit 95; fi
  if [ "$op" = t ]; then
    if [ -z "$spid" ] || ! kill -0 "$spid"; then start_stateful; fi
    echo "$id $spid" > "$D/pid"
    printf '{ . %s; } < %s 2> %s; echo $? > %s\n' "$D/c" "$D/i" "$D/e" "$D/sout" >&8
    # fd 9 stays open (read-write) for the shell's life: no per-call open for a signal to interrupt.
    rc=
    while [ -z "$rc" ]; do read -r rc <&9 || break; done
    if ! kill -0 "$spid"; then exec 8>&- 9>&-; spid=; fi
  else
    $SPAWN sh "$D/c" < "$D/i" 2> "$D/e" &
    pid=$!
    echo "$id $pid" > "$D/pid"
    wait "$pid"
    rc=$?
    kill -9 -"$pid"
  fi
  es=0
  [ -s "$D/e" ] && es=$(wc -c < "$D/e")
  printf '%sR %s %s\n' "$nonce" "$rc" "$es"
  if [ "$es" -gt $((HB + TB)) ]; then head -c "$HB" "$D/e"; tail -c "$TB" "$D/e"; elif [ "$es" -gt 0 ]; then cat "$D/e"; fi
  : > "$D/e"
done
[ -n "$spid" ] && kill -9 -"$spid"
rm -rf "$D"
`;

/** Runs the supervisor under bash when the image has it, else under sh. */
export const supervisorArgv = (headBytes: number, tailBytes: number): string[] => [
  'sh',
  '-c',
  'if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc -c "$0" slotq-supervisor "$@"; else exec sh -c "$0" slotq-supervisor "$@"; fi',
  SUPERVISOR_SCRIPT,
  String(headBytes),
  String(tailBytes),
];

/** Bytes of each stream's head and tail the worker keeps; the middle is only counted. */
export const CAPTURE_HEAD_BYTES = 100_000;
export const CAPTURE_TAIL_BYTES = 100_000;

/**
 * The container's main process: it reads its stdin, which the worker holds open, and exits on EOF. So a
 * container ends (and removes itself) within moments of its worker dying, even a SIGKILLed one.
 */
export const CONTAINER_MAIN_CMD = ['sh', '-c', 'exec cat > /dev/null'];

/** Encodes a command for `printf %b` on one line: backslashes doubled, newlines escaped. */
export const encodeCommand = (command: string): string => command.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
