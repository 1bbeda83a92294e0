/* A small page: a span of slices cut into blocks of one size class.
 *
 * A fresh page threads its blocks onto the free list lazily, 8 KiB worth at a
 * time, so a page that serves a few objects touches a few OS pages, not the
 * whole span (a small program stays as lean as with glibc).  The free list is
 * LIFO: a block freed by its owner is the next one handed out, while it is
 * still in cache.  See lm_page_t in internal.h for the invariants.
 */
#include "internal.h"

#define EXTEND_BYTES 8192

void page_init(lm_page_t *page, lm_heap_t *heap, unsigned cls) {
  size_t bs = sizeclass_block_size(cls);
  size_t span = (size_t)page->slice_count * LM_SLICE_SIZE;
  page->free = NULL;
  page->used = 0;
  page->reserved = 0;
  page->capacity = (uint32_t)(span / bs);
  page->block_size = bs;
  page->div_magic = div_magic_for(bs);
  __atomic_store_n(&page->limit, 0, __ATOMIC_RELAXED);   /* no block is valid yet */
  page->start = (uint8_t *)segment_of(page) + (size_t)page->slice_index * LM_SLICE_SIZE;
  page->cls = (uint8_t)cls;
  page->next = page->prev = NULL;
  __atomic_store_n(&page->owner, (uintptr_t)heap, __ATOMIC_RELEASE);
}

bool page_extend(lm_page_t *page) {
  uint32_t left = page->capacity - page->reserved;
  if (left == 0) return false;
  size_t bs = page->block_size;
  uint32_t n = (uint32_t)(EXTEND_BYTES / bs);
  if (n < 1) n = 1;
  if (n > left) n = left;
  uint8_t *first = page->start + (size_t)page->reserved * bs;
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
  return true;
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
  LM_CHECK(page->used + n + (page->capacity - page->reserved) == page->capacity);
  return true;
}
