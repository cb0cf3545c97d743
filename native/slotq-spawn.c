/*
 * slotq-spawn: the executor's process launcher, one per supervisor session (src/worker/executor-protocol.ts).
 *
 * Starting a call's command from the supervisor's busybox shell costs a fork, an exec of setsid and an exec
 * of the image's sh; on a VM where an exec costs ~0.5 ms, that was most of a call's CPU. This launcher,
 * started once per session, does it with one posix_spawn (vfork-like clone, new session, one exec).
 *
 * argv: <state dir> <image sh> <image PATH> <helper sh> <helper PATH> <stderr head bytes> <stderr tail bytes>
 * stdin: requests, two lines each: "<op> <id> <form>\n<payload>\n"
 *   op s: a user command in the image's sh with the image's PATH; op i: slotq's script in the helper's sh;
 *     form c: payload is the command, $'…'-quoted (\\ \' \n \r escapes), run as `sh -c <command> sh`;
 *     form f: the command is in <dir>/c, run as `sh <dir>/c` (payload ignored).
 *     The command's stdin is <dir>/i, its stderr <dir>/e; its stdout is this process's stdout (the
 *     supervisor's). "<id> <pid>" goes to <dir>/pid while it runs, for the worker's out-of-band kill (pid =
 *     process group, as the command leads a session of its own). Reply: "<exit status>" (128+N for signal N),
 *     once the command ended and the rest of its process group was killed.
 *   op e: the end of a call, payload "<before>|<after>": writes "<before> <stderr bytes><after>\n" to stdout,
 *     then <dir>/e (its first and last bytes only, when over head+tail), and empties <dir>/e. Reply: "0".
 *     (The shell would fork wc and cat for that.)
 * fd 4: replies, one line per request.
 * It dies with its parent (PR_SET_PDEATHSIG) and ends on EOF. It puts itself, the supervisor and so every
 * command under SCHED_BATCH: a call waking up does not preempt the worker (or a training loop beside it) on
 * its core, and commands still get their fair share of CPU. (Here: ~20% more calls/s on 2 cores.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_CMD (256 * 1024)

static char *dir, *img_sh, *img_path, *hlp_sh, *hlp_path;
static long head_bytes, tail_bytes;
static char **env_img, **env_hlp;

/* environ with PATH replaced by path */
static char **env_with_path(const char *path) {
  size_t n = 0;
  while (environ[n]) n++;
  char **e = calloc(n + 2, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "PATH=", 5) != 0) e[k++] = environ[i];
  size_t len = strlen(path) + 6;
  e[k] = malloc(len);
  snprintf(e[k], len, "PATH=%s", path);
  return e;
}

/* one line from stdin, without the newline; NULL on EOF */
static char *read_line(char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    int c = getchar();
    if (c == EOF) return NULL;
    if (c == '\n') break;
    if (n + 1 < cap) buf[n++] = (char)c;
  }
  buf[n] = 0;
  return buf;
}

/* $'…' → bytes (in place); returns the decoded string */
static char *decode(char *s) {
  size_t len = strlen(s);
  if (len < 3 || s[0] != '$' || s[1] != '\'' || s[len - 1] != '\'') return s[0] == '\'' && len >= 2 && s[len - 1] == '\'' ? (s[len - 1] = 0, s + 1) : s;
  char *in = s + 2, *end = s + len - 1, *out = s;
  while (in < end) {
    if (*in == '\\' && in + 1 < end) {
      in++;
      *out++ = *in == 'n' ? '\n' : *in == 'r' ? '\r' : *in;
      in++;
    } else {
      *out++ = *in++;
    }
  }
  *out = 0;
  return s;
}

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", dir, name); }

