/* litemalloc internals: the shared types, their invariants, and the prototypes
 * of every internal function grouped by the file that defines them, so this
 * header reads as the table of contents of the core.
 *
 * Layers, top to bottom (each file calls only the ones below it):
 *   alloc.c     public API; the inline fast paths of malloc and free
 *   heap.c      per-thread heaps: refill, remote frees, thread exit, reuse
 *   page.c      one page (a span of slices cut into blocks of one size class)
 *   large.c     objects above the largest class: spans and huge mappings
 *   arena.c     segments, free spans, coalescing, purging; the global lock
 *   sizeclass.c the size classes
 *   purger.c    the background thread that gives cached memory back over time
 *   stats.c     merging per-thread counters; text and JSON
 *   init.c      process-wide start-up, options, fork and exit hooks
 *   error.c     the one-line fatal messages and debug assertions
 *   os.c        the only file that makes system calls
 *
 * Memory layout.  Address space is reserved from the OS in large regions,
 * cut into 32 MiB segments aligned to 32 MiB.  A segment's first 18 slices
 * of 16 KiB hold its header (below, touched only where used); the other 2030
 * slices are handed out in runs ("spans").  A span is either free, a small page (blocks of one class),
 * or one large object.  Objects too big for a segment get a "huge" segment of
 * their own mapping.  Metadata is never inside a block, so a block has no
 * header: from any address, the segment is `p & ~(32 MiB - 1)` and the page
 * descriptor is `segment->slice_page[slice of p]`.
 *
 * The re-entry rule.  glibc calls malloc and free with its own locks held
 * (the thread-stack cache in pthread_create/join/exit, the dynamic loader's
 * lock, stdio, fork).  So nothing reachable from an allocation entry point
 * calls into libc, beyond memcpy, memset and memmove, the errno location and
 * pthread_setspecific (all lock-free), and nothing waits on anything a libc
 * caller could hold:
 * the core's own locks are never held across a call out of the core.  The
 * thread-exit key and the fork handlers are registered at start-up, from
 * the constructor or the first allocation, never from a later free.  The
 * background purger is started with a raw clone (os.c), and only once the
 * process has a second thread of its own (purger.c).
 */
#ifndef LITEMALLOC_INTERNAL_H
#define LITEMALLOC_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "litemalloc/litemalloc.h"

#ifndef LM_DEBUG
#define LM_DEBUG 0   /* 0 release, 1 asserts, 2 internal asserts + fills, 3 validators */
#endif

#define LM_HIDDEN __attribute__((visibility("hidden")))
#define LM_NOINLINE __attribute__((noinline))
#define LM_COLD __attribute__((cold, noinline))
#define LM_LIKELY(x) __builtin_expect(!!(x), 1)
#define LM_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- geometry ---------------------------------------------------------- */

#define LM_SEGMENT_SHIFT 25                          /* 32 MiB segments */
#define LM_SEGMENT_SIZE ((size_t)1 << LM_SEGMENT_SHIFT)
#define LM_SEGMENT_MASK (LM_SEGMENT_SIZE - 1)
#define LM_SLICE_SHIFT 14                            /* 16 KiB slices */
#define LM_SLICE_SIZE ((size_t)1 << LM_SLICE_SHIFT)
#define LM_SLICES (LM_SEGMENT_SIZE / LM_SLICE_SIZE)  /* 2048 */
#define LM_HEADER_SLICES 18                          /* the segment header */
#define LM_OS_PAGE 4096
#define LM_ADDRESS_BITS 47                           /* x86_64 user space */
#define LM_SEGMAP_SIZE ((size_t)1 << (LM_ADDRESS_BITS - LM_SEGMENT_SHIFT))

#define LM_CLASSES 60                        /* 16 B .. 128 KiB */
#define LM_SMALL_MAX ((size_t)128 * 1024)    /* largest size-classed object */
#define LM_DIRECT_MAX 1024                   /* sizes with a direct table lookup */
#define LM_LARGE_MAX ((LM_SLICES - LM_HEADER_SLICES) * LM_SLICE_SIZE)  /* fits in a segment */
#define LM_MIN_ALIGN 16

_Static_assert(LM_CLASSES <= LM_MAX_CLASSES, "public stats array too small");

/* ---- blocks ------------------------------------------------------------ */

/* A free block.  Every block is at least 16 bytes, so a free one holds its
 * free-list link and a tag.  The tag is `address ^ lm_cookie` while the block
 * is free, the same with bit 0 flipped (LM_TAG_FRESH; lm_cookie is odd) while
 * it was never handed out, and 0 while it is allocated (malloc clears it).  So
 * freeing a block whose tag matches either is a fault, caught with one load,
 * and the message can say which: a double free or an invalid pointer. */
typedef struct lm_block_s {
  struct lm_block_s *next;   /* next free block (page list or remote queue) */
  uintptr_t tag;             /* address ^ lm_cookie while free, else 0 */
} lm_block_t;

/* A block of 32 bytes or more on its way home in a batch of remote frees
 * (heap.c: outboxes) also carries a hint: the block LM_OUTBOX_AHEAD places
 * further down the batch, which the owner prefetches while it frees the
 * blocks before it.  Only ever prefetched, never dereferenced: a stale or
 * NULL hint costs nothing.  Not written at debug levels 2 and up, where a
 * freed block's bytes after `tag` hold the freed pattern. */
typedef struct {
  lm_block_t block;
  struct lm_block_s *ahead;
} lm_batch_block_t;
#define LM_OUTBOX_AHEAD 8

/* ---- pages (span descriptors) ------------------------------------------ */

typedef struct lm_heap_s lm_heap_t;

/* What page->owner holds besides a heap pointer.  A heap pointer with the
 * FULL bit set marks a page its heap took out of its queue because it had no
 * free block; any value that is not exactly the freeing thread's heap sends
 * lm_free to its slow path, so the fast path needs one comparison. */
