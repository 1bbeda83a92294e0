/* The public allocation API and its fast paths.
 *
 * lm_malloc of a size up to 1 KiB: one TLS load, the class from the heap's
 * table, pop the head of the class's hot list (blocks this thread freed,
 * heap.c); when that is empty, pop the head of the class's page free list;
 * one unlikely branch to heap_malloc_slow when that is empty too.  No lock,
 * no atomic.
 *
 * lm_free: find the page from the address (segment map byte, slice map
 * entry), then three checks that are never compiled out, all before any
 * store: the page is owned by this thread's heap (else the slow path sorts
 * out full pages, remote frees, large objects and foreign pointers), the
 * pointer is a block start inside the page, and the block is not already
 * free (its tag).  Then push it on the class's hot list, or, when that is
 * full, on the page's free list.
 */
#include <string.h>

#include "internal.h"

#define ENOMEM_ 12
#define EINVAL_ 22

/* Takes block b, the head of heap h's list of class c (lm_heap_t.hot).
 * Unlike page_take, no prefetch of the next block: a block on a hot list
 * was freed here a moment ago, and fetching the new head cost more than it
 * saved (interleaved medians of 21, tests/bench pairs: 0.100 -> 0.091 s;
 * of 11: glibc-simple 0.066 -> 0.064, larson-t1 0.190 -> 0.187,
 * glibc-thread-t1, mstress-t1 and larson-t16 the same within 1%). */
static inline void *hot_take(lm_heap_t *h, unsigned c, lm_block_t *b) {
  if (LM_DEBUG >= 2) debug_check_freed(b, sizeclass_block_size(c));
  h->hot[c] = b->next;
  h->hot_room[c]++;
  b->tag = 0;
  return b;
}

/* Pops a block of class c from heap h, or takes the slow path. */
static inline void *heap_pop(lm_heap_t *h, unsigned c) {
  lm_block_t *hb = h->hot[c];
  if (hb != NULL) {
    lm_stat_add(h->allocs[c], 1);
    return hot_take(h, c, hb);
  }
  lm_page_t *page = h->pages[c];
  lm_block_t *b = page->free;
  if (LM_UNLIKELY(b == NULL)) return heap_malloc_slow(h, c);
  h->hot_room[c] = h->hot_max[c];   /* the list is empty: open it (see hot_max in heap.c) */
  lm_stat_add(h->allocs[c], 1);
  return page_take(page, b);
}

/* Sizes above LM_DIRECT_MAX: medium classes, large objects, impossible sizes. */
static LM_NOINLINE void *malloc_big(lm_heap_t *h, size_t size) {
  if (size <= LM_SMALL_MAX) return heap_pop(h, sizeclass_of_medium(size));
  if (size > PTRDIFF_MAX) { error_set_errno(ENOMEM_); return NULL; }
  return large_alloc(h, size, 0, false);
}

/* C++'s operator new (its contract: [new.delete.single]): when memory runs
 * out, call the program's new_handler and try again; with no handler, throw
 * std::bad_alloc.  Both come from the C++ runtime (libstdc++; libc++ and
 * libc++abi export the same two names), referred to weakly, as this
 * library must load and link without it.  Where they did not bind, the
 * failure aborts naming the size: the runtime came later (dlopen), or a
 * static link did not take their members of libstdc++.a (a weak reference
 * takes none; set_new_handler brings get_new_handler, and any use of the
 * standard containers the thrower).  Our frames have unwind tables (the
 * compiler's default on x86_64 and aarch64), so the exception passes
 * through them. */
typedef void (*new_handler_t)(void);
extern new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));   /* std::get_new_handler */
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn)); /* std::__throw_bad_alloc */

static LM_NOINLINE void *new_retry(size_t size) {
  for (;;) {
    void *p = lm_malloc(size);
    if (p) return p;
    new_handler_t handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (!handler) {
      if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
      error_out_of_memory(size);
    }
    handler();
  }
}

/* lm_malloc's body, and lm_new's (cxx): lm_new's slow paths go to
 * new_retry, which starts again with lm_malloc. */
static inline __attribute__((always_inline)) void *malloc_inline(size_t size, bool cxx) {
  lm_heap_t *h = lm_tls_heap;
  if (LM_LIKELY(size <= LM_DIRECT_MAX)) {
    size_t i = (size + 15) >> 4;
    unsigned c = h->hot_class[i];
    lm_block_t *b = h->hot[c];
    if (LM_LIKELY(b != NULL)) {
      lm_stat_add(h->allocs_direct[i], 1);
      return hot_take(h, c, b);
    }
    lm_page_t *page = h->direct[i];
    b = page->free;
    if (LM_UNLIKELY(b == NULL)) return cxx ? new_retry(size) : heap_malloc_slow(h, lm_class_direct[i]);
    h->hot_room[c] = h->hot_max[c];   /* the list is empty: open it */
    lm_stat_add(h->allocs_direct[i], 1);
    return page_take(page, b);
  }
  return cxx ? new_retry(size) : malloc_big(h, size);
}

