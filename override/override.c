/* The C library's allocation functions, and C++'s operator new and delete,
 * each forwarded to litemalloc.
 *
 * Linked into a program (//override, alwayslink) or preloaded
 * (//override:liblitemalloc.so), these definitions take the place of glibc's
 * malloc for the whole process: the dynamic linker binds every reference to
 * malloc, glibc's own included, to the first definition it finds, and that
 * is this one.  The __libc_* and __posix_memalign entry points are defined
 * too, so that nothing in a static link needs glibc's malloc.o.
 *
 * Nothing here has logic of its own: one forwarding line per symbol, except
 * mallinfo2, which copies lm_stats into glibc's struct (and in the shared
 * library, malloc, free and the C++ operators are aliases instead: below).  The file is
 * compiled with -fno-builtin so that the compiler cannot turn a body into a
 * call to the function it defines.  The core is compiled with
 * -fvisibility=hidden, so every definition here says it is exported.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"

#define EXPORT __attribute__((visibility("default")))

/* Not declared by glibc 2.36's headers (cfree was dropped from them; the
 * other two are C23). */
void cfree(void *p);
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t alignment, size_t size);
/* C++'s operators (the group before the statistics), by their mangled names. */
void *_Znwm(size_t size);
void *_Znam(size_t size);
void _ZdlPv(void *p);
void _ZdaPv(void *p);
void _ZdlPvm(void *p, size_t size);
void _ZdaPvm(void *p, size_t size);
/* glibc's own names, which its headers do not declare either. */
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
int __posix_memalign(void **out, size_t alignment, size_t size);

/* ---- the standard and glibc allocation functions ----------------------- */

/* The shared library compiles neither these two nor C++'s operators below
 * (LM_OVERRIDE_ALIASED): its link makes each of those names a second name
 * of the lm_* function it forwards to (--defsym, override/BUILD), so a call
 * skips the forwarding jump.  tests/bench glibc-simple: 237.2M -> 233.2M
 * instructions (scale 0.2), 0.0737 -> 0.0703 s, faster in 19 of 25
 * interleaved pairs of runs.  A static link keeps the forwarding bodies. */
#ifndef LM_OVERRIDE_ALIASED
EXPORT void *malloc(size_t size) { return lm_malloc(size); }
EXPORT void free(void *p) { lm_free(p); }
#endif
EXPORT void *calloc(size_t n, size_t size) { return lm_calloc(n, size); }
EXPORT void *realloc(void *p, size_t size) { return lm_realloc(p, size); }
EXPORT void *reallocarray(void *p, size_t n, size_t size) { return lm_reallocarray(p, n, size); }
EXPORT void *aligned_alloc(size_t alignment, size_t size) { return lm_aligned_alloc(alignment, size); }
EXPORT int posix_memalign(void **out, size_t alignment, size_t size) { return lm_posix_memalign(out, alignment, size); }
EXPORT void *memalign(size_t alignment, size_t size) { return lm_memalign(alignment, size); }
EXPORT void *valloc(size_t size) { return lm_valloc(size); }
EXPORT void *pvalloc(size_t size) { return lm_pvalloc(size); }
EXPORT size_t malloc_usable_size(void *p) { return lm_usable_size(p); }
EXPORT void cfree(void *p) { lm_free(p); }
EXPORT void free_sized(void *p, size_t size) { lm_free(p); }
EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size) { lm_free(p); }

/* ---- glibc's internal entry points ------------------------------------- */

EXPORT void *__libc_malloc(size_t size) { return lm_malloc(size); }
EXPORT void __libc_free(void *p) { lm_free(p); }
EXPORT void *__libc_calloc(size_t n, size_t size) { return lm_calloc(n, size); }
EXPORT void *__libc_realloc(void *p, size_t size) { return lm_realloc(p, size); }
EXPORT void *__libc_memalign(size_t alignment, size_t size) { return lm_memalign(alignment, size); }
EXPORT void *__libc_valloc(size_t size) { return lm_valloc(size); }
EXPORT void *__libc_pvalloc(size_t size) { return lm_pvalloc(size); }
EXPORT int __posix_memalign(void **out, size_t alignment, size_t size) { return lm_posix_memalign(out, alignment, size); }

/* ---- C++'s operator new and delete ------------------------------------ */

/* The replaceable global forms every C++ program calls (libstdc++'s own call
 * malloc and free through two or three more calls; its nothrow, aligned
 * and remaining forms call these or aligned_alloc and free, so they come
 * here too).  Itanium C++ ABI names: new, new[], delete, delete[], and the
 * sized deletes (C++14), whose size is not needed. */
#ifndef LM_OVERRIDE_ALIASED
EXPORT void *_Znwm(size_t size) { return lm_new(size); }
EXPORT void *_Znam(size_t size) { return lm_new(size); }
EXPORT void _ZdlPv(void *p) { lm_free(p); }
EXPORT void _ZdaPv(void *p) { lm_free(p); }
EXPORT void _ZdlPvm(void *p, size_t size) { lm_free(p); }
EXPORT void _ZdaPvm(void *p, size_t size) { lm_free(p); }
#endif

/* ---- maintenance and statistics ---------------------------------------- */

/* glibc returns 1 when it released memory; lm_trim does not say. */
EXPORT int malloc_trim(size_t pad) {
  lm_trim();
  return 1;
}

EXPORT void malloc_stats(void) { lm_stats_print(STDERR_FILENO); }

/* glibc's summary, in litemalloc's terms: "arena" is the memory committed,
 * in use or cached; "hblkhd" the part in large and huge objects. */
EXPORT struct mallinfo2 mallinfo2(void) {
  lm_stats_t s = {.size = sizeof s};
  lm_stats(&s);
  return (struct mallinfo2){
      .arena = s.committed_bytes,
      .hblkhd = s.large_live_bytes,
      .uordblks = s.live_bytes,
      .fordblks = s.committed_bytes > s.live_bytes ? s.committed_bytes - s.live_bytes : 0,
  };
}

/* The same with the old int fields (deprecated by glibc; they wrap). */
EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m = mallinfo2();
  return (struct mallinfo){.arena = (int)m.arena, .hblkhd = (int)m.hblkhd,
                           .uordblks = (int)m.uordblks, .fordblks = (int)m.fordblks};
}
