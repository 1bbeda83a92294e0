/* The C library's allocation functions as the override gives them: every
 * symbol of the family, errno kept by free and by every successful call,
 * ENOMEM and EINVAL where the C library gives them, the statistics calls.
 * Built linked with //override (dynamic and static) and built plain to run
 * with LD_PRELOAD=liblitemalloc.so (-DLM_PROBE_DLSYM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "lm_probe.h"

/* The sizes below are meant to be too large. */
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="

/* glibc's own entry points, which its headers do not declare. */
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);

/* Members that glibc 2.36 does not declare, or does not export from
 * libc.so.6 (so a program to be preloaded cannot link them): FAMILY(name,
 * type) calls litemalloc's, directly or through dlsym. */
typedef void (*free_fn)(void *);
typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);
#ifdef LM_PROBE_DLSYM
#define FAMILY(name, type) ((type)lm_probe_find(#name))
#else
void cfree(void *p);
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t alignment, size_t size);
int __posix_memalign(void **out, size_t alignment, size_t size);
#define FAMILY(name, type) ((type)name)
#endif

#define ERRNO_MARK 4242

/* fails with ENOMEM: p == NULL and errno ENOMEM */
#define CHECK_ENOMEM(call)                       \
  do {                                           \
    errno = 0;                                   \
    void *r_ = (call);                           \
    CHECK(r_ == NULL && errno == ENOMEM);        \
  } while (0)

static void check_errno_kept(void) {
  /* by free of small, large and huge blocks, and of NULL */
  size_t sizes[] = {1, 100, 5000, 200000, (size_t)64 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    errno = ERRNO_MARK;
    char *p = malloc(sizes[i]);
    CHECK(p != NULL && errno == ERRNO_MARK && lm_owns(p));
    p[0] = p[sizes[i] - 1] = 1;
    free(p);
    CHECK(errno == ERRNO_MARK);
  }
  errno = ERRNO_MARK;
  free(NULL);
  CHECK(errno == ERRNO_MARK);
  /* by the other successful calls */
  void *p = calloc(3, 7), *q = NULL;
  p = realloc(p, 1000);
  CHECK(posix_memalign(&q, 64, 100) == 0);
  CHECK(p && q && errno == ERRNO_MARK);
  free(p);
  free(q);
  CHECK(errno == ERRNO_MARK);
}

static void check_enomem(void) {
  CHECK_ENOMEM(malloc(SIZE_MAX));
  CHECK_ENOMEM(malloc((size_t)PTRDIFF_MAX + 1));
  CHECK_ENOMEM(calloc(SIZE_MAX / 2 + 1, 2));
  CHECK_ENOMEM(calloc(1, SIZE_MAX));
  CHECK_ENOMEM(aligned_alloc(64, SIZE_MAX));
  CHECK_ENOMEM(memalign(64, SIZE_MAX));
  CHECK_ENOMEM(valloc(SIZE_MAX));
  CHECK_ENOMEM(pvalloc(SIZE_MAX));
  CHECK_ENOMEM(pvalloc(SIZE_MAX - 4000));   /* the page rounding overflows */
  CHECK_ENOMEM(reallocarray(NULL, SIZE_MAX / 2 + 1, 2));
  void *q = NULL;
  CHECK(posix_memalign(&q, 64, SIZE_MAX) == ENOMEM);

  /* a failed resize leaves the block as it was */
  char *p = malloc(100);
  CHECK(p != NULL);
  memset(p, 'a', 100);
  CHECK_ENOMEM(realloc(p, SIZE_MAX));
  CHECK_ENOMEM(reallocarray(p, SIZE_MAX / 4, 8));
  for (int i = 0; i < 100; i++) CHECK(p[i] == 'a');
  free(p);
}

#define GiB ((size_t)1 << 30)

/* Requests no machine can back are NULL/ENOMEM as with glibc (under the
 * default and the strict overcommit policy; granted under policy 1), a failed
 * realloc keeps the block, and 1 GiB still succeeds. */
