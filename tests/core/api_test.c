/* API edge cases: every rule that litemalloc/litemalloc.h states, checked one
 * by one through the public functions only.  Single-threaded, so the
 * statistics move exactly with this program's own calls. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

/* Runs a call that must succeed and checks that it left errno alone. */
#define NO_ERRNO(stmt)                                                     \
  do {                                                                     \
    errno = 1234;                                                          \
    stmt;                                                                  \
    if (errno != 1234) {                                                   \
      fprintf(stderr, "%s:%d: errno changed to %d by: %s\n", __FILE__,     \
              __LINE__, errno, #stmt);                                     \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

static int g_static_array[64];

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 31 + seed);
}

static int check_fill(const void *p, size_t n, unsigned seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(i * 31 + seed)) return 0;
  return 1;
}

#define GiB (1024 * MiB)

/* stats_now() (check.h), checking that lm_stats left errno alone. */
static lm_stats_t stats_checked(void) {
  lm_stats_t s;
  NO_ERRNO(s = stats_now());
  return s;
}

static void test_alignment_and_usable_size(void) {
  enum { BATCH = 64 };
  void *live[BATCH];
  size_t sizes[BATCH];
  int n = 0;
  size_t size = 0;
  while (size <= 300000) {
    void *p;
    NO_ERRNO(p = lm_malloc(size));
    CHECK(p != NULL);
    if (size >= 16) CHECK(((uintptr_t)p & 15) == 0);
    size_t u;
    NO_ERRNO(u = lm_usable_size(p));
    CHECK(u >= size);
    CHECK(lm_owns(p));
    memset(p, 0x5a, size);
    live[n] = p;
    sizes[n] = size;
    if (++n == BATCH) {
      for (int i = 0; i < n; i++) {
        const unsigned char *b = live[i];
        for (size_t j = 0; j < sizes[i]; j += 97) CHECK(b[j] == 0x5a);
        NO_ERRNO(lm_free(live[i]));
      }
      n = 0;
    }
    size += size < 4096 ? 1 : size < 70000 ? 61 : 997;
  }
  for (int i = 0; i < n; i++) lm_free(live[i]);
  CHECK(lm_usable_size(NULL) == 0);
}

static void test_malloc_zero(void) {
  enum { N = 1000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    NO_ERRNO(p[i] = lm_malloc(0));
    CHECK(p[i] != NULL);
  }
  /* unique: sort-free pairwise check on a hash set would be overkill */
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++) CHECK(p[i] != p[j]);
  for (int i = 0; i < N; i++) NO_ERRNO(lm_free(p[i]));
  NO_ERRNO(lm_free(NULL));
}

static void realloc_keeps(size_t from, size_t to) {
  void *p = lm_malloc(from);
  CHECK(p != NULL);
  fill(p, from, (unsigned)from);
  void *q;
  NO_ERRNO(q = lm_realloc(p, to));
  CHECK(q != NULL);
  CHECK(lm_usable_size(q) >= to);
  CHECK(check_fill(q, from < to ? from : to, (unsigned)from));
  if (to >= 16) CHECK(((uintptr_t)q & 15) == 0);
  memset(q, 1, to);
  lm_free(q);
}

static void test_realloc(void) {
  void *p;
  NO_ERRNO(p = lm_realloc(NULL, 100));
  CHECK(p != NULL && lm_usable_size(p) >= 100);
  lm_stats_t a = stats_checked();
  NO_ERRNO(p = lm_realloc(p, 0));
  CHECK(p == NULL);
  lm_stats_t b = stats_checked();
  CHECK(b.live_objects == a.live_objects - 1);

  static const size_t sizes[] = {
      1, 15, 16, 17, 100, 1000, 1024, 1025, 4000, 16 * KiB, 100 * KiB,
      128 * KiB, 128 * KiB + 1, 200 * KiB, 1 * MiB, 3 * MiB + 5, 8 * MiB,
      31 * MiB, 40 * MiB, 65 * MiB, 70 * MiB + 3};
  const size_t n = sizeof sizes / sizeof sizes[0];
  for (size_t i = 0; i < n; i++) {
    /* grow and shrink between neighbours and across several classes */
    if (i + 1 < n) {
      realloc_keeps(sizes[i], sizes[i + 1]);
      realloc_keeps(sizes[i + 1], sizes[i]);
    }
    if (i + 5 < n) {
      realloc_keeps(sizes[i], sizes[i + 5]);
      realloc_keeps(sizes[i + 5], sizes[i]);
    }
    realloc_keeps(sizes[i], sizes[i]);
  }
  /* huge shrinking to small and back */
  realloc_keeps(66 * MiB, 10);
  realloc_keeps(10, 66 * MiB);
  /* a small block that grows a little moves to a quarter more (alloc.c) */
  for (size_t from = 160; from <= 64 * KiB; from *= 2) {
    void *g = lm_malloc(from);
    size_t have = lm_usable_size(g);
    NO_ERRNO(g = lm_realloc(g, have + 1));
    CHECK(g != NULL && lm_usable_size(g) >= have + have / 4);
    NO_ERRNO(g = lm_realloc(g, 3 * have));   /* more than a quarter: the size asked */
    CHECK(g != NULL && lm_usable_size(g) >= 3 * have && lm_usable_size(g) < 3 * have + 3 * have / 8);
    lm_free(g);
  }
}

