/* calloc's answer: zeroes, whatever state the reused memory was in, and no
 * more resident memory than was asked for.
 *
 * 1. A freed span whose purge (madvise MADV_DONTNEED) failed still holds its
 *    old bytes, so calloc must clear it.  The purge fails on mlocked pages:
 *    lock a large block, fill it, free it without unlocking, lm_trim (which
 *    purges everything and fails on those pages), then calloc the same size.
 *    Skipped, with a message, where mlock is refused (RLIMIT_MEMLOCK).
 * 2. A large calloc that reuses a dirty span, and a huge one that reuses a
 *    cached huge mapping, read zero.
 * 3. With a freed huge mapping cached, calloc of 1 GiB makes (almost) nothing
 *    resident: pages the OS hands out zeroed are not written again.  The time
 *    it takes is reported, not checked.
 * 4. A huge calloc into a cached mapping whose last object was used
 *    sparsely (a page per MiB) writes zeroes over the pages in RAM only:
 *    RSS grows by less than 16 MiB of its 256 MiB, and the pages written
 *    before read zero.
 * 5. A large calloc (below the huge size) in fresh memory is resident as it
 *    returns, and reads zero: one madvise(MADV_POPULATE_WRITE) instead of
 *    a fault a page (two where the program reads a page before it writes
 *    it).  Skipped, with a message, where the kernel lacks that advice.
 * 6. A large calloc into a freed span whose pages were, in runs, written,
 *    only read (the shared zero page) and never touched, reads zero
 *    everywhere (calloc writes over each run of dirty pages at once).
 *
 * Linked with -pthread: the default configuration, background purger on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

#define GiB (1024 * MiB)

/* Index of the first non-zero byte of p[0..n), or n. */
static size_t first_nonzero(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t i = 0;
  for (; i < n && ((uintptr_t)(b + i) & 7); i++)
    if (b[i]) return i;
  for (; i + 8 <= n; i += 8)
    if (*(const uint64_t *)(b + i)) break;
  for (; i < n; i++)
    if (b[i]) return i;
  return n;
}

static size_t count_nonzero(const void *p, size_t n) {
  const unsigned char *b = p;
  size_t c = 0;
  for (size_t i = 0; i < n; i++) c += b[i] != 0;
  return c;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void touch_pages(void *p, size_t n, int byte) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i += 4096) b[i] = (unsigned char)byte;
  b[n - 1] = (unsigned char)byte;
}

/* 1. */
static int test_calloc_after_failed_purge(void) {
  static const size_t sizes[] = {1 * MiB, 2 * MiB, 4 * MiB, 8 * MiB};
  int failed = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *p = lm_malloc(n);
    CHECK(p != NULL);
    if (mlock(p, n) != 0) {
      printf("calloc after a failed purge: SKIPPED, mlock(%zu MiB) failed: %s"
             " (RLIMIT_MEMLOCK; run as root or raise `ulimit -l`)\n",
             n / MiB, strerror(errno));
      lm_free(p);
      return 0;
    }
    memset(p, 0xff, n);
    lm_free(p);   /* still locked: the purge below fails on these pages */
    lm_trim();
    unsigned char *q = lm_calloc(1, n);
    CHECK(q != NULL);
    size_t bad = first_nonzero(q, n);
    if (bad < n) {
      printf("calloc after a failed purge, %zu MiB: FAILED, %zu of %zu bytes are not zero"
             " (first at +%zu: 0x%02x)%s\n",
             n / MiB, count_nonzero(q, n), n, bad, q[bad],
             q == p ? ", the freed locked block's old bytes" : "");
      failed++;
    } else {
      printf("calloc after a failed purge, %zu MiB: ok (%s the locked block)\n", n / MiB,
             q == p ? "reused" : "did not reuse");
    }
    lm_free(q);
    munlock(p, n);
  }
  return failed;
}

