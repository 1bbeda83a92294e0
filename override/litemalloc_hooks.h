/* litemalloc_hooks.h: the one-line way to give a program litemalloc.
 *
 *   #include "override/litemalloc_hooks.h"   (first, in one or more files)
 *
 * and link the program with the core (//litemalloc, or liblitemalloc.a).
 *
 * glibc before 2.34 still calls __malloc_hook, __free_hook, __realloc_hook
 * and __memalign_hook: a constructor installs them, so every malloc, free,
 * realloc, memalign (and calloc, which glibc serves through __malloc_hook)
 * after it goes to litemalloc.  A pointer glibc allocated before that is
 * handed back to glibc, with the hook briefly uninstalled (as glibc's own
 * mcheck did); that is racy only if another thread frees at that moment.
 *
 * glibc 2.34 and later, and other C libraries, have no hooks: the header
 * defines the malloc family in the including program instead, so the
 * program's malloc is litemalloc's and the dynamic linker binds every other
 * reference to malloc in the process, the C library's own included, to it.
 * The definitions are weak, so several files of a program may include the
 * header, and //override or liblitemalloc.so linked in as well take
 * precedence.
 */
#ifndef LITEMALLOC_HOOKS_H
#define LITEMALLOC_HOOKS_H

#include <malloc.h>
#include <stdlib.h>

#include "litemalloc/litemalloc.h"

#ifdef __cplusplus
extern "C" {
#define LM_HOOKS_NOEXCEPT noexcept
#else
#define LM_HOOKS_NOEXCEPT
#endif

#if defined(__GLIBC__) && __GLIBC__ == 2 && __GLIBC_MINOR__ < 34

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void lm_hooks_free(void *p, const void *caller);
static void *lm_hooks_realloc(void *p, size_t size, const void *caller);

static void lm_hooks_glibc_free(void *p) {
  __free_hook = NULL;
  free(p);
  __free_hook = lm_hooks_free;
}
static void *lm_hooks_glibc_realloc(void *p, size_t size) {
  __realloc_hook = NULL;
  void *q = realloc(p, size);
  __realloc_hook = lm_hooks_realloc;
  return q;
}
static void *lm_hooks_malloc(size_t size, const void *caller) { return lm_malloc(size); }
static void lm_hooks_free(void *p, const void *caller) { lm_free_or(p, lm_hooks_glibc_free); }
static void *lm_hooks_realloc(void *p, size_t size, const void *caller) { return lm_realloc_or(p, size, lm_hooks_glibc_realloc); }
static void *lm_hooks_memalign(size_t alignment, size_t size, const void *caller) { return lm_memalign(alignment, size); }

__attribute__((constructor(101))) static void lm_hooks_install(void) {
  __malloc_hook = lm_hooks_malloc;
  __free_hook = lm_hooks_free;
  __realloc_hook = lm_hooks_realloc;
  __memalign_hook = lm_hooks_memalign;
}
#pragma GCC diagnostic pop

#else /* no hooks: the program defines the malloc family */

#define LM_HOOKS_DEF __attribute__((weak, visibility("default")))

LM_HOOKS_DEF void *malloc(size_t size) LM_HOOKS_NOEXCEPT { return lm_malloc(size); }
LM_HOOKS_DEF void free(void *p) LM_HOOKS_NOEXCEPT { lm_free(p); }
LM_HOOKS_DEF void *calloc(size_t n, size_t size) LM_HOOKS_NOEXCEPT { return lm_calloc(n, size); }
LM_HOOKS_DEF void *realloc(void *p, size_t size) LM_HOOKS_NOEXCEPT { return lm_realloc(p, size); }
LM_HOOKS_DEF void *reallocarray(void *p, size_t n, size_t size) LM_HOOKS_NOEXCEPT { return lm_reallocarray(p, n, size); }
LM_HOOKS_DEF void *aligned_alloc(size_t alignment, size_t size) LM_HOOKS_NOEXCEPT { return lm_aligned_alloc(alignment, size); }
LM_HOOKS_DEF int posix_memalign(void **out, size_t alignment, size_t size) LM_HOOKS_NOEXCEPT { return lm_posix_memalign(out, alignment, size); }
LM_HOOKS_DEF void *memalign(size_t alignment, size_t size) LM_HOOKS_NOEXCEPT { return lm_memalign(alignment, size); }
LM_HOOKS_DEF void *valloc(size_t size) LM_HOOKS_NOEXCEPT { return lm_valloc(size); }
LM_HOOKS_DEF void *pvalloc(size_t size) LM_HOOKS_NOEXCEPT { return lm_pvalloc(size); }
LM_HOOKS_DEF size_t malloc_usable_size(void *p) LM_HOOKS_NOEXCEPT { return lm_usable_size(p); }

#undef LM_HOOKS_DEF
#endif

#undef LM_HOOKS_NOEXCEPT
#ifdef __cplusplus
}
#endif
#endif /* LITEMALLOC_HOOKS_H */
