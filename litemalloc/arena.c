/* The arena: address space, segments and free spans, behind one global lock.
 *
 * Address space comes from the OS in one primary reservation of 64 GiB
 * (smaller if the OS refuses), aligned to the 32 MiB segment size, with a flat
 * slice map beside it: lm_free finds any descriptor in it with a subtraction,
 * a compare and one load.  Should it run out, further reservations of 1 GiB
 * and up follow, whose segments keep their slice map in their header (found
 * through the segment map, a byte per 32 MiB of address space).  So 4 GiB of
 * live objects need a handful of mappings, and mappings are never split.  A
 * new segment is cut from the current reservation; its 2030 usable slices
 * start as one free, clean span.  A span request takes a dirty free span
 * that fits, else a clean one (two sets of bins by slice count, each with a
 * bitmap of non-empty bins, each bin kept roughly in address order), and
 * gives the rest back; a freed span merges with free neighbours.  Preferring
 * dirty spans reuses resident memory instead of faulting in fresh pages.  A
 * page of small blocks takes the smallest span that fits; a large object the
 * lowest-addressed one (first fit), which packs objects of many sizes toward
 * the start of the segments instead of spreading them over every gap that
 * fits them best.
 *
 * Purging.  A freed span is "dirty": its pages stay resident so that the next
 * allocation does not pay page faults (about 2 us a page here).  Dirty spans
 * are kept in a FIFO (by when they were filed, so a split remainder counts as
 * new) and given back with MADV_DONTNEED when (a) they have been free longer
 * than purge_delay_ms, checked by the background purger (purger.c) or, where
 * it cannot run, whenever the lock is taken; or (b) the dirty total exceeds
 * the budget of dirty_budget(): the oldest spans go, the last of them only
 * in part, from its end, as many of its dirty slices as the total is over
 * (a span merged from many freed objects can be most of a segment; purged
 * whole, a small excess gave back megabytes that the next requests faulted
 * in again: tests/bench large-churn with six seeds faulted 59.6K pages in
 * all, 48.6K in part, 54.0K with the old per-span count, whose excess
 * purges fell on spans it overcounted; its time 0.020 -> 0.017 s and peak
 * RSS 28.3 -> 26.8 MiB, medians of 11); (b) never purges the span just
 * freed, so allocating and freeing one object in a loop does not thrash;
 * or (c) a request fits none of them: those of a quarter of its size or
 * less, as much as it asks for, if they hold that much in all
 * (cache_yield).  Without
 * the purger the budget also follows the memory in use, so freeing everything
 * leaves at most about dirty_min resident even if no call follows; except
 * for ten purge delays after that cap was seen to cost faults (cap_check),
 * when a program that stops calling keeps up to the budget on its recent
 * peak, as it would with the purger thread until its next step.
 * Which slices are dirty is known per slice, a bit each in the segment
 * header (set when a span is freed, cleared when purged): a free span merged
 * from dirty and clean parts counts only its dirty ones, and so does each
 * part carved from it (a count per span, carried whole into what was left
 * of a span, counted memory never touched: at exit, tests/bench mstress-t2
 * counted 25.3 MB cached with 11.6 MB of it resident, mstress-t16 41.7 with
 * 18.9, churn 4.4 MB with 64 KiB; now 11.7, 19.2 and 48 KiB, all resident).
 * So `cached_bytes` and `committed_bytes` in lm_stats, and the budget, count
 * what may be resident, and a request knows whether the slices it takes
 * need zeroing (calloc).  Still an upper bound: the untouched pages of a
 * freed large object, and what a small page gave back while in use
 * (page.c), count as dirty once freed (glibc-thread-t16, three runs: 112
 * to 146 MB counted at exit, 50 to 60 MB resident).
 * Where the OS refuses a purge (madvise fails on mlocked pages), the span
 * stays dirty and is filed anew, to be tried again PURGE_RETRY_MS later.
 * Freed huge mappings are kept the same way (a few, within the same budget,
 * for the same delay) and reused for the next huge object, trimmed or grown
 * with mremap (calloc writes zeroes over its pages in RAM and purges the
 * others: see large.c).  lm_trim purges everything at once.
 *
 * Huge mappings are "committed" (os_map): the kernel's overcommit policy
 * judges each as it judges glibc's, so an impossible size fails with ENOMEM.
 * The reservations for segments are MAP_NORESERVE address space.
 *
 * The lock guards every field of `arena` and every free span; it is taken
 * only on slow paths (a page or a large object), never by malloc or free of a
 * small object.  Statistics fields are stored with relaxed atomics so that
 * lm_stats can read them without the lock.
 */
#include "internal.h"

#define PRIMARY_SIZE ((size_t)64 << 30)
#define REGION_MIN ((size_t)1 << 30)
#define REGION_MAX ((size_t)64 << 30)
#define BIN_WORDS (LM_SLICES / 64)
/* Dirty bytes allowed per in-use byte.  Random large objects fragment the
 * free spans.  Measured (tests/bench, with the purger): on large-churn (4 live
 * objects of 64 KiB to 5 MiB) 1x ran 5x slower than 4x, 2x 1.7x slower; on
 * large (2 live, sizes climbing 64 KiB..64 MiB) 4x cost 40% more peak RSS
 * than 2x for a 20% gain in time.  2x was chosen while pages of classes
 * above 32 KiB held 8 blocks, mostly untouched but counted in use.  With 2
 * blocks (sizeclass.c) large-churn faulted 21.0K pages at 2x against 12.8K
 * before, and 15.5K at 3x (8.4K to 15.5K with 1 to 8 blocks: the count
 * follows where the small pages fall), at the same peak RSS; `large` peaked
 * at 126.5 MiB against 124.2.  So 3x. */
#define DIRTY_PER_IN_USE 3
/* Without the purger thread, at most this many dirty bytes per in-use byte
 * (see dirty_budget).  Measured single-threaded (tests/bench): large-churn
 * faulted 20K pages at 4 and 9K at 8 (as with the thread), large 256K and
 * 198K (175K with the thread); frag kept 5 MB and 19 MB of a 126 MB peak
 * after freeing everything. */
#define DIRTY_MAX_PER_IN_USE 8
/* Without the thread, the cap above is lifted for this long once it is seen
 * to cost faults: fresh memory taken within the purge delay of a purge the
 * cap forced.  Measured (tests/bench `large`, 2 live objects of 64 KiB to
 * 64 MiB): the cap alone faulted in every byte written (274K faults for
 * 976 MiB). */
