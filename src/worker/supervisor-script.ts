/**
 * The executor that runs inside every slot: a POSIX-sh loop on one attached exec stream.
 * It needs only /bin/sh and coreutils (bash too, for bash_stateful).
 *
 * Request (worker → supervisor):  "<op> <id> <stdinBytes>\n<command, printf-%b encoded>\n<stdin bytes>"
 *   op s: stateless call, a fresh `sh` in its own session (setsid), so the whole group can be killed;
 *   op t: stateful call, run in one long-lived bash per session.
 * Replies (supervisor → worker):
 *   "READY <pid>\n" once; "P <id> <pgid> <dir>\n" when a call starts;
 *   "R <id> <exitCode> <stdoutBytes> <stderrBytes>\n" then the bodies: each body is the whole stream when it
 *   is at most HEAD+TAIL bytes, else its first HEAD and last TAIL bytes. So memory is bounded whatever a
 *   command prints, and the worker knows exactly how much was left out.
 * After each stateless call the rest of its process group (background children) is killed.
 * On EOF (the worker is gone) it waits a grace period and, unless a newer session took over, ends the
 * container's main process: no container outlives its worker for long.
 */
export const SUPERVISOR_SCRIPT = String.raw`
HB=$1 TB=$2 GRACE=$3
R=/tmp/.slotq
D=$R/$$
mkdir -p "$D" || exit 97
cd /workspace || exit 98
[ "$GRACE" = none ] || printf '%s\n' "$$" > "$R/session"
spid=
start_stateful() {
  rm -f "$D/sin" "$D/sout"
  mkfifo "$D/sin" "$D/sout" || return 1
  setsid bash --noprofile --norc -s < "$D/sin" > /dev/null 2>&1 &
  spid=$!
  exec 8> "$D/sin"
  printf 'trap %s EXIT\ncd /workspace\n' "'echo 255 > $D/sout'" >&8
}
emit() {
  if [ "$2" -le $((HB + TB)) ]; then
    [ "$2" -gt 0 ] && cat "$1"
  else
    head -c "$HB" "$1"; tail -c "$TB" "$1"
  fi
}
printf 'READY %s\n' "$$"
while IFS=' ' read -r op id inlen; do
  IFS= read -r enc || break
  printf '%b' "$enc" > "$D/c"
  if [ "$inlen" -gt 0 ]; then head -c "$inlen" > "$D/i"; else : > "$D/i"; fi
  if [ "$op" = t ]; then
    if [ -z "$spid" ] || ! kill -0 "$spid" 2>/dev/null; then start_stateful; fi
    printf 'P %s %s %s\n' "$id" "$spid" "$D"
    printf '{ . %s; } < %s > %s 2> %s; echo $? > %s\n' "$D/c" "$D/i" "$D/o" "$D/e" "$D/sout" >&8
    read -r rc < "$D/sout"
    if ! kill -0 "$spid" 2>/dev/null; then exec 8>&-; spid=; fi
    : >> "$D/o"; : >> "$D/e"
  else
    setsid sh "$D/c" < "$D/i" > "$D/o" 2> "$D/e" &
    pid=$!
    printf 'P %s %s %s\n' "$id" "$pid" "$D"
    wait "$pid"
    rc=$?
    kill -9 -"$pid" 2>/dev/null
  fi
  os=0 es=0
  if [ -s "$D/o" ] || [ -s "$D/e" ]; then
    set -- $(wc -c "$D/o" "$D/e")
    os=$1 es=$3
  fi
  printf 'R %s %s %s %s\n' "$id" "$rc" "$os" "$es"
  if [ "$os" -le $((HB + TB)) ] && [ "$es" -le $((HB + TB)) ]; then
    [ $((os + es)) -gt 0 ] && cat "$D/o" "$D/e"
  else
    emit "$D/o" "$os"; emit "$D/e" "$es"
  fi
done
[ -n "$spid" ] && kill -9 -"$spid" 2>/dev/null
[ "$GRACE" = none ] && { rm -rf "$D"; exit 0; }
sleep "$GRACE"
if [ "$(cat "$R/session" 2>/dev/null)" = "$$" ]; then kill -TERM "$(cat "$R/main" 2>/dev/null)" 2>/dev/null; fi
rm -rf "$D"
`;

export const SUPERVISOR_HEAD_BYTES = 100_000;
export const SUPERVISOR_TAIL_BYTES = 100_000;

/** The container's main process: records its pid for the supervisor's orphan check, then sleeps. */
export const CONTAINER_MAIN_CMD = ['sh', '-c', 'mkdir -p /tmp/.slotq && echo $$ > /tmp/.slotq/main && exec sleep infinity'];

/** Encodes a command for `printf %b` on one line: backslashes doubled, newlines escaped. */
export const encodeCommand = (command: string): string => command.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
