/* A small page: a span of slices cut into blocks of one size class.
 *
 * A fresh page threads its blocks onto the free list lazily, 8 KiB worth at a
 * time, so a page that serves a few objects touches a few OS pages, not the
 * whole span (a small program stays as lean as with glibc).  The free list is
 * LIFO: a block freed by its owner is the next one handed out, while it is
 * still in cache.  See lm_page_t in internal.h for the invariants.
 *
 * Sparse pages.  After a program frees most of its objects at random, the
 * survivors keep every page, and so every OS page, of the classes they are in
 * (all allocators we compare with keep about 10x the live bytes resident
 * after a random 90% free).  But an OS page inside a page can be all free
 * blocks, and more often the larger the blocks.  So once a local free takes
 * a fully threaded page of blocks of 256 bytes or more down to a low mark
 * (first a quarter or an eighth of its blocks), its owner
 * "scavenges" it: counts the free blocks per unit (the OS page; larger for
 * spans over 64 OS pages), gives back (MADV_DONTNEED) every unit whose
 * blocks are all free or lost, and takes the blocks that overlap such a unit
 * off the free list ("lost": their links are gone).  Each mark is two
 * thirds of the one before (page_next_mark), down to a sixteenth of its
 * blocks (LM_SPARSE_LAST: below that, the page is more likely emptying, and
 * a scan costs madvise calls for units about to be given back whole), so a
 * page is scanned at most five times until it grows full again, the last
 * time about half above the live blocks it keeps at most; and a page is scanned
 * only when it has been full-grown, or had its units back, for a quarter of
 * the purge delay (free_time), so that a page cycling between full and
 * sparse faults its units in at most that often.  A page that reaches its
 * mark younger than that loses the mark until it grows full again (a loop
 * that fills and empties pages pays one clock read per page, not one per
 * mark; going on to the next mark instead cost 1 KiB blocks in batches of
 * 100, tests/bench glibc-simple's pattern, 8% more instructions, and
 * frag90's RSS nothing).  The page's owner word gets
 * LM_OWNER_SPARSE, so every free into it takes the slow path, which names a
 * free of a lost block a double free (its tag was purged with it).  When the
 * free list runs dry, page_unpurge threads the lost blocks back, before a
 * new page is taken; writing their links faults those units in at once.
 * An empty page that a heap keeps can also be reset (page_reset: heap.c
 * decides when): all but its first block given back, nothing threaded.
 */
#include "internal.h"

_Atomic int64_t lm_sparse_bytes;
_Atomic uint64_t lm_scavenged_bytes;

/* The first low mark of a fully threaded page: about where a random free
 * leaves a tenth of its OS pages free, (1 - live)^(blocks per OS page) =
 * 0.1: a quarter of its blocks for blocks of 512 bytes or more (8 or fewer
 * to an OS page), an eighth for 256 to 511; then page_next_mark.  Smaller
 * blocks rarely leave a whole OS page free (at a tenth live, 3% of them
 * for 128 bytes): no scan.  Each scan reads every block's tag, a cache miss
 * apiece: on frag90 (10% live), a quarter for every class from 256 bytes
 * and marks of three quarters of the last gave 436 MiB after the free for
 * about a third more time in page_scavenge than these (448 MiB). */
static uint32_t page_low_mark(const lm_page_t *page) {
  if (!lm_options.scavenge) return 0;
  size_t bs = page->block_size;
  uint32_t cap = page->capacity;
  return bs >= 512 ? cap / 4 : bs >= 256 ? cap / 8 : 0;
}

/* The span bytes of unit u of page. */
static size_t unit_bytes(const lm_page_t *page, unsigned s, unsigned u) {
  size_t span = (size_t)page->slice_count * LM_SLICE_SIZE;
  size_t lo = (size_t)u << s, hi = lo + ((size_t)1 << s);
  return (hi > span ? span : hi) - lo;
}

/* The span bytes of the units set in mask m. */
static size_t units_bytes(const lm_page_t *page, unsigned s, uint64_t m) {
  size_t bytes = 0;
  for (unsigned u = 0; u < 64; u++)
    if ((m >> u) & 1) bytes += unit_bytes(page, s, u);
  return bytes;
}

/* Blocks [*first, *last] overlap unit u; false when none does. */
static bool unit_blocks(const lm_page_t *page, unsigned s, unsigned u, uint32_t *first, uint32_t *last) {
  size_t bs = page->block_size, lo = (size_t)u << s, hi = lo + ((size_t)1 << s) - 1;
  *first = (uint32_t)(lo / bs);
  if (*first >= page->capacity) return false;
  *last = (uint32_t)(hi / bs);
  if (*last >= page->capacity) *last = page->capacity - 1;
  return true;
}