#define LM_OWNER_FULL ((uintptr_t)1)
#define LM_OWNER_SPARSE ((uintptr_t)2)   /* a heap pointer with this bit: the page
                                            has purged OS pages (see page.c) */
#define LM_OWNER_FLAGS (LM_OWNER_FULL | LM_OWNER_SPARSE)
#define LM_OWNER_LARGE ((uintptr_t)0)    /* a large or huge object */
#define LM_OWNER_FREE ((uintptr_t)2)     /* a free span (or a stale descriptor);
                                            never a heap pointer, so never SPARSE */

enum lm_page_kind { LM_KIND_SMALL = 0, LM_KIND_LARGE = 1, LM_KIND_HUGE = 2, LM_KIND_FREE = 3 };

/* The descriptor of a span: of a small page, a large object or a free span.
 * Descriptors live in the segment header, one per slice; a span uses the one
 * of its first slice.
 *
 * Invariants of a small page (checked by page_validate):
 *   page_used() + length(free) + (capacity - reserved) + lost == capacity
 *   lost == the blocks that overlap a unit set in `purged` (page.c); none of
 *   them is on `free`; purged != 0 exactly when owner has LM_OWNER_SPARSE
 *   every block on `free` is one of the first `reserved` blocks and carries
 *   its free tag; reserved <= capacity; start is the span's first byte and
 *   start + capacity * block_size <= the span's end.
 * Only the owning thread touches free/used/reserved and the queue links; other
 * threads read `owner` (atomically) and the immutable geometry fields. */
typedef struct lm_page_s {
  /* Line 0, read by every thread that frees into the page: written only
   * when the page changes hands or grows (and, for free spans, by the arena
   * under its lock).  A remote free reads it while the owner's malloc and
   * free keep writing line 1, so the two never share a cache line. */
  uintptr_t owner;           /* heap, heap|FULL, LARGE or FREE (see above); other
                                threads read it, so it is accessed atomically */
  uint8_t *start;            /* first block */
  uint64_t div_magic;        /* UINT64_MAX / block_size + 1 (see page_is_block) */
  uint64_t limit;            /* small page: block_limit(block_size, reserved) */
  size_t block_size;         /* bytes per block (large: usable bytes) */
  uint32_t capacity;         /* blocks the span holds */
  uint8_t cls;               /* size class (small pages) */
  uint8_t kind;              /* enum lm_page_kind */
  uint16_t slice_index;      /* first slice of the span in its segment */
  uint16_t slice_count;      /* slices in the span */
  uint16_t dirty_slices;     /* free span: its slices with the dirty bit set
                                (lm_segment_t.dirty_bits) */
  uint32_t idle_ms;          /* small page kept empty: seen so since (ms, the
                                low 32 bits of the clock, never 0; 0: not seen
                                yet; see heap_reset_idle); spare page: its
                                heap's spare_clock when it became one */
  uint64_t free_time;        /* free span: when it became dirty (ms); small
                                page: when it last grew full or got its
                                purged units back (page.c) */
  /* Line 1, the owner's: its fast paths and queues. */
  _Alignas(64) lm_block_t *free;  /* owner's free list */
  uint32_t used;             /* blocks allocated or waiting in a remote queue,
                                minus `low` (page_used() is the count): free's
                                fast path finds the low mark with one decrement */
  uint32_t reserved;         /* blocks threaded onto `free` so far (lazy) */
  struct lm_page_s *next;    /* heap class queue, or arena bin */
  struct lm_page_s *prev;
  struct lm_page_s *dnext;   /* arena dirty list (free spans, oldest first) */
  struct lm_page_s *dprev;
  uint32_t low;              /* a local free that takes the blocks in use
                                down to this calls heap_page_low (0: only
                                when the page is empty) */
  uint32_t lost;             /* blocks in purged units, off the free list */
  uint64_t purged;           /* units given back to the OS (page_unit_shift) */
} lm_page_t;

_Static_assert(sizeof(lm_page_t) == 128, "a descriptor is two cache lines");

/* A segment header.  Invariant of the slice map:
 *   - every slice of an in-use span maps to the span's descriptor;
 *   - the first and the last slice of a free span map to its descriptor;
 *   - every other slice i of a free span maps to the descriptor of some slice
 *     j of the same free span with j <= i, whose owner is LM_OWNER_FREE (the
 *     "free-span rule": it lets free spans merge, and split when a small page
 *     is carved from their end, without rewriting inner entries);
 *   - the header slices map to lm_page_invalid;
 *   - a descriptor that heads no in-use span has owner == LM_OWNER_FREE.
 * So whatever slice a pointer falls in, the descriptor found is its in-use
 * span's or one whose owner says FREE.  Segments of the primary reservation
 * keep their slice map in the flat lm_slicemap (so lm_free finds a
 * descriptor with one load); others (later reservations, huge objects) use
 * slice_page; segment_slices() gives whichever applies. */
typedef struct lm_segment_s {
  lm_page_t *slice_page[LM_SLICES];  /* slice -> descriptor, outside the primary reservation */
  union {
    /* The segment's own fields, in the room of the descriptors of the
     * header slices, which have none: so pages[] starts on an OS page, and
     * the descriptors of the last slices, where a segment's first small
     * pages go, fill one OS page instead of straddling two. */
    struct {
      size_t kind;                   /* LM_KIND_SMALL (normal) or LM_KIND_HUGE */
      size_t mapping_size;           /* huge: bytes mapped */
      uint64_t cached_time;          /* huge, freed and cached: since when (ms) */
      size_t dirty_end;              /* huge: bytes from the start that may not read zero */
      /* Bit i: slice i may be resident since it was last purged or
       * mapped (kept for free slices; an in-use span's bits are set when
       * it is freed).  A free span's dirty_slices is the count of its
       * bits, so a span carved from a merged one knows which part faults
       * in and which is resident (arena.c). */
      uint64_t dirty_bits[LM_SLICES / 64];
    };
    lm_page_t pages[LM_SLICES];      /* descriptors, indexed by first slice */
  };
} lm_segment_t;