void *lm_malloc(size_t size) { return malloc_inline(size, false); }

void *lm_new(size_t size) { return malloc_inline(size, true); }

/* A pointer in none of our memory: foreign, or a huge object's since unmapped. */
static LM_COLD __attribute__((noreturn)) void not_ours(const void *p, bool use) {
  if (!arena_was_huge(p)) error_free_foreign(p);
  else if (use) error_use_after_free(p);
  else error_free_double(p);
  __builtin_unreachable();   /* the error_free_* functions abort */
}

/* free of NULL, or of a pointer outside the primary reservation. */
static LM_NOINLINE void free_outside(void *p) {
  if (!p) return;
  lm_page_t *page = arena_lookup_outside(p);
  if (!page) not_ours(p, false);
  else heap_free_slow(lm_tls_heap, page, p);
}

void lm_free(void *p) {
  uintptr_t d = (uintptr_t)p - (uintptr_t)lm_region_base;
  if (LM_UNLIKELY(d >= lm_racy_read(lm_region_carved))) {
    free_outside(p);
    return;
  }
  lm_page_t *page = lm_slicemap[d >> LM_SLICE_SHIFT];
  lm_heap_t *h = lm_tls_heap;
  if (LM_UNLIKELY(lm_racy_read(page->owner) != (uintptr_t)h)) {
    heap_free_slow(h, page, p);
    return;
  }
  if (LM_UNLIKELY(!page_is_block(page, p))) { error_free_invalid(p); return; }
  lm_block_t *b = p;
  uintptr_t tag = block_tag(b);
  if (LM_UNLIKELY(block_is_free(b, tag))) { error_free_tagged(p); return; }
  debug_on_free(page, b);
  unsigned c = page->cls;
  lm_stat_add(h->frees[c], 1);
  b->tag = tag;
  /* One decrement for both ways on (the list's room, or the count of
   * frees that found it full): pairs 68 -> 67 instructions a pair. */
  int64_t room = --h->hot_room[c];
  if (LM_LIKELY(room >= 0)) {   /* onto the class's hot list */
    b->next = h->hot[c];
    h->hot[c] = b;
    return;
  }
  if (LM_UNLIKELY(room < -LM_HOT_SPILL)) {
    heap_hot_spill(h, page, b);
    return;
  }
  b->next = page->free;
  page->free = b;
  if (LM_UNLIKELY(--page->used == 0)) heap_page_low(h, page);   /* at the low mark */
}

void *lm_calloc(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total) || total > PTRDIFF_MAX) {
    error_set_errno(ENOMEM_);
    return NULL;
  }
  if (total > LM_SMALL_MAX) return large_alloc(lm_tls_heap, total, 0, true);
  void *p = lm_malloc(total);
  if (p) memset(p, 0, total);
  return p;
}

/* The descriptor of the in-use block p (for realloc and usable size), or an
 * abort naming the fault: a block that is free is a use after free (a free
 * span's descriptor keeps the geometry of the span that was there, see
 * lm_segment_t). */
static lm_page_t *block_page(const void *p) {
  lm_page_t *page = page_lookup(p);
  if (!page) not_ours(p, true);
  uintptr_t owner = __atomic_load_n(&page->owner, __ATOMIC_RELAXED);
  bool block = page_is_block(page, p);
  if (owner == LM_OWNER_FREE) block ? error_use_after_free(p) : error_free_invalid(p);
  if (page->kind == LM_KIND_SMALL) {
    if (!block) error_free_invalid(p);
    if (((const lm_block_t *)p)->tag == block_tag(p)) error_use_after_free(p);
    if ((owner & LM_OWNER_SPARSE) && page_block_lost(page, p)) error_use_after_free(p);
    if (block_is_free(p, block_tag(p))) error_free_invalid(p);   /* never handed out */
  } else if (p != page->start) {
    error_free_invalid(p);
  }
  return page;
}

/* A small block that must move to grow takes at least a quarter more than
 * it had, as tcmalloc's realloc does: a string that grows a few bytes at a
 * time moves about three times per doubling, not once per size class (eight
 * per doubling up to 1 KiB).  Measured (tests/bench realloc, interleaved
 * medians of 9, when the classes above 1 KiB were eight per doubling too):
 * 0.337 -> 0.298 s, peak RSS 28.8 -> 29.7 MiB. */
