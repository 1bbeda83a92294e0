/* A heap's spare pages follow the sizes in use (heap.c: spare_room).  A
 * program fills the spares with pages of one class, then moves on to a
 * class of another span size for good: its pages, which empty and fill
 * again in every round, must come to take places in the spares, instead of
 * going through the arena every time for as long as the thread lives.
 *
 * White-box: reads the heap's spares through internal.h.  On a build whose
 * spares keep their first pages for good, no page of the second class is
 * ever a spare, and the check after the rounds fails. */
#include "check.h"
#include "litemalloc/internal.h"

enum { MAXB = 1 << 14, ROUNDS = 40, NB = 1600 };
static void *g_blk[MAXB];

static size_t spares_of(const lm_heap_t *h, unsigned c) {
  size_t n = 0;
  for (const lm_page_t *p = h->spare; p; p = p->next) n += p->cls == c;
  return n;
}

/* Allocates n blocks of size, writes them, frees them all. */
static void round_of(size_t size, size_t n) {
  for (size_t i = 0; i < n; i++) {
    CHECK((g_blk[i] = lm_malloc(size)) != NULL);
    memset(g_blk[i], 0x5a, size);
  }
  for (size_t i = 0; i < n; i++) lm_free(g_blk[i]);
}

int main(void) {
  size_t size_b = 4096;
  unsigned b = sizeclass_of(size_b);
  CHECK(sizeclass_block_size(b) == size_b);
  /* The first class from 64 bytes whose pages fit no page of class b. */
  unsigned a = LM_CLASSES;
  for (unsigned k = sizeclass_of(64); k < b; k++)
    if (sizeclass_slices(k) != sizeclass_slices(b) && sizeclass_slices(k) != sizeclass_slices_grown(b) &&
        sizeclass_slices_grown(k) != sizeclass_slices(b) &&
        sizeclass_slices_grown(k) != sizeclass_slices_grown(b)) {
      a = k;
      break;
    }
  CHECK(a < LM_CLASSES);
  size_t size_a = sizeclass_block_size(a);
  lm_trim();

  /* Class a: many pages at once, all freed: the spares fill with them. */
  void *probe = lm_malloc(size_a);
  CHECK(probe != NULL);
  size_t cap_a = page_lookup(probe)->capacity;
  lm_free(probe);
  size_t na = cap_a * 40 < MAXB ? cap_a * 40 : MAXB;
  round_of(size_a, na);
  lm_heap_t *h = lm_tls_heap;
  CHECK(h->spare_count > 0 && spares_of(h, a) == h->spare_count);
  CHECK(heap_validate(h));

  /* Class b, in rounds of NB blocks (many pages: its hot list holds
   * some blocks, so a round of a few pages would empty none). */
  for (int r = 0; r < ROUNDS; r++) round_of(size_b, NB);
  CHECK(lm_tls_heap == h);
  CHECK(spares_of(h, b) > 0);
  CHECK(heap_validate(h));
  lm_trim();
  puts("spare_age_test: ok");
  return 0;
}