_Static_assert(LM_HEADER_SLICES >= 1, "the segment's fields sit in pages[0]");

_Static_assert(sizeof(lm_segment_t) <= LM_HEADER_SLICES * LM_SLICE_SIZE,
               "segment header must fit its slices");

/* ---- heaps ------------------------------------------------------------- */

/* A thread's heap.  The owner thread alone reads and writes everything but
 * `remote`, which other threads push freed blocks onto (lock-free) and the
 * owner takes whole.  When a thread exits its heap is abandoned and the next
 * new thread adopts it with all its pages, so heaps never outnumber the most
 * threads alive at once.  Invariant: pages[c] is the head of the queue of
 * class c's pages that are not full (or &lm_page_empty when there are none);
 * every page in the queue has owner == this heap (or with SPARSE) and cls == c;
 * direct[i] is pages[c] and hot_class[i] is c for c = lm_class_direct[i];
 * spare pages have used == 0 and owner == LM_OWNER_FREE, newest first (by
 * their stamps), spare_count of them with spare_slices slices in all, at
 * most HEAP_SPARE_MAX and HEAP_SPARE_SLICES (heap.c); each big_kept[i]
 * is NULL or a page of a class above LM_BIG_BLOCK in this heap's queue of
 * its class. */
#define LM_DIRECT (LM_DIRECT_MAX / 16 + 1)   /* (size + 15) / 16 for size <= 1 KiB */
#define LM_DIRECT_CLASSES 32   /* classes reached through the direct table */
#define LM_OUTBOXES 4          /* owner heaps a thread batches remote frees for */

/* Empty pages of classes above LM_BIG_BLOCK a heap keeps, over all of them
 * (heap.c). */
#define LM_BIG_KEPT 2

struct lm_heap_s {
  lm_page_t *direct[LM_DIRECT];   /* (size+15)/16 -> pages[class]: malloc's page */
  /* The hot lists: per class, blocks this thread freed, handed out again
   * first, newest first, while they are still in this core's cache (see
   * heap.c).  Each block is tagged free and still counted in its page's
   * `used`.  Invariant: a list's length plus its room is at most
   * hot_max(c) (heap.c); every block on it is a block of a page of the
   * class, of this heap or (a remote free kept for reuse) of another. */
  lm_block_t *hot[LM_CLASSES];
  int64_t hot_room[LM_CLASSES];   /* blocks the list may still take; below
                                     0, frees went to the pages while it was
                                     full (see hot_max in heap.c) */
  uint8_t hot_class[LM_DIRECT];   /* (size+15)/16 -> class; all 0 in the
                                     sentinel heap, whose lists stay empty */
  uint64_t allocs_direct[LM_DIRECT]; /* allocations through direct[], by index */
  lm_page_t *pages[LM_CLASSES];   /* queue heads */
  lm_page_t *tails[LM_CLASSES];
  uint64_t allocs[LM_CLASSES];    /* statistics, written only by the owner:
                                     allocations not counted in allocs_direct */
  uint64_t frees[LM_CLASSES];
  uint64_t published[LM_CLASSES]; /* live count last taken for lm_live_sum */
  int64_t unpublished;            /* bytes taken but not yet added to it */
  uint64_t large_allocs, large_frees, large_alloc_bytes, large_free_bytes;
  uint64_t remote_frees;
  uint32_t npages[LM_CLASSES];    /* pages of each class it holds (queued or full;
                                     full ones another heap took stay counted) */
  int64_t hot_max[LM_CLASSES];    /* the most blocks a list holds: hot_max(c),
                                     or up to HOT_GROW times that (heap.c) */
  lm_page_t *spare;               /* empty pages kept for reuse (linked by next,
                                     newest first) */
  uint32_t spare_count;           /* how many, and their slices in all */
  uint32_t spare_slices;
  uint32_t spare_clock;           /* pages emptied so far (see spare_room) */
  uint32_t big_next;              /* the slot of big_kept to fill next */
  uint32_t idle_events;           /* pages of classes above LM_IDLE_BLOCK kept empty */
  lm_page_t *big_kept[LM_BIG_KEPT]; /* pages of classes above LM_BIG_BLOCK kept
                                     while empty (see heap_page_low); NULL or
                                     a page in this heap's queues */
  /* Blocks this thread freed for other heaps, gathered per owner heap
   * (slot = a hash of the owner) and handed over a batch at a time with one
   * CAS on the owner's `remote` (see heap.c).  Each is a chain head..tail of
   * `count` blocks of `bytes` bytes, all owned by `to`. */
  struct lm_outbox_s {   /* two cache lines each: outbox_of indexes with a
                            shift, and the last one's counters no longer
                            share a line with `active` and `kicked`, which
                            other threads read and write (tests/bench
                            xmalloc-t2 CPU time 0.167 -> 0.154 s) */
    _Alignas(64) lm_heap_t *to;
    lm_block_t *head, *tail;
    lm_block_t *recent[LM_OUTBOX_AHEAD];  /* the last blocks added: ahead hints */
    uint32_t count;
    uint32_t bytes;
    bool idle;               /* `to` was idle at the last flush (heap_idle) */
  } outbox[LM_OUTBOXES];
  lm_heap_t *next_all;            /* every heap ever made */
  lm_heap_t *next_abandoned;      /* abandoned heaps waiting to be adopted */
  lm_heap_t *drain_next;          /* where heap_drain_idle looks next in heaps_all */
  uint64_t drain_ms;              /* when it last looked (ms) */
  uint64_t abandoned_ms;          /* when its thread gave it up (os_clock_ms) */
  bool active;                    /* a thread owns it */
  bool kicked;                    /* abandoned: the purger was told to reclaim it */
  bool busy;                      /* its thread is changing its queues or spares
                                     (a fork child leaves it alone) */
  _Alignas(64) _Atomic(lm_block_t *) remote;  /* blocks freed by other threads */
  _Atomic uint64_t remote_since;  /* ms: when `remote` last became non-empty
                                     (written by the pusher that found it empty) */
  _Atomic(lm_block_t *) parked;   /* blocks of its queued pages that another
                                     heap's drain of `remote` left (heap.c) */
  char pad[40];
};

