/* Threads that use the C library's per-thread buffers and exit (libc
 * re-entry, issue 7 point 2).
 *
 * glibc frees some per-thread state only after the thread's TLS key
 * destructors have run (__libc_thread_freeres: the buffer of strerror for an
 * unknown error number, the dlerror message, resolver state), so those frees
 * reach the allocator after it has been told that the thread is gone.  An
 * allocator that then makes or adopts a heap for the exiting thread, and never
 * gives it back, leaks one heap per thread.
 *
 * 2,000 threads, BATCH at a time (each batch joined before the next starts),
 * each calls strerror (a known and an unknown error number), a failing dlopen
 * and dlerror, getaddrinfo on a numeric address, and a few allocations of its
 * own, then exits.  Checks: resident memory grows by less than MAX_GROWTH_KIB
 * from after a warm-up of WARMUP threads to the end (both measured after a
 * pause longer than litemalloc's purge delay); with litemalloc, heaps ever
 * made never exceed the threads alive at once (main and a batch; one more for
 * a helper thread of the allocator should it ever allocate), and at the end
 * only main holds a heap.  The default options are used: no LITEMALLOC_*
 * variable, no GLIBC_TUNABLES.
 *
 * This program's RSS growth, preloaded, 3 runs each on a 2-vCPU machine of
 * this project: glibc 0..24 KiB, jemalloc -16..320 KiB, mimalloc 32..364 KiB,
 * tcmalloc 20..68 KiB; litemalloc before the fix 158 MiB (2,001 heaps, all
 * "held").  MAX_GROWTH_KIB leaves room for that noise and is far below one
 * heap per thread (about 80 KiB each here).
 *
 * Usage: reentry_thread_exit [THREADS]   (default 2000)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "reentry_common.h"

#define BATCH 4
#define WARMUP 48
#define SETTLE_MS 700       /* longer than the default purge delay (500 ms) */
#define MAX_GROWTH_KIB 1024 /* for 2,000 threads */

static atomic_size_t g_done;

static void *thread_main(void *arg) {
  unsigned n = (unsigned)(uintptr_t)arg;
  /* strerror: a known number, then an unknown one (glibc formats "Unknown
   * error N" into a per-thread buffer that it frees at thread exit) */
  const char *s = strerror(EINVAL);
  CHECK(s != NULL && s[0] != '\0');
  s = strerror(100000 + (int)(n % 1000));
  CHECK(s != NULL && strstr(s, "100") != NULL);
  /* a failing dlopen: its message lives in a per-thread buffer */
  void *h = dlopen("/nonexistent-reentry-test.so", RTLD_NOW);
  CHECK(h == NULL);
  const char *e = dlerror();
  CHECK(e != NULL && strstr(e, "nonexistent") != NULL);
  /* getaddrinfo on a numeric address: no network, some resolver state */
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICHOST;
  int r = getaddrinfo("127.0.0.1", NULL, &hints, &res);
  if (r != 0) fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(r));
  CHECK(r == 0 && res != NULL && res->ai_family == AF_INET);
  freeaddrinfo(res);
  /* and some allocations of its own */
  void *p[8];
  for (int i = 0; i < 8; i++) {
    p[i] = malloc(16u << i);
    CHECK(p[i] != NULL);
    memset(p[i], (int)n, 16u << i);
  }
  for (int i = 0; i < 8; i++) free(p[i]);
  atomic_fetch_add(&g_done, 1);
  return NULL;
}

static void run_threads(unsigned from, unsigned count) {
  pthread_t tid[BATCH];
  for (unsigned i = 0; i < count; i += BATCH) {
    unsigned k = count - i < BATCH ? count - i : BATCH;
    for (unsigned j = 0; j < k; j++)
      CHECK(pthread_create(&tid[j], NULL, thread_main, (void *)(uintptr_t)(from + i + j)) == 0);
    for (unsigned j = 0; j < k; j++) CHECK(pthread_join(tid[j], NULL) == 0);
  }
}

int main(int argc, char **argv) {
  unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 2000;
  CHECK(threads >= WARMUP);
  double t0 = reentry_now();
  run_threads(0, WARMUP);
  reentry_sleep_ms(SETTLE_MS);
  long rss0 = reentry_rss_kib();
  lm_stats_t s0;
  int have = reentry_stats(&s0);
  run_threads(WARMUP, threads - WARMUP);
  reentry_sleep_ms(SETTLE_MS);
  long rss1 = reentry_rss_kib();
  lm_stats_t s1;
  reentry_stats(&s1);
  CHECK(atomic_load(&g_done) == threads);
  CHECK(rss0 > 0 && rss1 > 0);
  long growth = rss1 - rss0;
  printf("reentry_thread_exit: %s: %u threads (%u at a time) in %.2f s; RSS %ld KiB after"
         " %u threads, %ld KiB at the end: growth %ld KiB (at most %d KiB allowed)",
         reentry_allocator(), threads, BATCH, reentry_now() - t0, rss0, WARMUP, rss1, growth,
         MAX_GROWTH_KIB);
  if (have)
    printf("; heaps %zu -> %zu, threads holding a heap %zu -> %zu", s0.heaps, s1.heaps,
           s0.threads, s1.threads);
  printf("\n");
  fflush(stdout);
  CHECK(growth <= MAX_GROWTH_KIB);
  if (have) {
    /* heaps ever made: never more than the threads alive at once */
    CHECK(s1.heaps <= 1 + BATCH + 1);
    /* all joined: main's heap is the only one held */
    CHECK(s1.threads == 1);
  }
  printf("reentry_thread_exit: OK\n");
  return 0;
}