#define CAP_LIFT_DELAYS 10
#define HUGE_CACHE_MAX 4
/* A span whose purge the OS refused (mlocked pages) is tried again this much
 * later than the delay, not at every step. */
#define PURGE_RETRY_MS 10000

uint8_t lm_segmap[LM_SEGMAP_SIZE];
uint8_t *lm_region_base;
size_t lm_region_carved;
lm_page_t **lm_slicemap;
lm_page_t lm_page_invalid = {.owner = LM_OWNER_FREE, .kind = LM_KIND_FREE};
static size_t region_primary_size;

static struct {
  lm_lock_t lock;
  uint8_t *region_next;          /* next segment of the current reservation */
  uint8_t *region_end;
  size_t region_size;            /* size of the next reservation (0: REGION_MIN) */
  uint64_t bin_bits[2][BIN_WORDS];  /* bit n of set k: bins[n][k] is not empty */
  lm_page_t *dirty_head;         /* dirty free spans, oldest first */
  lm_page_t *dirty_tail;
  lm_segment_t *huge_cache[HUGE_CACHE_MAX];  /* freed huge mappings */
  lm_page_t *purging;            /* the span the purger purges outside the lock */
  /* statistics (relaxed atomic stores; read without the lock) */
  size_t in_use_bytes;           /* spans handed out */
  size_t in_use_hw;              /* most in_use() since hw_time */
  uint64_t hw_time;              /* when in_use_hw was last reset (ms) */
  size_t freed_hw;               /* largest huge mapping freed since hw_time */
  bool capped;                   /* the last budget was the thread-less cap */
  uint64_t cap_purge_time;       /* when the cap last purged or unmapped (ms) */
  uint64_t cap_lifted_until;     /* the cap does not apply before then (ms) */
  size_t dirty_bytes;            /* free spans' resident part, at most */
  size_t reserved_bytes;
  size_t segment_bytes;          /* header slices of segments */
  size_t huge_bytes;             /* huge mappings, cached ones included */
  size_t huge_cached_bytes;      /* freed huge mappings kept for reuse */
  size_t purged_bytes;
  size_t mmap_calls;
  /* Free spans by [slice count][dirty?], last: 32 KiB, of which a small
   * program touches the bins of small spans, on the fields' page, and those
   * of the span left in its first segment (one page; by [dirty?][count]
   * the two sets and the fields took three). */
  lm_page_t *bins[LM_SLICES][2];
} arena;   /* all zero, so in .bss: only the pages used become resident (an
               initialised one sat in .data, whose 50 KiB a small program
               faulted in whole, the kernel mapping file pages around each fault) */

lm_page_t **segment_slices(lm_segment_t *seg) {
  uintptr_t d = (uintptr_t)seg - (uintptr_t)lm_region_base;
  if (lm_region_base && d < region_primary_size) return &lm_slicemap[d >> LM_SLICE_SHIFT];
  return seg->slice_page;
}

/* Segment map values: 0 not ours, SEGMAP_HEAD a segment starts here,
 * SEGMAP_MORE the rest of a huge mapping that starts further down,
 * SEGMAP_GONE a huge mapping started here and was unmapped (not ours; kept
 * only so that a second free of its object is named a double free). */
#define SEGMAP_HEAD 1
#define SEGMAP_MORE 2
#define SEGMAP_GONE 3

static void segmap_set(const void *start, size_t size, uint8_t head) {
  uintptr_t first = (uintptr_t)start >> LM_SEGMENT_SHIFT;
  uintptr_t last = ((uintptr_t)start + size - 1) >> LM_SEGMENT_SHIFT;
  for (uintptr_t i = last; i > first; i--)
    __atomic_store_n(&lm_segmap[i], head == SEGMAP_HEAD ? SEGMAP_MORE : 0, __ATOMIC_RELEASE);
  __atomic_store_n(&lm_segmap[first], head, __ATOMIC_RELEASE);
}

/* A huge object starts page-aligned, past the header, in its mapping's first
 * segment (or at the second one's start, not recognised here). */
bool arena_was_huge(const void *p) {
  uintptr_t idx = (uintptr_t)p >> LM_SEGMENT_SHIFT, off = (uintptr_t)p & LM_SEGMENT_MASK;
  return idx < LM_SEGMAP_SIZE && off % LM_OS_PAGE == 0 && off >= LM_HEADER_SLICES * LM_SLICE_SIZE &&
         __atomic_load_n(&lm_segmap[idx], __ATOMIC_RELAXED) == SEGMAP_GONE;
}

lm_page_t *arena_lookup_outside(const void *p) {
  uintptr_t idx = (uintptr_t)p >> LM_SEGMENT_SHIFT;
  if (idx >= LM_SEGMAP_SIZE) return NULL;
  uint8_t v = __atomic_load_n(&lm_segmap[idx], __ATOMIC_ACQUIRE);
  if (v == 0 || v == SEGMAP_GONE) return NULL;
  if (v == SEGMAP_MORE)   /* inside a huge object: find its segment */
    while (idx > 0 && __atomic_load_n(&lm_segmap[idx], __ATOMIC_ACQUIRE) == SEGMAP_MORE) idx--;
  lm_segment_t *seg = (lm_segment_t *)(idx << LM_SEGMENT_SHIFT);
  if (seg->kind == LM_KIND_HUGE) {
    /* A huge mapping rarely ends on a segment boundary, and the OS maps
     * other things right after it: those are not ours. */
    if ((uintptr_t)p - (uintptr_t)seg >= seg->mapping_size) return NULL;
    if (v == SEGMAP_MORE) return seg->slice_page[LM_SLICES - 1];
  }
  return segment_slices(seg)[((uintptr_t)p >> LM_SLICE_SHIFT) & (LM_SLICES - 1)];
}

#define STAT_SET(f, v) __atomic_store_n(&arena.f, (v), __ATOMIC_RELAXED)
#define STAT_ADD(f, v) STAT_SET(f, arena.f + (v))
#define STAT_GET(f) __atomic_load_n(&arena.f, __ATOMIC_RELAXED)

/* ---- locks: futex mutexes (0 free, 1 held, 2 held with waiters) --------- */

void lock_acquire(lm_lock_t *l) {
  int c = 0;
  if (atomic_compare_exchange_strong_explicit(&l->state, &c, 1, memory_order_acquire,
                                              memory_order_relaxed))
    return;
  for (int spin = 0; spin < 64; spin++) {
    __builtin_ia32_pause();
    c = 0;
    if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
        atomic_compare_exchange_weak_explicit(&l->state, &c, 1, memory_order_acquire,
                                              memory_order_relaxed))
      return;
  }
  while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
    os_futex_wait(&l->state, 2);
}

