/* White-box tests of the size classes and of page and segment invariants,
 * through litemalloc/internal.h.  The invariants are those written beside
 * lm_page_t and lm_segment_t; they are checked here field by field, so the
 * test does not depend on the validators being compiled in (LM_DEBUG). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "litemalloc/internal.h"
#include "check.h"

static void test_classes(void) {
  CHECK(LM_CLASSES >= 1 && LM_CLASSES <= LM_MAX_CLASSES);
  CHECK(sizeclass_block_size(0) == 16);
  CHECK(sizeclass_block_size(LM_CLASSES - 1) == LM_SMALL_MAX);
  for (unsigned c = 0; c < LM_CLASSES; c++) {
    size_t bs = sizeclass_block_size(c);
    CHECK(bs % LM_MIN_ALIGN == 0);
    if (c > 0) CHECK(bs > sizeclass_block_size(c - 1));
    unsigned slices = sizeclass_slices(c);
    CHECK(slices >= 1 && slices <= LM_SLICES - 1);
    CHECK((size_t)slices * LM_SLICE_SIZE >= bs);
    /* a page holds at least 8 blocks, or 2 to 4 (the least tail waste)
     * above LM_BIG_BLOCK */
    size_t blocks = (size_t)slices * LM_SLICE_SIZE / bs;
    if (bs > LM_BIG_BLOCK) CHECK(blocks >= 2 && blocks <= 4);
    else CHECK(blocks >= 8);
    /* a heap's later pages of a class up to 4 KiB hold LM_GROWN_BLOCKS, in
     * at most 256 KiB; other classes keep their size */
    unsigned grown = sizeclass_slices_grown(c);
    if (bs <= LM_GROWN_MAX) {
      CHECK((size_t)grown * LM_SLICE_SIZE / bs >= LM_GROWN_BLOCKS);
      CHECK(grown >= slices && grown <= 16);   /* 256 KiB */
    } else {
      CHECK(grown == slices);
    }
  }
  /* every power of two from 16 to the largest class is a class */
  for (size_t p = 16; p <= LM_SMALL_MAX; p <<= 1)
    CHECK(sizeclass_block_size(sizeclass_of(p)) == p);

  /* every size maps to the smallest class that fits; rounding is bounded */
  double worst = 0;
  size_t worst_size = 0;
  for (size_t s = 0; s <= LM_SMALL_MAX; s++) {
    unsigned c = sizeclass_of(s);
    CHECK(c < LM_CLASSES);
    size_t bs = sizeclass_block_size(c);
    CHECK(bs >= s);
    if (c > 0) CHECK(sizeclass_block_size(c - 1) < s);
    if (s <= 128) {
      CHECK(bs - s < 16 || s == 0);
    } else {
      if (s <= LM_DIRECT_MAX) CHECK((bs - s) * 8 < s); /* < 12.5% */
      else CHECK((bs - s) * 4 < s);                   /* < 25%: four classes per doubling */
      double w = (double)(bs - s) / (double)s;
      if (w > worst) { worst = w; worst_size = s; }
    }
    /* the medium lookup agrees wherever it is defined */
    if (s > LM_DIRECT_MAX) CHECK(sizeclass_of_medium(s) == c);
  }
  printf("size classes: %d, worst rounding above 128 B: %.2f%% (size %zu)\n",
         LM_CLASSES, worst * 100, worst_size);

  /* tail waste of each class's page */
  double worst_tail = 0;
  unsigned worst_cls = 0;
  for (unsigned c = 0; c < LM_CLASSES; c++) {
    size_t span = (size_t)sizeclass_slices(c) * LM_SLICE_SIZE;
    double t = (double)(span % sizeclass_block_size(c)) / (double)span;
    if (t > worst_tail) { worst_tail = t; worst_cls = c; }
  }
  printf("worst page tail waste: %.2f%% (class %u, block %zu, %u slices)\n",
         worst_tail * 100, worst_cls, sizeclass_block_size(worst_cls),
         sizeclass_slices(worst_cls));
  CHECK(worst_tail < 0.125);

  /* aligned classes: the smallest class that fits and is a multiple of align */
  for (size_t align = 8; align <= LM_SLICE_SIZE; align <<= 1) {
    for (size_t s = 0; s <= LM_SMALL_MAX; s += (s < 4096 ? 1 : 97)) {
      unsigned want = LM_CLASSES;
      for (unsigned c = 0; c < LM_CLASSES; c++) {
        size_t bs = sizeclass_block_size(c);
        if (bs >= (s ? s : 1) && bs % align == 0) { want = c; break; }
      }
      unsigned got = sizeclass_aligned(s, align);
      if (got != want)
        fprintf(stderr, "sizeclass_aligned(%zu, %zu) = %u, expected %u\n", s, align, got, want);
      CHECK(got == want);
    }
  }
}

