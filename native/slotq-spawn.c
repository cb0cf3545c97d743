/*
 * slotq-spawn: the executor's launcher, one per supervisor session (src/worker/executor/executor-protocol.ts).
 *
 * The supervisor is a busybox shell script: it reads a request a byte at a time (two syscalls a byte), and
 * starting a command costs it a fork, an exec of setsid and an exec of the image's sh; on a VM where an exec
 * costs ~0.5 ms, that was most of a call's CPU. At its first request the supervisor hands its input to this
 * program, which from then on reads every request (buffered), runs op s and op i commands itself with one
 * vfork and one exec (new session), forwards op t (the persistent shell) to the
 * supervisor, and writes every call's end line and stderr.
 *
 * argv: <state dir> <image sh> <image PATH> <helper sh> <helper PATH> <stderr head bytes> <stderr tail bytes>
 * fd 0: the requests, as the worker sends them (executor-protocol.ts, encodeRequest): a header line
 *   "<op> <id> <nonce> <stdinBytes> [<cmdBytes>]", then the command ($'…'-quoted on one line, or cmdBytes raw
 *   bytes), then the stdin bytes.
 *   op s: a user command in the image's sh with the image's PATH; op i: slotq's script in the helper's sh;
 *     run as `sh -c <command> sh`, or `sh <dir>/c` for a raw command. stdin <dir>/i (/dev/null when the call
 *     has none, as for `docker exec` without -i), stderr <dir>/e, stdout
 *     this process's (the channel). "<id> <pid>" is in <dir>/pid while it runs, for the worker's out-of-band
 *     kill (pid = process group: the command leads a session of its own). After it, the rest of its process
 *     group is killed.
 *   op t: forwarded as it came on fd 3; the supervisor answers "<status>|<flags>" on fd 5.
 * fd 1: per call, the command's stdout, then "<nonce>R <status> <stderrBytes>[ flags]\n" and the stderr
 *   (its first and last bytes only when over head+tail). Flags: the supervisor's (" exit"), then " oom=N" /
 *   " pids=N" when the slot cgroup's OOM-kill or refused-fork counters grew during a failed call.
 * First it writes "ok\n" on fd 3, then reads the header of the first request, which the supervisor has read
 * already, on fd 5 (not in argv: /proc shows argv to the commands, and the header holds the call's nonce). It ends on EOF (the supervisor, reading fd 3, then ends too), exits when its
 * state directory is gone (the worker starts a new session), and dies with the supervisor (PR_SET_PDEATHSIG).
 * It puts itself, the supervisor and so every command under SCHED_BATCH: a call waking up does not preempt
 * the worker (or a training loop beside it) on its core; commands still get their fair share of CPU.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *dir, *img_sh, *hlp_sh;
static char **env_img, **env_hlp;
static long head_bytes, tail_bytes, oom0, pids0;
static char p_in[4096], p_err[4096], p_cmd[4096], p_pid[4096];
static int pid_fd = -1;
/* SIGCHLD, blocked and read from this fd: a call's wait also watches the worker's input for a kill */
static int sig_fd = -1;

/* A buffered reader of our own (not stdio): while a command runs, poll() must see every byte not yet read. */
struct rd {
  int fd;
  char *buf;
  size_t off, len, cap;
};
static struct rd rin = {0, NULL, 0, 0, 0};  /* the worker's requests */
static struct rd rsup = {5, NULL, 0, 0, 0}; /* the supervisor's answers (op t), and the first header */

/* more bytes into r; the count read, 0 on EOF, -1 on error */
static ssize_t rd_fill(struct rd *r) {
  if (r->off > 0) memmove(r->buf, r->buf + r->off, r->len - r->off), r->len -= r->off, r->off = 0;
  if (r->len == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 65536;
    char *b = realloc(r->buf, cap);
    if (!b) exit(10);
    r->buf = b, r->cap = cap;
  }
  ssize_t n;
  do n = read(r->fd, r->buf + r->len, r->cap - r->len);
  while (n < 0 && errno == EINTR);
  if (n > 0) r->len += (size_t)n;
  return n;
}

/* the length of the complete line at the head of r (with its newline), or 0 */
static size_t rd_line_at(struct rd *r) {
  char *nl = memchr(r->buf + r->off, '\n', r->len - r->off);
  return nl ? (size_t)(nl - (r->buf + r->off)) + 1 : 0;
}

/* the next line, without its newline, NUL-terminated in r's buffer (valid until the next read); NULL on EOF */
static char *rd_line(struct rd *r) {
  size_t n;
  while ((n = rd_line_at(r)) == 0)
    if (rd_fill(r) <= 0) return NULL;
  char *line = r->buf + r->off;
  line[n - 1] = 0;
  r->off += n;
  return line;
}