void lock_release(lm_lock_t *l) {
  if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
    os_futex_wake(&l->state, 1);
}

void arena_lock(void) { lock_acquire(&arena.lock); }
void arena_unlock(void) { lock_release(&arena.lock); }

static lm_page_t *span_release(lm_segment_t *seg, size_t first, size_t count, bool dirty,
                               uint64_t time);

/* The child has no purger: a span it was purging outside the lock when the
 * parent forked goes back to the bins (as dirty: the purge may be half done). */
void arena_after_fork_child(void) {
  atomic_store(&arena.lock.state, 0);
  lm_page_t *d = arena.purging;
  if (d) {
    arena.purging = NULL;
    span_release(segment_of(d), d->slice_index, d->slice_count, true, d->free_time);
  }
}

/* ---- free spans ---------------------------------------------------------- */

static uint8_t *span_addr(const lm_page_t *d) {
  return (uint8_t *)segment_of(d) + (size_t)d->slice_index * LM_SLICE_SIZE;
}

/* Files d in its bin in address order, looking at most BIN_SORT_STEPS spans
 * ahead (past them it goes in front): bins stay short where first fit looks
 * at them, and a long bin costs no more than a few steps. */
#define BIN_SORT_STEPS 8
static void bin_insert(lm_page_t *d) {
  size_t n = d->slice_count, k = d->dirty_slices != 0;
  lm_page_t *prev = NULL, *next = arena.bins[n][k];
  for (size_t i = 0; next && next < d && i < BIN_SORT_STEPS; i++) {
    prev = next;
    next = next->next;
  }
  if (next && next < d) { prev = NULL; next = arena.bins[n][k]; }
  d->prev = prev;
  d->next = next;
  if (next) next->prev = d;
  if (prev) prev->next = d; else arena.bins[n][k] = d;
  arena.bin_bits[k][n / 64] |= 1ull << (n % 64);
}

static void bin_remove(lm_page_t *d) {
  size_t n = d->slice_count, k = d->dirty_slices != 0;
  if (d->prev) d->prev->next = d->next; else arena.bins[n][k] = d->next;
  if (d->next) d->next->prev = d->prev;
  if (!arena.bins[n][k]) arena.bin_bits[k][n / 64] &= ~(1ull << (n % 64));
}

static void dirty_append(lm_page_t *d) {
  d->dnext = NULL;
  d->dprev = arena.dirty_tail;
  if (arena.dirty_tail) arena.dirty_tail->dnext = d; else arena.dirty_head = d;
  arena.dirty_tail = d;
}

static void dirty_remove(lm_page_t *d) {
  if (d->dprev) d->dprev->dnext = d->dnext; else arena.dirty_head = d->dnext;
  if (d->dnext) d->dnext->dprev = d->dprev; else arena.dirty_tail = d->dprev;
  d->dnext = d->dprev = NULL;
}

/* Takes a free span out of the bins and the dirty list. */
static void span_unlink(lm_page_t *d) {
  bin_remove(d);
  if (d->dirty_slices) {
    dirty_remove(d);
    STAT_ADD(dirty_bytes, -(size_t)d->dirty_slices * LM_SLICE_SIZE);
  }
}

/* The bits of slices [*i, end) in word *i / 64 of a slice bitmap; moves *i
 * to the first slice of the next word (or end). */
static uint64_t bits_in_word(size_t *i, size_t end) {
  size_t w = *i / 64, lo = *i % 64, hi = end - w * 64 < 64 ? end - w * 64 : 64;
  *i = w * 64 + hi;
  return (hi - lo == 64 ? ~0ull : ((1ull << (hi - lo)) - 1)) << lo;
}

/* Sets (v) or clears the dirty bits of slices [first, first+n) of seg. */
static void dirty_mark(lm_segment_t *seg, size_t first, size_t n, bool v) {
  for (size_t i = first, end = first + n; i < end;) {
    size_t w = i / 64;
    uint64_t m = bits_in_word(&i, end);
    if (v) seg->dirty_bits[w] |= m; else seg->dirty_bits[w] &= ~m;
  }
}

/* The bits set in x (without -mpopcnt the builtin is a libgcc call, and
 * the core links against nothing). */
static size_t bit_count(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return (size_t)((x * 0x0101010101010101ull) >> 56);
}

/* How many of slices [first, first+n) of seg have the dirty bit set. */
static size_t dirty_count(const lm_segment_t *seg, size_t first, size_t n) {
  size_t c = 0;
  for (size_t i = first, end = first + n; i < end;) {
    size_t w = i / 64;
    c += bit_count(seg->dirty_bits[w] & bits_in_word(&i, end));
  }
  return c;
}

/* Points slice entries [first, first+count) of seg at d. */
static void map_fill(lm_segment_t *seg, size_t first, size_t count, lm_page_t *d) {
  lm_page_t **map = segment_slices(seg);
  for (size_t i = first; i < first + count; i++) map[i] = d;
}

/* Makes slices [first, first+count) of seg one free span and files it, dirty
 * as its slices' bits say, since `time` if it is.  Only its first and last
 * entries are set (they find it when a neighbour merges); the inner ones
 * already satisfy the free-span rule of lm_segment_t. */
static lm_page_t *span_make_free(lm_segment_t *seg, size_t first, size_t count, uint64_t time) {
  size_t dirty = dirty_count(seg, first, count);
  lm_page_t *d = &seg->pages[first];
  d->kind = LM_KIND_FREE;
  __atomic_store_n(&d->owner, LM_OWNER_FREE, __ATOMIC_RELAXED);
  d->slice_index = (uint16_t)first;
  d->slice_count = (uint16_t)count;
  d->dirty_slices = (uint16_t)dirty;
  d->free_time = time;
  lm_page_t **map = segment_slices(seg);
  map[first] = d;
  map[first + count - 1] = d;
  bin_insert(d);
  if (dirty) {
    dirty_append(d);
    STAT_ADD(dirty_bytes, dirty * LM_SLICE_SIZE);
  }
  return d;
}

/* Gives a dirty free span's pages back; false when the OS refused (then the
 * span stays dirty, filed anew to be tried again PURGE_RETRY_MS later).
 * Lock held. */
