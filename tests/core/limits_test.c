/* What a process may bring with it: a fork from a multi-threaded parent, an
 * over-long LITEMALLOC_* variable, a limit on its address space.
 *
 * Each case runs in a fresh process, this program executed again as
 * `limits_test --case NAME` with the case's environment, so that
 * litemalloc's first allocation happens under the case's conditions (the core
 * reserves address space at its first allocation, not at start-up).  The
 * driver checks the exit status and what the case wrote on stderr:
 *
 *   fork_threads      the child of a parent with 4 allocating threads counts
 *                     1 thread (lm_stats) after its first allocation, and
 *                     the blocks it frees into those threads' heaps are
 *                     collected (lm_trim gives their pages back);
 *   env_*             an entry longer than 2 KiB gets the promised one-line
 *                     warning; a valid short one gets none;
 *   rlimit_as_900m    with RLIMIT_AS so small that no reservation of 1 GiB
 *                     fits, 900 MiB in pieces of 1..8 MiB are served with
 *                     few mmap calls.  The driver traces the case (ptrace)
 *                     and counts its mmap calls, failed ones included, which
 *                     lm_stats does not count;
 *   rlimit_as_first   with 48 MiB of address space left, the first
 *                     allocation succeeds.
 *
 * `limits_test NAME` runs only the cases whose name contains NAME.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

extern char **environ;

/* ---- the cases, each in its own process --------------------------------- */

/* fork_threads */

enum { THREADS = 4, BLOCKS = 300 };
static void *g_blocks[THREADS][BLOCKS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_ready, g_go;

static void *worker(void *arg) {
  size_t t = (size_t)arg;
  for (int i = 0; i < BLOCKS; i++) {
    size_t n = 16 + (size_t)i * 37 % 3000;
    g_blocks[t][i] = lm_malloc(n);
    CHECK(g_blocks[t][i] != NULL);
    memset(g_blocks[t][i], (int)t, n);
  }
  pthread_mutex_lock(&g_mu);
  g_ready++;
  pthread_cond_broadcast(&g_cv);
  while (!g_go) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < BLOCKS; i++) lm_free(g_blocks[t][i]);
  return NULL;
}