void page_init(lm_page_t *page, lm_heap_t *heap, unsigned cls) {
  size_t bs = sizeclass_block_size(cls);
  size_t span = (size_t)page->slice_count * LM_SLICE_SIZE;
  page->free = NULL;
  page->used = 0;
  page->low = 0;
  page->reserved = 0;
  page->capacity = (uint32_t)(span / bs);
  page->block_size = bs;
  page->div_magic = div_magic_for(bs);
  __atomic_store_n(&page->limit, 0, __ATOMIC_RELAXED);   /* no block is valid yet */
  page->start = (uint8_t *)segment_of(page) + (size_t)page->slice_index * LM_SLICE_SIZE;
  page->cls = (uint8_t)cls;
  page->next = page->prev = NULL;
  page->lost = 0;
  __atomic_store_n(&page->purged, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&page->owner, (uintptr_t)heap, __ATOMIC_RELEASE);
}

bool page_extend(lm_page_t *page) {
  uint32_t left = page->capacity - page->reserved;
  if (left == 0) return false;
  size_t bs = page->block_size;
  uint8_t *first = page->start + (size_t)page->reserved * bs;
  /* The blocks that start before the next OS page boundary: each extend
   * writes into one OS page only (a block's link and tag are at its start),
   * so a class a program uses little costs it one page, not two.
   * Measured against 8 KiB at a time (tests/bench peak RSS, medians of 9):
   * churn 4.3 -> 4.0 MiB, cache-scratch-t1 3.1 -> 3.0, prodcons-t2 4.7 -> 4.6,
   * larson-t1 8.2 -> 8.1; CPU time the same within the noise. */
  uintptr_t end = ((uintptr_t)first + LM_OS_PAGE) & ~(uintptr_t)(LM_OS_PAGE - 1);
  uint32_t n = (uint32_t)((end - (uintptr_t)first + bs - 1) / bs);
  if (n > left) n = left;
  uint8_t *last = first + (size_t)(n - 1) * bs;
  for (uint8_t *b = first; b < last; b += bs) {
    debug_on_free(page, b);
    ((lm_block_t *)b)->next = (lm_block_t *)(b + bs);
    ((lm_block_t *)b)->tag = block_tag(b) ^ LM_TAG_FRESH;
  }
  debug_on_free(page, last);
  ((lm_block_t *)last)->next = page->free;
  ((lm_block_t *)last)->tag = block_tag(last) ^ LM_TAG_FRESH;
  page->free = (lm_block_t *)first;
  page->reserved += n;
  __atomic_store_n(&page->limit, block_limit(bs, page->reserved), __ATOMIC_RELAXED);
  if (page->reserved == page->capacity) {
    page_set_low(page, page_low_mark(page));
    page->free_time = os_clock_ms();
  }
  return true;
}

/* The mark is set where a page grows full: in page_extend as it threads
 * the last blocks, or here, for a page that lost its mark (it reached it
 * too young, or halved it down to nothing) or that came back whole from
 * the spares (heap_page_new) and so never threads again. */
void page_full(lm_page_t *page) {
  if (page->low) return;
  uint32_t mark = page_low_mark(page);
  if (!mark) return;
  page_set_low(page, mark);
  page->free_time = os_clock_ms();
}

void page_reset(lm_page_t *page, lm_heap_t *heap) {
  LM_INTERNAL_ASSERT(page_used(page) == 0);
  page_forget_purged(page);
  /* The first block stays: the next malloc of the class takes it again. */
  size_t keep = (page->block_size + LM_OS_PAGE - 1) & ~(size_t)(LM_OS_PAGE - 1);
  size_t span = (size_t)page->slice_count * LM_SLICE_SIZE;
  if (keep < span && os_purge(page->start + keep, span - keep) == 0)
    atomic_fetch_add_explicit(&lm_scavenged_bytes, span - keep, memory_order_relaxed);
  page->free = NULL;
  page->reserved = 0;
  page->low = 0;
  __atomic_store_n(&page->limit, 0, __ATOMIC_RELAXED);   /* no block is valid */
  __atomic_store_n(&page->owner, (uintptr_t)heap, __ATOMIC_RELEASE);
}

bool page_ripe(const lm_page_t *page) {
  uint64_t now = os_clock_ms();
  return now >= page->free_time && now - page->free_time >= lm_options.purge_delay_ms / 4;
}

/* Counts a free block at offset off (bs bytes) in every unit it overlaps. */
static void count_free(uint32_t free_in[64], size_t off, size_t bs, unsigned s) {
  for (size_t u = off >> s; u <= (off + bs - 1) >> s; u++) free_in[u]++;
}