static bool span_purge(lm_page_t *d, uint64_t now) {
  LM_INTERNAL_ASSERT(d->kind == LM_KIND_FREE && d->dirty_slices > 0);
  dirty_remove(d);
  if (os_purge(span_addr(d), (size_t)d->slice_count * LM_SLICE_SIZE) != 0) {
    d->free_time = now + PURGE_RETRY_MS;
    dirty_append(d);
    return false;
  }
  bin_remove(d);
  STAT_ADD(dirty_bytes, -(size_t)d->dirty_slices * LM_SLICE_SIZE);
  STAT_ADD(purged_bytes, (size_t)d->dirty_slices * LM_SLICE_SIZE);
  d->dirty_slices = 0;
  dirty_mark(segment_of(d), d->slice_index, d->slice_count, false);
  bin_insert(d);
  return true;
}

/* Gives back the last slices of dirty free span d that hold `want` of its
 * dirty slices (fewer than it has): the span stays in its place, with
 * fewer dirty slices, in the same bin and in the same place in the dirty
 * list.  Its start, where a large object goes (first fit), stays resident.
 * False when the OS refused (then the span is filed anew, as in
 * span_purge).  Lock held. */
static bool span_purge_tail(lm_page_t *d, size_t want, uint64_t now) {
  LM_INTERNAL_ASSERT(d->kind == LM_KIND_FREE && want > 0 && want < d->dirty_slices);
  lm_segment_t *seg = segment_of(d);
  size_t end = (size_t)d->slice_index + d->slice_count, from = end, got = 0;
  while (got < want) got += (seg->dirty_bits[--from / 64] >> (from % 64)) & 1;
  if (os_purge((uint8_t *)seg + from * LM_SLICE_SIZE, (end - from) * LM_SLICE_SIZE) != 0) {
    dirty_remove(d);
    d->free_time = now + PURGE_RETRY_MS;
    dirty_append(d);
    return false;
  }
  dirty_mark(seg, from, end - from, false);
  d->dirty_slices = (uint16_t)(d->dirty_slices - got);
  STAT_ADD(dirty_bytes, -got * LM_SLICE_SIZE);
  STAT_ADD(purged_bytes, got * LM_SLICE_SIZE);
  return true;
}

static void huge_unmap_locked(lm_segment_t *seg);
static void huge_uncache(size_t i);

/* Whether memory freed at time t has waited out the purge delay by now.  A
 * clock read before the lock can be a little older than a t stamped by a
 * thread that took the lock first, and a refused purge stamps a time ahead:
 * neither has expired. */
static bool expired(uint64_t now, uint64_t t) {
  return now >= t && now - t >= lm_options.purge_delay_ms;
}

/* Unmaps the cached huge mappings older than the delay.  Lock held. */
static void huge_expire(uint64_t now) {
  for (size_t i = 0; arena.huge_cached_bytes && i < HUGE_CACHE_MAX; i++) {
    lm_segment_t *seg = arena.huge_cache[i];
    if (seg && expired(now, seg->cached_time)) {
      huge_uncache(i);
      huge_unmap_locked(seg);
    }
  }
}

static void purge_expired(uint64_t now) {
  while (arena.dirty_head && expired(now, arena.dirty_head->free_time) &&
         span_purge(arena.dirty_head, now)) {
  }
  huge_expire(now);
}

/* Memory in live objects' spans and huge mappings.  Lock held. */
static size_t in_use(void) {
  return arena.in_use_bytes + arena.huge_bytes - arena.huge_cached_bytes;
}

static void in_use_note(void) {
  if (in_use() > arena.in_use_hw) arena.in_use_hw = in_use();
}

static void hw_start(uint64_t now) {
  arena.in_use_hw = in_use();
  arena.freed_hw = 0;
  arena.hw_time = now;
}

/* Without the thread, the span operations start the high-water marks anew
 * each purge delay.  Lock held. */
static void hw_step(uint64_t now) {
  if (!purger_running() && expired(now, arena.hw_time)) hw_start(now);
}

/* A huge mapping of `bytes` was freed at now.  Lock held. */
static void freed_note(size_t bytes, uint64_t now) {
  hw_step(now);
  if (bytes > arena.freed_hw) arena.freed_hw = bytes;
}

/* The most dirty memory to keep: DIRTY_PER_IN_USE times the most in use in
 * the last purge delay, so that a dip in use does not purge memory about to
 * be reused.  The purger thread resets that high-water mark at each step;
 * without it the span operations do, and as nothing purges after a
 * program's last call, the budget is also capped at DIRTY_MAX_PER_IN_USE
 * times what is in use now, or DIRTY_PER_IN_USE times the largest huge
 * mapping freed in the last purge delay if more (as glibc's trim threshold
 * follows the largest mapped chunk freed): a program that frees everything
 * and sleeps keeps at most that, or dirty_min, besides the span it freed
 * last (see cache_trim).  now is the span operation's clock.  Lock
 * held. */
static size_t dirty_budget(uint64_t now) {
  bool thread = purger_running();
  hw_step(now);
  size_t budget = arena.in_use_hw * DIRTY_PER_IN_USE;
  size_t cap = in_use() * DIRTY_MAX_PER_IN_USE;
  if (cap < arena.freed_hw * DIRTY_PER_IN_USE) cap = arena.freed_hw * DIRTY_PER_IN_USE;
  arena.capped = !thread && now >= arena.cap_lifted_until && budget > cap;
  if (arena.capped) budget = cap;
  return budget < lm_options.dirty_min ? lm_options.dirty_min : budget;
}

/* The budget just purged or unmapped memory.  Lock held. */
static void cap_purged(uint64_t now) {
  if (arena.capped) arena.cap_purge_time = now;
}

/* A request for n slices that no cached span fits is about to fault in fresh
 * memory: if the cache holds at least n dirty slices, the oldest of its
 * spans of a quarter of the request or less go back to the OS, as many
 * slices as the request, so that a program whose sizes move on does not
 * keep its old sizes' memory resident besides the new.  Spans of about the
 * request's size stay (random sizes come back), and so does a cache smaller
 * than the request (a program whose objects grow, as `large`'s first round
 * does, uses its smaller sizes again).  Looks at the YIELD_LOOK oldest
 * spans at most.  Measured (peak RSS, medians of 7, and page faults):
 * tests/bench realloc 30.5 -> 28.6 MiB, 15.43K faults before and after;
 * large the same (41.5K faults); mimalloc-bench malloc-large (5 to 25 MiB,
 * 20 live) 159K -> 162K faults, CPU time the same within the noise.
 * Giving back any cached span cost malloc-large 224K faults (+8% time), and
 * with no size condition at all large 3.5K more.  Lock held. */