static void check_huge_requests(void) {
  const size_t t40 = (size_t)1 << 40, t44 = (size_t)1 << 44;
  int g40 = kernel_grants(t40), g44 = kernel_grants(t44);
  printf("huge requests: overcommit_memory %d: the kernel %s 2^40, %s 2^44\n",
         overcommit_mode(), g40 == 1 ? "grants" : g40 == 0 ? "refuses" : "may refuse",
         g44 == 1 ? "grants" : g44 == 0 ? "refuses" : "may refuse");
  malloc_trim(0);   /* no cached mapping that a calloc would have to clear */
  char *p = malloc(100), *h = malloc((size_t)64 << 20);
  CHECK(p != NULL && h != NULL);
  memset(p, 'p', 100);
  memset(h, 'h', 4096);
  if (g40 == 0) {
    CHECK_ENOMEM(malloc(t40));
    CHECK_ENOMEM(memalign(4096, t40));
    CHECK_ENOMEM(aligned_alloc(64, t40));
    void *q = &q;
    CHECK(posix_memalign(&q, 64, t40) == ENOMEM && q == &q);
  } else if (g40 == 1) {
    errno = ERRNO_MARK;
    char *q = malloc(t40);
    CHECK(q != NULL && errno == ERRNO_MARK);
    q[0] = q[t40 - 1] = 1;
    free(q);
  }
  if (g44 == 0) {
    CHECK_ENOMEM(calloc(1, t44));
    CHECK_ENOMEM(realloc(p, t44));
    CHECK_ENOMEM(realloc(h, t44));
    CHECK_ENOMEM(reallocarray(p, t44 / 16, 16));
  } else if (g44 == 1) {
    errno = ERRNO_MARK;
    unsigned char *c = calloc(1, t44);
    CHECK(c != NULL && errno == ERRNO_MARK && c[0] == 0 && c[t44 - 1] == 0);
    free(c);
    char *q = realloc(p, t44);
    CHECK(q != NULL && q[0] == 'p' && q[99] == 'p');
    p = realloc(q, 100);
    CHECK(p != NULL);
  }
  for (int i = 0; i < 100; i++) CHECK(p[i] == 'p');
  for (int i = 0; i < 4096; i++) CHECK(h[i] == 'h');
  CHECK(malloc_usable_size(h) >= ((size_t)64 << 20));
  if (kernel_grants(2 * GiB) == 1) {
    errno = ERRNO_MARK;
    unsigned char *g = malloc(GiB), *c = calloc(GiB / 8, 8);
    CHECK(g != NULL && c != NULL && errno == ERRNO_MARK);
    g[0] = g[GiB - 1] = 1;
    for (size_t i = 0; i < GiB; i += 4096 * 61) CHECK(c[i] == 0);
    CHECK(c[GiB - 1] == 0);
    free(g);
    free(c);
    p = realloc(p, GiB);
    CHECK(p != NULL && p[0] == 'p' && p[99] == 'p' && errno == ERRNO_MARK);
    p[GiB - 1] = 1;
  }
  free(p);
  free(h);
  malloc_trim(0);
}

/* Every power-of-two alignment up to 1 GiB, as glibc serves them; the
 * memalign family rounds other alignments as glibc does; aligned_alloc and
 * posix_memalign refuse them (EINVAL, as glibc 2.38 and C17). */
static void check_alignments(void) {
  static const size_t sizes[] = {1, 100, 5000, 300000, (size_t)3 << 20};
  for (size_t align = 2 << 20; align <= GiB; align <<= 1) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t sz = sizes[i];
      errno = ERRNO_MARK;
      unsigned char *x = aligned_alloc(align, sz), *y = memalign(align, sz), *w = NULL;
      int rc = posix_memalign((void **)&w, align, sz);
      if (!x || !y || rc != 0 || errno != ERRNO_MARK)
        fprintf(stderr, "alignment %zu, size %zu: aligned_alloc %p, memalign %p,"
                " posix_memalign %d %p, errno %d\n", align, sz, (void *)x, (void *)y, rc,
                (void *)w, errno == ERRNO_MARK ? 0 : errno);
      CHECK(x && y && rc == 0 && w && errno == ERRNO_MARK);
      unsigned char *all[3] = {x, y, w};
      for (int k = 0; k < 3; k++) {
        CHECK((uintptr_t)all[k] % align == 0 && lm_owns(all[k]));
        CHECK(malloc_usable_size(all[k]) >= sz);
        all[k][0] = all[k][sz - 1] = (unsigned char)(k + 1);
      }
      for (int k = 0; k < 3; k++) {
        CHECK(all[k][0] == k + 1 && all[k][sz - 1] == k + 1);
        free(all[k]);
      }
    }
  }

  /* memalign and __libc_memalign round as glibc does */
  static const struct {
    size_t align, want;
  } rounded[] = {{0, 16},      {1, 16},      {3, 16},      {16, 16},
                 {24, 32},     {48, 64},     {100, 128},   {3000, 4096},
                 {4097, 8192}, {(size_t)3 << 20, (size_t)4 << 20}};
  for (size_t i = 0; i < sizeof rounded / sizeof rounded[0]; i++) {
    static const size_t msizes[] = {0, 1, 100, 200000};
    for (size_t j = 0; j < sizeof msizes / sizeof msizes[0]; j++) {
      size_t sz = msizes[j];
      volatile size_t align = rounded[i].align;   /* not folded by the compiler */
      errno = ERRNO_MARK;
      unsigned char *m = memalign(align, sz), *g = __libc_memalign(align, sz);
      if (!m || !g || (uintptr_t)m % rounded[i].want || (uintptr_t)g % rounded[i].want)
        fprintf(stderr, "memalign(%zu, %zu) = %p, __libc_memalign = %p: want %zu-aligned"
                " blocks\n", rounded[i].align, sz, (void *)m, (void *)g, rounded[i].want);
      CHECK(m && g && errno == ERRNO_MARK && lm_owns(m) && lm_owns(g));
      CHECK((uintptr_t)m % rounded[i].want == 0 && (uintptr_t)g % rounded[i].want == 0);
      CHECK(malloc_usable_size(m) >= sz && malloc_usable_size(g) >= sz);
      if (sz) m[0] = m[sz - 1] = g[0] = g[sz - 1] = 1;
      free(m);
      free(g);
    }
  }
  volatile size_t huge_align = SIZE_MAX / 2 + 2, max_align = SIZE_MAX;
  errno = 0;
  CHECK(memalign(huge_align, 100) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(memalign(max_align, 100) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(__libc_memalign(max_align, 100) == NULL && errno == EINVAL);

  /* aligned_alloc and posix_memalign do not round */
  static const size_t bad[] = {0, 3, 24, 3000};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    volatile size_t align = bad[i];
    errno = 0;
    CHECK(aligned_alloc(align, 100) == NULL && errno == EINVAL);
    void *keep = &keep;
    CHECK(posix_memalign(&keep, align, 100) == EINVAL && keep == &keep);
  }
}

