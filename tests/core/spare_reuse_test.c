/* A page that empties goes to its heap's spares (heap.c: page_low_slow).
 * The next page of the same class taken from there keeps its free list,
 * every block threaded, instead of threading them again one OS page at a
 * time, a slow path per 4 KiB block (heap_page_new), and gets its low mark
 * back when it fills up (page_full); a spare taken for another class of
 * the same span size starts afresh, with that class's geometry.
 *
 * White-box: reads page descriptors through internal.h.  On a build that
 * threads a reused spare again, the pages come back with one block
 * threaded; one that kept a stale list for another class would hand out
 * blocks of the wrong size (the usable size and the free checks would
 * say so). */
#include "check.h"
#include "litemalloc/internal.h"

enum { SIZE = 4096, PAGES = 4, MAXB = 1024 };
static void *g_blk[MAXB];
static lm_page_t *g_round1[MAXB];

static bool seen(lm_page_t *const *pages, size_t n, const lm_page_t *p) {
  for (size_t i = 0; i < n; i++)
    if (pages[i] == p) return true;
  return false;
}

int main(void) {
  unsigned c = sizeclass_of(SIZE);
  CHECK(sizeclass_block_size(c) == SIZE);
  lm_trim();

  /* Round 1: PAGES full pages of the class. */
  void *probe = lm_malloc(SIZE);
  CHECK(probe != NULL);
  uint32_t cap = page_lookup(probe)->capacity;
  lm_free(probe);
  size_t n = (size_t)PAGES * cap;
  CHECK(cap >= 2 && n <= MAXB);
  size_t npages = 0;
  for (size_t i = 0; i < n; i++) {
    CHECK((g_blk[i] = lm_malloc(SIZE)) != NULL);
    memset(g_blk[i], 0x11, SIZE);
    lm_page_t *p = page_lookup(g_blk[i]);
    if (!seen(g_round1, npages, p)) g_round1[npages++] = p;
  }
  CHECK(npages >= PAGES);
  for (size_t i = 0; i < npages; i++) CHECK(g_round1[i]->reserved == g_round1[i]->capacity);
  for (size_t i = 0; i < n; i++) lm_free(g_blk[i]);   /* all but the last page go to the spares */

  /* Round 2: the same pages come back, each with all its blocks threaded
   * when it is first seen (the kept last page too). */
  lm_page_t *round2[MAXB];
  size_t n2 = 0, whole = 0;
  for (size_t i = 0; i < n; i++) {
    CHECK((g_blk[i] = lm_malloc(SIZE)) != NULL);
    lm_page_t *p = page_lookup(g_blk[i]);
    CHECK(p->cls == c && p->block_size == SIZE);
    if (!seen(round2, n2, p)) {
      round2[n2++] = p;
      CHECK(seen(g_round1, npages, p));   /* a spare, not a fresh span */
      if (p->reserved == p->capacity) whole++;
    }
    memset(g_blk[i], 0x22, SIZE);
  }
  CHECK(n2 == npages);
  CHECK(whole == npages);
  /* Each page that filled up again has its low mark back (page_full: a
   * spare taken back whole never threads, where a fresh page gets it), so
   * that it is scavenged if it turns sparse; the last may not have been
   * found dry yet. */
  size_t marked = 0;
  for (size_t i = 0; i < n2; i++) marked += round2[i]->low != 0;
  CHECK(marked + 1 >= n2);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) CHECK(g_blk[i] != g_blk[j]);
  for (size_t i = 0; i < n; i++) lm_free(g_blk[i]);

  /* Another class of the same span size takes the spares afresh. */
  unsigned c2 = LM_CLASSES;
  for (unsigned k = 0; k < LM_CLASSES; k++)
    if (k != c && sizeclass_slices(k) == sizeclass_slices(c)) {
      c2 = k;
      break;
    }
  CHECK(c2 < LM_CLASSES);
  size_t size2 = sizeclass_block_size(c2);
  size_t n3 = n < MAXB ? n : MAXB;
  for (size_t i = 0; i < n3; i++) {
    CHECK((g_blk[i] = lm_malloc(size2)) != NULL);
    lm_page_t *p = page_lookup(g_blk[i]);
    CHECK(p->cls == c2 && p->block_size == size2 && lm_usable_size(g_blk[i]) == size2);
    memset(g_blk[i], 0x33, size2);
  }
  for (size_t i = 0; i < n3; i++) lm_free(g_blk[i]);
  CHECK(heap_validate(lm_tls_heap));
  lm_trim();
  puts("spare_reuse_test: ok");
  return 0;
}
