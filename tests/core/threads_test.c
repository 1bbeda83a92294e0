/* Many short-lived threads: heaps are reused, not accumulated.
 *
 * 10,000 threads run in batches of 8; each allocates and frees objects and
 * leaves a few for the main thread to free after it has exited.  Committed
 * memory rises and falls as freed spans wait out their purge delay, so it is
 * sampled after every batch: its maximum over the last 8,000 threads must
 * not exceed its maximum over the first 2,000 (warm-up: how many heaps run
 * at once, and whether the purger thread has started, depend on scheduling
 * until then) by more than a small bound, and neither may the number of
 * heaps.  After lm_trim, nothing may stay committed in the heaps. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

#define TOTAL 10000
#define BATCH 8
#define LEFT 5

typedef struct {
  unsigned index;
  void *left[LEFT];  /* objects for main to free */
} job_t;

static void *work(void *arg) {
  job_t *job = arg;
  uint64_t rng = 0x2545f4914f6cdd1dull * (job->index + 1);
  void *p[64];
  for (int i = 0; i < 64; i++) {
    size_t r = xorshift(&rng) % 100;
    size_t sz = r < 80 ? xorshift(&rng) % 256
              : r < 98 ? xorshift(&rng) % 32768 : 150000 + xorshift(&rng) % 500000;
    p[i] = lm_malloc(sz);
    CHECK(p[i] != NULL);
    memset(p[i], 0x3c, sz < 1024 ? sz : 1024);
  }
  for (int i = 0; i < 64; i++) {
    if (i < LEFT) job->left[i] = p[i];
    else lm_free(p[i]);
  }
  return NULL;
}

int main(void) {
  static job_t jobs[BATCH];
  lm_stats_t base = {0};
  size_t warm_max = 0, late_max = 0;   /* most committed in each part */
  for (unsigned done = 0; done < TOTAL; done += BATCH) {
    pthread_t tid[BATCH];
    for (unsigned t = 0; t < BATCH; t++) {
      jobs[t].index = done + t;
      CHECK(pthread_create(&tid[t], NULL, work, &jobs[t]) == 0);
    }
    for (unsigned t = 0; t < BATCH; t++) {
      CHECK(pthread_join(tid[t], NULL) == 0);
      for (int i = 0; i < LEFT; i++) lm_free(jobs[t].left[i]);
    }
    size_t committed = stats_now().committed_bytes;
    size_t *max = done + BATCH <= 2000 ? &warm_max : &late_max;
    if (committed > *max) *max = committed;
    if (done + BATCH == 2000) base = stats_now();
  }
  lm_stats_t end = stats_now();
  printf("after 2000 threads: heaps %zu threads %zu committed %zu KiB reserved %zu KiB\n",
         base.heaps, base.threads, base.committed_bytes >> 10,
         base.reserved_bytes >> 10);
  printf("after %d threads: heaps %zu threads %zu committed %zu KiB reserved %zu KiB\n",
         TOTAL, end.heaps, end.threads, end.committed_bytes >> 10,
         end.reserved_bytes >> 10);
  CHECK(end.heaps <= 64);
  CHECK(end.heaps <= BATCH + 1);  /* heaps never outnumber live threads */
  printf("most committed: %zu KiB in the first 2000 threads, %zu KiB after\n", warm_max >> 10,
         late_max >> 10);
  CHECK(late_max <= warm_max + 8 * MiB);
  CHECK(end.reserved_bytes <= 2 * base.reserved_bytes + 64 * MiB);
  CHECK(end.live_objects == 0);
  CHECK(end.frees == end.allocs);
  CHECK(end.threads <= 1);
  lm_trim();
  lm_stats_t trimmed = stats_now();
  printf("after lm_trim: committed %zu KiB\n", trimmed.committed_bytes >> 10);
  CHECK(trimmed.committed_bytes < 8 * MiB);
  puts("threads_test: OK");
  return 0;
}