/* environ with PATH replaced by path */
static char **env_with_path(const char *path) {
  size_t n = 0;
  while (environ[n]) n++;
  char **e = calloc(n + 2, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "PATH=", 5) != 0) e[k++] = environ[i];
  if (asprintf(&e[k], "PATH=%s", path) < 0) exit(10);
  return e;
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

/* n bytes of the worker's input to fd (or dropped when fd < 0); -1 on EOF or a failed write */
static int copy_in(size_t n, int fd) {
  while (n > 0) {
    if (rin.off == rin.len && rd_fill(&rin) <= 0) return -1;
    size_t r = rin.len - rin.off < n ? rin.len - rin.off : n;
    if (fd >= 0 && write_all(fd, rin.buf + rin.off, r) < 0) return -1;
    rin.off += r, n -= r;
  }
  return 0;
}

/*
 * A kill for the running call, in band: "k <id>" on the worker's input while a call runs (between calls
 * nothing else comes, so anything there is for this call). It needs no new process in the slot, so it
 * works when a fork bomb holds every pid, and no dockerd. 1: a kill for call id (taken); 0: nothing yet, or a
 * kill for another call (taken, ignored: it came too late for its call); -1: another line, left for later.
 */
static int take_kill(const char *id) {
  for (;;) {
    size_t n = rd_line_at(&rin);
    if (n == 0) return 0;
    char *line = rin.buf + rin.off;
    if (n < 3 || line[0] != 'k' || line[1] != ' ') return -1;
    line[n - 1] = 0;
    int mine = strcmp(line + 2, id) == 0;
    rin.off += n;
    if (mine) return 1;
  }
}

/* waits for fd to be readable, or a child to change state; watching the worker's input for a kill when
 * watch_in: 1 when fd is readable (or at EOF), 2 when the kill came (or the worker's input ended), 0 otherwise */
static int wait_event(int fd, const char *id, int *watch_in, int timeout_ms) {
  if (*watch_in) {
    int k = take_kill(id);
    if (k == 1) return 2;
    if (k < 0) *watch_in = 0;
  }
  struct pollfd p[3] = {{sig_fd, POLLIN, 0}, {fd, POLLIN, 0}, {0, POLLIN, 0}};
  int n = fd >= 0 ? 2 : 1;
  if (*watch_in) p[n].fd = 0, n++;
  if (poll(p, (nfds_t)n, timeout_ms) <= 0) return 0;
  if (p[0].revents) {
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) > 0) {
    }
  }
  if (*watch_in && (p[n - 1].revents & (POLLIN | POLLHUP | POLLERR))) {
    if (rd_fill(&rin) <= 0) {
      *watch_in = 0;
      return 2; /* the worker is gone: so is the call */
    }
    if (take_kill(id) == 1) return 2;
  }
  return fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

/* stdin bytes into a fresh file; exits when the state directory is gone (as the shell supervisor did) */
static void stdin_to_file(const char *path, size_t n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) exit(96);
  int rc = copy_in(n, fd);
  close(fd);
  if (rc < 0) exit(95);
}

/* $'…' → bytes (in place), the inverse of encodeCommand() */
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

/* one value from a cgroup v1 or v2 file of "key value" lines, or -1 */
static long counter(const char *v1, const char *v2, const char *key) {
  const char *paths[2] = {v1, v2};
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen(paths[i], "re");
    if (!f) continue;
    char k[64];
    long v;
    while (fscanf(f, "%63s %ld", k, &v) == 2)
      if (strcmp(k, key) == 0) {
        fclose(f);
        return v;
      }
    fclose(f);
  }
  return -1;
}
static long oom_kills(void) { return counter("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events", "oom_kill"); }
static long pids_refused(void) { return counter("/sys/fs/cgroup/pids/pids.events", "/sys/fs/cgroup/pids.events", "max"); }