/* Counts the lost blocks as free: they are, and a block that straddles a
 * purged unit and a resident one is lost, so without it the resident unit
 * could never count all its blocks free, and a unit next to a purged one
 * was never purged.  Reads no block (their first bytes may be purged). */
static void count_lost(const lm_page_t *page, unsigned s, uint32_t free_in[64]) {
  if (!page->purged) return;
  size_t bs = page->block_size;
  for (uint32_t i = 0; i < page->reserved; i++)
    if (page_block_lost(page, page->start + (size_t)i * bs)) count_free(free_in, (size_t)i * bs, bs, s);
}

/* How many blocks ahead scan_free prefetches: its reads miss the cache at
 * every block (the page was written long ago), and the hardware prefetcher
 * stops at each OS page (tests/bench frag90, perf samples in page_scavenge:
 * 1009 and 1092 -> 855 and 927, two pairs of runs). */
#define SCAN_AHEAD 8

/* The most blocks scan_free handles (more: the free list is walked). */
#define SCAN_MAX 1024

/* Finds page's free blocks by reading every block's tag in address order:
 * after random frees the free list's order is random, and walking it missed
 * the cache at every block (tests/bench frag90: 12% of the run's time).
 * Sets bit i of is_free for each and counts them per unit in free_in.  The
 * answer is exact when their number is the free list's length, as every
 * block on the list carries its free tag; it is not when an allocated block
 * carries one too (another thread is freeing it) or holds what reads as
 * one, and then it returns false.  Blocks in purged units are not read.
 * It reads allocated blocks, which their threads may be writing: such a read
 * gets an old or a new word (an aligned 8-byte load), either of which the
 * count check makes harmless, so ThreadSanitizer is told not to watch it. */
__attribute__((no_sanitize("thread"))) static bool scan_free(const lm_page_t *page, unsigned s, uint32_t free_in[64], uint64_t *is_free) {
  size_t bs = page->block_size;
  uint32_t n = 0;
  for (uint32_t i = 0; i < page->reserved; i++) {
    const lm_block_t *b = (const lm_block_t *)(page->start + (size_t)i * bs);
    __builtin_prefetch((const uint8_t *)b + SCAN_AHEAD * bs);
    if (page_block_lost(page, b)) continue;   /* not read: count_lost counts it */
    if ((b->tag ^ block_tag(b)) > LM_TAG_FRESH) continue;   /* block_is_free, read here */
    is_free[i / 64] |= (uint64_t)1 << (i % 64);
    n++;
    count_free(free_in, (size_t)i * bs, bs, s);
  }
  return n == page->reserved - page_used(page) - page->lost;
}

size_t page_scavenge(lm_page_t *page) {
  if (page->reserved != page->capacity || page_used(page) == 0) return 0;
  unsigned s = page_unit_shift(page);
  size_t bs = page->block_size, span = (size_t)page->slice_count * LM_SLICE_SIZE;
  unsigned units = (unsigned)((span + ((size_t)1 << s) - 1) >> s);
  uint32_t free_in[64] = {0};
  uint64_t is_free[SCAN_MAX / 64] = {0};
  bool scanned = page->capacity <= SCAN_MAX && scan_free(page, s, free_in, is_free);
  if (!scanned) {
    for (unsigned u = 0; u < 64; u++) free_in[u] = 0;
    for (const lm_block_t *b = page->free; b; b = b->next)
      count_free(free_in, (size_t)((const uint8_t *)b - page->start), bs, s);
  }
  count_lost(page, s, free_in);
  uint64_t purge = 0;
  for (unsigned u = 0; u < units; u++) {
    uint32_t first, last;
    if ((page->purged >> u) & 1 || !unit_blocks(page, s, u, &first, &last)) continue;
    if (free_in[u] == last - first + 1) purge |= (uint64_t)1 << u;
  }
  if (!purge) return 0;
  /* Off the list with them, then give the units back, a run at a time. */
  uint64_t all = page->purged | purge;
  __atomic_store_n(&page->purged, all, __ATOMIC_RELAXED);
  uintptr_t owner = __atomic_load_n(&page->owner, __ATOMIC_RELAXED);
  __atomic_store_n(&page->owner, owner | LM_OWNER_SPARSE, __ATOMIC_RELEASE);
  if (scanned) {
    /* The list anew from the scan, in address order, without the lost. */
    lm_block_t *head = NULL;
    for (uint32_t i = page->reserved; i-- > 0;) {
      if (!((is_free[i / 64] >> (i % 64)) & 1)) continue;
      lm_block_t *b = (lm_block_t *)(page->start + (size_t)i * bs);
      if (page_block_lost(page, b)) { page->lost++; continue; }
      b->next = head;
      head = b;
    }
    page->free = head;
  } else {
    lm_block_t **at = &page->free;
    while (*at) {
      if (page_block_lost(page, *at)) { *at = (*at)->next; page->lost++; }
      else at = &(*at)->next;
    }
  }
  /* A unit the OS refuses to purge (mlocked) stays marked, its blocks lost
   * until the unpurge (their memory is intact); it is counted as purged in
   * lm_sparse_bytes too, which the unpurge takes off again. */
  size_t bytes = 0, marked = 0;
  for (unsigned u = 0; u < units;) {
    if (!((purge >> u) & 1)) { u++; continue; }
    unsigned v = u;
    size_t len = 0;
    while (v < units && ((purge >> v) & 1)) len += unit_bytes(page, s, v++);
    if (os_purge(page->start + ((size_t)u << s), len) == 0) bytes += len;
    marked += len;
    u = v;
  }
  atomic_fetch_add_explicit(&lm_sparse_bytes, (int64_t)marked, memory_order_relaxed);
  atomic_fetch_add_explicit(&lm_scavenged_bytes, bytes, memory_order_relaxed);
  return bytes;
}

