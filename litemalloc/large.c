/* Objects above the largest size class.
 *
 * Large objects (up to a segment's 2030 usable slices, ~32 MiB) take a span of
 * whole slices from the arena; their usable size is the request rounded up to
 * the 4 KiB OS page, and only the pages the program touches become resident.
 * Freed spans stay dirty in the arena for a while (see arena.c), which is what
 * keeps a loop of large allocations from paying page faults each time.
 * Resizing grows into free slices that follow the span or gives back its tail.
 *
 * Huge objects get a mapping of their own, aligned to the segment size with
 * the header slices in front, so the same `p & ~segment mask` lookup finds
 * them; they resize with mremap, which moves pages instead of copying them.
 * The object starts after the header, at a multiple of its alignment: inside
 * the first segment when the alignment is below the segment size, else at
 * the start of the second segment, which the arena places at an aligned
 * address.  Its descriptor is always the one of the first slice after the
 * header (huge_page).  A zeroed huge object is fresh from the OS (or a
 * cached mapping purged): nothing is written to it.
 */
#include <string.h>

#include "internal.h"

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static lm_page_t *huge_page(lm_segment_t *seg) { return &seg->pages[LM_HEADER_SLICES]; }

static void large_set_size(lm_page_t *page, size_t usable) {
  page->block_size = usable;
  page->div_magic = div_magic_for(usable);
  page->limit = block_limit(usable, 1);
}

static void large_count(lm_heap_t *h, int64_t bytes, bool alloc) {
  if (alloc) {
    heap_count(h, large_allocs, 1);
    heap_count(h, large_alloc_bytes, (uint64_t)bytes);
  } else {
    heap_count(h, large_frees, 1);
    heap_count(h, large_free_bytes, (uint64_t)bytes);
  }
  heap_publish_bytes(alloc ? bytes : -bytes);
}

/* A resize in place changes live bytes, not the object count. */
static void large_count_resize(lm_heap_t *h, int64_t delta) {
  if (delta > 0) heap_count(h, large_alloc_bytes, (uint64_t)delta);
  else heap_count(h, large_free_bytes, (uint64_t)-delta);
  heap_publish_bytes(delta);
}

void *large_alloc(lm_heap_t *h, size_t size, size_t align, bool zero) {
  if (size == 0) size = 1;
  size_t usable = round_up(size, LM_OS_PAGE);
  size_t lead = align > LM_SLICE_SIZE ? align : 0;   /* room to align the start */
  if (usable <= LM_LARGE_MAX && lead <= LM_LARGE_MAX - usable) {
    bool zeroed;
    lm_page_t *page = arena_alloc_span((usable + lead + LM_SLICE_SIZE - 1) / LM_SLICE_SIZE,
                                       LM_KIND_LARGE, &zeroed);
    if (!page) { error_set_errno(12 /* ENOMEM */); return NULL; }
    uint8_t *span = (uint8_t *)segment_of(page) + (size_t)page->slice_index * LM_SLICE_SIZE;
    page->start = lead ? (uint8_t *)round_up((uintptr_t)span, align) : span;
    page->capacity = 1;
    page->used = 1;
    page->low = 0;
    large_set_size(page, usable);
    if (zero && !zeroed) memset(page->start, 0, size);
    large_count(h, (int64_t)usable, true);
    return page->start;
  }
  size_t header = LM_HEADER_SLICES * LM_SLICE_SIZE;
  size_t offset = align < LM_SEGMENT_SIZE ? round_up(header, align > 1 ? align : 1) : LM_SEGMENT_SIZE;
  if (usable > PTRDIFF_MAX / 2 - offset || align > PTRDIFF_MAX / 2) {
    error_set_errno(12 /* ENOMEM */);
    return NULL;
  }
  bool zeroed;
  lm_segment_t *seg = arena_huge_map(offset + usable, align, zero, &zeroed);
  if (!seg) { error_set_errno(12); return NULL; }
  lm_page_t *page = huge_page(seg);
  page->kind = LM_KIND_HUGE;
  page->slice_index = LM_HEADER_SLICES;
  page->slice_count = 1;
  page->start = (uint8_t *)seg + offset;
  page->capacity = 1;
  page->used = 1;
  page->low = 0;
  large_set_size(page, usable);
  if (zero && !zeroed) memset(page->start, 0, size);
  __atomic_store_n(&page->owner, LM_OWNER_LARGE, __ATOMIC_RELEASE);
  for (size_t i = LM_HEADER_SLICES; i < LM_SLICES; i++) seg->slice_page[i] = page;  /* exact map */
  large_count(h, (int64_t)usable, true);
  return page->start;
}

static void large_release(lm_heap_t *h, lm_page_t *page, void *p, bool purge) {
  if (p != page->start)
    error_fatal("invalid pointer (not a block start, or not allocated by litemalloc):", p);
  large_count(h, (int64_t)page->block_size, false);
  if (page->kind == LM_KIND_HUGE) {
    __atomic_store_n(&page->owner, LM_OWNER_FREE, __ATOMIC_RELAXED);
    arena_huge_unmap(segment_of(page));
  } else {
    arena_free_span(page, purge);
  }
}

void large_free(lm_heap_t *h, lm_page_t *page, void *p) { large_release(h, page, p, false); }

void large_free_moved(lm_heap_t *h, lm_page_t *page, void *p) { large_release(h, page, p, true); }

void *large_resize(lm_heap_t *h, lm_page_t *page, void *p, size_t size) {
  size_t usable = round_up(size, LM_OS_PAGE), old = page->block_size;
  if (page->kind == LM_KIND_HUGE) {
    lm_segment_t *seg = segment_of(page);
    size_t offset = (size_t)((uint8_t *)p - (uint8_t *)seg);
    lm_segment_t *to = arena_huge_remap(seg, offset + usable);
    if (!to) return NULL;
    page = huge_page(to);
    page->start = (uint8_t *)to + offset;
    for (size_t i = LM_HEADER_SLICES; i < LM_SLICES; i++) to->slice_page[i] = page;
    large_set_size(page, usable);
    large_count_resize(h, (int64_t)usable - (int64_t)old);
    return page->start;
  }
  size_t lead = (size_t)(page->start - ((uint8_t *)segment_of(page) +
                                        (size_t)page->slice_index * LM_SLICE_SIZE));
  size_t n = (lead + usable + LM_SLICE_SIZE - 1) / LM_SLICE_SIZE;
  if (page->slice_index + n > LM_SLICES) return NULL;
  if (!arena_resize_span(page, n)) return NULL;
  large_set_size(page, usable);
  large_count_resize(h, (int64_t)usable - (int64_t)old);
  return p;
}
