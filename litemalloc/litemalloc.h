/* litemalloc: a scalable, header-free memory allocator for x86_64 Linux.
 *
 * This is the only public header of the core library (//litemalloc).  Every
 * function is thread-safe and may be called from any thread at any time,
 * including before main() and from signal-unsafe contexts that malloc itself
 * allows.  Pointers from these functions are freed with lm_free (or lm_realloc).
 *
 * Errors: a function that fails returns NULL (or an error code) and sets errno
 * to ENOMEM or EINVAL; a successful call never changes errno.  Freeing a pointer
 * that litemalloc did not return, that is not the start of a block, or that is
 * already free prints one line to stderr naming the fault and aborts.
 */
#ifndef LITEMALLOC_H
#define LITEMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LM_API __attribute__((visibility("default")))

/* ---- allocation ------------------------------------------------------- */

/* At least `size` bytes, 16-byte aligned when size >= 16; lm_malloc(0) returns a
 * unique pointer.  NULL and ENOMEM when size > PTRDIFF_MAX or memory runs out;
 * objects above 32 MiB are mapped so that the kernel's overcommit policy
 * judges them as it judges glibc's (an impossible size fails at once). */
LM_API void  *lm_malloc(size_t size);
/* Frees p; lm_free(NULL) does nothing.  Never changes errno. */
LM_API void   lm_free(void *p);
/* n * size bytes of zeroes; NULL and ENOMEM when the product overflows. */
LM_API void  *lm_calloc(size_t n, size_t size);
/* Resizes p, in place where it can.  p == NULL: lm_malloc(size).  size == 0:
 * frees p and returns NULL.  On failure returns NULL and leaves p untouched. */
LM_API void  *lm_realloc(void *p, size_t size);
/* `alignment` must be a power of two (any, up to 2^62); size need not be a
 * multiple of it.  Otherwise NULL and EINVAL. */
LM_API void  *lm_aligned_alloc(size_t alignment, size_t size);
/* Returns 0, or EINVAL when alignment is not a power-of-two multiple of
 * sizeof(void *) (*out untouched), or ENOMEM. */
LM_API int    lm_posix_memalign(void **out, size_t alignment, size_t size);
/* glibc's memalign: an alignment up to 16 (0 included) is lm_malloc's, one
 * that is not a power of two is rounded up to the next, one above
 * SIZE_MAX/2+1 is EINVAL. */
LM_API void  *lm_memalign(size_t alignment, size_t size);
/* lm_realloc(p, n * size), except that an overflowing product fails with
 * ENOMEM and leaves p untouched. */
LM_API void  *lm_reallocarray(void *p, size_t n, size_t size);
/* Page-aligned (4 KiB) allocation of size bytes; lm_pvalloc rounds the size
 * up to whole pages. */
LM_API void  *lm_valloc(size_t size);
LM_API void  *lm_pvalloc(size_t size);
/* Bytes usable at p (>= the size asked for); 0 for NULL. */
LM_API size_t lm_usable_size(const void *p);
/* C++'s operator new: lm_malloc, but where that fails it calls the
 * program's std::new_handler and tries again, and with no handler throws
 * std::bad_alloc (from the C++ runtime; where there is none, it prints the
 * size and aborts).  Never NULL.  Freed with lm_free. */
LM_API void  *lm_new(size_t size);

/* ---- for allocator shims (//override:wrap) ----------------------------- */

/* Nonzero when p points into memory that litemalloc manages. */
LM_API int    lm_owns(const void *p);
/* lm_free, except that a pointer litemalloc does not own is passed to
 * foreign_free (the C library's own free in --wrap builds); with foreign_free
 * NULL such a pointer is the usual invalid-pointer error. */
LM_API void   lm_free_or(void *p, void (*foreign_free)(void *));
/* lm_realloc with the same rule for a pointer litemalloc does not own. */
LM_API void  *lm_realloc_or(void *p, size_t size,
                            void *(*foreign_realloc)(void *, size_t));
/* lm_reallocarray with the same rule. */
LM_API void  *lm_reallocarray_or(void *p, size_t n, size_t size,
                                 void *(*foreign_realloc)(void *, size_t));
/* lm_usable_size with the same rule; foreign_usable may be NULL (then 0). */
LM_API size_t lm_usable_size_or(const void *p,
                                size_t (*foreign_usable)(void *));

/* ---- maintenance and statistics ---------------------------------------- */

/* Gives cached free memory back to the OS now (the calling thread's empty
 * pages and every thread's purgeable free spans). */
LM_API void   lm_trim(void);

#define LM_STATS_VERSION 1
#define LM_MAX_CLASSES 96   /* room for every size class; see class_count */

/* One size class in a snapshot. */
typedef struct lm_class_stats_s {
  size_t block_size;   /* bytes per block of this class */
  size_t allocs;       /* blocks handed out since start */
  size_t frees;        /* blocks freed since start */
  size_t live;         /* allocs - frees */
} lm_class_stats_t;

/* A snapshot.  Set `size` to sizeof(lm_stats_t) before calling lm_stats; the
 * library fills no more than that and sets `version`.  Counters are merged from
 * per-thread counters that their owners keep without atomics, so a snapshot
 * taken while threads allocate is a consistent sum of recent values, not an
 * instant; it never stops or slows the allocating threads. */
typedef struct lm_stats_s {
  size_t size;             /* in: sizeof(lm_stats_t) of the caller */
  size_t version;          /* out: LM_STATS_VERSION */
  size_t live_bytes;       /* usable bytes of live objects */
  size_t live_objects;     /* objects allocated and not freed */
  size_t peak_live_bytes;  /* high-water mark of live_bytes (sampled as pages come and go) */
  size_t allocs;           /* successful allocations since start */
  size_t frees;            /* frees since start */
  size_t remote_frees;     /* frees by a thread other than the owner */
  size_t large_live_bytes; /* part of live_bytes in large and huge objects */
  size_t committed_bytes;  /* memory in use or cached dirty (not purged) */
  size_t cached_bytes;     /* part of committed_bytes in free spans not yet purged */
  size_t reserved_bytes;   /* address space reserved from the OS */
  size_t purged_bytes;     /* bytes given back to the OS with madvise, total */
  size_t mmap_calls;       /* mappings made (reservations and huge objects) */
  size_t threads;          /* threads that hold a heap now */
  size_t heaps;            /* heaps ever created (reused after thread exit) */
  size_t class_count;      /* entries of classes[] in use */
  lm_class_stats_t classes[LM_MAX_CLASSES];
} lm_stats_t;

/* Fills *out (see lm_stats_t). */
LM_API void   lm_stats(lm_stats_t *out);
/* Writes the snapshot as one JSON object (same names as lm_stats_t) into buf,
 * snprintf-like: at most cap bytes including the NUL; returns the length it
 * needs, excluding the NUL. */
LM_API size_t lm_stats_json(char *buf, size_t cap);
/* Writes the snapshot as human-readable text to fd (with write(2)). */
LM_API void   lm_stats_print(int fd);

#ifdef __cplusplus
}
#endif
#endif /* LITEMALLOC_H */
