/* Memory freed into the heaps of threads that have exited, and pointers that
 * merely sit near litemalloc's memory.
 *
 * 1. Workers allocate and exit; main frees everything (remote frees into
 *    abandoned heaps): after lm_trim the memory is back (committed falls to a
 *    few MiB), and the background purger does the same without lm_trim.
 *    Run as `reclaim_test wake` (with a purge delay of 10 s): the purger,
 *    asleep until that delay ends, is woken when the main thread's frees
 *    reach the exited heaps, so their pages are back in well under a second.
 * 2. A mapping of the OS placed right after a huge object (in the rest of
 *    its last 32 MiB slot) is not taken for litemalloc's: lm_owns is false and
 *    lm_free_or hands such a pointer to the foreign free function.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include "check.h"

#define N (40 * 1024)
static void *objs[N];

static void *worker(void *arg) {
  size_t first = (size_t)arg;
  for (size_t i = first; i < first + N / 4; i++) {
    objs[i] = lm_malloc(1000);
    CHECK(objs[i] != NULL);
    memset(objs[i], (int)i, 1000);
  }
  return NULL;
}

static void make_and_free(void) {
  pthread_t t[4];
  for (size_t i = 0; i < 4; i++) CHECK(pthread_create(&t[i], NULL, worker, (void *)(i * N / 4)) == 0);
  for (int i = 0; i < 4; i++) CHECK(pthread_join(t[i], NULL) == 0);
  for (size_t i = 0; i < N; i++) lm_free(objs[i]);
}

static int foreign_calls;
static void foreign_free(void *p) { (void)p; foreign_calls++; }

/* Bytes in spans handed out (pages and large objects), not cached. */
static size_t in_use_now(void) {
  lm_stats_t s = stats_now();
  return s.committed_bytes - s.cached_bytes;
}

/* Waits up to max_ms for the spans in use to fall below 2 MiB (from the
 * 40 MiB the workers made; about 0.6 MiB stay); the ms it took. */
static int wait_in_use_below_2m(int max_ms) {
  int ms = 0;
  while (in_use_now() >= 2 * MiB && ms < max_ms) {
    struct timespec d = {0, 10 * 1000 * 1000};
    nanosleep(&d, NULL);
    ms += 10;
  }
  return ms;
}

/* With LITEMALLOC_PURGE_DELAY_MS=10000.  In the first round, the main
 * thread's first frees start the purger, which trims the exited heaps then
 * and sleeps until that delay ends (what it trimmed is cached), while the
 * rest of the frees reach them; in the second round it sleeps from the
 * start.  Each time, the frees must wake it.  (Without the wake, the first
 * round took 9.8 s.) */
static int wake(void) {
  void *mine = lm_malloc(16);
  make_and_free();
  int ms = wait_in_use_below_2m(2000);
  printf("first round: in use %zu KiB after %d ms\n", in_use_now() / KiB, ms);
  CHECK(in_use_now() < 2 * MiB);
  make_and_free();
  ms = wait_in_use_below_2m(2000);
  printf("second round: in use %zu KiB after %d ms\n", in_use_now() / KiB, ms);
  CHECK(in_use_now() < 2 * MiB);
  lm_free(mine);
  printf("PASS\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "wake") == 0) return wake();
  void *mine = lm_malloc(16);   /* main has a heap of its own */
  make_and_free();
  lm_trim();
  lm_stats_t s = stats_now();
  printf("after lm_trim: live %zu KiB, committed %zu KiB\n", s.live_bytes / KiB, s.committed_bytes / KiB);
  CHECK(s.committed_bytes < 8 * MiB);

  /* Without lm_trim: the purger reclaims the exited heaps within a few
   * purge delays (500 ms by default). */
  make_and_free();
  size_t committed = SIZE_MAX;
  for (int i = 0; i < 50 && committed >= 8 * MiB; i++) {
    struct timespec d = {0, 100 * 1000 * 1000};
    nanosleep(&d, NULL);
    committed = stats_now().committed_bytes;
  }
  printf("without lm_trim, 5 s later at most: committed %zu KiB\n", committed / KiB);
  CHECK(committed < 8 * MiB);

  /* A huge object rarely fills its last 32 MiB slot; map something right
   * after it. */
  size_t huge = 40 * MiB + 12345;
  char *h = lm_malloc(huge);
  CHECK(h != NULL);
  uintptr_t end = ((uintptr_t)h + lm_usable_size(h) + 4095) & ~(uintptr_t)4095;
  void *f = mmap((void *)end, 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (f != MAP_FAILED && (uintptr_t)f == end) {
    CHECK(!lm_owns(f));
    CHECK(!lm_owns((char *)f + 100));
    lm_free_or(f, foreign_free);
    CHECK(foreign_calls == 1);
    munmap(f, 4096);
  } else {
    printf("could not map right after the huge object; that part skipped\n");
  }
  CHECK(lm_owns(h) && lm_owns(h + huge - 1));
  lm_free(h);
  lm_free(mine);
  printf("PASS\n");
  return 0;
}