bool page_unpurge(lm_page_t *page, lm_heap_t *owner) {
  uint64_t m = page->purged;
  if (!m) return false;
  unsigned s = page_unit_shift(page);
  uint32_t next = 0, n = 0;   /* blocks below `next` are done */
  for (unsigned u = 0; u < 64; u++) {
    uint32_t first, last;
    if (!((m >> u) & 1) || !unit_blocks(page, s, u, &first, &last)) continue;
    for (uint32_t i = first > next ? first : next; i <= last; i++) {
      lm_block_t *b = (lm_block_t *)(page->start + (size_t)i * page->block_size);
      debug_on_free(page, b);
      b->next = page->free;
      b->tag = block_tag(b);
      page->free = b;
      n++;
    }
    if (last + 1 > next) next = last + 1;
  }
  LM_INTERNAL_ASSERT(n == page->lost);
  (void)n;
  page->lost = 0;
  __atomic_store_n(&page->purged, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&page->owner, (uintptr_t)owner, __ATOMIC_RELEASE);
  page_set_low(page, page_low_mark(page));
  page->free_time = os_clock_ms();
  atomic_fetch_sub_explicit(&lm_sparse_bytes, (int64_t)units_bytes(page, s, m), memory_order_relaxed);
  return true;
}

void page_forget_purged(lm_page_t *page) {
  uint64_t m = page->purged;
  if (!m) return;
  page->free = NULL;   /* it lacks the lost blocks: not a list to reuse */
  atomic_fetch_sub_explicit(&lm_sparse_bytes, (int64_t)units_bytes(page, page_unit_shift(page), m),
                            memory_order_relaxed);
  page->lost = 0;
  page_set_low(page, 0);
  __atomic_store_n(&page->purged, 0, __ATOMIC_RELAXED);
}

bool page_validate(const lm_page_t *page) {
  LM_CHECK(page->kind == LM_KIND_SMALL);
  LM_CHECK(page->cls < LM_CLASSES && page->block_size == sizeclass_block_size(page->cls));
  LM_CHECK(page->limit == block_limit(page->block_size, page->reserved));
  LM_CHECK(page->reserved <= page->capacity);
  LM_CHECK(page->start == (uint8_t *)segment_of(page) + (size_t)page->slice_index * LM_SLICE_SIZE);
  LM_CHECK(page->start + page_area(page) <=
            (uint8_t *)segment_of(page) +
                (size_t)(page->slice_index + page->slice_count) * LM_SLICE_SIZE);
  uint32_t n = 0;
  for (const lm_block_t *b = page->free; b; b = b->next) {
    LM_CHECK(++n <= page->capacity);
    LM_CHECK(page_lookup(b) == page && page_is_block(page, b));
    LM_CHECK((const uint8_t *)b < page->start + (size_t)page->reserved * page->block_size);
    LM_CHECK(block_is_free(b, block_tag(b)));
  }
  LM_CHECK(page->used != 0 || page->low == 0);   /* at the mark, heap_page_low moved it */
  LM_CHECK(page_used(page) + n + (page->capacity - page->reserved) + page->lost == page->capacity);
  uint32_t lost = 0;
  for (uint32_t i = 0; i < page->capacity; i++)
    lost += page_block_lost(page, page->start + (size_t)i * page->block_size);
  LM_CHECK(lost == page->lost);
  LM_CHECK((page->purged != 0) == ((__atomic_load_n(&page->owner, __ATOMIC_RELAXED) & LM_OWNER_SPARSE) != 0));
  return true;
}
