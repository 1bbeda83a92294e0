/* Cached memory that no request fits goes back before fresh memory comes in.
 *
 * A freed large object's span stays resident for a while, for reuse (the
 * dirty cache, arena.c).  When a request fits none of the cached spans and
 * the cache holds at least as much as the request, the oldest cached spans
 * of a quarter of its size or less go back to the OS, as much as the
 * request, before it faults in fresh memory; spans of about its size stay,
 * and a cache smaller than the request stays whole.
 *
 * 24 pairs of large objects A_i, B_i (256 KiB each, written) are made one
 * after the other, then every A_i is freed: 6 MiB of cached spans, each
 * between two live B's, so that no two merge.  An 8 MiB request (more than
 * the cache) and a 768 KiB one (three times a cached span) must leave every
 * A_i resident; a 2 MiB one must give back the first eight A_i freed
 * (2 MiB) and leave the others resident.
 *
 * One thread, so no purger thread, and the purge delay (500 ms) is far
 * longer than the test; the budget keeps at least 8 MiB cached.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <sys/mman.h>

#include "check.h"

#define PAIRS 24
#define SIZE (256 * KiB)

static bool resident(const void *p) {
  unsigned char v = 0;
  CHECK(mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v) == 0);
  return v & 1;
}

/* How many of a[from..to) have their first and last page resident. */
static int count_resident(char **a, int from, int to) {
  int n = 0;
  for (int i = from; i < to; i++) n += resident(a[i]) && resident(a[i] + SIZE - 1);
  return n;
}

int main(void) {
  char *a[PAIRS], *b[PAIRS];
  for (int i = 0; i < PAIRS; i++) {
    a[i] = lm_malloc(SIZE);
    b[i] = lm_malloc(SIZE);
    CHECK(a[i] && b[i]);
    memset(a[i], 1, SIZE);
    memset(b[i], 2, SIZE);
  }
  for (int i = 0; i < PAIRS; i++) lm_free(a[i]);
  lm_stats_t s0 = stats_now();
  CHECK(count_resident(a, 0, PAIRS) == PAIRS);
  CHECK(s0.cached_bytes >= PAIRS * SIZE);

  /* More than the cache holds: the cache stays. */
  char *c = lm_malloc(8 * MiB);
  CHECK(c);
  memset(c, 3, 8 * MiB);
  lm_stats_t s1 = stats_now();
  int kept1 = count_resident(a, 0, PAIRS);
  printf("after 8 MiB: %d of %d cached spans resident, cached %zu KiB (was %zu)\n", kept1,
         PAIRS, s1.cached_bytes / KiB, s0.cached_bytes / KiB);
  CHECK(kept1 == PAIRS);

  /* Less than the cache holds, but the cached spans are a third of it: they stay. */
  char *e = lm_malloc(768 * KiB);
  CHECK(e);
  memset(e, 5, 768 * KiB);
  int kept_e = count_resident(a, 0, PAIRS);
  printf("after 768 KiB: %d of %d cached spans resident\n", kept_e, PAIRS);
  CHECK(kept_e == PAIRS);

  /* Less than the cache holds, and the cached spans are an eighth of it: the
   * oldest 2 MiB of them go. */
  char *d = lm_malloc(2 * MiB);
  CHECK(d);
  memset(d, 4, 2 * MiB);
  lm_stats_t s2 = stats_now();
  int gone = 8 - count_resident(a, 0, 8), kept2 = count_resident(a, 8, PAIRS);
  printf("after 2 MiB: the first 8 freed: %d given back; the other %d: %d resident; cached "
         "%zu KiB\n",
         gone, PAIRS - 8, kept2, s2.cached_bytes / KiB);
  CHECK(gone == 8);
  CHECK(kept2 == PAIRS - 8);
  CHECK(s2.cached_bytes + 2 * MiB <= s1.cached_bytes);

  lm_free(c);
  lm_free(d);
  lm_free(e);
  for (int i = 0; i < PAIRS; i++) lm_free(b[i]);
  printf("ok\n");
  return 0;
}
