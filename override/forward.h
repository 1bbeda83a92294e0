/* Argument arithmetic shared by the forwarding files (override.c, wrap.c,
 * litemalloc_hooks.h): sizes only, no allocator logic.  An overflowing size
 * becomes SIZE_MAX, which every litemalloc allocation function (and glibc's)
 * refuses with NULL and ENOMEM, leaving a realloc'd pointer untouched. */
#ifndef LITEMALLOC_OVERRIDE_FORWARD_H
#define LITEMALLOC_OVERRIDE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#define LM_FORWARD_PAGE ((size_t)4096) /* x86_64 base page: valloc's alignment */

/* reallocarray's n * size. */
static inline size_t lm_forward_array_size(size_t n, size_t size) {
  size_t bytes;
  return __builtin_mul_overflow(n, size, &bytes) ? SIZE_MAX : bytes;
}

/* pvalloc's size, rounded up to whole pages. */
static inline size_t lm_forward_page_round(size_t size) {
  return size > SIZE_MAX - (LM_FORWARD_PAGE - 1)
             ? SIZE_MAX
             : (size + LM_FORWARD_PAGE - 1) & ~(LM_FORWARD_PAGE - 1);
}

#endif /* LITEMALLOC_OVERRIDE_FORWARD_H */
