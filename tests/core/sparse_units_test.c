/* A sparse page gives back a unit (OS page) next to one it gave back before
 * (litemalloc/page.c: page_scavenge).
 *
 * Blocks of 1280 bytes straddle the 4 KiB units of their page.  When unit 0
 * is given back, the block that straddles units 0 and 1 goes with it (it is
 * "lost": off the free list, its first bytes purged).  Once every other block
 * of unit 1 is free, unit 1 holds no live block, and the next scan must give
 * it back too.  A scan that counted only the blocks on the free list never
 * did: the lost block was missing from unit 1's count, so after a 90% random
 * free the units next to purged ones stayed resident (tests/bench frag90).
 *
 * White-box: reads the page descriptor and calls page_scavenge through
 * internal.h; the frees reach the page through lm_trim, which flushes the
 * heap's hot lists.  The survivors keep their contents, and the blocks of the
 * purged units come back when the class is allocated again. */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "check.h"
#include "litemalloc/internal.h"

enum { SIZE = 1280, MAXB = 256 };
static unsigned char *g_blk[MAXB];   /* the page's blocks, by index */

static bool resident(const void *p) {
  unsigned char v = 0;
  CHECK(mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v) == 0);
  return v & 1;
}

static void fill(uint32_t i) { memset(g_blk[i], (int)(i * 13 + 1), SIZE); }
static bool intact(uint32_t i) {
  for (size_t k = 0; k < SIZE; k += 61)
    if (g_blk[i][k] != (unsigned char)(i * 13 + 1)) return false;
  return g_blk[i][SIZE - 1] == (unsigned char)(i * 13 + 1);
}

int main(void) {
  unsigned c = sizeclass_of(SIZE);
  CHECK(sizeclass_block_size(c) == SIZE);

  /* One page of the class, every block ours. */
  void *probe = lm_malloc(SIZE);
  CHECK(probe != NULL);
  lm_page_t *page = page_lookup(probe);
  uint32_t cap = page->capacity;
  CHECK(cap >= 8 && cap <= MAXB && page_unit_shift(page) == 12);
  g_blk[((uint8_t *)probe - page->start) / SIZE] = probe;
  void *other[2 * MAXB];
  size_t nother = 0;
  for (uint32_t got = 1; got < cap;) {
    unsigned char *p = lm_malloc(SIZE);
    CHECK(p != NULL && nother < 2 * MAXB);
    if (page_lookup(p) != page) { other[nother++] = p; continue; }
    g_blk[(p - page->start) / SIZE] = p;
    got++;
  }
  CHECK(page->reserved == cap);
  for (uint32_t i = 0; i < cap; i++) fill(i);

  /* Blocks 0..3 cover unit 0, block 3 straddles units 0 and 1, blocks 3..6
   * cover unit 1, block 6 straddles units 1 and 2. */
  CHECK((3 * SIZE) / 4096 == 0 && (4 * SIZE - 1) / 4096 == 1 && (7 * SIZE - 1) / 4096 == 2);
  for (uint32_t i = 0; i <= 3; i++) { lm_free(g_blk[i]); g_blk[i] = NULL; }
  lm_trim();
  page_scavenge(page);
  printf("after unit 0: purged mask %#llx, lost %u\n", (unsigned long long)page->purged, page->lost);
  CHECK(page->purged & 1);
  CHECK(!(page->purged & 2));   /* blocks 4..6 are live */
  CHECK(page_block_lost(page, page->start + 3 * SIZE));
  CHECK(page_validate(page));

  for (uint32_t i = 4; i <= 6; i++) { lm_free(g_blk[i]); g_blk[i] = NULL; }
  lm_trim();
  page_scavenge(page);
  printf("after unit 1: purged mask %#llx, lost %u\n", (unsigned long long)page->purged, page->lost);
  CHECK(page->purged & 2);      /* unit 1 holds no live block: given back */
  CHECK(!(page->purged & 4));   /* block 7 lives in unit 2 */
  CHECK(!resident(page->start + 4096));
  CHECK(page_validate(page));
  for (uint32_t i = 7; i < cap; i++) CHECK(intact(i));

  /* The class again: the lost blocks come back, usable. */
  unsigned char *again[8];
  for (int k = 0; k < 8; k++) {
    CHECK((again[k] = lm_malloc(SIZE)) != NULL);
    memset(again[k], 0x5a, SIZE);
  }
  for (uint32_t i = 7; i < cap; i++) CHECK(intact(i));
  for (int k = 0; k < 8; k++) lm_free(again[k]);
  for (uint32_t i = 7; i < cap; i++) lm_free(g_blk[i]);
  for (size_t k = 0; k < nother; k++) lm_free(other[k]);
  lm_trim();
  printf("sparse_units_test: OK\n");
  return 0;
}
