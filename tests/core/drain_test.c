/* A thread that has stopped taking its blocks back (it waits in join) does
 * not keep them: a heap that needs a page takes its full pages over, with
 * the blocks other threads freed into them (heap.c: heap_drain).
 *
 * The main thread allocates N blocks of 200 bytes (several full pages and
 * one with room) and waits in pthread_join.  The worker, with a heap of its
 * own, frees them all (remote frees, sent to the main heap's stack by
 * lm_trim), waits longer than the idle time (OUTBOX_IDLE_MS, 50 ms), and
 * allocates N blocks of the same size: most must be the main thread's old
 * blocks, not fresh memory (before the drain, none was: they waited on the
 * main heap's stack until the main thread allocated again).  The blocks of
 * the page the main heap still has in its queue are parked for it; its
 * trim takes them.  In the end the live count and the committed memory are
 * back where they started: a block lost or freed twice would show. */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

#include "check.h"

enum { N = 600, SIZE = 200 };
static void *g_old[N];

static int is_old(const void *p) {
  for (int i = 0; i < N; i++)
    if (g_old[i] == p) return 1;
  return 0;
}

static void *worker(void *arg) {
  (void)arg;
  lm_free(lm_malloc(16));   /* a heap of its own */
  for (int i = 0; i < N; i++) {
    CHECK(((unsigned char *)g_old[i])[SIZE - 1] == (unsigned char)i);
    lm_free(g_old[i]);
  }
  lm_trim();   /* the outbox goes to the main heap's stack */
  struct timespec ts = {0, 120 * 1000 * 1000};
  nanosleep(&ts, NULL);
  static void *mine[N];
  int reused = 0;
  for (int i = 0; i < N; i++) {
    CHECK((mine[i] = lm_malloc(SIZE)) != NULL);
    memset(mine[i], 0x5a, SIZE);
    reused += is_old(mine[i]);
  }
  printf("of %d new blocks, %d were the waiting thread's\n", N, reused);
  CHECK(reused >= N / 2);
  for (int i = 0; i < N; i++) lm_free(mine[i]);
  return NULL;
}

int main(void) {
  lm_free(lm_malloc(16));
  lm_trim();
  lm_stats_t s0 = stats_now();

  for (int i = 0; i < N; i++) {
    CHECK((g_old[i] = lm_malloc(SIZE)) != NULL);
    memset(g_old[i], i, SIZE);
  }
  pthread_t t;
  CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);

  lm_trim();   /* the parked blocks come home, the worker's heap is trimmed */
  lm_trim();
  check_back_to(s0);
  printf("drain_test: OK\n");
  return 0;
}
