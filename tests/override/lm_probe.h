/* Test programs' view of litemalloc when they allocate through the C
 * library's names (malloc, free, ...).
 *
 * A program linked with litemalloc (//override, //override:wrap, the hooks
 * header, -llitemalloc) calls lm_stats and friends directly.  A program built
 * without it, to run with LD_PRELOAD=liblitemalloc.so, is compiled with
 * -DLM_PROBE_DLSYM: then these names are looked up with dlsym at each call,
 * and a missing library is a clear failure rather than a link error.
 */
#ifndef LM_PROBE_H
#define LM_PROBE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "litemalloc/litemalloc.h"

#ifdef LM_PROBE_DLSYM
#include <dlfcn.h>

static inline void *lm_probe_find(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  if (!f) {
    fprintf(stderr, "%s not found: run this program with LD_PRELOAD=liblitemalloc.so\n", name);
    exit(1);
  }
  return f;
}
#define LM_PROBE_FN(name, type) ((type)lm_probe_find(#name))
#define lm_owns(p) LM_PROBE_FN(lm_owns, int (*)(const void *))(p)
#define lm_stats(s) LM_PROBE_FN(lm_stats, void (*)(lm_stats_t *))(s)
#define lm_stats_json(b, n) LM_PROBE_FN(lm_stats_json, size_t (*)(char *, size_t))(b, n)
#define lm_stats_print(fd) LM_PROBE_FN(lm_stats_print, void (*)(int))(fd)
#define lm_trim() LM_PROBE_FN(lm_trim, void (*)(void))()
#endif

/* Allocations litemalloc has served so far in this process. */
static inline size_t lm_probe_allocs(void) {
  lm_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  lm_stats(&s);
  return s.allocs;
}

#endif /* LM_PROBE_H */