static void check_family(void) {
  void *z = malloc(0), *z2 = malloc(0);
  CHECK(z && z2 && z != z2 && lm_owns(z));
  free(z);
  free(z2);

  char *p = realloc(NULL, 10);
  CHECK(p && lm_owns(p) && malloc_usable_size(p) >= 10);
  CHECK(realloc(p, 0) == NULL);   /* frees p, as glibc does */
  CHECK(malloc_usable_size(NULL) == 0);

  int *a = reallocarray(NULL, 100, sizeof(int));
  CHECK(a && malloc_usable_size(a) >= 100 * sizeof(int));
  for (int i = 0; i < 100; i++) a[i] = i;
  a = reallocarray(a, 100000, sizeof(int));
  CHECK(a && a[99] == 99);
  free(a);

  for (size_t align = 8; align <= ((size_t)1 << 20); align <<= 1) {
    void *x = aligned_alloc(align, 3 * align / 2), *y = memalign(align, 10), *w = NULL;
    CHECK(posix_memalign(&w, align, 1) == 0);
    CHECK(x && y && w && lm_owns(x) && lm_owns(y) && lm_owns(w));
    CHECK((uintptr_t)x % align == 0 && (uintptr_t)y % align == 0 && (uintptr_t)w % align == 0);
    free(x);
    free(y);
    free(w);
  }
  void *keep = &keep;
  CHECK(posix_memalign(&keep, 3, 16) == EINVAL && keep == &keep);
  CHECK(posix_memalign(&keep, 4, 16) == EINVAL && keep == &keep);   /* < sizeof(void *) */

  void *v = valloc(1), *pv = pvalloc(4097);
  CHECK(v && (uintptr_t)v % 4096 == 0);
  CHECK(pv && (uintptr_t)pv % 4096 == 0 && malloc_usable_size(pv) >= 8192);
  free(v);
  free(pv);

  /* the members glibc does not declare */
  FAMILY(cfree, free_fn)(malloc(10));
  FAMILY(free_sized, free_sized_fn)(malloc(100), 100);
  FAMILY(free_aligned_sized, free_aligned_sized_fn)(aligned_alloc(256, 512), 256, 512);

  /* glibc's own entry points are litemalloc's too */
  void *g = __libc_malloc(10), *gc = __libc_calloc(2, 8), *gm = __libc_memalign(128, 1), *gp;
  CHECK(g && gc && gm && lm_owns(g) && lm_owns(gc) && lm_owns(gm) && (uintptr_t)gm % 128 == 0);
  g = __libc_realloc(g, 100000);
  CHECK(g && lm_owns(g));
  CHECK(FAMILY(__posix_memalign, posix_memalign_fn)(&gp, 64, 8) == 0 && lm_owns(gp));
  __libc_free(g);
  __libc_free(gc);
  __libc_free(gm);
  free(gp);
}

static void check_statistics_calls(void) {
  char *big = malloc(1 << 20);
  CHECK(big != NULL);
  memset(big, 1, 1 << 20);
  struct mallinfo2 m = mallinfo2();
  CHECK(m.uordblks >= (1 << 20) && m.arena >= m.uordblks);
  CHECK(malloc_trim(0) == 1);
  free(big);

  /* malloc_stats writes litemalloc's text statistics to stderr */
  const char *dir = getenv("TEST_TMPDIR");
  char buf[256];
  snprintf(buf, sizeof buf, "%s/malloc_stats_XXXXXX", dir ? dir : "/tmp");
  int fd = mkstemp(buf), saved = dup(2);
  CHECK(fd >= 0 && saved >= 0);
  CHECK(dup2(fd, 2) == 2);
  malloc_stats();
  CHECK(dup2(saved, 2) == 2);
  char text[64] = {0};
  CHECK(pread(fd, text, sizeof text - 1, 0) > 0);
  CHECK(strncmp(text, "litemalloc statistics", 21) == 0);
  close(fd);
  close(saved);
  unlink(buf);
}

int main(void) {
  size_t before = lm_probe_allocs();
  check_errno_kept();
  check_enomem();
  check_family();
  check_huge_requests();
  check_alignments();
  check_statistics_calls();
  CHECK(lm_probe_allocs() - before >= 20);
  puts("override api_test: OK");
  return 0;
}