/* ---- the global lock (arena.c) ----------------------------------------- */

typedef struct lm_lock_s { _Atomic int state; } lm_lock_t;  /* 0 free, 1 held, 2 contended */

/* ---- options and process state (init.c) -------------------------------- */

typedef struct lm_options_s {
  uint64_t purge_delay_ms;   /* LITEMALLOC_PURGE_DELAY_MS: keep free spans this long */
  size_t dirty_min;          /* LITEMALLOC_DIRTY_MB: cache at least this much dirty */
  int show_stats;            /* LITEMALLOC_SHOW_STATS: 0 no, 1 text, 2 json */
  int purge_thread;          /* LITEMALLOC_PURGE_THREAD: purge in the background */
  int scavenge;              /* LITEMALLOC_SCAVENGE: purge free OS pages inside pages */
} lm_options_t;

LM_HIDDEN extern lm_options_t lm_options;
LM_HIDDEN extern uintptr_t lm_cookie;
LM_HIDDEN extern uint8_t lm_segmap[LM_SEGMAP_SIZE];
LM_HIDDEN extern uint8_t *lm_region_base;        /* the primary reservation */
LM_HIDDEN extern size_t lm_region_carved;        /* bytes of it cut into segments */
LM_HIDDEN extern lm_page_t **lm_slicemap;        /* its slices' descriptors */
LM_HIDDEN extern lm_page_t lm_page_invalid;      /* slice 0 of every segment */
LM_HIDDEN extern lm_page_t lm_page_empty;
LM_HIDDEN extern lm_heap_t lm_heap_empty;       /* TLS of a thread without a heap */
LM_HIDDEN extern __thread lm_heap_t *lm_tls_heap;
LM_HIDDEN extern const uint8_t lm_class_direct[LM_DIRECT_MAX / 16 + 1];
LM_HIDDEN extern _Atomic int64_t lm_live_sum;     /* published live bytes */
LM_HIDDEN extern _Atomic int64_t lm_live_peak;

/* ---- inline helpers ----------------------------------------------------- */

/* Sanitizer builds.  gcc defines __SANITIZE_*__, clang answers __has_feature. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define LM_TSAN 1
#else
#define LM_TSAN 0
#endif
#if LM_TSAN || defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer) || \
    __has_feature(memory_sanitizer)
/* The sanitizer runtimes keep per-thread state that a raw clone lacks. */
#define LM_SANITIZED 1
#else
#define LM_SANITIZED 0
#endif

/* A read of a word another thread may be writing, where any recent value is
 * fine (the fast paths' owner and reservation checks).  A plain load lets the
 * compiler fold it into a compare; ThreadSanitizer builds make it atomic. */
#if LM_TSAN
#define lm_racy_read(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#else
#define lm_racy_read(x) (*(const __typeof__(x) *)&(x))
#endif


static inline lm_segment_t *segment_of(const void *p) {
  return (lm_segment_t *)((uintptr_t)p & ~(uintptr_t)LM_SEGMENT_MASK);
}

/* The descriptor of the span holding p, for p outside the primary
 * reservation; NULL when p is not in a segment of ours. */
LM_HIDDEN lm_page_t *arena_lookup_outside(const void *p);

/* The descriptor of the span holding p, or NULL when p is not in our memory.
 * Inside the primary reservation (the common case) it is one load: every
 * slice below lm_region_carved has its map entry filled. */
static inline lm_page_t *page_lookup(const void *p) {
  uintptr_t d = (uintptr_t)p - (uintptr_t)lm_region_base;
  if (LM_LIKELY(d < lm_racy_read(lm_region_carved)))
    return lm_slicemap[d >> LM_SLICE_SHIFT];
  return arena_lookup_outside(p);
}

#define LM_TAG_FRESH ((uintptr_t)1)
static inline uintptr_t block_tag(const void *b) { return (uintptr_t)b ^ lm_cookie; }
/* Whether block b is free (freed, or never handed out); t is block_tag(b). */
static inline bool block_is_free(const void *b, uintptr_t t) {
  return (((const lm_block_t *)b)->tag ^ t) <= LM_TAG_FRESH;
}

/* The static heap a thread's TLS pointer holds while it has no heap: before
 * its first allocation, and after it gave its heap up at exit. */
static inline bool heap_is_sentinel(const lm_heap_t *h) { return h == &lm_heap_empty; }

/* Is p a block of the small page whose span holds p, one the page has
 * handed out at least once?  With c = div_magic = UINT64_MAX / d + 1 for block
 * size d, off * c (mod 2^64) is below c exactly when d divides off (Lemire et
 * al., for off < 2^32), and for off = k * d it equals k * e with e = d * c mod
 * 2^64; so off * c < reserved * e tests "block start" and "block index <
 * reserved" with one multiply (powers of two: see div_magic_for). */
static inline bool page_is_block(const lm_page_t *page, const void *p) {
  /* limit only grows while the page lives, and a block handed out before it
   * was freed by another thread is below any value that thread can read. */
  return (uint64_t)((const uint8_t *)p - page->start) * page->div_magic < lm_racy_read(page->limit);
}

/* The multiplier and limit of page_is_block for block size d and n blocks.
 * For d a power of two 2^s the Lemire constant would lose the block index, so
 * it is 2^(64-s) + 1 instead: then off * c == off when d divides off, and is at
 * least 2^(64-s) > any offset otherwise; the limit is n * d. */