/* 2. */
static int test_calloc_reuses_dirty(void) {
  static const size_t sizes[] = {200 * KiB, 1 * MiB, 3 * MiB + 4096, 8 * MiB, 20 * MiB,
                                 40 * MiB, 64 * MiB};
  int failed = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *keep = lm_malloc(100 * KiB);   /* the arena has something in use */
    unsigned char *p = lm_malloc(n);
    CHECK(keep != NULL && p != NULL);
    memset(p, 0xa5, n);
    lm_free(p);
    /* the same size, then a smaller one, each into the memory just freed */
    for (int k = 0; k < 2; k++) {
      size_t m = k == 0 ? n : n / 2 + 12345;
      unsigned char *q = lm_calloc(1, m);
      CHECK(q != NULL);
      size_t bad = first_nonzero(q, m);
      if (bad < m) {
        printf("calloc(%zu) after free of %zu dirty bytes: FAILED, byte +%zu is 0x%02x\n", m, n,
               bad, q[bad]);
        failed++;
      }
      memset(q, 0x5a, m);
      lm_free(q);
    }
    lm_free(keep);
  }
  if (!failed) printf("calloc into dirty spans and cached huge mappings: ok\n");
  return failed;
}

/* 3. */
static int test_calloc_huge_not_resident(void) {
  /* about 40 MiB in use, touched, so that the freed huge mapping is kept */
  enum { LIVE = 5 };
  void *live[LIVE];
  for (int i = 0; i < LIVE; i++) {
    live[i] = lm_malloc(8 * MiB);
    CHECK(live[i] != NULL);
    touch_pages(live[i], 8 * MiB, 1);
  }
  void *h = lm_malloc(64 * MiB);
  CHECK(h != NULL);
  touch_pages(h, 64 * MiB, 0xcd);
  lm_stats_t before_free = stats_now();
  lm_free(h);
  lm_stats_t cached = stats_now();
  printf("calloc(1 GiB): a freed 64 MiB huge block, cached bytes %zu -> %zu MiB\n",
         before_free.cached_bytes / MiB, cached.cached_bytes / MiB);

  long rss0 = rss_kib();
  double t0 = now_s();
  unsigned char *c = lm_calloc(1, GiB);
  double t1 = now_s();
  long rss1 = rss_kib();
  CHECK(c != NULL);
  long grew = rss1 - rss0;
  printf("calloc(1 GiB): %.3f ms, RSS %ld -> %ld MiB (+%ld MiB)\n", (t1 - t0) * 1e3, rss0 / 1024,
         rss1 / 1024, grew / 1024);
  int failed = 0;
  if (grew >= 16 * 1024) {
    printf("calloc(1 GiB): FAILED, it made %ld MiB resident (at most 16 MiB allowed)\n",
           grew / 1024);
    failed++;
  }
  /* and it is all zero (reading fresh pages maps the shared zero page) */
  size_t bad = first_nonzero(c, GiB);
  if (bad < GiB) {
    printf("calloc(1 GiB): FAILED, byte +%zu is 0x%02x\n", bad, c[bad]);
    failed++;
  }
  c[0] = c[GiB - 1] = 1;
  lm_free(c);
  for (int i = 0; i < LIVE; i++) lm_free(live[i]);
  if (!failed) printf("calloc(1 GiB) with a cached huge block: ok\n");
  return failed;
}

/* 4. */
static int test_calloc_huge_sparse(void) {
  enum { LIVE = 5 };
  void *live[LIVE];   /* in use, so that the freed mapping is kept */
  for (int i = 0; i < LIVE; i++) {
    live[i] = lm_malloc(8 * MiB);
    CHECK(live[i] != NULL);
    touch_pages(live[i], 8 * MiB, 1);
  }
  int failed = 0;
  for (int round = 0; round < 3; round++) {
    long rss0 = rss_kib();
    unsigned char *c = lm_calloc(1, 256 * MiB);
    long rss1 = rss_kib();
    CHECK(c != NULL);
    for (size_t i = 0; i < 256 * MiB; i += MiB) {
      if (c[i] != 0 || c[i + 4095] != 0) {
        printf("sparse huge calloc, round %d: FAILED, byte +%zu is not zero\n", round, i);
        failed++;
        break;
      }
      c[i] = 0x77;
      c[i + 4095] = 0x77;
    }
    printf("sparse huge calloc, round %d: RSS %ld -> %ld MiB\n", round, rss0 / 1024, rss1 / 1024);
    if (rss1 - rss0 >= 16 * 1024) {
      printf("sparse huge calloc, round %d: FAILED, it made %ld MiB resident (at most 16 MiB "
             "allowed)\n", round, (rss1 - rss0) / 1024);
      failed++;
    }
    lm_free(c);
  }
  for (int i = 0; i < LIVE; i++) lm_free(live[i]);
  if (!failed) printf("sparse huge calloc into a cached mapping: ok\n");
  return failed;
}