static void test_calloc(void) {
  static const size_t sizes[] = {1, 16, 48, 200, 1000, 5000, 40 * KiB,
                                 128 * KiB, 300 * KiB, 2 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t sz = sizes[i];
    int rounds = sz >= MiB ? 10 : 100;
    for (int r = 0; r < rounds; r++) {
      /* dirty a few blocks of the class, free them, then calloc them back */
      void *d[4];
      for (int k = 0; k < 4; k++) {
        d[k] = lm_malloc(sz);
        CHECK(d[k] != NULL);
        memset(d[k], 0xa5, lm_usable_size(d[k]));
      }
      for (int k = 0; k < 4; k++) lm_free(d[k]);
      unsigned char *q;
      NO_ERRNO(q = lm_calloc(1, sz));
      CHECK(q != NULL);
      for (size_t j = 0; j < sz; j++) CHECK(q[j] == 0);
      lm_free(q);
      NO_ERRNO(q = lm_calloc(sz, 1));
      CHECK(q != NULL);
      for (size_t j = 0; j < sz; j++) CHECK(q[j] == 0);
      lm_free(q);
    }
  }
  /* n * size overflow */
  errno = 0;
  CHECK(lm_calloc(SIZE_MAX / 2 + 2, 2) == NULL);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(lm_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL);
  CHECK(errno == ENOMEM);
  /* zero elements */
  void *z;
  NO_ERRNO(z = lm_calloc(0, 100));
  CHECK(z != NULL);
  lm_free(z);
}

static void test_too_big(void) {
  const size_t bigs[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 4095,
                         SIZE_MAX - 15};
  for (size_t i = 0; i < sizeof bigs / sizeof bigs[0]; i++) {
    size_t big = bigs[i];
    errno = 0;
    CHECK(lm_malloc(big) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_calloc(1, big) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_calloc(big, 1) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_aligned_alloc(64, big) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_memalign(4096, big) == NULL && errno == ENOMEM);
    void *out = NULL;
    CHECK(lm_posix_memalign(&out, 64, big) == ENOMEM);
    /* a failed realloc leaves the block untouched */
    void *p = lm_malloc(100);
    fill(p, 100, 7);
    errno = 0;
    CHECK(lm_realloc(p, big) == NULL && errno == ENOMEM);
    CHECK(check_fill(p, 100, 7));
    void *large = lm_malloc(1 * MiB);
    fill(large, 1 * MiB, 9);
    errno = 0;
    CHECK(lm_realloc(large, big) == NULL && errno == ENOMEM);
    CHECK(check_fill(large, 1 * MiB, 9));
    lm_free(large);
    lm_free(p);
  }
}