/* Field-by-field check of lm_page_t's invariants for a small page owned by
 * the calling thread, then the library's own validator. */
static void check_small_page(const lm_page_t *page, const void *p, size_t size) {
  CHECK(page != NULL);
  CHECK(page->kind == LM_KIND_SMALL);
  CHECK(page->cls < LM_CLASSES);
  CHECK(page->block_size == sizeclass_block_size(page->cls));
  CHECK(page->block_size >= size);
  CHECK(page->div_magic == div_magic_for(page->block_size));
  const uint8_t *end = page->start + (size_t)page->capacity * page->block_size;
  CHECK((const uint8_t *)p >= page->start && (const uint8_t *)p < end);
  CHECK(page_is_block(page, p));
  if (page->block_size > 16) CHECK(!page_is_block(page, (const uint8_t *)p + 16));
  const uint8_t *span_end = page->start + (size_t)page->slice_count * LM_SLICE_SIZE;
  if (end < span_end) CHECK(!page_is_block(page, end)); /* the tail is no block */
  CHECK(!page_is_block(page, (const uint8_t *)p + 1));
  /* the span: descriptor in its segment's header, every slice maps to it */
  const lm_segment_t *seg = segment_of(p);
  CHECK(page == &seg->pages[page->slice_index]);
  CHECK(page->slice_index >= 1 && page->slice_count >= 1);
  CHECK(page->slice_index + page->slice_count <= LM_SLICES);
  CHECK(page->start == (const uint8_t *)seg + (size_t)page->slice_index * LM_SLICE_SIZE);
  CHECK(end <= span_end);
  for (uint32_t s = 0; s < page->slice_count; s++)
    CHECK(page_lookup(page->start + (size_t)s * LM_SLICE_SIZE) == page);
  CHECK(page->reserved <= page->capacity);
  CHECK(page_used(page) >= 1 && page_used(page) <= page->reserved);
  uintptr_t owner = atomic_load(&page->owner);
  CHECK((owner & ~LM_OWNER_FLAGS) == (uintptr_t)lm_tls_heap);
  CHECK(!page_block_lost(page, p));
  /* used + length(free) + (capacity - reserved) + lost == capacity */
  uint32_t n = 0;
  for (const lm_block_t *b = page->free; b; b = b->next) {
    CHECK(++n <= page->capacity);
    CHECK((const uint8_t *)b >= page->start &&
          (const uint8_t *)b < page->start + (size_t)page->reserved * page->block_size);
    CHECK(page_is_block(page, b));
    CHECK(block_is_free(b, block_tag(b)));   /* freed, or never handed out */
    CHECK((const void *)b != p);
  }
  CHECK(page_used(page) + n + (page->capacity - page->reserved) + page->lost == page->capacity);
  CHECK(page_validate(page));
}