static inline uint64_t div_magic_for(size_t d) {
  return (d & (d - 1)) == 0 ? (UINT64_MAX / d + 1) + 1 : UINT64_MAX / d + 1;
}
static inline uint64_t block_limit(size_t d, uint32_t n) {
  if ((d & (d - 1)) == 0) return (uint64_t)n * d;
  return (uint64_t)n * (div_magic_for(d) * d);
}

/* Statistics counters: plain stores by their owner; readers use relaxed loads.
 * Under ThreadSanitizer they become relaxed atomics so the benign race of a
 * reader seeing a slightly old value is not reported. */
#if LM_TSAN
#define lm_stat_add(x, n) __atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)
#else
#define lm_stat_add(x, n) ((x) += (n))
#endif
#define lm_stat_read(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
/* Counts n in statistic `field` of heap h; a thread without a heap counts in
 * lm_heap_empty, which many such threads share, so atomically. */
#define heap_count(h, field, n)                                                    \
  (heap_is_sentinel(h) ? (void)__atomic_fetch_add(&lm_heap_empty.field, (n), __ATOMIC_RELAXED) \
                       : (void)lm_stat_add((h)->field, (n)))


/* ---- debug hooks ---------------------------------------------------------- */

/* Called by every path that frees or hands out a small block.  Below
 * LM_DEBUG 2 they are empty and compile to nothing; at 2 and up a freed block
 * is filled with LM_FREED_BYTE past its link and tag, and a block handed out
 * must still hold that fill (else something wrote to it while it was free). */
#define LM_FREED_BYTE 0xdf
LM_HIDDEN void debug_fill_freed(void *p, size_t size);
LM_HIDDEN void debug_check_freed(void *p, size_t size);
static inline void debug_on_free(const lm_page_t *page, void *p) {
  if (LM_DEBUG >= 2) debug_fill_freed(p, page->block_size);
}
static inline void debug_on_alloc(const lm_page_t *page, void *p) {
  if (LM_DEBUG >= 2) debug_check_freed(p, page->block_size);
}

/* Pushes block b (tagged free) on heap h's hot list of class c, which has
 * room for it. */
static inline void hot_push(lm_heap_t *h, unsigned c, lm_block_t *b) {
  h->hot_room[c]--;
  b->next = h->hot[c];
  h->hot[c] = b;
}

/* Hands out b, the head of page's free list: every path that allocates a
 * small block from a page goes through here, as every one that allocates
 * from a hot list goes through hot_take (alloc.c); the tag is cleared for
 * the double-free check (see lm_block_t). */
static inline void *page_take(lm_page_t *page, lm_block_t *b) {
  debug_on_alloc(page, b);
  page->free = b->next;
  /* The next pop of this list reads that block's link: a miss when it was
   * freed long ago (tests/bench pairs: most of lm_malloc's samples sat on
   * that load).  Fetching it now, one instruction: pairs 197.8 -> 188.3 ms
   * CPU time (interleaved medians of 7); larson, glibc-thread and xmalloc
   * with one thread the same within 1%. */
  __builtin_prefetch(page->free, 1);
  page->used++;
  b->tag = 0;
  return b;
}

/* ---- error.c ------------------------------------------------------------ */

/* Prints "litemalloc: <what> <p>" and aborts.  Never allocates. */
LM_HIDDEN LM_COLD __attribute__((noreturn)) void error_fatal(const char *what, const void *p);
LM_HIDDEN LM_COLD __attribute__((noreturn)) void error_assert(const char *expr, const char *file, int line);
LM_HIDDEN void error_set_errno(int e);
LM_HIDDEN LM_COLD __attribute__((noreturn)) void error_out_of_memory(size_t size);
/* The faults of lm_free.  Not declared noreturn, on purpose: the fast path
 * tail-calls them and so needs no stack frame. */
LM_HIDDEN LM_NOINLINE void error_free_invalid(const void *p);
LM_HIDDEN LM_NOINLINE void error_free_double(const void *p);
LM_HIDDEN LM_NOINLINE void error_free_foreign(const void *p);
LM_HIDDEN LM_COLD __attribute__((noreturn)) void error_use_after_free(const void *p);
/* The fault of freeing block b, whose tag says it is free: a double free,
 * or an invalid pointer (a block never handed out). */
LM_HIDDEN LM_NOINLINE void error_free_tagged(const void *b);
LM_HIDDEN void error_warn(const char *msg, const char *detail);
/* Formats v as hex (0x...) into buf (>= 19 bytes); returns the length. */
LM_HIDDEN size_t error_hex(char *buf, uintptr_t v);

/* Validators check with LM_CHECK, which is on at every level: they are only
 * called at LM_DEBUG 3 and by the white-box tests. */
#define LM_CHECK(e) ((e) ? (void)0 : error_assert(#e, __FILE__, __LINE__))
#if LM_DEBUG >= 1
#define LM_ASSERT(e) ((e) ? (void)0 : error_assert(#e, __FILE__, __LINE__))
#else
#define LM_ASSERT(e) ((void)0)
#endif
#if LM_DEBUG >= 2
#define LM_INTERNAL_ASSERT(e) LM_ASSERT(e)
#else
#define LM_INTERNAL_ASSERT(e) ((void)0)
#endif

/* ---- os.c --------------------------------------------------------------- */

/* All return 0 or a positive errno; none touches errno.  Sizes and addresses
 * are multiples of LM_OS_PAGE. */
/* Anonymous read/write memory, at hint if that is free; commit: accounted by
 * the kernel's overcommit policy (huge objects), else MAP_NORESERVE. */
LM_HIDDEN int os_map(size_t size, void *hint, bool commit, void **out);
LM_HIDDEN int os_unmap(void *p, size_t size);
LM_HIDDEN int os_purge(void *p, size_t size);                  /* MADV_DONTNEED */
/* MADV_POPULATE_WRITE: fault the pages in writable now, in one call (EINVAL
 * before Linux 5.14). */
