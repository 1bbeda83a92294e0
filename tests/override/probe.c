/* One program built each way litemalloc can be put into a program; it checks
 * that its allocations, and the C library's on its behalf, were served by
 * litemalloc, and prints "probe: OK".  How it was built is told by macros:
 *
 *   PROBE_HOOKS         includes override/litemalloc_hooks.h first (mode 3)
 *   PROBE_SIX           calls only the six functions that the linker-flag
 *                       modes name (malloc free calloc realloc memalign valloc)
 *   PROBE_REAL          linked with --wrap: the C library's own malloc is
 *                       there as __real_malloc, and a pointer it returned must
 *                       be freed and resized through the wrappers
 *   PROBE_LIBC_FOREIGN  dynamic --wrap: the C library keeps its own malloc for
 *                       strdup, getline, open_memstream ...; the program frees
 *                       those pointers through the wrappers
 *   LM_PROBE_DLSYM      only preloaded: see lm_probe.h
 *
 * Without PROBE_LIBC_FOREIGN, the C library's allocations must be
 * litemalloc's too (the whole process uses one malloc).
 */
#define _GNU_SOURCE
#ifdef PROBE_HOOKS
#include "override/litemalloc_hooks.h"
#endif
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lm_probe.h"

#ifdef PROBE_REAL
void *__real_malloc(size_t size);
#endif

#define THREADS 4
#define PER_THREAD 10000

/* Is p litemalloc's?  A pointer the C library allocated must not be, unless
 * the C library's allocations go to litemalloc too. */
static void check_libc_pointer(void *p) {
  CHECK(p != NULL);
#ifdef PROBE_LIBC_FOREIGN
  CHECK(!lm_owns(p));
#else
  CHECK(lm_owns(p));
#endif
}

static void *churn(void *arg) {
  uintptr_t seed = (uintptr_t)arg;
  void *keep[64] = {0};
  for (int i = 0; i < PER_THREAD; i++) {
    size_t slot = (size_t)(i * 7 + seed) % 64, size = (size_t)(i * 131 + seed) % 5000;
    free(keep[slot]);
    keep[slot] = (i % 3) ? malloc(size) : calloc(1, size);
    CHECK(keep[slot] != NULL && lm_owns(keep[slot]));
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
  return NULL;
}

/* The allocation functions called by the program itself. */
static void check_family(void) {
  char *p = malloc(100);
  CHECK(p && lm_owns(p));
  memset(p, 'x', 100);
  char *c = calloc(10, 10);
  CHECK(c && lm_owns(c));
  for (int i = 0; i < 100; i++) CHECK(c[i] == 0);
  p = realloc(p, 100000);
  CHECK(p && lm_owns(p) && p[99] == 'x');
  void *m = memalign(256, 1000);
  CHECK(m && lm_owns(m) && (uintptr_t)m % 256 == 0);
  void *v = valloc(5000);
  CHECK(v && lm_owns(v) && (uintptr_t)v % 4096 == 0);
  free(p);
  free(c);
  free(m);
  free(v);
  free(NULL);
#ifndef PROBE_SIX
  void *a = aligned_alloc(64, 640), *pm = NULL;
  CHECK(a && lm_owns(a) && (uintptr_t)a % 64 == 0);
  CHECK(posix_memalign(&pm, 128, 10) == 0 && lm_owns(pm) && (uintptr_t)pm % 128 == 0);
  void *pv = pvalloc(1);
  CHECK(pv && lm_owns(pv) && (uintptr_t)pv % 4096 == 0 && malloc_usable_size(pv) >= 4096);
  void *ra = reallocarray(NULL, 10, 10);
  CHECK(ra && lm_owns(ra) && malloc_usable_size(ra) >= 100);
  free(a);
  free(pm);
  free(pv);
  free(ra);
#endif
}

/* Allocations the C library makes for the program, freed by the program. */
static void check_libc_allocations(void) {
  char *s = strdup("litemalloc");
  check_libc_pointer(s);
  free(s);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  CHECK(f != NULL);
  for (int i = 0; i < 1000; i++) fprintf(f, "line %d of the memory stream\n", i);
  CHECK(fclose(f) == 0);
  check_libc_pointer(text);

  FILE *in = fmemopen(text, len, "r");
  CHECK(in != NULL);
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  while (getline(&line, &cap, in) > 0) lines++;
  CHECK(lines == 1000);
  check_libc_pointer(line);
  fclose(in);
  free(line);
  free(text);

  char *formatted = NULL;
  CHECK(asprintf(&formatted, "%d %s", 42, "formatted") > 0);
  check_libc_pointer(formatted);
  free(formatted);
}

#ifdef PROBE_REAL
/* Pointers of the C library's own malloc, freed and resized through the
 * wrappers: they must go back to the C library. */
static void check_foreign(void) {
  char *g = __real_malloc(100);
  CHECK(g && !lm_owns(g));
  strcpy(g, "glibc");
  g = realloc(g, 200000);   /* __wrap_realloc -> __real_realloc */
  CHECK(g && !lm_owns(g) && strcmp(g, "glibc") == 0);
  free(g);                  /* __wrap_free -> __real_free */
  free(__real_malloc(10));
}
#endif

int main(void) {
  size_t before = lm_probe_allocs();
  check_family();
  check_libc_allocations();
#ifdef PROBE_REAL
  check_foreign();
#endif
  pthread_t tid[THREADS];
  for (uintptr_t t = 0; t < THREADS; t++)
    CHECK(pthread_create(&tid[t], NULL, churn, (void *)t) == 0);
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(tid[t], NULL) == 0);
  size_t served = lm_probe_allocs() - before;
  CHECK(served >= THREADS * PER_THREAD + 5);
  printf("probe: OK (%zu allocations served by litemalloc)\n", served);
  return 0;
}