#define YIELD_LOOK 64
static void cache_yield(size_t n, uint64_t now) {
  if (arena.dirty_bytes < n * LM_SLICE_SIZE) return;
  lm_page_t *d = arena.dirty_head;
  for (size_t gone = 0, seen = 0; d && gone < n && seen < YIELD_LOOK; seen++) {
    lm_page_t *next = d->dnext;
    size_t dirty = d->dirty_slices;
    if ((size_t)d->slice_count * 4 <= n && span_purge(d, now)) gone += dirty;
    d = next;
  }
}

/* Fresh memory is about to be faulted in: if the cap gave back memory
 * within the purge delay, the program reuses what it frees, and the cap
 * only made it fault: lift it for a while (like glibc's adaptive mmap
 * threshold).  A program that stops calling then keeps at most the budget
 * on its recent peak, as it does with the thread.  Lock held. */
static void cap_check(uint64_t now) {
  if (arena.cap_purge_time && now >= arena.cap_purge_time &&
      now - arena.cap_purge_time < lm_options.purge_delay_ms)
    arena.cap_lifted_until = now + CAP_LIFT_DELAYS * lm_options.purge_delay_ms;
}

/* ---- segments ------------------------------------------------------------ */

/* Whether a + skew is a multiple of align (a power of two). */
static bool aligned_at(uintptr_t a, size_t align, size_t skew) {
  return ((a + skew) & (align - 1)) == 0;
}

/* Maps `size` bytes at an address a with a + skew a multiple of align (a
 * power of two >= the segment size; skew a multiple of the segment size);
 * commit as for os_map.  NULL on failure.  It first maps the size alone: that
 * may land aligned, and if not, the same place rounded down or up to the
 * alignment is often free, so a small process needs no more address space
 * than it uses; only then size + align, with both ends cut off. */
static uint8_t *reserve_aligned(size_t size, size_t align, size_t skew, bool commit) {
  void *p;
  const uintptr_t top = (uintptr_t)1 << LM_ADDRESS_BITS;   /* the segment map's reach */
  if (size > PTRDIFF_MAX - align || os_map(size, NULL, commit, &p) != 0) return NULL;
  STAT_ADD(mmap_calls, 1);
  if ((uintptr_t)p > top - size) {   /* beyond 47 bits (5-level paging) */
    os_unmap(p, size);
    return NULL;
  }
  if (aligned_at((uintptr_t)p, align, skew)) return p;
  os_unmap(p, size);
  uintptr_t down = (((uintptr_t)p + skew) & ~(uintptr_t)(align - 1)) - skew;
  uintptr_t hints[2] = {down, down + align};
  for (size_t i = 0; i < 2; i++) {
    if (hints[i] > top - size || hints[i] < LM_SEGMENT_SIZE) continue;
    if (os_map(size, (void *)hints[i], commit, &p) != 0) return NULL;
    STAT_ADD(mmap_calls, 1);
    if ((uintptr_t)p == hints[i]) return p;
    os_unmap(p, size);
  }
  if (os_map(size + align, NULL, commit, &p) != 0) return NULL;
  STAT_ADD(mmap_calls, 1);
  if ((uintptr_t)p > top - size - align) {
    os_unmap(p, size + align);
    return NULL;
  }
  uintptr_t start = (((uintptr_t)p + skew + align - 1) & ~(uintptr_t)(align - 1)) - skew;
  size_t head = start - (uintptr_t)p, tail = align - head;
  if (head) os_unmap(p, head);
  if (tail) os_unmap((uint8_t *)start + size, tail);
  return (uint8_t *)start;
}

/* The primary reservation and its slice map, tried once, at the first
 * segment: the largest size the OS grants, down to REGION_MIN. */
static void primary_reserve(void) {
  for (size_t size = PRIMARY_SIZE; size >= REGION_MIN; size /= 2) {
    void *map;
    size_t map_size = size / LM_SLICE_SIZE * sizeof(lm_page_t *);
    if (os_map(map_size, NULL, false, &map) != 0) return;
    STAT_ADD(mmap_calls, 1);
    uint8_t *r = reserve_aligned(size, LM_SEGMENT_SIZE, 0, false);
    if (r) {
      STAT_ADD(reserved_bytes, size);
      lm_slicemap = map;
      lm_region_base = r;
      region_primary_size = size;
      arena.region_next = r;
      arena.region_end = r + size;
      return;
    }
    os_unmap(map, map_size);
  }
}

static bool segment_new(void) {
  static bool primary_tried;
  if (!primary_tried) {
    primary_tried = true;
    primary_reserve();
  }
  if (arena.region_next == arena.region_end) {
    /* The next region: twice the last one, or the largest size the OS
     * grants now (then no larger one is asked for again). */
    uint8_t *r = NULL;
    if (!arena.region_size) arena.region_size = REGION_MIN;
    size_t size = arena.region_size;
    while (size >= LM_SEGMENT_SIZE && !(r = reserve_aligned(size, LM_SEGMENT_SIZE, 0, false)))
      size /= 2;
    if (!r) return false;
    arena.region_next = r;
    arena.region_end = r + size;
    STAT_ADD(reserved_bytes, size);
    arena.region_size = size < arena.region_size || size >= REGION_MAX ? size : size * 2;
  }
  lm_segment_t *seg = (lm_segment_t *)arena.region_next;
  arena.region_next += LM_SEGMENT_SIZE;
  seg->kind = LM_KIND_SMALL;
  STAT_ADD(segment_bytes, LM_HEADER_SLICES * LM_SLICE_SIZE);
  for (size_t i = 0; i < LM_HEADER_SLICES; i++) segment_slices(seg)[i] = &lm_page_invalid;
  map_fill(seg, LM_HEADER_SLICES, LM_SLICES - LM_HEADER_SLICES, &seg->pages[LM_HEADER_SLICES]);
  dirty_mark(seg, 0, LM_SLICES, false);   /* fresh memory: already zero */
  span_make_free(seg, LM_HEADER_SLICES, LM_SLICES - LM_HEADER_SLICES, 0);
  segmap_set(seg, LM_SEGMENT_SIZE, SEGMAP_HEAD);
  if ((uintptr_t)seg - (uintptr_t)lm_region_base < region_primary_size)
    __atomic_store_n(&lm_region_carved, (size_t)(arena.region_next - lm_region_base),
                     __ATOMIC_RELEASE);
  return true;
}

/* Unmaps a huge segment.  Lock held. */
static void huge_unmap_locked(lm_segment_t *seg) {
  size_t size = seg->mapping_size;
  STAT_ADD(huge_bytes, -size);
  STAT_ADD(reserved_bytes, -size);
  segmap_set(seg, size, SEGMAP_GONE);
  os_unmap(seg, size);
}