static void test_pages(void) {
  enum { N = 3000 };
  static void *p[N];
  static size_t sz[N];
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < N; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    sz[i] = i % 3 == 0 ? x % 129 : i % 3 == 1 ? x % 4096 : x % (LM_SMALL_MAX + 1);
    p[i] = lm_malloc(sz[i]);
    CHECK(p[i] != NULL);
    memset(p[i], 0x77, sz[i]);
    /* an allocated block is not tagged free */
    if (sz[i] >= 16) CHECK(((lm_block_t *)p[i])->tag != block_tag(p[i]) || sz[i] < 16);
  }
  for (int i = 0; i < N; i++) {
    lm_page_t *page = page_lookup(p[i]);
    check_small_page(page, p[i], sz[i]);
    CHECK(page->cls == sizeclass_of(sz[i]));
  }
  /* free every other block, check again (free lists now non-trivial) */
  for (int i = 0; i < N; i += 2) lm_free(p[i]);
  for (int i = 1; i < N; i += 2) check_small_page(page_lookup(p[i]), p[i], sz[i]);
  for (int i = 1; i < N; i += 2) lm_free(p[i]);

  /* large and huge objects */
  size_t big[] = {LM_SMALL_MAX + 1, 1 << 20, LM_LARGE_MAX, LM_LARGE_MAX + 1, (size_t)100 << 20};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    void *b = lm_malloc(big[i]);
    CHECK(b != NULL);
    lm_page_t *page = page_lookup(b);
    CHECK(page != NULL);
    CHECK(page->kind == LM_KIND_LARGE || page->kind == LM_KIND_HUGE);
    if (big[i] <= LM_LARGE_MAX) CHECK(page->kind == LM_KIND_LARGE);
    else CHECK(page->kind == LM_KIND_HUGE);
    CHECK(page->block_size >= big[i]);
    CHECK(atomic_load(&page->owner) == LM_OWNER_LARGE);
    CHECK(lm_usable_size(b) >= big[i]);
    lm_free(b);
  }

  /* foreign addresses are not found */
  int local;
  void *g = malloc(64);
  CHECK(page_lookup(&local) == NULL);
  CHECK(page_lookup(g) == NULL);
  CHECK(page_lookup(&lm_page_empty) == NULL);
  free(g);

  CHECK(heap_validate(lm_tls_heap));
  CHECK(arena_validate());

  /* the thread's heap keeps its class queues well formed */
  const lm_heap_t *h = lm_tls_heap;
  CHECK(h != &lm_heap_empty);
  for (unsigned c = 0; c < LM_CLASSES; c++) {
    const lm_page_t *q = h->pages[c];
    if (q == &lm_page_empty) continue;
    int n = 0;
    for (; q; q = q->next) {
      CHECK(++n < 100000);
      CHECK(q->cls == c && q->kind == LM_KIND_SMALL);
      CHECK((atomic_load(&q->owner) & ~LM_OWNER_SPARSE) == (uintptr_t)h);   /* SPARSE: see page.c */
    }
  }
}

/* A heap's first pages of a class hold the plain size; once it holds
 * HEAP_SMALL_PAGES (8) pages of a class up to 1 KiB, or 16 of a class up to
 * LM_GROWN_MAX, new ones hold LM_GROWN_BLOCKS blocks.  npages follows the
 * pages as they come and go. */
static void test_grown_pages(size_t size, size_t small_pages) {
  enum { N = 400 };
  static void *p[N];
  unsigned c = sizeclass_of(size);
  lm_free(lm_malloc(size));   /* the thread has a heap */
  lm_trim();
  lm_heap_t *h = lm_tls_heap;
  CHECK(h->npages[c] == 0);
  static const lm_page_t *seen[N];
  size_t pages = 0, small = 0, grown = 0;
  for (int i = 0; i < N; i++) {
    p[i] = lm_malloc(size);
    CHECK(p[i] != NULL);
    const lm_page_t *page = page_lookup(p[i]);
    check_small_page(page, p[i], size);
    size_t k = 0;
    while (k < pages && seen[k] != page) k++;
    if (k < pages) continue;   /* count each page once */
    seen[pages++] = page;
    if (page->slice_count == sizeclass_slices(c)) small++;
    else if (page->slice_count == sizeclass_slices_grown(c)) grown++;
    else CHECK(!"a page of neither size");
  }
  CHECK(h->npages[c] == small + grown);
  CHECK(small == small_pages && grown >= 1);
  CHECK(page_lookup(p[N - 1])->capacity >= LM_GROWN_BLOCKS);
  for (int i = 0; i < N; i++) lm_free(p[i]);
  /* the pages of the blocks on the hot list stay (none, once a page went
   * back); of the others, the last page of a class stays, unless it is a
   * grown page of a class above 1 KiB (heap_page_low) */
  size_t hot_pages = 0, hot_blocks = 0;
  for (const lm_block_t *b = h->hot[c]; b; b = b->next, hot_blocks++) {
    const lm_page_t *page = page_lookup(b);
    bool again = false;
    for (const lm_block_t *o = h->hot[c]; o != b; o = o->next) again |= page_lookup(o) == page;
    if (!again) hot_pages++;
  }
  CHECK((int64_t)hot_blocks + h->hot_room[c] <=
        (int64_t)(sizeclass_block_size(c) <= 1024 ? 16384 / sizeclass_block_size(c) : 16u));
  CHECK(h->npages[c] <= hot_pages + (size <= LM_DIRECT_MAX ? 1u : 0u));
  lm_trim();
  CHECK(h->npages[c] == 0);
}

