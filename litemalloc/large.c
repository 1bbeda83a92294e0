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
 * header (huge_page).
 *
 * calloc: a large object in a span fresh from the OS is made resident at
 * once, in one madvise(MADV_POPULATE_WRITE) (populate_fresh): a program that
 * reads a calloc'd page before writing it pays two faults a page otherwise
 * (the shared zero page, then a copy on write), and one that writes it pays
 * one each.  tcmalloc's memset makes the same pages resident.  Huge objects'
 * fresh memory is left as it comes, so that a sparse table costs only the
 * pages used.  In a reused span or huge mapping, only what may be dirty is
 * zeroed (for a huge mapping, up to its dirty_end), and without making
 * resident what was not (zero_reused).
 */
#include <string.h>

#include "internal.h"

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static lm_page_t *huge_page(lm_segment_t *seg) { return &seg->pages[LM_HEADER_SLICES]; }

/* Whether the OS page at p reads all zero (the shared zero page, where the
 * program only read, or a page it wrote zeroes to). */
static bool page_reads_zero(const uint8_t *p) {
  typedef uint64_t __attribute__((may_alias)) word_t;
  const word_t *w = (const word_t *)p;
  for (size_t i = 0; i < LM_OS_PAGE / sizeof(word_t); i += 8)
    if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
      return false;
  return true;
}

/* Zeroes the n bytes at p (page-aligned; n a multiple of the page) of a
 * reused span or huge mapping, making nothing resident that was not.  A page in RAM
 * that does not read zero is written over: cheaper than purging it and
 * faulting it back in, and the program is about to touch it.  (mincore
 * counts the shared zero page, mapped where the program only read, as in
 * RAM: reading first leaves it alone.)  A run of pages out of RAM (never
 * touched, or swapped out) is purged.  If a chunk has many such runs, or
 * the OS answers neither call, the whole chunk is purged (or, failing that,
 * written). */
static void zero_reused(uint8_t *p, size_t n) {
  enum { VEC = 1024, MAX_RUNS = 8 };
  uint8_t vec[VEC];
  while (n) {
    size_t chunk = n < (size_t)VEC * LM_OS_PAGE ? n : (size_t)VEC * LM_OS_PAGE;
    size_t pages = chunk / LM_OS_PAGE, runs = 0;
    bool ok = os_resident(p, chunk, vec) == 0;
    for (size_t i = 0; ok && i < pages; i++)
      if (!(vec[i] & 1) && (i == 0 || (vec[i - 1] & 1)) && ++runs > MAX_RUNS) ok = false;
    if (!ok) {
      if (os_purge(p, chunk) != 0) memset(p, 0, chunk);
    } else {
      for (size_t i = 0; i < pages;) {
        uint8_t *run = p + i * LM_OS_PAGE;
        if (vec[i] & 1) {   /* one memset for a run of dirty pages in RAM */
          size_t j = i;
          while (j < pages && (vec[j] & 1) && !page_reads_zero(p + j * LM_OS_PAGE)) j++;
          if (j > i) memset(run, 0, (j - i) * LM_OS_PAGE);
          if (j < pages && (vec[j] & 1)) j++;   /* the page that ended the run reads zero */
          i = j;
          continue;
        }
        size_t j = i;
        while (j < pages && !(vec[j] & 1)) j++;
        size_t len = (j - i) * LM_OS_PAGE;
        if (os_purge(run, len) != 0) memset(run, 0, len);
        i = j;
      }
    }
    p += chunk;
    n -= chunk;
  }
}

/* Makes the n fresh bytes at p resident and writable in one call; nothing
 * (after the first EINVAL) where the kernel lacks MADV_POPULATE_WRITE.  A
 * failure leaves the memory as it was: zero, faulted in on first touch. */
static void populate_fresh(uint8_t *p, size_t n) {
  static int unsupported;   /* read and written with relaxed atomics */
  if (__atomic_load_n(&unsupported, __ATOMIC_RELAXED)) return;
  if (os_populate(p, n) == 22 /* EINVAL */)
    __atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);
}

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
    if (zero) {
      if (zeroed) populate_fresh(page->start, usable);
      else zero_reused(page->start, usable);
    }
    large_count(h, (int64_t)usable, true);
    return page->start;
  }
  size_t header = LM_HEADER_SLICES * LM_SLICE_SIZE;
  size_t offset = align < LM_SEGMENT_SIZE ? round_up(header, align > 1 ? align : 1) : LM_SEGMENT_SIZE;
  if (usable > PTRDIFF_MAX / 2 - offset || align > PTRDIFF_MAX / 2) {
    error_set_errno(12 /* ENOMEM */);
    return NULL;
  }
  lm_segment_t *seg = arena_huge_map(offset + usable, align);
  if (!seg) { error_set_errno(12); return NULL; }
  size_t end = offset + usable;
  if (zero && seg->dirty_end > offset)
    zero_reused((uint8_t *)seg + offset, (seg->dirty_end < end ? seg->dirty_end : end) - offset);
  if (seg->dirty_end < end) seg->dirty_end = end;
  lm_page_t *page = huge_page(seg);
  page->kind = LM_KIND_HUGE;
  page->slice_index = LM_HEADER_SLICES;
  page->slice_count = 1;
  page->start = (uint8_t *)seg + offset;
  page->capacity = 1;
  page->used = 1;
  page->low = 0;
  large_set_size(page, usable);
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
    to->dirty_end = offset + usable;
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
