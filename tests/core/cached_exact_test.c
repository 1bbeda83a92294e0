/* The cache counts the memory its free spans hold resident, no more, and a
 * request that takes part of a merged span knows which part needs zeroing.
 *
 * A freed large object merges with the clean (never used) rest of its
 * segment.  A larger request then takes that span's start: the freed part
 * and as much clean memory again.  Nothing cached is left resident, so the
 * cache must count nothing; counted per span rather than per slice, the
 * rest kept the freed object's count, memory it did not hold, and every
 * such cycle added more (lm_stats' cached_bytes and committed_bytes, and
 * the purge budget, counted memory that was not there).  Then calloc over
 * spans that are part resident and dirty, part clean, must read zero
 * everywhere: the dirty part is zeroed, and only it.
 *
 * One thread, so no purger thread, and the purge delay (500 ms) is far
 * longer than the test.
 */
#include "check.h"

static size_t cached_since(const lm_stats_t *base) { return stats_now().cached_bytes - base->cached_bytes; }

static void check_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) {
      fprintf(stderr, "calloc'd byte %zu of %zu reads %d\n", i, n, p[i]);
      CHECK(p[i] == 0);
    }
}

int main(void) {
  /* The segment's first span is carved from its start: a large object. */
  lm_stats_t base = stats_now();
  char *a = lm_malloc(1 * MiB);
  CHECK(a);
  memset(a, 1, 1 * MiB);
  lm_free(a);
  printf("a 1 MiB object freed: cached +%zu KiB\n", cached_since(&base) / KiB);
  CHECK(cached_since(&base) == 1 * MiB);

  /* Its span, and 1 MiB of the clean memory after it. */
  char *m = lm_malloc(2 * MiB);
  CHECK(m == a);
  memset(m, 2, 2 * MiB);
  printf("a 2 MiB object over it: cached +%zu KiB\n", cached_since(&base) / KiB);
  CHECK(cached_since(&base) == 0);

  lm_free(m);
  printf("freed: cached +%zu KiB\n", cached_since(&base) / KiB);
  CHECK(cached_since(&base) == 2 * MiB);

  /* 1 MiB of the dirty part goes to a large object; calloc takes the rest
   * of it, 1 MiB dirty (the 2s above), and 1 MiB clean. */
  char *f = lm_malloc(1 * MiB);
  CHECK(f == m);
  unsigned char *z = lm_calloc(1, 2 * MiB);
  CHECK(z == (unsigned char *)m + 1 * MiB);
  check_zero(z, 2 * MiB);
  printf("calloc over 1 MiB dirty and 1 MiB clean: zero; cached +%zu KiB\n",
         cached_since(&base) / KiB);
  CHECK(cached_since(&base) == 0);

  /* Both freed (3 MiB dirty), then calloc of all of it and 1 MiB more. */
  memset(z, 3, 2 * MiB);
  lm_free(f);
  lm_free(z);
  CHECK(cached_since(&base) == 3 * MiB);
  unsigned char *y = lm_calloc(1, 4 * MiB);
  CHECK(y == (unsigned char *)m);
  check_zero(y, 4 * MiB);
  CHECK(cached_since(&base) == 0);
  lm_free(y);
  CHECK(cached_since(&base) == 4 * MiB);
  printf("ok\n");
  return 0;
}