static void test_aligned(void) {
  static const size_t sizes[] = {1, 7, 8, 16, 24, 100, 1000, 4096, 5000,
                                 65536, 100000, 128 * KiB, 300 * KiB, MiB};
  /* Every power of two up to 1 GiB (glibc serves them), 2 GiB too where the
   * kernel grants mappings that size; above 4 MiB a few sizes suffice. */
  size_t max_align = GiB;
  if (kernel_grants(8 * GiB) == 1) max_align = 2 * GiB;
  printf("aligned: alignments up to %zu MiB\n", max_align / MiB);
  for (size_t align = 8; align <= max_align; align <<= 1) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t sz = sizes[i];
      if (align > 4 * MiB && sz != 1 && sz != 100 && sz != 5000 && sz != 300 * KiB &&
          sz != MiB)
        continue;
      void *a, *b, *c = NULL;
      errno = 1234;
      a = lm_aligned_alloc(align, sz);
      b = lm_memalign(align, sz);
      int rc = lm_posix_memalign(&c, align, sz);
      if (!a || !b || rc != 0 || errno != 1234)
        fprintf(stderr,
                "alignment %zu, size %zu: aligned_alloc %p, memalign %p, posix_memalign %d"
                " %p, errno %d\n",
                align, sz, a, b, rc, c, errno == 1234 ? 0 : errno);
      CHECK(rc == 0 && errno == 1234);
      void *all[3] = {a, b, c};
      for (int k = 0; k < 3; k++) {
        CHECK(all[k] != NULL);
        CHECK(((uintptr_t)all[k] & (align - 1)) == 0);
        if (sz >= 16) CHECK(((uintptr_t)all[k] & 15) == 0);
        CHECK(lm_usable_size(all[k]) >= sz);
        CHECK(lm_owns(all[k]));
        memset(all[k], k + 1, sz);
      }
      for (int k = 0; k < 3; k++) {
        const unsigned char *m = all[k];
        CHECK(m[0] == k + 1 && m[sz - 1] == k + 1);
        NO_ERRNO(lm_free(all[k]));
      }
    }
  }
  /* posix_memalign: alignment not a power-of-two multiple of sizeof(void*) */
  static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 4095, 4097};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *out = (void *)&g_static_array;
    CHECK(lm_posix_memalign(&out, bad[i], 100) == EINVAL);
    CHECK(out == (void *)&g_static_array);
  }
  /* posix_memalign: a power of two that is too large is ENOMEM */
  void *out = (void *)&g_static_array;
  CHECK(lm_posix_memalign(&out, SIZE_MAX / 2 + 1, 100) == ENOMEM);
  CHECK(out == (void *)&g_static_array);
  CHECK(lm_posix_memalign(&out, SIZE_MAX, 100) == EINVAL);

  /* aligned_alloc: an alignment that is not a power of two is EINVAL (C17,
   * glibc 2.38) */
  static const size_t bad2[] = {0, 3, 24, 48, 100, 3000, 4095, SIZE_MAX / 2 + 2, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad2 / sizeof bad2[0]; i++) {
    errno = 0;
    CHECK(lm_aligned_alloc(bad2[i], 100) == NULL);
    CHECK(errno == EINVAL);
  }
  errno = 0;
  CHECK(lm_aligned_alloc(SIZE_MAX / 2 + 1, 100) == NULL && errno == ENOMEM);

  /* memalign rounds as glibc's does: an alignment up to 16 is malloc's, any
   * other is rounded up to a power of two; above SIZE_MAX / 2 + 1 it is
   * EINVAL. */
  static const struct {
    size_t align, want;
  } rounded[] = {{0, 16},         {1, 16},          {3, 16},          {8, 16},
                 {16, 16},        {17, 32},         {24, 32},         {48, 64},
                 {100, 128},      {3000, 4096},     {4095, 4096},     {4097, 8192},
                 {3 * MiB, 4 * MiB}, {40 * MiB, 64 * MiB}};
  for (size_t i = 0; i < sizeof rounded / sizeof rounded[0]; i++) {
    static const size_t msizes[] = {0, 1, 100, 5000, 300 * KiB};
    for (size_t j = 0; j < sizeof msizes / sizeof msizes[0]; j++) {
      size_t sz = msizes[j];
      errno = 1234;
      unsigned char *p = lm_memalign(rounded[i].align, sz);
      if (p == NULL || ((uintptr_t)p & (rounded[i].want - 1)) != 0 || errno != 1234)
        fprintf(stderr, "lm_memalign(%zu, %zu) = %p (errno %d), want a %zu-aligned block\n",
                rounded[i].align, sz, (void *)p, errno == 1234 ? 0 : errno, rounded[i].want);
      CHECK(p != NULL && errno == 1234);
      CHECK(((uintptr_t)p & (rounded[i].want - 1)) == 0);
      CHECK(lm_usable_size(p) >= sz);
      if (sz) p[0] = p[sz - 1] = 1;
      NO_ERRNO(lm_free(p));
    }
  }
  static const size_t too_big[] = {SIZE_MAX / 2 + 2, SIZE_MAX / 2 + 4096, SIZE_MAX};
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    errno = 0;
    CHECK(lm_memalign(too_big[i], 100) == NULL);
    CHECK(errno == EINVAL);
  }
  errno = 0;
  CHECK(lm_memalign(SIZE_MAX / 2 + 1, 100) == NULL && errno == ENOMEM);
}

