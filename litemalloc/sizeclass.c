/* Size classes.
 *
 * 60 classes from 16 B to 128 KiB: multiples of 16 up to 128, then eight
 * classes per doubling up to 1 KiB (128 < s <= 256 in steps of 16, 256 < s
 * <= 512 in steps of 32, ...), then four (1 < s <= 2 KiB in steps of 256 B,
 * ...).  Every block size is a multiple of 16, so every block is 16-byte
 * aligned, and a size is rounded up by less than 12.5% from 128 bytes to
 * 1 KiB (below, by less than 16 bytes) and less than 25% above.  Above
 * 1 KiB a thread holds few blocks of each class, and its pages' free blocks,
 * which it touched once and which stay resident, cost more than the
 * rounding: with eight classes per doubling there, tests/bench
 * glibc-thread-t1's pages of the 8 to 32 KiB classes held 7.5 MiB resident
 * for 4.3 MiB of blocks in use.  Four, as jemalloc has, took peak RSS
 * (interleaved medians of 5) from 13.4 to 10.3 MiB on glibc-thread-t1, 21.8
 * to 15.6 on glibc-thread-t2, 15.0 to 13.3 on mstress-t1, 20.4 to 18.3 on
 * mstress-t2 and 68.8 to 45.3 on mstress-t16, for 242.3 to 244.8 on frag;
 * two per doubling above 8 KiB gave glibc-thread-t1 9.2.  Every power of two is a
 * class, which lets aligned allocations use plain classes (see
 * sizeclass_aligned).  A page of a class spans the number of 16 KiB slices
 * that holds at least 8 blocks (2 above 32 KiB) with the least tail waste; a
 * heap's later pages of a class up to 4 KiB hold at least LM_GROWN_BLOCKS
 * (heap.c).
 */
#include "internal.h"

#define DIRECT_ENTRIES (LM_DIRECT_MAX / 16 + 1)

/* (size + 15) / 16 -> class, for size <= LM_DIRECT_MAX (checked against the
 * formula by sizeclass_validate). */
const uint8_t lm_class_direct[DIRECT_ENTRIES] = {
  0, 0, 1, 2, 3, 4, 5, 6, 7,                       /* 0..128 */
  8, 9, 10, 11, 12, 13, 14, 15,                    /* 144..256 */
  16, 16, 17, 17, 18, 18, 19, 19,                  /* 272..512: step 32 */
  20, 20, 21, 21, 22, 22, 23, 23,
  24, 24, 24, 24, 25, 25, 25, 25,                  /* 528..1024: step 64 */
  26, 26, 26, 26, 27, 27, 27, 27,
  28, 28, 28, 28, 29, 29, 29, 29,
  30, 30, 30, 30, 31, 31, 31, 31,
};

/* The slices of a page of class cls holding at least `blocks` blocks with
 * the least tail waste. */
static unsigned class_slices(unsigned cls, size_t blocks) {
  size_t bs = sizeclass_block_size(cls);
  size_t min = (blocks * bs + LM_SLICE_SIZE - 1) / LM_SLICE_SIZE;
  if (min < 1) min = 1;
  size_t best = min;
  size_t best_waste_ppm = SIZE_MAX;
  for (size_t n = min; n <= 2 * min; n++) {
    size_t span = n * LM_SLICE_SIZE;
    size_t waste_ppm = (span % bs) * 1000000 / span;
    if (waste_ppm < best_waste_ppm) { best = n; best_waste_ppm = waste_ppm; }
  }
  return (unsigned)best;
}

/* A page holds at least 8 blocks, or 2 of a class above LM_BIG_BLOCK.  A
 * thread keeps a page of each class it uses, and every block of it that was
 * ever handed out stays resident while the page is kept: with 8 blocks, a page of a
 * class of 64..128 KiB spans 0.5..1 MiB per thread.  Measured (tests/bench
 * mstress, 16 threads, 0.1% of objects 64 KiB..1 MiB): such pages held 45
 * to 78 MiB resident for a peak of 19 MiB live; with 2 blocks the peak RSS
 * fell from 134.5 to 80.2 MiB (1 block: 88.0, 3 blocks: 97.6). */
static size_t class_min_blocks(unsigned cls) {
  return sizeclass_block_size(cls) > LM_BIG_BLOCK ? 2 : 8;
}

/* class_slices, computed once per class and kind of page (a loop of up to
 * 32 divisions, run for every new page before: 4% of the time of a loop
 * over batches of 1600 blocks of 4 KiB, whose pages come and go).  0: not
 * yet computed; threads that race store the same value. */
static uint8_t slices_known[2][LM_CLASSES];

static unsigned slices_of(unsigned cls, bool grown) {
  unsigned n = __atomic_load_n(&slices_known[grown][cls], __ATOMIC_RELAXED);
  if (LM_LIKELY(n)) return n;
  size_t blocks = grown && sizeclass_block_size(cls) <= LM_GROWN_MAX ? LM_GROWN_BLOCKS
                                                                      : class_min_blocks(cls);
  n = class_slices(cls, blocks);
  LM_ASSERT(n > 0 && n < 256);
  __atomic_store_n(&slices_known[grown][cls], (uint8_t)n, __ATOMIC_RELAXED);
  return n;
}

unsigned sizeclass_slices(unsigned cls) { return slices_of(cls, false); }

unsigned sizeclass_slices_grown(unsigned cls) { return slices_of(cls, true); }

unsigned sizeclass_aligned(size_t size, size_t align) {
  if (size < 1) size = 1;
  for (unsigned c = size <= LM_SMALL_MAX ? sizeclass_of(size) : LM_CLASSES; c < LM_CLASSES; c++)
    if (sizeclass_block_size(c) % align == 0) return c;
  return LM_CLASSES;
}

/* Every size must map to the smallest class that holds it, through the
 * direct table up to 1 KiB and sizeclass_of_medium above; checked once at
 * start-up in debug builds and by the white-box test. */
bool sizeclass_validate(void);
bool sizeclass_validate(void) {
  for (size_t s = 0; s <= LM_SMALL_MAX; s++) {
    unsigned c = sizeclass_of(s);
    if (c >= LM_CLASSES || sizeclass_block_size(c) < s) return false;
    if (c > 0 && sizeclass_block_size(c - 1) >= s) return false;
  }
  for (unsigned c = 0; c < LM_DIRECT_CLASSES; c++) {
    unsigned lo, hi;
    sizeclass_direct_range(c, &lo, &hi);
    for (unsigned i = 0; i < LM_DIRECT; i++)
      if ((lm_class_direct[i] == c) != (i >= lo && i <= hi)) return false;
  }
  return sizeclass_block_size(LM_CLASSES - 1) == LM_SMALL_MAX;
}