/* 5. */
static int test_calloc_fresh_populated(void) {
  void *probe = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(probe != MAP_FAILED);
  int supported = madvise(probe, 4096, 23 /* MADV_POPULATE_WRITE */) == 0;
  int why = errno;
  munmap(probe, 4096);
  if (!supported) {
    printf("fresh large calloc: SKIPPED, madvise(MADV_POPULATE_WRITE) failed: %s"
           " (Linux before 5.14)\n", strerror(why));
    return 0;
  }
  static const size_t sizes[] = {256 * KiB, 4 * MiB + 4096, 24 * MiB};
  int failed = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i], pages = n / 4096;
    lm_trim();   /* every free span purged: the next span is fresh */
    unsigned char *c = lm_calloc(1, n);
    CHECK(c != NULL);
    static unsigned char vec[24 * MiB / 4096];
    CHECK(mincore(c, n, vec) == 0);
    size_t resident = 0;
    for (size_t k = 0; k < pages; k++) resident += vec[k] & 1;
    size_t bad = first_nonzero(c, n);
    printf("fresh large calloc(%zu KiB): %zu of %zu pages resident\n", n / KiB, resident, pages);
    if (resident != pages) {
      printf("fresh large calloc(%zu KiB): FAILED, %zu pages not resident\n", n / KiB,
             pages - resident);
      failed++;
    }
    if (bad < n) {
      printf("fresh large calloc(%zu KiB): FAILED, byte +%zu is 0x%02x\n", n / KiB, bad, c[bad]);
      failed++;
    }
    lm_free(c);
  }
  if (!failed) printf("fresh large calloc: ok\n");
  return failed;
}

/* 6. */
static int test_calloc_mixed_runs(void) {
  enum { PAGES = 512 };   /* 2 MiB */
  size_t n = (size_t)PAGES * 4096;
  unsigned char *keep = lm_malloc(100 * KiB);   /* the arena has something in use */
  unsigned char *p = lm_malloc(n);
  CHECK(keep != NULL && p != NULL);
  volatile unsigned char sink = 0;
  for (size_t k = 0; k < PAGES; k++) {
    switch ((k / 3 + k / 7) % 3) {   /* runs of 1 to 3 pages of each kind */
      case 0: memset(p + k * 4096, 0x6b, 4096); break;   /* dirty */
      case 1: sink += p[k * 4096 + 100]; break;           /* read only */
      default: break;                                     /* untouched */
    }
  }
  (void)sink;
  lm_free(p);
  unsigned char *q = lm_calloc(1, n);
  CHECK(q != NULL);
  int failed = 0;
  size_t bad = first_nonzero(q, n);
  if (q != p) {
    printf("calloc over mixed runs: SKIPPED, calloc did not reuse the freed span\n");
  } else if (bad < n) {
    printf("calloc over mixed runs: FAILED, byte +%zu (page %zu) is 0x%02x\n", bad, bad / 4096,
           q[bad]);
    failed++;
  } else {
    printf("calloc over mixed runs of dirty, read-only and untouched pages: ok\n");
  }
  lm_free(q);
  lm_free(keep);
  return failed;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int failed = 0;
  failed += test_calloc_after_failed_purge();
  failed += test_calloc_reuses_dirty();
  failed += test_calloc_huge_not_resident();
  failed += test_calloc_huge_sparse();
  failed += test_calloc_fresh_populated();
  failed += test_calloc_mixed_runs();
  lm_stats_t end = stats_now();
  CHECK(end.live_objects == 0);
  if (failed) {
    printf("answers_calloc_test: %d check(s) FAILED\n", failed);
    return 1;
  }
  printf("answers_calloc_test: OK\n");
  return 0;
}