LM_HIDDEN int os_populate(void *p, size_t size);
/* mincore: vec[i] bit 0 set if page i is in RAM (a swapped-out page is not). */
LM_HIDDEN int os_resident(void *p, size_t size, uint8_t *vec);
LM_HIDDEN int os_remap(void *p, size_t old_size, size_t new_size, void *fixed, void **out);
LM_HIDDEN void os_write(int fd, const void *buf, size_t len);
LM_HIDDEN __attribute__((noreturn)) void os_abort(void);
LM_HIDDEN uint64_t os_now_ms(void);
/* os_now_ms for every span operation: a system call at most every few ms,
 * so a reading may be that stale. */
LM_HIDDEN uint64_t os_clock_ms(void);
LM_HIDDEN int os_open_read(const char *path);                 /* fd, or -errno */
LM_HIDDEN long os_read(int fd, void *buf, size_t len);          /* bytes, 0 at end, or -errno */
LM_HIDDEN void os_close(int fd);
LM_HIDDEN void os_futex_wait(_Atomic int *addr, int val);
LM_HIDDEN void os_futex_wake(_Atomic int *addr, int n);
LM_HIDDEN void os_futex_wait_ms(_Atomic int *addr, int val, uint64_t ms);
LM_HIDDEN void os_block_signals(uint64_t *old);          /* all of them; old mask out */
LM_HIDDEN void os_restore_signals(const uint64_t *old);
LM_HIDDEN uint64_t os_random(void);
/* Runs fn(arg) on a new thread with no libc state, on the given stack
 * mapping, with the caller's signal mask and credentials (see os.c); when
 * fn returns, the thread unmaps the stack and ends. */
LM_HIDDEN int os_thread_start(void *stack, size_t size, void (*fn)(void *), void *arg);

/* ---- sizeclass.c --------------------------------------------------------- */

/* The class of a size in (LM_DIRECT_MAX, LM_SMALL_MAX]: four classes per
 * doubling (sizeclass.c says why; up to 1 KiB the direct table answers).
 * Inline: malloc of a size above LM_DIRECT_MAX computes it every time. */
static inline unsigned sizeclass_of_medium(size_t size) {
  size_t s1 = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll(s1);   /* s1 >= 1024, so b >= 10 */
  return LM_DIRECT_CLASSES + (b - 10) * 4 + (unsigned)((s1 >> (b - 2)) & 3);
}
static inline unsigned sizeclass_of(size_t size) {
  return size <= LM_DIRECT_MAX ? lm_class_direct[(size + 15) >> 4] : sizeclass_of_medium(size);
}
/* Block size of class cls (the layout is described in sizeclass.c).  This
 * and the two below are inline: the slow paths call them on every page
 * change. */
static inline size_t sizeclass_block_size(unsigned cls) {
  if (cls < 8) return 16u * (cls + 1);
  if (cls < 32) {
    unsigned g = (cls - 8) / 8, k = (cls - 8) % 8;
    return ((size_t)128 << g) + (size_t)(k + 1) * ((size_t)16 << g);
  }
  unsigned g = (cls - 32) / 4, k = (cls - 32) % 4;
  return ((size_t)1024 << g) + (size_t)(k + 1) * ((size_t)256 << g);
}
/* The direct-table indices [*lo, *hi] that map to cls (cls < LM_DIRECT_CLASSES). */
static inline void sizeclass_direct_range(unsigned cls, unsigned *lo, unsigned *hi) {
  /* 1, 1, 2 or 4 entries of (size + 15) / 16 per class (lm_class_direct) */
  if (cls < 16) { *lo = cls == 0 ? 0 : cls + 1; *hi = cls + 1; }
  else if (cls < 24) { *lo = 17 + (cls - 16) * 2; *hi = *lo + 1; }
  else { *lo = 33 + (cls - 24) * 4; *hi = *lo + 3; }
}
/* Slices per page of the class: at least 8 blocks, or 2 above LM_BIG_BLOCK. */
#define LM_BIG_BLOCK ((size_t)32 * 1024)
LM_HIDDEN unsigned sizeclass_slices(unsigned cls);
/* Slices of a heap's later pages of the class (see heap_page_new): as many
 * as hold LM_GROWN_BLOCKS blocks up to LM_GROWN_MAX bytes, else
 * sizeclass_slices. */
#define LM_GROWN_BLOCKS 64
#define LM_GROWN_MAX 4096
LM_HIDDEN unsigned sizeclass_slices_grown(unsigned cls);
/* The smallest class whose block size is >= size and a multiple of align
 * (align <= LM_SLICE_SIZE), or LM_CLASSES if none. */
LM_HIDDEN unsigned sizeclass_aligned(size_t size, size_t align);

/* ---- arena.c -------------------------------------------------------------- */

/* The slice map of a segment (see lm_segment_t). */
LM_HIDDEN lm_page_t **segment_slices(lm_segment_t *seg);
/* A futex mutex; the arena's is the one lock of the slow paths. */
LM_HIDDEN void lock_acquire(lm_lock_t *lock);
LM_HIDDEN void lock_release(lm_lock_t *lock);
LM_HIDDEN void arena_lock(void);
LM_HIDDEN void arena_unlock(void);
/* A span of n slices (1 <= n <= LM_SLICES-LM_HEADER_SLICES) of the given
 * kind (small or large; set under the lock, as neighbours read it); its slice
 * map is set and its owner is LM_OWNER_LARGE until the caller sets it.  Sets
 * *zeroed when the span's memory is known to be zero.  NULL when out of memory. */
LM_HIDDEN lm_page_t *arena_alloc_span(size_t n, uint8_t kind, bool *zeroed);
/* Gives a span back: coalesces, caches it dirty, purges by policy (and the
 * span itself at once with purge set). */
LM_HIDDEN void arena_free_span(lm_page_t *page, bool purge);
/* Grows an in-use span in place to n slices if the slices after it are free;
 * shrinks it when n is smaller.  Returns true on success. */