/* the child of vfork, until its exec: only syscalls, no allocation (it runs on the parent's memory) */
static void child(const char *sh, char **argv, char **envp, const char *in, char *pid_line, int pid_at) {
  setsid(); /* a session and process group of its own: the worker's kill takes the whole group */
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL); /* the shell left SIGINT and SIGQUIT ignored */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int fd = open(in, O_RDONLY);
  if (fd < 0 || dup2(fd, 0) < 0) _exit(126);
  if (fd != 0) close(fd);
  fd = open(p_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || dup2(fd, 2) < 0) _exit(126);
  if (fd != 2) close(fd);
  /* "<id> <pid>" before the command runs: a command that kills this process at once still leaves its own
   * pid for the cleanup (written after the spawn, it raced the command). */
  unsigned v = (unsigned)getpid();
  for (int i = pid_at + 11; i >= pid_at; i--) pid_line[i] = ' ';
  char digits[12];
  int n = 0;
  do digits[n++] = (char)('0' + v % 10), v /= 10;
  while (v);
  for (int i = 0; i < n; i++) pid_line[pid_at + i] = digits[n - 1 - i];
  if (pwrite(pid_fd, pid_line, (size_t)pid_at + 13, 0) != pid_at + 13) _exit(126);
  execve(sh, argv, envp);
  static const char msg[] = "slotq: cannot start the shell\n";
  if (write(2, msg, sizeof msg - 1)) {
  }
  _exit(errno == ENOENT ? 127 : 126);
}

/* runs one command; its exit status (128+N for signal N) */
static int run(char op, const char *id, int from_file, char *cmd, int has_stdin) {
  char *sh = op == 'i' ? hlp_sh : img_sh;
  char *argv[5] = {sh, "-c", cmd, "sh", NULL};
  if (from_file) argv[1] = p_cmd, argv[2] = NULL;
  char **envp = op == 'i' ? env_hlp : env_img;
  const char *in = has_stdin ? p_in : "/dev/null"; /* no stdin: as `docker exec` without -i */
  /* The same fixed-width line every time ("%-20s %-12d\n"; the kill script's read splits on blanks). */
  char pid_line[64];
  int pid_at = snprintf(pid_line, sizeof pid_line, "%-20.20s ", id);
  pid_line[pid_at + 12] = '\n';
  pid_t pid = vfork(); /* the parent waits until the exec: no copy of its memory, and the pid line is written */
  if (pid == 0) child(sh, argv, envp, in, pid_line, pid_at);
  if (pid < 0) {
    FILE *ef = fopen(p_err, "we");
    if (ef) fprintf(ef, "slotq: cannot start a process: %s\n", strerror(errno)), fclose(ef);
    return 126;
  }
  int status = 0, w, watch_in = 1;
  for (;;) {
    w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (w == 0 && wait_event(-1, id, &watch_in, -1) == 2) kill(-pid, SIGKILL); /* timed out: the whole group */
  }
  kill(-pid, SIGKILL); /* what the command left running in its group */
  if (w < 0) return 255;
  return WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
}

/* copies n bytes of fd from off to stdout; a file that shrank leaves the worker short of bytes: it times out */
static int copy_out(int fd, off_t off, off_t n) {
  static char buf[65536];
  while (n > 0) {
    ssize_t r = pread(fd, buf, n < (off_t)sizeof buf ? (size_t)n : sizeof buf, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    if (write_all(1, buf, (size_t)r) < 0) return -1;
    off += r, n -= r;
  }
  return 0;
}

/* the end line and the stderr; exits when stdout is gone */
static void end_of_call(const char *nonce, int status, const char *flags) {
  char fl[128] = "";
  snprintf(fl, sizeof fl, "%s", flags);
  if (status != 0) {
    long o = oom_kills(), p = pids_refused();
    size_t at = strlen(fl);
    if (o != oom0) at += (size_t)snprintf(fl + at, sizeof fl - at, " oom=%ld", o), oom0 = o;
    if (p != pids0) snprintf(fl + at, sizeof fl - at, " pids=%ld", p), pids0 = p;
  }
  int fd = open(p_err, O_RDONLY | O_CLOEXEC);
  struct stat st;
  off_t size = fd >= 0 && fstat(fd, &st) == 0 ? st.st_size : 0;
  char line[256];
  int n = snprintf(line, sizeof line, "%sR %d %lld%s\n", nonce, status, (long long)size, fl);
  int rc = write_all(1, line, (size_t)n);
  if (rc == 0 && size > 0) {
    if (size > head_bytes + tail_bytes) rc = copy_out(fd, 0, head_bytes) < 0 || copy_out(fd, size - tail_bytes, tail_bytes) < 0 ? -1 : 0;
    else rc = copy_out(fd, 0, size);
  }
  if (fd >= 0) close(fd);
  if (size > 0 && truncate(p_err, 0) < 0) exit(96);
  if (rc < 0) exit(6);
}

/* the kill of a timed-out op t call: the stateful shell's group (the supervisor wrote "<id> <pgid>"), and an
 * answer for the supervisor, which waits on the shell (as killArgv() in executor-protocol.ts does); 1 when
 * done, 0 when the pid file does not name the call yet (the caller tries again) */
static int kill_stateful(const char *id) {
  char buf[128] = "", pid_id[64];
  long g = 0;
  int fd = open(p_pid, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  /* not (yet) this call's: the supervisor writes it just before it hands the statement to the shell */
  if (n <= 0 || sscanf(buf, "%63s %ld", pid_id, &g) != 2 || strcmp(pid_id, id) != 0 || g <= 1) return 0;
  kill((pid_t)-g, SIGKILL);
  char sout[4096];
  snprintf(sout, sizeof sout, "%s/sout", dir);
  fd = open(sout, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "137\n", 4) < 0) {
    }
    close(fd);
  }
  return 1;
}