static void huge_uncache(size_t i) {
  STAT_ADD(huge_cached_bytes, -arena.huge_cache[i]->mapping_size);
  arena.huge_cache[i] = NULL;
}

lm_segment_t *arena_huge_map(size_t size, size_t align) {
  uint64_t now = os_clock_ms();
  arena_lock();
  /* A cached mapping is segment-aligned and dirty: it serves an object that
   * needs no more alignment (calloc zeroes what is dirty: see large.c). */
  bool reuse = align <= LM_SEGMENT_SIZE;
  /* The smallest cached mapping that fits.  Its tail past the object is
   * trimmed (mremap) if it is over half the mapping or does not fit in the
   * dirty budget; else it is kept, so that a larger object next time does
   * not fault it in again. */
  size_t best = HUGE_CACHE_MAX;
  for (size_t i = 0; reuse && i < HUGE_CACHE_MAX; i++) {
    lm_segment_t *c = arena.huge_cache[i];
    if (c && c->mapping_size >= size &&
        (best == HUGE_CACHE_MAX || c->mapping_size < arena.huge_cache[best]->mapping_size))
      best = i;
  }
  if (best < HUGE_CACHE_MAX) {
    lm_segment_t *seg = arena.huge_cache[best];
    huge_uncache(best);
    void *out;
    size_t tail = seg->mapping_size - size;
    if ((tail > seg->mapping_size / 2 ||
         arena.dirty_bytes + arena.huge_cached_bytes + tail > dirty_budget(now)) &&
        os_remap(seg, seg->mapping_size, size, NULL, &out) == 0) {
      segmap_set(seg, seg->mapping_size, 0);
      segmap_set(seg, size, SEGMAP_HEAD);
      STAT_ADD(huge_bytes, size - seg->mapping_size);
      STAT_ADD(reserved_bytes, size - seg->mapping_size);
      seg->mapping_size = size;
      if (seg->dirty_end > size) seg->dirty_end = size;
    }
    in_use_note();
    arena_unlock();
    return seg;
  }
  /* None fits: grow the largest cached one instead (mremap keeps its pages,
   * so only the added part faults in). */
  size_t largest = HUGE_CACHE_MAX;
  for (size_t i = 0; reuse && i < HUGE_CACHE_MAX; i++)
    if (arena.huge_cache[i] && (largest == HUGE_CACHE_MAX || arena.huge_cache[i]->mapping_size >
                                                                   arena.huge_cache[largest]->mapping_size))
      largest = i;
  if (largest < HUGE_CACHE_MAX) {
    lm_segment_t *seg = arena.huge_cache[largest];
    huge_uncache(largest);
    arena_unlock();
    lm_segment_t *grown = arena_huge_remap(seg, size);
    if (grown) return grown;
    arena_lock();
    huge_unmap_locked(seg);
  }
  /* A fresh mapping: the object starts `size - usable` bytes in, at a
   * multiple of align (see large_alloc), so for an alignment above the
   * segment size the mapping is placed so that its second segment is. */
  if (arena.cap_purge_time) cap_check(os_clock_ms());
  size_t a = align > LM_SEGMENT_SIZE ? align : LM_SEGMENT_SIZE;
  lm_segment_t *seg = (lm_segment_t *)reserve_aligned(size, a, a > LM_SEGMENT_SIZE ? LM_SEGMENT_SIZE : 0, true);
  if (seg) {
    STAT_ADD(huge_bytes, size);
    STAT_ADD(reserved_bytes, size);
    seg->kind = LM_KIND_HUGE;
    seg->mapping_size = size;
    seg->dirty_end = 0;
    for (size_t i = 0; i < LM_HEADER_SLICES; i++) seg->slice_page[i] = &lm_page_invalid;
    segmap_set(seg, size, SEGMAP_HEAD);
    in_use_note();
  }
  arena_unlock();
  return seg;
}

/* A freed huge mapping is kept (up to HUGE_CACHE_MAX, within the dirty
 * budget, for purge_delay_ms) for the next huge object, else unmapped. */
void arena_huge_unmap(lm_segment_t *seg) {
  uint64_t now = os_clock_ms();
  arena_lock();
  STAT_ADD(huge_cached_bytes, seg->mapping_size);   /* no longer in use (see in_use) */
  freed_note(seg->mapping_size, now);
  size_t budget = dirty_budget(now);
  if (arena.dirty_bytes + arena.huge_cached_bytes <= budget && lm_options.purge_delay_ms > 0) {
    for (size_t i = 0; i < HUGE_CACHE_MAX; i++) {
      if (arena.huge_cache[i]) continue;
      seg->cached_time = now;
      arena.huge_cache[i] = seg;
      arena_unlock();
      purger_kick();
      return;
    }
  }
  if (arena.dirty_bytes + arena.huge_cached_bytes > budget) cap_purged(now);
  STAT_ADD(huge_cached_bytes, -seg->mapping_size);
  huge_unmap_locked(seg);
  arena_unlock();
}

lm_segment_t *arena_huge_remap(lm_segment_t *seg, size_t size) {
  /* All under the lock: between an mremap that frees address space and the
   * segment map update, another thread's new mapping could land there. */
  size_t old = seg->mapping_size;
  void *out;
  lm_segment_t *to = seg;
  arena_lock();
  if (os_remap(seg, old, size, NULL, &out) != 0) {
    /* Cannot resize in place: move the pages (no copy) to a fresh aligned
     * reservation that mremap replaces. */
    to = (lm_segment_t *)reserve_aligned(size, LM_SEGMENT_SIZE, 0, false);
    if (!to || os_remap(seg, old, size, to, &out) != 0) {
      if (to) os_unmap(to, size);
      arena_unlock();
      return NULL;
    }
  }
  STAT_ADD(huge_bytes, size - old);
  STAT_ADD(reserved_bytes, size - old);
  segmap_set(seg, old, 0);
  segmap_set(to, size, SEGMAP_HEAD);
  to->mapping_size = size;
  in_use_note();
  arena_unlock();
  return to;
}

/* ---- spans ---------------------------------------------------------------- */

/* A non-empty bin >= n of set k (0 clean, 1 dirty), or 0: the smallest, or
 * with `first` the one whose first span lies lowest. */