LM_HIDDEN bool arena_resize_span(lm_page_t *page, size_t n);
/* Purges every cached dirty span (force) or only those past the delay. */
LM_HIDDEN void arena_purge(bool force);
/* Huge segments: a mapping of `size` bytes (a multiple of the OS page)
 * aligned to the segment size, registered in the segment map, committed (the
 * kernel's overcommit policy applies).  For align above the segment size, its
 * second segment is aligned to align.  A freed one that fits is reused
 * (dirty_end says how much of it may not read zero; 0 for a fresh one).
 * Resized in place or moved without copying (mremap); unmapped. */
LM_HIDDEN lm_segment_t *arena_huge_map(size_t size, size_t align);
LM_HIDDEN lm_segment_t *arena_huge_remap(lm_segment_t *seg, size_t size);
LM_HIDDEN void arena_huge_unmap(lm_segment_t *seg);
/* Whether p is where a huge mapping of ours started before it was unmapped. */
LM_HIDDEN bool arena_was_huge(const void *p);
LM_HIDDEN void arena_stats(lm_stats_t *out);
/* The purger's step: purges what has expired; returns the ms until the next
 * cached span expires, or 0 when nothing is cached. */
LM_HIDDEN uint64_t arena_purge_tick(void);
LM_HIDDEN void arena_after_fork_child(void);
LM_HIDDEN bool arena_validate(void);

/* ---- page.c --------------------------------------------------------------- */

/* page_extend threads the blocks that start before the next OS page
 * boundary, so about this many bytes of blocks at a time (at least one
 * block); heap.c's next-page rule counts with it. */
#define LM_EXTEND_BYTES LM_OS_PAGE
static inline uint32_t page_extend_blocks(const lm_page_t *page) {
  uint32_t n = (uint32_t)(LM_EXTEND_BYTES / page->block_size);
  return n ? n : 1;
}

/* Makes a fresh span a page of class cls owned by heap. */
LM_HIDDEN void page_init(lm_page_t *page, lm_heap_t *heap, unsigned cls);
/* Threads the next batch of never-used blocks onto the free list; false when
 * the page has none left. */
LM_HIDDEN bool page_extend(lm_page_t *page);
/* The page's free list ran dry with every block threaded: it regains its
 * first low mark if it has none (see page.c). */
LM_HIDDEN void page_full(lm_page_t *page);
/* Gives back an empty page's memory beyond its first block and makes it a
 * fresh page again (none of its blocks threaded), still owned by heap.  A
 * heap does so to the empty pages it keeps of the classes above
 * LM_IDLE_BLOCK once they stay empty for 1/LM_IDLE_DIVISOR of the purge
 * delay, looking every LM_IDLE_EVENTS times it keeps one (heap.c). */
#define LM_IDLE_BLOCK ((size_t)8 * 1024)
#define LM_IDLE_DIVISOR 25
#define LM_IDLE_EVENTS 8
LM_HIDDEN void page_reset(lm_page_t *page, lm_heap_t *heap);
/* Sparse pages (see page.c).  A unit is 1 << page_unit_shift bytes of the
 * span: the OS page, or a 64th of a span larger than 64 OS pages. */
static inline unsigned page_unit_shift(const lm_page_t *page) {
  unsigned s = 12;
  while (((size_t)page->slice_count * LM_SLICE_SIZE >> s) > 64) s++;
  return s;
}
/* Whether block p overlaps a purged unit (so it is free: a double free). */
static inline bool page_block_lost(const lm_page_t *page, const void *p) {
  uint64_t m = __atomic_load_n(&page->purged, __ATOMIC_RELAXED);
  if (!m) return false;
  unsigned s = page_unit_shift(page);
  size_t off = (size_t)((const uint8_t *)p - page->start);
  unsigned u0 = (unsigned)(off >> s), u1 = (unsigned)((off + page->block_size - 1) >> s);
  uint64_t want = (u1 >= 63 ? ~(uint64_t)0 : ((uint64_t)2 << u1) - 1) & ~(((uint64_t)1 << u0) - 1);
  return (m & want) != 0;
}
/* Whether the page has been full-grown (or had its units back) long enough
 * to be scanned (a quarter of the purge delay). */
LM_HIDDEN bool page_ripe(const lm_page_t *page);
/* Gives back the units of a page whose blocks are all free; the owner calls
 * it, the heap busy.  Returns the bytes purged. */
LM_HIDDEN size_t page_scavenge(lm_page_t *page);
/* Threads the blocks of purged units back onto the free list (they read
 * zero, and fault in as they are used); false when none is purged. */
LM_HIDDEN bool page_unpurge(lm_page_t *page, lm_heap_t *owner);
/* The page leaves its heap (empty): forgets its purged units (they stay
 * purged, and read zero when used again), and with them its free list,
 * which lacks their blocks (a spare keeps a whole list: heap_page_new). */
LM_HIDDEN void page_forget_purged(lm_page_t *page);
/* Bytes purged inside in-use pages now, and in total. */
LM_HIDDEN extern _Atomic int64_t lm_sparse_bytes;
LM_HIDDEN extern _Atomic uint64_t lm_scavenged_bytes;
/* The last low mark of a sparse page is capacity / LM_SPARSE_LAST (page.c). */
#define LM_SPARSE_LAST 16
/* The blocks of a small page in use (allocated or on their way back). */
static inline uint32_t page_used(const lm_page_t *page) { return page->used + page->low; }
/* Sets the low mark, keeping page_used(); a mark at or above the blocks in
 * use is none (0). */
static inline void page_set_low(lm_page_t *page, uint32_t low) {
  uint32_t n = page_used(page);
  if (low >= n) low = 0;
  page->low = low;
  page->used = n - low;
}
/* The low mark after the one a page has reached: two thirds of it, or
 * none below capacity / LM_SPARSE_LAST.  Halving left a page scanned last
 * at up to twice the live blocks it kept (tests/bench frag90, 10% live:
 * scanned at 12.5%, or for 256-byte blocks not at all). */