/* one request whose header is parsed; returns -1 on EOF */
static int request(const char *op, const char *id, const char *nonce, size_t inlen, size_t clen) {
  static char *line;
  static size_t cap;
  char *cmd = NULL;
  if (clen > 0) {
    if (op[0] == 't') return -1; /* never sent: the stateful shell reads its statement as one line */
    stdin_to_file(p_cmd, clen);
  } else {
    /* copied out of the reader's buffer: reading on (a kill, the stdin bytes) may move it */
    char *l = rd_line(&rin);
    if (!l) return -1;
    size_t n = strlen(l) + 1;
    if (n > cap) {
      char *b = realloc(line, n);
      if (!b) exit(10);
      line = b, cap = n;
    }
    memcpy(line, l, n);
    cmd = line;
  }
  if (op[0] == 't') {
    /* as it came, for the supervisor's loop; its answer: "<status>|<flags>" */
    if (dprintf(3, "%s %s %s %zu\n%s\n", op, id, nonce, inlen, cmd) < 0 || copy_in(inlen, 3) < 0) return -1;
    int watch_in = 1, killing = 0;
    while (rd_line_at(&rsup) == 0) {
      /* a kill that came before the supervisor named the call in the pid file is tried again every 20 ms */
      int ev = wait_event(5, id, &watch_in, killing ? 20 : -1);
      if (ev == 2) killing = 1;
      if (killing && kill_stateful(id)) killing = 0;
      if (ev == 1 && rd_fill(&rsup) <= 0) return -1;
    }
    char *ans = rd_line(&rsup);
    char *bar = ans ? strchr(ans, '|') : NULL;
    if (!bar) return -1;
    *bar++ = 0;
    end_of_call(nonce, atoi(ans), bar);
    return 0;
  }
  if (inlen > 0) stdin_to_file(p_in, inlen);
  int status = run(op[0], id, clen > 0, clen > 0 ? NULL : decode(cmd), inlen > 0);
  end_of_call(nonce, status, "");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: slotq-spawn <dir> <image sh> <image PATH> <helper sh> <helper PATH> <head> <tail>\n");
    return 2;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 3; /* the supervisor is already gone */
  close(4);
  close_range(6, ~0U, 0); /* only 0, 1, 2 reach a command (stdin and stderr replaced); 3 and 5 are ours */
  fcntl(0, F_SETFD, FD_CLOEXEC);
  fcntl(3, F_SETFD, FD_CLOEXEC);
  fcntl(5, F_SETFD, FD_CLOEXEC);
  struct sched_param none = {0};
  sched_setscheduler(0, SCHED_BATCH, &none);
  sched_setscheduler(getppid(), SCHED_BATCH, &none);
  dir = argv[1], img_sh = argv[2], hlp_sh = argv[4];
  env_img = env_with_path(argv[3]);
  env_hlp = env_with_path(argv[5]);
  head_bytes = atol(argv[6]), tail_bytes = atol(argv[7]);
  snprintf(p_in, sizeof p_in, "%s/i", dir);
  snprintf(p_err, sizeof p_err, "%s/e", dir);
  snprintf(p_cmd, sizeof p_cmd, "%s/c", dir);
  snprintf(p_pid, sizeof p_pid, "%s/pid", dir);
  pid_fd = open(p_pid, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  oom0 = oom_kills(), pids0 = pids_refused();
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL); /* each child unblocks it before its exec (child()) */
  sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sig_fd < 0 || write_all(3, "ok\n", 3) < 0) return 4;
  int rc = 0;
  for (struct rd *in = &rsup; rc == 0; in = &rin) {
    char *head = rd_line(in);
    if (!head) break;
    if (head[0] == 'k' && head[1] == ' ') continue; /* a kill that came after its call ended */
    char op[8], id[32], nonce[64];
    size_t inlen = 0, clen = 0;
    int got = sscanf(head, "%7s %31s %63s %zu %zu", op, id, nonce, &inlen, &clen);
    if (got < 4 || strchr("sit", op[0]) == NULL || op[1] != 0) return 7; /* not the worker's: end the session */
    rc = request(op, id, nonce, inlen, got == 5 ? clen : 0);
  }
  return 0;
}