/* Requests that no machine can back fail as glibc's do: NULL and ENOMEM
 * under the kernel's default (heuristic) overcommit policy, which refuses a
 * mapping larger than RAM + swap, and under the strict one; they succeed
 * under vm.overcommit_memory=1.  A failed realloc leaves the block as it
 * was.  A large request that fits (1 GiB) still succeeds. */
static void test_huge_requests(void) {
  const size_t t40 = (size_t)1 << 40, t44 = (size_t)1 << 44;
  int mode = overcommit_mode();
  int g40 = kernel_grants(t40), g44 = kernel_grants(t44);
  printf("huge requests: overcommit_memory %d, RAM + swap %zu MiB: the kernel %s 2^40 and %s"
         " 2^44\n",
         mode, (meminfo_bytes("MemTotal:") + meminfo_bytes("SwapTotal:")) / MiB,
         g40 == 1 ? "grants" : g40 == 0 ? "refuses" : "may refuse",
         g44 == 1 ? "grants" : g44 == 0 ? "refuses" : "may refuse");
  lm_trim();   /* no cached mapping that a calloc would have to clear */

  char *small = lm_malloc(100), *large = lm_malloc(MiB), *huge = lm_malloc(64 * MiB);
  CHECK(small && large && huge);
  fill(small, 100, 21);
  fill(large, MiB, 22);
  fill(huge, 64 * KiB, 23);
  huge[64 * MiB - 1] = 0x7e;

  if (g40 == 0) {
    errno = 0;
    CHECK(lm_malloc(t40) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_aligned_alloc(4096, t40) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_aligned_alloc(64 * MiB, t40) == NULL && errno == ENOMEM);
    void *out = (void *)&g_static_array;
    CHECK(lm_posix_memalign(&out, 64, t40) == ENOMEM && out == (void *)&g_static_array);
  } else if (g40 == 1) {
    char *p;
    NO_ERRNO(p = lm_malloc(t40));
    CHECK(p != NULL);
    p[0] = p[t40 - 1] = 1;
    lm_free(p);
  }
  if (g44 == 0) {
    errno = 0;
    CHECK(lm_calloc(1, t44) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_calloc(t44 / 16, 16) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_realloc(small, t44) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_realloc(large, t44) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_realloc(huge, t44) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(lm_reallocarray(small, t44 / 16, 16) == NULL && errno == ENOMEM);
  } else if (g44 == 1) {
    unsigned char *c;
    NO_ERRNO(c = lm_calloc(1, t44));
    CHECK(c != NULL && c[0] == 0 && c[t44 - 1] == 0);
    lm_free(c);
    char *q;
    NO_ERRNO(q = lm_realloc(small, t44));
    CHECK(q != NULL && check_fill(q, 100, 21));
    NO_ERRNO(small = lm_realloc(q, 100));
    CHECK(small != NULL && check_fill(small, 100, 21));
  }
  /* the blocks are still there, unchanged */
  CHECK(lm_usable_size(small) >= 100 && check_fill(small, 100, 21));
  CHECK(lm_usable_size(large) >= MiB && check_fill(large, MiB, 22));
  CHECK(lm_usable_size(huge) >= 64 * MiB && check_fill(huge, 64 * KiB, 23));
  CHECK(huge[64 * MiB - 1] == 0x7e);

  if (kernel_grants(2 * GiB) == 1) {
    unsigned char *g, *c;
    NO_ERRNO(g = lm_malloc(GiB));
    CHECK(g != NULL && lm_usable_size(g) >= GiB);
    g[0] = g[GiB - 1] = 1;
    lm_free(g);
    NO_ERRNO(c = lm_calloc(GiB / 4096, 4096));
    CHECK(c != NULL);
    for (size_t i = 0; i < GiB; i += 4096 * 61) CHECK(c[i] == 0);
    CHECK(c[GiB - 1] == 0);
    lm_free(c);
    NO_ERRNO(small = lm_realloc(small, GiB));
    CHECK(small != NULL && check_fill(small, 100, 21));
    small[GiB - 1] = 1;
  }
  lm_free(small);
  lm_free(large);
  lm_free(huge);
  lm_trim();
}

static void test_owns(void) {
  int on_stack = 0;
  void *g = malloc(100); /* glibc's: this test does not override malloc */
  void *gbig = malloc(4 * MiB);
  CHECK(g != NULL && gbig != NULL);
  CHECK(!lm_owns(&on_stack));
  CHECK(!lm_owns(g_static_array));
  CHECK(!lm_owns(g));
  CHECK(!lm_owns(gbig));
  CHECK(!lm_owns(NULL));
  CHECK(!lm_owns((void *)&test_owns));
  static const size_t sizes[] = {0, 1, 100, 5000, 128 * KiB, MiB, 70 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char *p = lm_malloc(sizes[i]);
    CHECK(p != NULL);
    int o;
    NO_ERRNO(o = lm_owns(p));
    CHECK(o);
    if (sizes[i] > 1) CHECK(lm_owns(p + sizes[i] - 1));
    lm_free(p);
  }
  free(gbig);
  free(g);
}

static int g_foreign_free_calls;
static void *g_foreign_free_last;
static void foreign_free(void *p) {
  g_foreign_free_calls++;
  g_foreign_free_last = p;
  free(p);
}
static int g_foreign_realloc_calls;
static void *foreign_realloc(void *p, size_t n) {
  g_foreign_realloc_calls++;
  return realloc(p, n);
}
static int g_foreign_usable_calls;
static size_t foreign_usable(void *p) {
  g_foreign_usable_calls++;
  return malloc_usable_size(p);
}

static void test_foreign_shims(void) {
  /* foreign pointers go to the callbacks */
  void *g = malloc(40);
  CHECK(g != NULL);
  size_t u;
  NO_ERRNO(u = lm_usable_size_or(g, foreign_usable));
  CHECK(u == malloc_usable_size(g) && g_foreign_usable_calls == 1);
  CHECK(lm_usable_size_or(g, NULL) == 0);
  fill(g, 40, 3);
  void *g2;
  NO_ERRNO(g2 = lm_realloc_or(g, 4000, foreign_realloc));
  CHECK(g2 != NULL && g_foreign_realloc_calls == 1);
  CHECK(check_fill(g2, 40, 3));
  NO_ERRNO(lm_free_or(g2, foreign_free));
  CHECK(g_foreign_free_calls == 1 && g_foreign_free_last == g2);

  /* our pointers never reach them */
  void *p = lm_malloc(40);
  CHECK(lm_usable_size_or(p, foreign_usable) >= 40);
  fill(p, 40, 4);
  void *p2 = lm_realloc_or(p, 400000, foreign_realloc);
  CHECK(p2 != NULL && lm_owns(p2) && check_fill(p2, 40, 4));
  lm_free_or(p2, foreign_free);
  CHECK(g_foreign_usable_calls == 1 && g_foreign_realloc_calls == 1 &&
        g_foreign_free_calls == 1);
  lm_free_or(NULL, foreign_free);
  CHECK(g_foreign_free_calls == 1);
  void *p3 = lm_realloc_or(NULL, 10, foreign_realloc);
  CHECK(p3 != NULL && lm_owns(p3) && g_foreign_realloc_calls == 1);
  lm_free(p3);
}

static size_t class_alloc_sum(const lm_stats_t *s) {
  size_t t = 0;
  for (size_t i = 0; i < s->class_count; i++) t += s->classes[i].allocs;
  return t;
}
static size_t class_live_sum(const lm_stats_t *s) {
  size_t t = 0;
  for (size_t i = 0; i < s->class_count; i++) t += s->classes[i].live;
  return t;
}

static void test_stats(void) {
  lm_stats_t s0 = stats_checked();
  CHECK(s0.version == LM_STATS_VERSION);
  CHECK(s0.size == sizeof(lm_stats_t));
  CHECK(s0.class_count > 0 && s0.class_count <= LM_MAX_CLASSES);
  for (size_t i = 0; i < s0.class_count; i++) {
    const lm_class_stats_t *c = &s0.classes[i];
    CHECK(c->block_size > 0);
    if (i > 0) CHECK(c->block_size > s0.classes[i - 1].block_size);
    CHECK(c->live == c->allocs - c->frees);
  }
  CHECK(s0.frees + s0.live_objects == s0.allocs);
  CHECK(class_alloc_sum(&s0) <= s0.allocs);
  CHECK(class_live_sum(&s0) <= s0.live_objects);
  CHECK(s0.large_live_bytes <= s0.live_bytes);
  CHECK(s0.committed_bytes <= s0.reserved_bytes);
  CHECK(s0.cached_bytes <= s0.committed_bytes);

  /* small objects: exactly N allocations, all of one class */
  const size_t max_block = s0.classes[s0.class_count - 1].block_size;
  enum { N = 1000 };
  static void *p[N];
  const size_t cls = s0.class_count / 3;
  const size_t bs = s0.classes[cls].block_size;
  size_t usable = 0;
  for (int i = 0; i < N; i++) {
    p[i] = lm_malloc(bs);
    CHECK(p[i] != NULL);
    usable += lm_usable_size(p[i]);
  }
  lm_stats_t s1 = stats_checked();
  CHECK(s1.allocs == s0.allocs + N);
  CHECK(s1.frees == s0.frees);
  CHECK(s1.live_objects == s0.live_objects + N);
  CHECK(s1.live_bytes == s0.live_bytes + usable);
  CHECK(s1.classes[cls].allocs == s0.classes[cls].allocs + N);
  CHECK(s1.classes[cls].live == s0.classes[cls].live + N);
  CHECK(class_alloc_sum(&s1) == class_alloc_sum(&s0) + N);
  CHECK(s1.large_live_bytes == s0.large_live_bytes);
  CHECK(s1.threads >= 1 && s1.heaps >= 1);
  CHECK(s1.mmap_calls >= 1);
  CHECK(s1.committed_bytes <= s1.reserved_bytes);
  for (int i = 0; i < N; i++) lm_free(p[i]);
  lm_stats_t s2 = stats_checked();
  CHECK(s2.frees == s0.frees + N);
  CHECK(s2.allocs == s1.allocs);
  CHECK(s2.live_objects == s0.live_objects);
  CHECK(s2.live_bytes == s0.live_bytes);
  CHECK(s2.classes[cls].frees == s0.classes[cls].frees + N);
  CHECK(s2.classes[cls].live == s0.classes[cls].live);

  /* large objects: counted in the totals, not in the classes */
  enum { M = 20 };
  void *l[M];
  size_t lusable = 0;
  for (int i = 0; i < M; i++) {
    l[i] = lm_malloc(max_block + 1 + (size_t)i * 100000);
    CHECK(l[i] != NULL);
    lusable += lm_usable_size(l[i]);
  }
  lm_stats_t s3 = stats_checked();
  CHECK(s3.allocs == s2.allocs + M);
  CHECK(class_alloc_sum(&s3) == class_alloc_sum(&s2));
  CHECK(s3.live_objects == s2.live_objects + M);
  CHECK(s3.large_live_bytes == s2.large_live_bytes + lusable);
  CHECK(s3.live_bytes == s2.live_bytes + lusable);
  CHECK(s3.peak_live_bytes >= s3.live_bytes);
  CHECK(s3.committed_bytes >= s3.live_bytes);
  for (int i = 0; i < M; i++) lm_free(l[i]);
  lm_stats_t s4 = stats_checked();
  CHECK(s4.frees == s3.frees + M);
  CHECK(s4.live_objects == s2.live_objects);
  CHECK(s4.live_bytes == s2.live_bytes);
  CHECK(s4.large_live_bytes == s2.large_live_bytes);
  CHECK(s4.peak_live_bytes >= s3.live_bytes);
  CHECK(s4.remote_frees == s0.remote_frees); /* one thread: nothing remote */
  CHECK(s4.threads == 1);

  /* the library fills no more than `size` bytes */
  union {
    lm_stats_t s;
    unsigned char raw[sizeof(lm_stats_t)];
  } u;
  memset(&u, 0xee, sizeof u);
  const size_t small_size = offsetof(lm_stats_t, classes);
  u.s.size = small_size;
  NO_ERRNO(lm_stats(&u.s));
  CHECK(u.s.version == LM_STATS_VERSION);
  CHECK(u.s.allocs == s4.allocs);
  for (size_t i = small_size; i < sizeof u; i++) CHECK(u.raw[i] == 0xee);
  memset(&u, 0xee, sizeof u);
  u.s.size = 2 * sizeof(size_t);
  lm_stats(&u.s);
  CHECK(u.s.version == LM_STATS_VERSION);
  for (size_t i = 2 * sizeof(size_t); i < sizeof u; i++) CHECK(u.raw[i] == 0xee);
}

/* A minimal well-formedness check: one object, brackets balanced outside
 * strings, no control characters. */
static int json_well_formed(const char *s) {
  int depth = 0, in_str = 0;
  if (s[0] != '{') return 0;
  for (const char *c = s; *c; c++) {
    if ((unsigned char)*c < 0x20) return 0;
    if (in_str) {
      if (*c == '\\') c++;
      else if (*c == '"') in_str = 0;
      continue;
    }
    if (*c == '"') in_str = 1;
    else if (*c == '{' || *c == '[') depth++;
    else if (*c == '}' || *c == ']') {
      if (--depth < 0) return 0;
      if (depth == 0 && c[1] != '\0') return 0;
    }
  }
  return depth == 0 && !in_str;
}

static void test_stats_json(void) {
  static char buf[1 << 16], buf2[1 << 16];
  size_t need;
  NO_ERRNO(need = lm_stats_json(NULL, 0));
  CHECK(need > 0 && need < sizeof buf);
  size_t got;
  NO_ERRNO(got = lm_stats_json(buf, sizeof buf));
  CHECK(got == need);
  CHECK(strlen(buf) == need);
  CHECK(json_well_formed(buf));
  static const char *names[] = {
      "\"live_bytes\"", "\"peak_live_bytes\"", "\"allocs\"", "\"frees\"",
      "\"remote_frees\"", "\"committed_bytes\"", "\"reserved_bytes\"",
      "\"threads\"", "\"classes\"", "\"block_size\"", "\"live_objects\""};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!strstr(buf, names[i])) fprintf(stderr, "missing %s in %s\n", names[i], buf);
    CHECK(strstr(buf, names[i]) != NULL);
  }
  /* the other fields of lm_stats_t: reported, not required */
  static const char *optional[] = {
      "\"version\"", "\"large_live_bytes\"", "\"purged_bytes\"",
      "\"mmap_calls\"", "\"heaps\"", "\"class_count\"", "\"cached_bytes\""};
  for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++)
    if (!strstr(buf, optional[i])) printf("note: json lacks %s\n", optional[i]);
  /* truncation: exactly cap-1 characters and a NUL; the rest untouched */
  static const size_t caps[] = {1, 2, 10, 100};
  for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
    size_t cap = caps[i];
    memset(buf2, 'X', sizeof buf2);
    CHECK(lm_stats_json(buf2, cap) == need);
    CHECK(buf2[cap - 1] == '\0');
    CHECK(strlen(buf2) == cap - 1);
    CHECK(memcmp(buf2, buf, cap - 1) == 0);
    CHECK(buf2[cap] == 'X');
  }
  memset(buf2, 'X', sizeof buf2);
  CHECK(lm_stats_json(buf2, need + 1) == need);
  CHECK(strcmp(buf2, buf) == 0);
  memset(buf2, 'X', sizeof buf2);
  CHECK(lm_stats_json(buf2, need) == need);
  CHECK(strlen(buf2) == need - 1);
  CHECK(lm_stats_json(buf2, 0) == need);
  CHECK(buf2[0] != '\0'); /* cap 0 writes nothing */
}

