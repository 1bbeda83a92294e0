/* __wrap_* versions of the C library's allocation functions, for the two
 * linker-flag ways of using litemalloc (//override:wrap):
 *
 *   -Wl,--wrap,malloc ...         every reference to malloc in the program's
 *                                 objects goes to __wrap_malloc, and
 *                                 __real_malloc names the C library's own;
 *   -Wl,--defsym=malloc=__wrap_malloc ...
 *                                 malloc itself is __wrap_malloc; there is
 *                                 no __real_malloc.
 *
 * With --wrap the C library keeps its own malloc for the allocations it makes
 * out of the program's sight, so the program may free or resize a pointer
 * that glibc allocated: lm_free_or and friends hand a pointer that litemalloc
 * does not own to __real_free / __real_realloc.  The __real_* names are weak
 * references because under --defsym they do not exist; they are then NULL,
 * and a foreign pointer is the core's usual invalid-pointer error.
 *
 * One forwarding line per symbol; compiled with -fno-builtin like override.c.
 */
#include <stddef.h>

#include "litemalloc/litemalloc.h"

#define EXPORT __attribute__((visibility("default")))

/* The C library's functions under --wrap; NULL without it. */
extern void __real_free(void *p) __attribute__((weak));
extern void *__real_realloc(void *p, size_t size) __attribute__((weak));
extern size_t __real_malloc_usable_size(void *p) __attribute__((weak));

EXPORT void *__wrap_malloc(size_t size) { return lm_malloc(size); }
EXPORT void __wrap_free(void *p) { lm_free_or(p, __real_free); }
EXPORT void *__wrap_calloc(size_t n, size_t size) { return lm_calloc(n, size); }
EXPORT void *__wrap_realloc(void *p, size_t size) { return lm_realloc_or(p, size, __real_realloc); }
EXPORT void *__wrap_reallocarray(void *p, size_t n, size_t size) { return lm_reallocarray_or(p, n, size, __real_realloc); }
EXPORT void *__wrap_aligned_alloc(size_t alignment, size_t size) { return lm_aligned_alloc(alignment, size); }
EXPORT int __wrap_posix_memalign(void **out, size_t alignment, size_t size) { return lm_posix_memalign(out, alignment, size); }
EXPORT void *__wrap_memalign(size_t alignment, size_t size) { return lm_memalign(alignment, size); }
EXPORT void *__wrap_valloc(size_t size) { return lm_valloc(size); }
EXPORT void *__wrap_pvalloc(size_t size) { return lm_pvalloc(size); }
EXPORT size_t __wrap_malloc_usable_size(void *p) { return lm_usable_size_or(p, __real_malloc_usable_size); }