static int case_fork_threads(void) {
  void *mine = lm_malloc(64);
  CHECK(mine != NULL);
  pthread_t th[THREADS];
  for (size_t t = 0; t < THREADS; t++)
    CHECK(pthread_create(&th[t], NULL, worker, (void *)t) == 0);
  pthread_mutex_lock(&g_mu);
  while (g_ready < THREADS) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  lm_stats_t parent = stats_now();
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    void *p = lm_malloc(100);
    CHECK(p != NULL);
    lm_stats_t s = stats_now();
    printf("  parent with %d threads alive: threads %zu, heaps %zu; the fork child after one"
           " allocation: threads %zu, heaps %zu\n",
           THREADS + 1, parent.threads, parent.heaps, s.threads, s.heaps);
    /* the parent's threads' blocks, which no thread here owns */
    for (size_t t = 0; t < THREADS; t++)
      for (int i = 0; i < BLOCKS; i++) lm_free(g_blocks[t][i]);
    lm_free(p);
    lm_free(mine);
    lm_trim();
    lm_stats_t e = stats_now();
    printf("  the child, all freed and trimmed: threads %zu, heaps %zu, live objects %zu,"
           " committed %zu KiB (%zu KiB after the first allocation)\n",
           e.threads, e.heaps, e.live_objects, e.committed_bytes / KiB, s.committed_bytes / KiB);
    /* those blocks went to heaps without a thread here: lm_trim collects
     * them and gives their pages back */
    int collected = e.committed_bytes + MiB <= s.committed_bytes;
    if (s.threads != 1 || e.threads != 1) printf("  FAILED: threads is not 1 in the child\n");
    if (!collected)
      printf("  FAILED: the blocks freed into the parent's threads' heaps were not collected"
             " (less than 1 MiB given back)\n");
    fflush(stdout);
    _exit(s.threads == 1 && e.threads == 1 && collected ? 0 : 1);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  pthread_mutex_lock(&g_mu);
  g_go = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (size_t t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  lm_free(mine);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/* env_*: start-up reads the options; the driver looks at stderr. */
static int case_env(void) {
  void *p = lm_malloc(100);
  CHECK(p != NULL);
  lm_free(p);
  return 0;
}

/* rlimit_as_* */

static size_t vmsize_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t v = 0;
  CHECK(f != NULL);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmSize:", 7) == 0) v = (size_t)strtoull(line + 7, NULL, 10) * KiB;
  fclose(f);
  CHECK(v > 0);
  return v;
}

static void limit_address_space(size_t room) {
  size_t vm = vmsize_bytes();
  struct rlimit r = {vm + room, vm + room};
  CHECK(setrlimit(RLIMIT_AS, &r) == 0);
  printf("  RLIMIT_AS = VmSize %zu MiB + %zu MiB\n", vm / MiB, room / MiB);
}

/* No such system call (ENOSYS): the tracing driver counts mmap calls
 * between two of these. */
#define MARK_SYSCALL 0x4c4d

static int case_rlimit_as_900m(void) {
  enum { MAX_PIECES = 1000 };
  static unsigned char *piece[MAX_PIECES];
  /* Room for 1 GiB, not for a 1 GiB reservation aligned to 32 MiB. */
  limit_address_space(1040 * MiB);
  uint64_t rnd = 88172645463325252ull;
  size_t total = 0, n = 0, failed_at = SIZE_MAX;
  syscall(MARK_SYSCALL);
  while (total < 900 * MiB && n < MAX_PIECES) {
    size_t size = MiB + xorshift(&rnd) % (7 * MiB);
    piece[n] = lm_malloc(size);
    if (!piece[n]) {
      failed_at = total;
      break;
    }
    piece[n][0] = piece[n][size - 1] = 1;
    total += size;
    n++;
  }
  syscall(MARK_SYSCALL);
  lm_stats_t s = stats_now();
  if (failed_at != SIZE_MAX) printf("  FAILED: lm_malloc returned NULL after %zu MiB\n", total / MiB);
  printf("  %zu MiB in %zu pieces; lm_stats: mmap_calls %zu, reserved %zu MiB\n", total / MiB, n,
         s.mmap_calls, s.reserved_bytes / MiB);
  for (size_t i = 0; i < n; i++) lm_free(piece[i]);
  if (s.mmap_calls > 32) printf("  FAILED: more than 32 mappings\n");
  return failed_at == SIZE_MAX && s.mmap_calls <= 32 ? 0 : 1;
}

static int case_rlimit_as_first(void) {
  limit_address_space(48 * MiB);
  void *p = lm_malloc(16);
  if (!p) {
    printf("  FAILED: the first lm_malloc(16) returned NULL (errno %d)\n", errno);
    return 1;
  }
  memset(p, 1, 16);
  void *more[1000];
  for (int i = 0; i < 1000; i++) {
    more[i] = lm_malloc(64);
    CHECK(more[i] != NULL);
    memset(more[i], 2, 64);
  }
  for (int i = 0; i < 1000; i++) lm_free(more[i]);
  lm_free(p);
  printf("  the first allocation and 1000 more succeeded\n");
  return 0;
}

static const struct {
  const char *name;
  int (*fn)(void);
} g_case_fns[] = {
    {"fork_threads", case_fork_threads},
    {"env", case_env},
    {"rlimit_as_900m", case_rlimit_as_900m},
    {"rlimit_as_first", case_rlimit_as_first},
};

/* ---- the driver ------------------------------------------------------------ */

typedef struct {
  int status;       /* waitpid's */
  char err[8192];   /* the case's stderr */
  int traced;       /* mmap calls were counted */
  long mmaps, mmaps_failed;
} result_t;

static char *g_extra_env;   /* one more environment entry for the case, or NULL */

static void child_exec(const char *fn, int err_fd) {
  dup2(err_fd, 2);
  close(err_fd);
  alarm(30);   /* kept across execve */
  static char *envp[4096];
  size_t n = 0;
  for (char **e = environ; *e && n < 4094; e++)
    if (strncmp(*e, "LITEMALLOC_", 11) != 0) envp[n++] = *e;
  if (g_extra_env) envp[n++] = g_extra_env;
  envp[n] = NULL;
  char *argv[] = {"limits_test", "--case", (char *)fn, NULL};
  execve("/proc/self/exe", argv, envp);
  _exit(127);
}

/* Follows a traced child to its end, counting the mmap calls it makes
 * between its two MARK_SYSCALLs. */
static int trace(pid_t pid, result_t *r) {
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);   /* its SIGSTOP */
  if (!WIFSTOPPED(status)) return status;
  CHECK(ptrace(PTRACE_SETOPTIONS, pid, 0,
               PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACEEXEC) == 0);
  int armed = 0, sig = 0;
  unsigned long long nr = 0;
  for (;;) {
    CHECK(ptrace(PTRACE_SYSCALL, pid, 0, sig) == 0);
    sig = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) || WIFSIGNALED(status)) return status;
    if (!WIFSTOPPED(status)) continue;
    if (WSTOPSIG(status) == (SIGTRAP | 0x80)) {
      struct __ptrace_syscall_info info;
      memset(&info, 0, sizeof info);
      CHECK(ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, &info) > 0);
      if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
        nr = info.entry.nr;
        if (nr == MARK_SYSCALL) armed = !armed;
      } else if (info.op == PTRACE_SYSCALL_INFO_EXIT && armed && nr == SYS_mmap) {
        r->mmaps++;
        if (info.exit.is_error) r->mmaps_failed++;
      }
    } else if (status >> 8 != (SIGTRAP | (PTRACE_EVENT_EXEC << 8))) {
      sig = WSTOPSIG(status);   /* a signal for the child: deliver it */
    }
  }
}