static void test_stats_print(void) {
  int fds[2];
  CHECK(pipe(fds) == 0);
  fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  NO_ERRNO(lm_stats_print(fds[1]));
  close(fds[1]);
  static char text[1 << 20];
  size_t len = 0;
  ssize_t r;
  while ((r = read(fds[0], text + len, sizeof text - 1 - len)) > 0) len += (size_t)r;
  close(fds[0]);
  text[len] = '\0';
  CHECK(len > 20);
  CHECK(strchr(text, '\n') != NULL);
  CHECK(strstr(text, "live") != NULL);
  for (size_t i = 0; i < len; i++) CHECK(text[i] != '\0');
}

static void test_trim(void) {
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = lm_malloc(MiB);
    CHECK(p[i] != NULL);
    memset(p[i], i, MiB);
  }
  lm_stats_t live = stats_checked();
  long rss_live = rss_kib();
  for (int i = 0; i < N; i++) lm_free(p[i]);
  lm_stats_t freed = stats_checked();
  NO_ERRNO(lm_trim());
  lm_stats_t trimmed = stats_checked();
  long rss_trimmed = rss_kib();
  printf("trim: committed live %zu MiB, after free %zu MiB (cached %zu MiB), after trim"
         " %zu MiB (cached %zu MiB); rss live %ld MiB, after trim %ld MiB\n",
         live.committed_bytes / MiB, freed.committed_bytes / MiB, freed.cached_bytes / MiB,
         trimmed.committed_bytes / MiB, trimmed.cached_bytes / MiB, rss_live / 1024,
         rss_trimmed / 1024);
  CHECK(live.committed_bytes >= 64 * MiB);
  CHECK(trimmed.committed_bytes + 48 * MiB <= live.committed_bytes);
  CHECK(trimmed.committed_bytes <= freed.committed_bytes);
  CHECK(trimmed.cached_bytes <= trimmed.committed_bytes);
  CHECK(trimmed.cached_bytes <= freed.cached_bytes);
  CHECK(trimmed.purged_bytes >= freed.purged_bytes);
  CHECK(rss_trimmed + 48 * 1024 <= rss_live);
}