static size_t bin_find(size_t k, size_t n, bool first) {
  size_t w = n / 64, found = 0;
  uint64_t bits = arena.bin_bits[k][w] & (~0ull << (n % 64));
  for (;;) {
    while (!bits) {
      if (++w == BIN_WORDS) return found;
      bits = arena.bin_bits[k][w];
    }
    size_t b = w * 64 + (size_t)__builtin_ctzll(bits);
    if (!first) return b;
    if (!found || arena.bins[b][k] < arena.bins[found][k]) found = b;
    bits &= bits - 1;
  }
}

/* Marks slices [first, first+n) of seg an in-use span headed by d. */
static void span_claim(lm_segment_t *seg, lm_page_t *d, size_t first, size_t n, uint8_t kind) {
  d->slice_index = (uint16_t)first;
  d->slice_count = (uint16_t)n;
  d->kind = kind;
  __atomic_store_n(&d->owner, LM_OWNER_LARGE, __ATOMIC_RELAXED);
  lm_page_t **map = segment_slices(seg);
  for (size_t i = first; i < first + n; i++) map[i] = d;
  STAT_ADD(in_use_bytes, n * LM_SLICE_SIZE);
  in_use_note();
}

lm_page_t *arena_alloc_span(size_t n, uint8_t kind, bool *zeroed) {
  LM_ASSERT(n >= 1 && n <= LM_SLICES - LM_HEADER_SLICES);
  uint64_t now = STAT_GET(dirty_bytes) && !purger_running() ? os_clock_ms() : 0;
  bool first_fit = kind == LM_KIND_LARGE;
  arena_lock();
  if (arena.dirty_head && now) purge_expired(now);
  size_t k = 1, b = bin_find(1, n, first_fit);
  if (!b) {
    k = 0;
    if (arena.cap_purge_time) cap_check(now ? now : os_clock_ms());
    if (arena.dirty_head) cache_yield(n, now ? now : os_clock_ms());
    b = bin_find(0, n, first_fit);
    if (!b) {
      if (!segment_new()) { arena_unlock(); return NULL; }
      b = bin_find(0, n, first_fit);
    }
  }
  /* Small pages take the end of the span: the rest keeps its head and needs
   * no map writes beyond its last entry.  Large objects take the start, so
   * that the rest follows them and realloc can grow them in place; the rest
   * gets a new head and its map entries are rewritten. */
  lm_page_t *d = arena.bins[b][k];
  lm_segment_t *seg = segment_of(d);
  size_t first = d->slice_index;
  size_t at = kind == LM_KIND_LARGE ? first : first + b - n;
  size_t dirty = k ? dirty_count(seg, at, n) : 0;
  uint64_t time = d->free_time;
  /* A dirty span may have merged with purged or never-used neighbours: what
   * the request takes beyond its dirty slices faults in as a clean span would. */
  if (k == 1 && dirty < n && arena.cap_purge_time) cap_check(now ? now : os_clock_ms());
  span_unlink(d);
  if (b > n && kind == LM_KIND_LARGE) {
    map_fill(seg, first + n, b - n, &seg->pages[first + n]);
    span_make_free(seg, first + n, b - n, time);
  } else if (b > n) {
    span_make_free(seg, first, b - n, time);
  }
  *zeroed = dirty == 0;
  lm_page_t *u = &seg->pages[at];
  span_claim(seg, u, at, n, kind);
  arena_unlock();
  return u;
}

/* Frees [first, first+count) of seg, merging with free neighbours: with
 * `dirty` (freed memory), its slices become dirty since `time`; else they
 * stay as their bits say (a purge, done or refused: dirty since `time` if
 * any is).  The merged span counts as dirty since the newest of its dirty
 * parts, so that no part is purged before its delay.  Returns the
 * resulting free span.  Lock held. */
static lm_page_t *span_release(lm_segment_t *seg, size_t first, size_t count, bool dirty,
                               uint64_t time) {
  if (dirty) dirty_mark(seg, first, count, true);
  else if (!dirty_count(seg, first, count)) time = 0;
  lm_page_t *n[2] = {first > LM_HEADER_SLICES ? segment_slices(seg)[first - 1] : NULL,
                     first + count < LM_SLICES ? segment_slices(seg)[first + count] : NULL};
  for (size_t k = 0; k < 2; k++) {
    lm_page_t *d = n[k];
    if (!d || d->kind != LM_KIND_FREE) continue;
    span_unlink(d);
    if (k == 0) first = d->slice_index;
    count += d->slice_count;
    if (d->dirty_slices && d->free_time > time) time = d->free_time;
  }
  return span_make_free(seg, first, count, time);
}

/* After dirty span d was filed: without the purger, purge what expired; in
 * any case keep the dirty total within the budget (d itself excepted, so
 * that a loop that frees and allocates one object does not thrash), the
 * last span purged only in part, from its end (span_purge_tail).  But a
 * program without the purger that has freed all but a sixteenth of what it
 * used in the last purge delay may never call again: then the spans go
 * whole, as they did before partial purges.  (Partial ones there left
 * tests/bench frag at 21.8 MiB after its last free, 8.9% of its peak,
 * against 6.7 MiB; large-churn, whose use dips to a seventh, keeps its
 * partial purges: 48.6K faults over six seeds either way.)  Lock held. */
static void cache_trim(lm_page_t *d, uint64_t now) {
  if (!purger_running()) purge_expired(now);
  size_t budget = dirty_budget(now);
  bool whole = arena.capped && in_use() * 16 < arena.in_use_hw;
  while (arena.dirty_bytes > budget && arena.dirty_head && arena.dirty_head != d) {
    size_t over = (arena.dirty_bytes - budget + LM_SLICE_SIZE - 1) / LM_SLICE_SIZE;
    if (!whole && over < arena.dirty_head->dirty_slices) {
      if (span_purge_tail(arena.dirty_head, over, now)) cap_purged(now);
      return;
    }
    if (!span_purge(arena.dirty_head, now)) return;
    cap_purged(now);
  }
}

void arena_free_span(lm_page_t *page, bool purge) {
  lm_segment_t *seg = segment_of(page);
  uint64_t now = os_clock_ms();   /* maybe a system call: before the lock */
  arena_lock();
  STAT_ADD(in_use_bytes, -(size_t)page->slice_count * LM_SLICE_SIZE);
  page->kind = LM_KIND_FREE;
  __atomic_store_n(&page->owner, LM_OWNER_FREE, __ATOMIC_RELAXED);
  lm_page_t *d = span_release(seg, page->slice_index, page->slice_count, true, now);
  if (purge) span_purge(d, now);
  cache_trim(d, now);
  arena_unlock();
  purger_kick();
}