#define TRACE_UNAVAILABLE 77

static void run(const char *fn, int traced, result_t *r) {
  memset(r, 0, sizeof *r);
  char path[4096];
  const char *dir = getenv("TEST_TMPDIR");
  snprintf(path, sizeof path, "%s/limits_test_err_XXXXXX", dir ? dir : "/tmp");
  int err_fd = mkstemp(path);
  CHECK(err_fd >= 0);
  unlink(path);
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (traced) {
      if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(TRACE_UNAVAILABLE);
      raise(SIGSTOP);
    }
    child_exec(fn, err_fd);
  }
  if (traced) {
    r->status = trace(pid, r);
    r->traced = 1;
    if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == TRACE_UNAVAILABLE) {
      printf("  (ptrace is not available here: mmap calls not counted)\n");
      close(err_fd);
      run(fn, 0, r);
      return;
    }
  } else {
    CHECK(waitpid(pid, &r->status, 0) == pid);
  }
  ssize_t n = pread(err_fd, r->err, sizeof r->err - 1, 0);
  r->err[n > 0 ? n : 0] = '\0';
  close(err_fd);
}

static int exited_ok(const result_t *r) {
  return WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static const char *describe(const result_t *r) {
  static char buf[128];
  if (WIFEXITED(r->status)) snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(r->status));
  else if (WIFSIGNALED(r->status)) snprintf(buf, sizeof buf, "signal %d", WTERMSIG(r->status));
  else snprintf(buf, sizeof buf, "status 0x%x", r->status);
  return buf;
}

/* Is s exactly one line that starts with prefix? */
static int one_line_starting(const char *s, const char *prefix) {
  const char *nl = strchr(s, '\n');
  return strncmp(s, prefix, strlen(prefix)) == 0 && nl != NULL && nl[1] == '\0';
}