static void test_large_realloc_in_place(void) {
  size_t size = MiB;
  unsigned char *p = lm_malloc(size);
  CHECK(p != NULL);
  fill(p, size, 11);
  int steps = 0, in_place = 0;
  while (size < 8 * MiB) {
    size_t nsize = size + 20000;
    unsigned char *q = lm_realloc(p, nsize);
    CHECK(q != NULL);
    steps++;
    if (q == p) in_place++;
    CHECK(check_fill(q, size, 11) || (fprintf(stderr, "lost contents at %zu\n", size), 0));
    /* extend the pattern over the new bytes */
    for (size_t i = size; i < nsize; i++) q[i] = (unsigned char)(i * 31 + 11);
    p = q;
    size = nsize;
  }
  printf("large realloc: %d of %d growth steps stayed in place\n", in_place, steps);
  /* shrink back in steps too */
  int shrink_in_place = 0, shrink_steps = 0;
  while (size > 200 * KiB) {
    size_t nsize = size - 300000;
    unsigned char *q = lm_realloc(p, nsize);
    CHECK(q != NULL);
    shrink_steps++;
    if (q == p) shrink_in_place++;
    CHECK(check_fill(q, nsize, 11));
    p = q;
    size = nsize;
  }
  printf("large realloc: %d of %d shrink steps stayed in place\n", shrink_in_place,
         shrink_steps);
  lm_free(p);
}