static inline uint32_t page_next_mark(const lm_page_t *page) {
  uint32_t next = page->low - page->low / 3;
  return next >= page->capacity / LM_SPARSE_LAST ? next : 0;
}
/* Bytes of the blocks a page holds (small) or of its object (large). */
static inline size_t page_area(const lm_page_t *page) {
  return page->kind == LM_KIND_SMALL ? (size_t)page->capacity * page->block_size : page->block_size;
}
/* Checks the page's invariants (see lm_page_t); aborts on a violation. */
LM_HIDDEN bool page_validate(const lm_page_t *page);

/* ---- large.c -------------------------------------------------------------- */

LM_HIDDEN void *large_alloc(lm_heap_t *heap, size_t size, size_t align, bool zero);
LM_HIDDEN void large_free(lm_heap_t *heap, lm_page_t *page, void *p);
/* Frees a large object that realloc has just copied elsewhere: its memory is
 * given back at once, as a grown object's old span is rarely reused soon. */
LM_HIDDEN void large_free_moved(lm_heap_t *heap, lm_page_t *page, void *p);
/* Resizes in place; returns p or NULL when it cannot. */
LM_HIDDEN void *large_resize(lm_heap_t *heap, lm_page_t *page, void *p, size_t size);

/* ---- heap.c --------------------------------------------------------------- */

/* malloc's slow path: makes a heap for the thread if needed, collects remote
 * frees, finds or makes a page with a free block and pops it. */
LM_HIDDEN void *heap_malloc_slow(lm_heap_t *heap, unsigned cls);
/* A local free took the page's `used` down to its `low` mark: an empty page
 * goes back to the arena unless it is the only page of its class; a sparse
 * one gives its free OS pages back (page_scavenge). */
LM_HIDDEN LM_NOINLINE void heap_page_low(lm_heap_t *heap, lm_page_t *page);
/* A local free of block b found its class's hot list full LM_HOT_SPILL
 * times more than a malloc took from it: b goes to its page, and the list
 * goes back to its pages (heap.c). */
#define LM_HOT_SPILL 256
LM_HIDDEN LM_NOINLINE void heap_hot_spill(lm_heap_t *heap, lm_page_t *page, lm_block_t *b);
/* free's slow path: full pages, remote frees, large objects, bad pointers. */
LM_HIDDEN void heap_free_slow(lm_heap_t *heap, lm_page_t *page, void *p);
/* The calling thread's heap, made or adopted if it has none yet; NULL after
 * the thread gave it up at exit, or when out of memory. */
LM_HIDDEN lm_heap_t *heap_get(void);
/* Asks (once) for the thread-exit hook for the calling thread's heap h. */
LM_HIDDEN void heap_register_exit(lm_heap_t *h);
/* Takes the remote queue and frees each block locally. */
LM_HIDDEN void heap_collect_remote(lm_heap_t *heap);
/* Gives back the empty pages of the heap. */
LM_HIDDEN void heap_trim(lm_heap_t *heap);
/* Publishes class cls's live-byte change to lm_live_sum and the peak. */
LM_HIDDEN void heap_publish(lm_heap_t *heap, unsigned cls);
LM_HIDDEN void heap_publish_bytes(int64_t delta);
/* Allocations of class cls by heap, from both counter arrays. */
LM_HIDDEN uint64_t heap_class_allocs(const lm_heap_t *heap, unsigned cls);
/* Trims every abandoned heap (their remote frees would wait for adoption);
 * with all false, only those abandoned for a purge delay or more, and the
 * others only take back the blocks freed into them (see heap.c). */
LM_HIDDEN void heap_reclaim_abandoned(bool all);
/* fork(): hold the lock of heap_reclaim_abandoned across it. */
LM_HIDDEN void heap_fork_prepare(void);
LM_HIDDEN void heap_fork_parent(void);
LM_HIDDEN void heap_fork_child(void);
/* Thread exit: collect, trim, abandon for adoption; the thread is left
 * with lm_heap_empty for good. */
LM_HIDDEN void heap_abandon(lm_heap_t *heap);
/* Every heap ever made, for stats (read without the lock: heaps are never freed). */
LM_HIDDEN lm_heap_t *heap_all(void);
LM_HIDDEN size_t heap_counts(size_t *heaps);
/* Whether two threads have held heaps at once (since start or fork). */
LM_HIDDEN bool heap_multithreaded(void);
LM_HIDDEN bool heap_validate(const lm_heap_t *heap);
LM_HIDDEN bool heap_validate_class(const lm_heap_t *heap, unsigned cls);

/* ---- purger.c ------------------------------------------------------------- */

/* Memory was cached (no locks held): starts the purger thread if none runs
 * (or the one running asks to be replaced) and the process has had a second
 * thread of its own. */
LM_HIDDEN void purger_kick(void);
/* A block was freed into an abandoned heap: asks for a trim of those heaps,
 * by the thread or, without it, at the next purger_poll. */
LM_HIDDEN void purger_kick_reclaim(void);
/* Without the thread: runs an asked-for trim if the last one is older than
 * the purge delay.  Never called from inside a trim (it would wait for itself).
 * Inline, as every remote free asks: one load when no trim is due. */
LM_HIDDEN extern _Atomic int lm_purge_due;
LM_HIDDEN void purger_poll_due(void);
static inline void purger_poll(void) {
  if (LM_UNLIKELY(atomic_load_explicit(&lm_purge_due, memory_order_relaxed))) purger_poll_due();
}
/* Whether the purger thread runs (so the arena may cache by time). */
LM_HIDDEN bool purger_running(void);
LM_HIDDEN void purger_after_fork_child(void);

/* ---- init.c --------------------------------------------------------------- */

/* Process-wide start-up; idempotent and cheap once done. */
LM_HIDDEN void init_process(void);

#endif /* LITEMALLOC_INTERNAL_H */