static const char *check_fork_threads(void) {
  result_t r;
  run("fork_threads", 0, &r);
  if (r.err[0]) printf("  stderr: %s", r.err);
  return exited_ok(&r) ? NULL : describe(&r);
}

static const char *check_env(const char *entry, int want_warning) {
  g_extra_env = (char *)entry;
  result_t r;
  run("env", 0, &r);
  g_extra_env = NULL;
  size_t len = strlen(r.err);
  printf("  stderr (%zu bytes): %.200s%s", len, len ? r.err : "(empty)\n",
         len > 200 ? "...\n" : "");
  if (!exited_ok(&r)) return describe(&r);
  if (want_warning && !one_line_starting(r.err, "litemalloc: warning:"))
    return "no one-line warning starting \"litemalloc: warning:\"";
  if (!want_warning && len) return "a warning for a valid value";
  return NULL;
}

static char *long_entry(const char *prefix, char fill, size_t n, const char *suffix) {
  size_t p = strlen(prefix), s = strlen(suffix);
  char *e = malloc(p + n + s + 1);
  CHECK(e != NULL);
  memcpy(e, prefix, p);
  memset(e + p, fill, n);
  memcpy(e + p + n, suffix, s + 1);
  return e;
}

static const char *check_env_long_value(void) {
  return check_env(long_entry("LITEMALLOC_PURGE_DELAY_MS=", '1', 3000, ""), 1);
}

static const char *check_env_long_name(void) {
  return check_env(long_entry("LITEMALLOC_", 'X', 2100, "=1"), 1);
}

static const char *check_env_short_value(void) {
  return check_env("LITEMALLOC_PURGE_DELAY_MS=250", 0);
}

static const char *check_rlimit_as_900m(void) {
  result_t r;
  run("rlimit_as_900m", 1, &r);
  if (r.err[0]) printf("  stderr: %s", r.err);
  if (r.traced)
    printf("  mmap calls while allocating: %ld, %ld of them failed (at most 48 and 16"
           " allowed)\n", r.mmaps, r.mmaps_failed);
  if (!exited_ok(&r)) return describe(&r);
  if (r.traced && (r.mmaps > 48 || r.mmaps_failed > 16)) return "too many mmap calls";
  return NULL;
}

static const char *check_rlimit_as_first(void) {
  result_t r;
  run("rlimit_as_first", 0, &r);
  if (r.err[0]) printf("  stderr: %s", r.err);
  return exited_ok(&r) ? NULL : describe(&r);
}

static const struct {
  const char *name;
  const char *(*check)(void);
} g_checks[] = {
    {"fork_threads: fork child counts 1 thread", check_fork_threads},
    {"env_long_value: warning for a 3000-digit value", check_env_long_value},
    {"env_long_name: warning for a 2 KiB name", check_env_long_name},
    {"env_short_value: no warning for a valid value", check_env_short_value},
    {"rlimit_as_900m: 900 MiB, few mmap calls", check_rlimit_as_900m},
    {"rlimit_as_first: first allocation in 48 MiB", check_rlimit_as_first},
};

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp(argv[1], "--case") == 0) {
    for (size_t i = 0; i < sizeof g_case_fns / sizeof g_case_fns[0]; i++)
      if (strcmp(argv[2], g_case_fns[i].name) == 0) return g_case_fns[i].fn();
    fprintf(stderr, "no case %s\n", argv[2]);
    return 2;
  }
  int failed = 0;
  for (size_t i = 0; i < sizeof g_checks / sizeof g_checks[0]; i++) {
    if (argc > 1 && !strstr(g_checks[i].name, argv[1])) continue;
    printf("%s\n", g_checks[i].name);
    const char *why = g_checks[i].check();
    printf("  -> %s%s\n", why ? "FAILED: " : "ok", why ? why : "");
    failed += why != NULL;
  }
  if (failed) {
    printf("limits_test: %d case(s) FAILED\n", failed);
    return 1;
  }
  printf("limits_test: OK\n");
  return 0;
}