/* lm_reallocarray, lm_valloc, lm_pvalloc: what the override's reallocarray,
 * valloc and pvalloc forward to. */
static void test_array_and_page(void) {
  char *p = lm_reallocarray(NULL, 10, 10);
  CHECK(p != NULL && lm_usable_size(p) >= 100);
  memset(p, 7, 100);
  errno = 1234;
  CHECK(lm_reallocarray(p, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
  CHECK(p[99] == 7);   /* left untouched */
  p = lm_reallocarray(p, 1000, 10);
  CHECK(p != NULL && p[99] == 7);
  lm_free(p);
  for (size_t n = 0; n < 20000; n += 1111) {
    void *v = lm_valloc(n);
    CHECK(v != NULL && ((uintptr_t)v & 4095) == 0 && lm_usable_size(v) >= n);
    void *pv = lm_pvalloc(n);
    size_t want = n == 0 ? 0 : (n + 4095) & ~(size_t)4095;
    CHECK(pv != NULL && ((uintptr_t)pv & 4095) == 0 && lm_usable_size(pv) >= want);
    lm_free(v);
    lm_free(pv);
  }
  errno = 1234;
  CHECK(lm_pvalloc(SIZE_MAX - 10) == NULL && errno == ENOMEM);
}

int main(void) {
  test_stats(); /* first, so the process has made few allocations */
  test_alignment_and_usable_size();
  test_malloc_zero();
  test_realloc();
  test_calloc();
  test_too_big();
  test_huge_requests();
  test_aligned();
  test_owns();
  test_foreign_shims();
  test_stats_json();
  test_stats_print();
  test_trim();
  test_large_realloc_in_place();
  test_array_and_page();
  /* everything this test allocated has been freed */
  lm_stats_t end = stats_checked();
  CHECK(end.live_objects == 0);
  CHECK(end.live_bytes == 0);
  CHECK(end.frees == end.allocs);
  printf("api_test: OK (%zu allocations)\n", end.allocs);
  return 0;
}