static void *realloc_page(void *p, lm_page_t *page, size_t size) {
  if (size > PTRDIFF_MAX) { error_set_errno(ENOMEM_); return NULL; }
  size_t have = page->block_size;
  if (page->kind == LM_KIND_SMALL) {
    if (size <= have && (size >= have / 2 || have <= 64)) return p;
  } else if (size > LM_SMALL_MAX) {
    if (size <= have && size > have - LM_SLICE_SIZE) return p;
    void *q = large_resize(lm_tls_heap, page, p, size);
    if (q) return q;
  }
  size_t want = size;
  if (page->kind == LM_KIND_SMALL && size > have && size - have < have / 4) want = have + have / 4;
  void *q = lm_malloc(want);
  if (!q) return NULL;
  memcpy(q, p, size < have ? size : have);
  if (page->kind == LM_KIND_LARGE && size > have) large_free_moved(lm_tls_heap, page, p);
  else lm_free(p);
  return q;
}

void *lm_realloc(void *p, size_t size) {
  if (p == NULL) return lm_malloc(size);
  if (size == 0) { lm_free(p); return NULL; }
  return realloc_page(p, block_page(p), size);
}

void *lm_aligned_alloc(size_t align, size_t size) {
  if (align == 0 || (align & (align - 1)) != 0) { error_set_errno(EINVAL_); return NULL; }
  if (align <= LM_MIN_ALIGN) return lm_malloc(size);
  if (size > PTRDIFF_MAX) { error_set_errno(ENOMEM_); return NULL; }
  lm_heap_t *h = lm_tls_heap;
  if (align <= LM_SLICE_SIZE && size <= LM_SMALL_MAX) {
    unsigned c = sizeclass_aligned(size, align);
    if (c < LM_CLASSES) return heap_pop(h, c);
  }
  return large_alloc(h, size, align, false);
}

/* glibc's rules: an alignment up to 16 (0 included) is malloc's, one that is
 * not a power of two is rounded up to the next, one above SIZE_MAX/2+1 is
 * EINVAL. */
void *lm_memalign(size_t align, size_t size) {
  if (align > SIZE_MAX / 2 + 1) { error_set_errno(EINVAL_); return NULL; }
  if (align <= LM_MIN_ALIGN) return lm_malloc(size);
  if (align & (align - 1)) align = (size_t)1 << (64 - __builtin_clzll(align - 1));
  return lm_aligned_alloc(align, size);
}

int lm_posix_memalign(void **out, size_t align, size_t size) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL_;
  void *p = lm_aligned_alloc(align, size);
  if (!p) return ENOMEM_;
  *out = p;
  return 0;
}

/* n * size, or SIZE_MAX (which every allocation refuses) on overflow. */
static size_t array_size(size_t n, size_t size) {
  size_t total;
  return __builtin_mul_overflow(n, size, &total) ? SIZE_MAX : total;
}

void *lm_reallocarray(void *p, size_t n, size_t size) { return lm_realloc(p, array_size(n, size)); }

void *lm_valloc(size_t size) { return lm_aligned_alloc(LM_OS_PAGE, size); }

void *lm_pvalloc(size_t size) {
  size_t rounded = size > SIZE_MAX - (LM_OS_PAGE - 1) ? SIZE_MAX
                                                      : (size + LM_OS_PAGE - 1) & ~(LM_OS_PAGE - 1);
  return lm_aligned_alloc(LM_OS_PAGE, rounded);
}

size_t lm_usable_size(const void *p) {
  if (!p) return 0;
  return block_page(p)->block_size;
}

int lm_owns(const void *p) {
  lm_page_t *page = page_lookup(p);
  return page && __atomic_load_n(&page->owner, __ATOMIC_RELAXED) != LM_OWNER_FREE &&
         (uint64_t)((const uint8_t *)p - page->start) < page_area(page);
}

void lm_free_or(void *p, void (*foreign_free)(void *)) {
  if (p && foreign_free && !page_lookup(p)) foreign_free(p);
  else lm_free(p);
}

void *lm_realloc_or(void *p, size_t size, void *(*foreign_realloc)(void *, size_t)) {
  if (p && foreign_realloc && !page_lookup(p)) return foreign_realloc(p, size);
  return lm_realloc(p, size);
}

void *lm_reallocarray_or(void *p, size_t n, size_t size,
                         void *(*foreign_realloc)(void *, size_t)) {
  return lm_realloc_or(p, array_size(n, size), foreign_realloc);
}

size_t lm_usable_size_or(const void *p, size_t (*foreign_usable)(void *)) {
  if (p && !page_lookup(p)) return foreign_usable ? foreign_usable((void *)p) : 0;
  return lm_usable_size(p);
}

void lm_trim(void) {
  lm_heap_t *h = lm_tls_heap;
  if (!heap_is_sentinel(h)) heap_trim(h);
  heap_reclaim_abandoned(true);
  arena_purge(true);
}
