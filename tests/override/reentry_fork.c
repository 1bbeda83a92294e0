/* fork() from several threads at once while other threads allocate and free
 * and the allocator caches and purges memory (libc re-entry, issue 7 points
 * 1 and 8).
 *
 * CHURN threads allocate and free small blocks and large ones (256 KiB to
 * 2 MiB), so memory is cached and being purged all along; FORKERS threads
 * fork FORKS times each, concurrently.  Each child, whose only thread is the
 * forking one:
 *   - allocates once and, with litemalloc, checks that only its own heap
 *     counts as held (`threads` == 1: the heaps of the parent's other threads
 *     have no thread in the child);
 *   - frees a block the forking thread allocated before fork, and blocks that
 *     the parent's churn threads allocated (frees into heaps that have no
 *     thread in the child), allocates and frees small and large blocks;
 *   - creates a thread that allocates and frees too (2 heaps held at most
 *     while it runs), joins it (1 again), and leaves with _exit(0).
 * The parent waits for each child for at most CHILD_LIMIT_S seconds, then
 * kills it with SIGKILL (a child deadlocked in pthread_create blocks every
 * other signal) and fails.  The parent itself can deadlock too, so
 * reentry_run.sh runs this program under a SIGKILL watchdog.  The default
 * options are used: no LITEMALLOC_* variable, no GLIBC_TUNABLES.
 *
 * Usage: reentry_fork [FORKS_PER_THREAD]   (default 100)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reentry_common.h"

#define CHURN 3
#define FORKERS 3
#define SLOTS 48
#define CHILD_LIMIT_S 10

/* The churn threads' blocks: a slot holds a live block or NULL at every
 * instant (blocks are taken out with an exchange before they are freed), so a
 * child may free what it finds there. */
static _Atomic(unsigned char *) g_slots[CHURN][SLOTS];
static atomic_int g_stop;
static atomic_size_t g_forks, g_child_failures;

static size_t churn_size(uint64_t *rng) {
  uint64_t r = xorshift(rng);
  if (r % 16 == 0) return 256 * KiB + (r >> 8) % (2 * MiB - 256 * KiB);
  return 16 + (r >> 8) % 2048;
}

static unsigned char *block_new(size_t size, unsigned char tag) {
  unsigned char *p = malloc(size);
  CHECK(p != NULL);
  p[0] = tag;
  p[size - 1] = tag;
  if (size > 4096) memset(p, tag, size / 2); /* make some of it resident */
  return p;
}

static void *churn_main(void *arg) {
  int me = (int)(uintptr_t)arg;
  uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(me + 1);
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    size_t i = xorshift(&rng) % SLOTS;
    free(atomic_exchange(&g_slots[me][i], NULL));
    atomic_store(&g_slots[me][i], block_new(churn_size(&rng), 'c'));
  }
  for (int i = 0; i < SLOTS; i++) free(atomic_exchange(&g_slots[me][i], NULL));
  return NULL;
}

static size_t held_heaps(void) {
  lm_stats_t s;
  return reentry_stats(&s) ? s.threads : 0;
}

static void *child_thread_main(void *arg) {
  (void)arg;
  void *p[64];
  for (int i = 0; i < 64; i++) p[i] = block_new(i % 16 ? 24 + (size_t)i * 40 : 300 * KiB, 't');
  size_t held = held_heaps();
  for (int i = 0; i < 64; i++) free(p[i]);
  return (void *)held;
}