bool arena_resize_span(lm_page_t *page, size_t n) {
  lm_segment_t *seg = segment_of(page);
  size_t first = page->slice_index, count = page->slice_count;
  if (n == count) return true;
  bool ok = false;
  uint64_t now = os_clock_ms();
  arena_lock();
  if (n < count) {
    STAT_ADD(in_use_bytes, -(count - n) * LM_SLICE_SIZE);
    page->slice_count = (uint16_t)n;
    map_fill(seg, first + n, count - n, &seg->pages[first + n]);
    cache_trim(span_release(seg, first + n, count - n, true, now), now);
    ok = true;
  } else if (first + n <= LM_SLICES && first + count < LM_SLICES) {
    lm_page_t *r = segment_slices(seg)[first + count];
    if (r && r->kind == LM_KIND_FREE && count + r->slice_count >= n) {
      size_t rcount = r->slice_count;
      uint64_t time = r->free_time;
      span_unlink(r);
      size_t extra = n - count, left = rcount - extra;
      if (left) {
        map_fill(seg, first + n, left, &seg->pages[first + n]);
        span_make_free(seg, first + n, left, time);
      }
      page->slice_count = (uint16_t)n;
      lm_page_t **map = segment_slices(seg);
      for (size_t i = first + count; i < first + n; i++) map[i] = page;
      STAT_ADD(in_use_bytes, extra * LM_SLICE_SIZE);
      ok = true;
    }
  }
  arena_unlock();
  if (ok && n < count) purger_kick();
  return ok;
}

void arena_purge(bool force) {
  uint64_t now = os_now_ms();
  arena_lock();
  if (force) {
    /* Each span once: one the OS refuses goes to the end of the list. */
    for (lm_page_t *d = arena.dirty_head, *last = arena.dirty_tail; d;) {
      lm_page_t *next = d->dnext;
      span_purge(d, now);
      if (d == last) break;
      d = next;
    }
    for (size_t i = 0; i < HUGE_CACHE_MAX; i++) {
      lm_segment_t *seg = arena.huge_cache[i];
      if (seg) { huge_uncache(i); huge_unmap_locked(seg); }
    }
  } else {
    purge_expired(now);
  }
  arena_unlock();
}

uint64_t arena_purge_tick(void) {
  for (;;) {
    uint64_t now = os_now_ms(), delay = lm_options.purge_delay_ms;
    arena_lock();
    hw_start(now);
    huge_expire(now);
    lm_page_t *d = arena.dirty_head;
    if (d && expired(now, d->free_time)) {
      /* Purge outside the lock: take the span out of the bins and make it
       * look in use so that no neighbour merges with it meanwhile. */
      lm_segment_t *seg = segment_of(d);
      size_t first = d->slice_index, count = d->slice_count, dirty = d->dirty_slices;
      span_unlink(d);
      d->kind = LM_KIND_LARGE;
      arena.purging = d;
      arena_unlock();
      bool purged = os_purge(span_addr(d), count * LM_SLICE_SIZE) == 0;
      arena_lock();
      arena.purging = NULL;
      if (purged) {
        STAT_ADD(purged_bytes, dirty * LM_SLICE_SIZE);
        dirty_mark(seg, first, count, false);
      }
      /* Refused (mlocked pages): still dirty, tried again later. */
      span_release(seg, first, count, false, now + PURGE_RETRY_MS);
      arena_unlock();
      continue;
    }
    uint64_t wait = 0;
    if (d) wait = d->free_time + delay - now;
    for (size_t i = 0; i < HUGE_CACHE_MAX; i++) {
      lm_segment_t *seg = arena.huge_cache[i];
      if (!seg) continue;
      uint64_t w = seg->cached_time + delay > now ? seg->cached_time + delay - now : 1;
      if (!wait || w < wait) wait = w;
    }
    arena_unlock();
    return wait ? wait : (d || arena.huge_cached_bytes ? 1 : 0);
  }
}

void arena_stats(lm_stats_t *out) {
  int64_t sparse = atomic_load_explicit(&lm_sparse_bytes, memory_order_relaxed);
  out->committed_bytes = STAT_GET(in_use_bytes) + STAT_GET(dirty_bytes) +
                         STAT_GET(segment_bytes) + STAT_GET(huge_bytes) -
                         (sparse > 0 ? (size_t)sparse : 0);
  out->cached_bytes = STAT_GET(dirty_bytes) + STAT_GET(huge_cached_bytes);
  out->reserved_bytes = STAT_GET(reserved_bytes);
  out->purged_bytes = STAT_GET(purged_bytes) +
                      atomic_load_explicit(&lm_scavenged_bytes, memory_order_relaxed);
  out->mmap_calls = STAT_GET(mmap_calls);
}

/* Checks the bins, the bitmap and the dirty list against each other and the
 * slice maps.  Takes the lock; aborts on a violation. */
bool arena_validate(void) {
  arena_lock();
  size_t dirty = 0;
  for (size_t k = 0; k < 2; k++) {
    for (size_t n = 1; n < LM_SLICES; n++) {
      bool bit = (arena.bin_bits[k][n / 64] >> (n % 64)) & 1;
      LM_CHECK(bit == (arena.bins[n][k] != NULL));
      for (lm_page_t *d = arena.bins[n][k]; d; d = d->next) {
        lm_segment_t *seg = segment_of(d);
        LM_CHECK(d->kind == LM_KIND_FREE && d->slice_count == n);
        LM_CHECK((d->dirty_slices != 0) == k);
        LM_CHECK(__atomic_load_n(&d->owner, __ATOMIC_SEQ_CST) == LM_OWNER_FREE);
        lm_page_t **map = segment_slices(seg);
        LM_CHECK(map[d->slice_index] == d && map[d->slice_index + n - 1] == d);
        for (size_t i = d->slice_index; i < d->slice_index + n; i++) {
          size_t j = (size_t)(map[i] - seg->pages);
          LM_CHECK(j >= d->slice_index && j <= i && __atomic_load_n(&map[i]->owner, __ATOMIC_SEQ_CST) == LM_OWNER_FREE);
        }
        LM_CHECK(d->dirty_slices <= n && d->dirty_slices == dirty_count(seg, d->slice_index, n));
        dirty += d->dirty_slices;
      }
    }
  }
  size_t listed = 0;
  for (lm_page_t *d = arena.dirty_head; d; d = d->dnext) {
    LM_CHECK(d->dirty_slices > 0);
    listed += d->dirty_slices;
  }
  LM_CHECK(listed == dirty && dirty * LM_SLICE_SIZE == arena.dirty_bytes);
  arena_unlock();
  return true;
}
