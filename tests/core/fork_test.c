/* fork() while other threads allocate: the child must be able to allocate
 * and free (including blocks the parent allocated) without deadlock.
 * Four threads churn; the main thread forks 200 times; every child does a
 * few hundred allocations and exits 0.  alarm() turns a deadlock into a
 * failure instead of a hang. */
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

#include "litemalloc/litemalloc.h"
#include "check.h"

#define THREADS 4
#define FORKS 200

static atomic_int g_stop;
static atomic_long g_ops;

static size_t pick_size(uint64_t *rng) {
  uint64_t r = xorshift(rng) % 100;
  if (r < 70) return xorshift(rng) % 512;
  if (r < 97) return xorshift(rng) % 65536;
  return 200000 + xorshift(rng) % (3 << 20); /* large */
}

static void *churn(void *arg) {
  uint64_t rng = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
  void *slots[256] = {0};
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    size_t i = xorshift(&rng) % 256;
    if (slots[i]) {
      lm_free(slots[i]);
      slots[i] = NULL;
    } else {
      size_t n = pick_size(&rng);
      slots[i] = lm_malloc(n);
      CHECK(slots[i] != NULL);
      memset(slots[i], (int)i, n < 4096 ? n : 4096);
    }
    if (xorshift(&rng) % 5000 == 0) lm_trim();
    atomic_fetch_add_explicit(&g_ops, 1, memory_order_relaxed);
  }
  for (int i = 0; i < 256; i++) lm_free(slots[i]);
  return NULL;
}

static void child(void **inherited, int n, int round) {
  alarm(20);
  uint64_t rng = 0xdeadbeef + (uint64_t)round;
  /* blocks the parent allocated are ours to use and free */
  for (int i = 0; i < n; i++) {
    unsigned char *b = inherited[i];
    if (b[0] != (unsigned char)i) _exit(3);
    lm_free(b);
  }
  void *p[300];
  for (int i = 0; i < 300; i++) {
    size_t sz = pick_size(&rng);
    p[i] = lm_malloc(sz);
    if (!p[i]) _exit(4);
    memset(p[i], 0x11, sz < 256 ? sz : 256);
  }
  for (int i = 0; i < 300; i += 2) lm_free(p[i]);
  for (int i = 0; i < 300; i += 2) {
    p[i] = lm_calloc(1, 100);
    if (!p[i]) _exit(5);
  }
  for (int i = 0; i < 300; i++) lm_free(p[i]);
  lm_stats_t s = stats_now(); /* takes the global state that the threads left behind */
  if (s.allocs == 0) _exit(6);
  lm_trim();
  _exit(0);
}

int main(void) {
  alarm(120);
  pthread_t tid[THREADS];
  for (uintptr_t t = 0; t < THREADS; t++)
    CHECK(pthread_create(&tid[t], NULL, churn, (void *)t) == 0);
  int bad = 0;
  for (int round = 0; round < FORKS; round++) {
    void *inherited[8];
    for (int i = 0; i < 8; i++) {
      inherited[i] = lm_malloc((size_t)(i + 1) * 48);
      CHECK(inherited[i] != NULL);
      memset(inherited[i], i, (size_t)(i + 1) * 48);
    }
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child(inherited, 8, round);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork %d: child %s %d\n", round,
              WIFSIGNALED(status) ? "killed by signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      bad++;
    }
    for (int i = 0; i < 8; i++) lm_free(inherited[i]);
  }
  atomic_store(&g_stop, 1);
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(tid[t], NULL) == 0);
  printf("fork_test: %d forks, %d bad children, %ld operations by the threads\n",
         FORKS, bad, (long)atomic_load(&g_ops));
  CHECK(bad == 0);
  lm_stats_t s = stats_now();
  CHECK(s.frees + s.live_objects == s.allocs);
  CHECK(s.live_objects == 0);
  puts("fork_test: OK");
  return 0;
}