/* The child: only the forking thread exists here. */
static void child_main(unsigned char *from_parent, int have) {
  unsigned char *first = block_new(100, 'f');
  if (have) {
    size_t held = held_heaps();
    if (held != 1) {
      fprintf(stderr, "child: litemalloc counts %zu threads holding a heap right after fork and"
                      " one allocation; the child has one thread\n", held);
      _exit(3);
    }
  }
  CHECK(from_parent[0] == 'p' && from_parent[99] == 'p');
  free(from_parent);
  /* blocks of the parent's churn threads: their heaps have no thread here */
  for (int t = 0; t < CHURN; t++)
    for (int i = 0; i < SLOTS; i += 3) {
      unsigned char *b = atomic_exchange(&g_slots[t][i], NULL);
      if (b) CHECK(b[0] == 'c');
      free(b);
    }
  void *p[32];
  for (int i = 0; i < 32; i++) p[i] = block_new(i % 8 ? 16 + (size_t)i * 100 : 512 * KiB, 'k');
  for (int i = 0; i < 32; i += 2) free(p[i]);
  pthread_t t;
  void *held_in_thread = NULL;
  CHECK(pthread_create(&t, NULL, child_thread_main, NULL) == 0);
  CHECK(pthread_join(t, &held_in_thread) == 0);
  for (int i = 1; i < 32; i += 2) free(p[i]);
  free(first);
  if (have) {
    size_t held = held_heaps();
    if ((size_t)held_in_thread > 2 || held != 1) {
      fprintf(stderr, "child: litemalloc counts %zu threads holding a heap while the child's"
                      " thread ran (at most 2 expected) and %zu after it was joined (1"
                      " expected)\n", (size_t)held_in_thread, held);
      _exit(4);
    }
  }
  _exit(0);
}

/* Waits for the child for at most CHILD_LIMIT_S seconds; 0 when it exited 0. */
static int reap(pid_t pid, int n) {
  double deadline = reentry_now() + CHILD_LIMIT_S;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    CHECK(r >= 0);
    if (r == pid) break;
    if (reentry_now() > deadline) {
      fprintf(stderr, "fork %d: child %d still running after %d s (deadlock?): killed with"
                      " SIGKILL\n", n, (int)pid, CHILD_LIMIT_S);
      kill(pid, SIGKILL);
      CHECK(waitpid(pid, &status, 0) == pid);
      return 1;
    }
    struct timespec d = {0, 200 * 1000};
    nanosleep(&d, NULL);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  fprintf(stderr, "fork %d: child %s %d\n", n, WIFEXITED(status) ? "exited with" : "killed by signal",
          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return 1;
}

static int g_forks_per_thread = 100, g_have;

static void *forker_main(void *arg) {
  int me = (int)(uintptr_t)arg;
  for (int i = 0; i < g_forks_per_thread; i++) {
    unsigned char *from_parent = block_new(100, 'p');
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child_main(from_parent, g_have);
    free(from_parent);
    atomic_fetch_add(&g_forks, 1);
    if (reap(pid, me * g_forks_per_thread + i)) atomic_fetch_add(&g_child_failures, 1);
    if (atomic_load(&g_child_failures)) break;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) g_forks_per_thread = atoi(argv[1]);
  CHECK(g_forks_per_thread > 0);
  lm_stats_t s0;
  g_have = reentry_stats(&s0);
  fflush(stdout);
  double t0 = reentry_now();
  pthread_t churn[CHURN], forker[FORKERS];
  for (int t = 0; t < CHURN; t++)
    CHECK(pthread_create(&churn[t], NULL, churn_main, (void *)(uintptr_t)t) == 0);
  reentry_sleep_ms(20); /* memory cached before the first fork */
  for (int t = 0; t < FORKERS; t++)
    CHECK(pthread_create(&forker[t], NULL, forker_main, (void *)(uintptr_t)t) == 0);
  for (int t = 0; t < FORKERS; t++) CHECK(pthread_join(forker[t], NULL) == 0);
  atomic_store(&g_stop, 1);
  for (int t = 0; t < CHURN; t++) CHECK(pthread_join(churn[t], NULL) == 0);
  lm_stats_t s;
  reentry_stats(&s);
  printf("reentry_fork: %s: %zu forks from %d threads while %d threads churned, in %.2f s,"
         " %zu children failed",
         reentry_allocator(), (size_t)atomic_load(&g_forks), FORKERS, CHURN, reentry_now() - t0,
         (size_t)atomic_load(&g_child_failures));
  if (g_have) printf("; parent: heaps %zu, threads %zu, purged %zu MiB", s.heaps, s.threads,
                     s.purged_bytes / MiB);
  printf("\n");
  fflush(stdout);
  CHECK(atomic_load(&g_child_failures) == 0);
  CHECK(atomic_load(&g_forks) == (size_t)(FORKERS * g_forks_per_thread));
  if (g_have) CHECK(s.threads == 1);
  printf("reentry_fork: OK\n");
  return 0;
}
