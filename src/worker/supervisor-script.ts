/**
 * The executor that runs inside every slot: a POSIX-sh loop on one attached exec stream.
 * It needs only /bin/sh and coreutils (bash too, for bash_stateful).
 *
 * Request (worker → supervisor):  "<op> <id> <nonce> <stdinBytes>\n<command, printf-%b encoded>\n<stdin bytes>"
 *   op s: stateless call, a fresh `sh` in its own session (setsid), so the whole group can be killed;
 *   op t: stateful call, run in one long-lived bash per session.
 * The command writes straight into the exec's stdout and stderr: no files, no copies, no extra processes.
 * The worker tells where a call's output ends by a random per-call nonce:
 *   stderr: "<nonce>P <pgid> <dir>\n" when the call starts, "<nonce>R <exitCode>\n" when it ends;
 *   stdout: "<nonce>" right after the call's last byte.
 * The worker keeps only a bounded head and tail of each stream, so memory is bounded whatever a command prints.
 * After each stateless call the rest of its process group (background children) is killed.
 * On EOF (the worker is gone) it waits a grace period and, unless a newer session took over, ends the
 * container's main process: no container outlives its worker for long.
 */
export const SUPERVISOR_SCRIPT = String.raw`
GRACE=$1
R=/tmp/.slotq
D=$R/$$
mkdir -p "$D" || exit 97
cd /workspace || exit 98
[ "$GRACE" = none ] || printf '%s\n' "$$" > "$R/session"
spid=
start_stateful() {
  rm -f "$D/sin" "$D/sout"
  mkfifo "$D/sin" "$D/sout" || return 1
  setsid bash --noprofile --norc -s < "$D/sin" &
  spid=$!
  exec 8> "$D/sin"
  printf 'trap %s EXIT\ncd /workspace\n' "'echo 255 > $D/sout'" >&8
}
printf 'READY %s\n' "$$" >&2
while IFS=' ' read -r op id nonce inlen; do
  IFS= read -r enc || break
  printf '%b' "$enc" > "$D/c"
  if [ "$inlen" -gt 0 ]; then head -c "$inlen" > "$D/i"; else : > "$D/i"; fi
  if [ "$op" = t ]; then
    if [ -z "$spid" ] || ! kill -0 "$spid" 2>/dev/null; then start_stateful; fi
    printf '%sP %s %s\n' "$nonce" "$spid" "$D" >&2
    printf '{ . %s; } < %s; echo $? > %s\n' "$D/c" "$D/i" "$D/sout" >&8
    read -r rc < "$D/sout"
    if ! kill -0 "$spid" 2>/dev/null; then exec 8>&-; spid=; fi
  else
    setsid sh "$D/c" < "$D/i" &
    pid=$!
    printf '%sP %s %s\n' "$nonce" "$pid" "$D" >&2
    wait "$pid" 2>/dev/null
    rc=$?
    kill -9 -"$pid" 2>/dev/null
  fi
  printf '%s' "$nonce"
  printf '%sR %s\n' "$nonce" "$rc" >&2
done
[ -n "$spid" ] && kill -9 -"$spid" 2>/dev/null
[ "$GRACE" = none ] && { rm -rf "$D"; exit 0; }
sleep "$GRACE"
if [ "$(cat "$R/session" 2>/dev/null)" = "$$" ]; then kill -TERM "$(cat "$R/main" 2>/dev/null)" 2>/dev/null; fi
rm -rf "$D"
`;

/** Bytes of each stream's head and tail the worker keeps; the middle is only counted. */
export const CAPTURE_HEAD_BYTES = 100_000;
export const CAPTURE_TAIL_BYTES = 100_000;

/** The container's main process: records its pid for the supervisor's orphan check, then sleeps. */
export const CONTAINER_MAIN_CMD = ['sh', '-c', 'mkdir -p /tmp/.slotq && echo $$ > /tmp/.slotq/main && exec sleep infinity'];

/** Encodes a command for `printf %b` on one line: backslashes doubled, newlines escaped. */
export const encodeCommand = (command: string): string => command.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
