/* Force-included (-include) into tests/core/stress_test.c, a program written
 * against lm_*, so that its allocations go through the C library's names
 * (malloc, free, ...) and so through the override under test, while its
 * statistics calls still reach litemalloc (see lm_probe.h). */
#ifndef LM_LIBC_NAMES_H
#define LM_LIBC_NAMES_H

/* Included before the program's own first line, so it sets the program's
 * feature macro (stress_test.c defines it the same way). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>

#include "lm_probe.h"

#define lm_malloc malloc
#define lm_calloc calloc
#define lm_realloc realloc
#define lm_free free
#define lm_aligned_alloc aligned_alloc
#define lm_posix_memalign posix_memalign
#define lm_memalign memalign
#define lm_usable_size malloc_usable_size

#endif