static int run(char op, const char *id, char form, char *cmd) {
  char in_path[4096], err_path[4096], file_path[4096], pid_path[4096];
  path_of(in_path, sizeof in_path, "i");
  path_of(err_path, sizeof err_path, "e");
  path_of(file_path, sizeof file_path, "c");
  path_of(pid_path, sizeof pid_path, "pid");
  char *sh = op == 'i' ? hlp_sh : img_sh;
  char *argv[5] = {sh, NULL, NULL, NULL, NULL};
  if (form == 'f') {
    argv[1] = file_path;
  } else {
    argv[1] = "-c";
    argv[2] = cmd;
    argv[3] = "sh";
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_init(&at);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int err = posix_spawn(&pid, sh, &fa, &at, argv, op == 'i' ? env_hlp : env_img);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (err != 0) {
    fprintf(stderr, "slotq-spawn: %s: %s\n", sh, strerror(err));
    return err == ENOENT ? 127 : 126;
  }
  FILE *pf = fopen(pid_path, "w");
  if (pf) {
    fprintf(pf, "%s %d\n", id, (int)pid);
    fclose(pf);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  kill(-pid, SIGKILL); /* what the command left running in its group */
  return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

/* copies n bytes of fd from off to stdout */
static int copy_out(int fd, off_t off, off_t n) {
  static char buf[65536];
  while (n > 0) {
    ssize_t r = pread(fd, buf, n < (off_t)sizeof buf ? (size_t)n : sizeof buf, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0; /* shorter than it was: the worker waits for bytes that will not come, and times out */
    if (write_all(1, buf, (size_t)r) < 0) return -1;
    off += r, n -= r;
  }
  return 0;
}

static int end_of_call(char *payload) {
  char err_path[4096];
  path_of(err_path, sizeof err_path, "e");
  char *after = strchr(payload, '|');
  if (after) *after++ = 0;
  int fd = open(err_path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  off_t size = fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : 0;
  char line[512];
  int n = snprintf(line, sizeof line, "%s %lld%s\n", payload, (long long)size, after ? after : "");
  int rc = n > 0 && n < (int)sizeof line ? write_all(1, line, (size_t)n) : -1;
  if (rc == 0 && size > 0) {
    if (size > head_bytes + tail_bytes) rc = copy_out(fd, 0, head_bytes) < 0 || copy_out(fd, size - tail_bytes, tail_bytes) < 0 ? -1 : 0;
    else rc = copy_out(fd, 0, size);
  }
  if (fd >= 0) close(fd);
  if (size > 0) truncate(err_path, 0);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: slotq-spawn <dir> <image sh> <image PATH> <helper sh> <helper PATH> <head bytes> <tail bytes>\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  {
    struct sched_param none = {0};
    sched_setscheduler(0, SCHED_BATCH, &none);
    sched_setscheduler(getppid(), SCHED_BATCH, &none);
  }
  if (getppid() == 1) return 3; /* the supervisor is already gone */
  dir = argv[1], img_sh = argv[2], img_path = argv[3], hlp_sh = argv[4], hlp_path = argv[5];
  head_bytes = atol(argv[6]), tail_bytes = atol(argv[7]);
  env_img = env_with_path(img_path);
  env_hlp = env_with_path(hlp_path);
  /* Nothing of ours reaches a command but stdout: requests and replies are close-on-exec. */
  fcntl(0, F_SETFD, FD_CLOEXEC);
  fcntl(4, F_SETFD, FD_CLOEXEC);
  for (int fd = 3; fd < 256; fd++)
    if (fd != 4) close(fd);
  if (write(4, "ok\n", 3) != 3) return 5;
  static char head[256], payload[MAX_CMD];
  char op[8], id[32], form[8];
  while (read_line(head, sizeof head)) {
    if (!read_line(payload, sizeof payload)) break;
    if (sscanf(head, "%7s %31s %7s", op, id, form) != 3) return 4;
    int rc;
    if (op[0] == 'e') {
      if (end_of_call(payload) < 0) return 6; /* stdout is gone: so is the session */
      rc = 0;
    } else {
      rc = run(op[0], id, form[0], decode(payload));
    }
    char reply[32];
    int n = snprintf(reply, sizeof reply, "%d\n", rc);
    if (write(4, reply, (size_t)n) != n) return 5;
  }
  return 0;
}