/* The empty page of a class above 8 KiB that a heap keeps gives back all
 * but its first block once it has stayed empty a while (heap_reset_idle):
 * the heap looks every LM_IDLE_EVENTS times such a page empties, stamps it
 * the first time and resets it a delay later.  The two classes' hot lists
 * are closed (no room, as a full one) before their frees, so that the frees
 * reach the pages (a malloc from a page opens them again). */
static void test_idle_reset(void) {
  const size_t size = 16384, other = 24576;
  CHECK(size > LM_IDLE_BLOCK && other > LM_IDLE_BLOCK);
  uint64_t idle_ms = lm_options.purge_delay_ms / LM_IDLE_DIVISOR;
  if (idle_ms > 1000) return;   /* not with a purge delay of minutes */
  lm_trim();
  unsigned c = sizeclass_of(size), co = sizeclass_of(other);
  lm_heap_t *h = lm_tls_heap;
  CHECK(h->npages[c] == 0 && h->hot[c] == NULL && h->hot[co] == NULL);
  void *o = lm_malloc(other);   /* its page, kept when empty */
  CHECK(o != NULL);
  h->hot_room[co] = 0;
  lm_free(o);
  void *first = lm_malloc(size);
  CHECK(first != NULL);
  lm_page_t *page = page_lookup(first);
  enum { MAX = 64 };
  void *b[MAX] = {first};
  uint32_t n = page->capacity;
  CHECK(n >= 2 && n <= MAX);
  for (uint32_t i = 1; i < n; i++) {
    b[i] = lm_malloc(size);
    CHECK(page_lookup(b[i]) == page);
  }
  for (uint32_t i = 0; i < n; i++) memset(b[i], 7, size);
  h->hot_room[c] = 0;
  for (uint32_t i = n; i-- > 0;) lm_free(b[i]);
  CHECK(h->pages[c] == page && page_used(page) == 0 && page->reserved == n);   /* kept */
  struct timespec ts = {0, (long)(idle_ms + 5) * 1000000L};
  for (int round = 0; round < 2; round++) {   /* stamped, then reset */
    nanosleep(&ts, NULL);
    for (int i = 0; i < LM_IDLE_EVENTS; i++) {   /* another such page empties */
      void *q = lm_malloc(other);
      h->hot_room[co] = 0;
      lm_free(q);
    }
  }
  CHECK(h->pages[c] == page && page->reserved == 0 && page->free == NULL);
  size_t span = (size_t)page->slice_count * LM_SLICE_SIZE;
  static unsigned char vec[1024];
  CHECK(span / LM_OS_PAGE <= sizeof vec && mincore(page->start, span, vec) == 0);
  for (size_t i = 0; i < span / LM_OS_PAGE; i++) CHECK((vec[i] & 1) == (i < size / LM_OS_PAGE));
  CHECK(lm_malloc(size) == first);   /* the first block again, still resident */
  CHECK(page_validate(page));
  lm_free(first);
  lm_trim();   /* opens the lists again */
  CHECK(h->hot_room[c] == 16 && h->hot_room[co] == 16);
  CHECK(heap_validate(h));
  CHECK(arena_validate());
}

int main(void) {
  test_classes();
  test_pages();
  test_grown_pages(1000, 8);
  test_grown_pages(4000, 16);
  test_idle_reset();
  puts("sizeclass_test: OK");
  return 0;
}
