/* Per-thread heaps and the slow paths of malloc and free.
 *
 * Each thread reaches its heap through one initial-exec TLS pointer that
 * starts at lm_heap_empty, a static heap whose every class queue is the empty
 * page, so the fast path's first allocation simply fails into
 * heap_malloc_slow, which makes or adopts a real heap: no "initialised?" test.
 *
 * A heap keeps, per size class, a queue of its pages that have free blocks;
 * the head is where malloc pops.  A page with nothing left is taken out of the
 * queue and flagged full in its owner word, so a free into it takes the slow
 * path, which puts it back.  A page whose last block comes back stays if it
 * is the only page of its class (hysteresis for a loop that allocates and
 * frees one object; not a grown page above 1 KiB, and at most two pages of
 * the classes above 32 KiB in all; one of a class above 8 KiB gives back all
 * but its first block once it has stayed empty a while: see heap_page_low
 * and heap_reset_idle); otherwise it goes to
 * the heap's few spare pages, reused by the next page of any class of the
 * same span size, and beyond their room (HEAP_SPARE_MAX pages, 1 MiB) back
 * to the arena, unless the oldest spare has sat there while many pages
 * emptied: then it goes instead (spare_room; a page above 32 KiB goes
 * straight there).  The spares keep page churn (common when
 * other threads free a heap's blocks in batches) away from the arena lock.
 * A spare taken again by its own class keeps its free list, every block
 * threaded: a batch of 100 blocks of 4 KiB allocated and freed in a loop
 * threaded its pages again one OS page, one block, per slow path (callgrind:
 * 276 -> 161 instructions a malloc+free pair; tcmalloc 85).
 *
 * Hot lists.  In front of the pages, a heap keeps per class a short list of
 * blocks its thread freed (lm_heap_t.hot, at most hot_max(c)), which malloc
 * hands out first, newest first: a block freed a moment ago is still in this
 * core's cache, where the head of a page's free list may have been freed
 * long ago, and a free touches the heap's own lines, not the second line of
 * a page descriptor.  A block on a hot list stays counted in its page's
 * `used`, so its page cannot go away under it; a list goes back to its
 * pages when its class shrinks (see hot_max), and every list at thread exit
 * and at lm_trim (hot_flush).  Measured (tests/bench, CPU time and peak
 * RSS, interleaved medians of 7), against the same code without them:
 * larson-t1 0.356 -> 0.320 s (tcmalloc 0.273), larson-t2 0.763 -> 0.691,
 * glibc-thread-t1 0.182 -> 0.150 s and 10.3 -> 7.2 MiB (its pages of large
 * classes no longer empty and refill at every turn), glibc-thread-t2 0.189
 * -> 0.153 s and 16.2 -> 12.3 MiB; pairs 0.199 -> 0.205 s, prodcons-t2
 * 0.154 -> 0.163 s; instructions per malloc+free pair 69.0 -> 70.0.
 *
 * Frees by other threads.  A thread that frees a block of a page it does not
 * own first keeps it on its hot list of the class (if it is 128 bytes or
 * more, see FOREIGN_MIN_CLASS, up to 1 KiB; if it has a page of that class
 * itself; and unless the owner has stopped taking its blocks back:
 * outbox_idle), to hand it out again while it is warm.  (A list of its own
 * for such blocks, used only when the heap's page ran dry, stayed full
 * behind the hot list: larson-t16's peak RSS 43.0 -> 51.8 MiB; one list,
 * 43.1.)  Beyond that, it adds
 * the block to its outbox for the owner heap, which goes onto the owner's
 * `remote` stack a batch at a time with one CAS (no lock; see the outboxes
 * below); the owner takes the whole stack with one exchange at its next slow
 * path and frees the blocks locally, prefetching along the batches' ahead
 * hints (heap_collect_remote).  There is no ABA problem: the stack is
 * only ever pushed to and emptied whole.  A thread that stops taking its
 * blocks back (larson's main thread, waiting in join while the workers free
 * what it allocated) would keep them, and their pages, for good: so a heap
 * about to take a fresh page first drains the stack of such an idle heap
 * and takes over the full pages those blocks belong to (heap_drain).
 *
 * Thread exit.  A pthread key destructor (looked up weakly, so the core needs
 * no pthreads) collects the heap's remote frees, returns its spare pages and
 * puts the heap on the abandoned list; the next new thread adopts it with its
 * pages and statistics, and meanwhile a running heap that needs a page of a
 * class takes one with free blocks from it (heap_take_pages).  The thread's
 * TLS pointer then holds lm_heap_empty again, for good: glibc frees (and may
 * allocate) after the key destructors have run (__libc_thread_freeres:
 * strerror and dlerror buffers, resolver state), and
 * such a late call must not make or keep a heap that nobody would give up.
 * A late free goes straight home (a remote free to the page's heap); a late
 * malloc borrows an abandoned heap for the one block and gives it back.
 * Threads without a heap (exited, or with only large objects so far) count
 * their frees and large objects in lm_heap_empty, atomically.  Heaps are never freed, so
 * a stale heap pointer in a page (read by a remote free) always points at a
 * valid heap, and the number of heaps is bounded by the most threads alive
 * at once.
 */
#include "internal.h"

lm_page_t lm_page_empty;
/* Also the sink of statistics counted by threads without a heap (atomic
 * adds), and the last entry of heaps_all so that lm_stats adds it up.  One
 * static heap for both kinds of heap-less thread (lm_tls_exited tells them
 * apart): its pointers, relocated at load, cost the library a page of
 * .data and 3 KiB of relocations each. */
lm_heap_t lm_heap_empty = {.direct = {[0 ... LM_DIRECT - 1] = &lm_page_empty},
                           .pages = {[0 ... LM_CLASSES - 1] = &lm_page_empty}};
__thread lm_heap_t *lm_tls_heap __attribute__((tls_model("initial-exec"))) = &lm_heap_empty;
/* Whether this thread asked for the thread-exit hook for its heap. */
static __thread bool lm_tls_registered __attribute__((tls_model("initial-exec")));
/* Whether this thread gave its heap up at exit (its TLS pointer is back at
 * lm_heap_empty for good). */
static __thread bool lm_tls_exited __attribute__((tls_model("initial-exec")));
_Atomic int64_t lm_live_sum;
_Atomic int64_t lm_live_peak;

/* Under the arena lock. */
static lm_heap_t *heaps_all = &lm_heap_empty;   /* every heap, newest first; never shrinks */
static lm_heap_t *heaps_abandoned;   /* heaps without a thread */
/* Stores the head (lock held); heap_take_pages peeks at it, and at
 * heaps_reclaiming, without. */
static void abandoned_set(lm_heap_t *h) { __atomic_store_n(&heaps_abandoned, h, __ATOMIC_RELAXED); }
static lm_lock_t reclaim_lock;   /* one reclaim at a time; lm_trim waits for it */
/* Under the arena lock: abandoned heaps not yet trimmed by the reclaim under
 * way, and the one it is trimming now (only that one cannot be adopted; a new
 * thread that would need it waits on reclaim_word instead of making a heap). */
static lm_heap_t *heaps_reclaiming;
static lm_heap_t *reclaim_current;
/* Under the arena lock: abandoned heaps that heap_take_pages holds for a
 * moment (they cannot be adopted either), and the threads in heap_acquire
 * waiting for such a heap or for reclaim_current. */
static unsigned heaps_taken, acquire_waiters;
static _Atomic int reclaim_word;
static size_t heaps_made, heaps_active;
static bool heaps_multi;              /* two heaps were held at once */
static uint8_t *meta_next, *meta_end; /* bump area for heap structs */

#define META_CHUNK ((size_t)256 * 1024)
/* A heap's spares: at most HEAP_SPARE_MAX pages and HEAP_SPARE_SLICES
 * slices (1 MiB: sixteen pages of 64 KiB, or four of 256 KiB, the largest
 * below LM_BIG_BLOCK, such as a grown page of 4 KiB blocks);
 * when they are full, the oldest makes room for a page that empties if
 * HEAP_SPARE_STALE pages emptied since it came (spare_room). */
#define HEAP_SPARE_MAX 16
#define HEAP_SPARE_SLICES 64
#define HEAP_SPARE_STALE 256
/* Blocks under 128 bytes are not kept: several share a cache line with
 * blocks the owner handed to other threads, and reusing them here would
 * make those threads write to one line (the "passive false sharing" of the
 * cache-scratch benchmark: 10x slower with 16-byte blocks kept).  Measured
 * again at cb81f8a (interleaved medians of 5 to 11): keeping them took
 * tests/bench larson-t16's CPU time from 0.82 to 0.71 s and its peak RSS
 * from 35.2 to 33.0 MiB, but a cache-scratch whose threads malloc and free
 * one object before they free the one they were given (so they have a
 * page of its class) from 0.20 to 1.62 s with 2 threads (tcmalloc, which
 * keeps every block, 1.81 s).  hot_list_test holds the rule. */
#define FOREIGN_MIN_CLASS 7   /* 128 B */

/* ---- class queues ------------------------------------------------------- */

/* Marks h busy for the length of a change to its structure and returns what
 * to restore (changes nest: a free inside a trim).  A thread forked from
 * another in the middle of one would inherit a torn heap; see
 * heap_fork_child.  The compiler barriers keep the flag around the stores
 * (x86 stores become visible in order). */
static bool heap_busy(lm_heap_t *h) {
  bool was = h->busy;
  h->busy = true;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  return was;
}

static void heap_unbusy(lm_heap_t *h, bool was) {
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  h->busy = was;
}

static bool queue_empty(const lm_heap_t *h, unsigned c) { return h->pages[c] == &lm_page_empty; }

/* Points class c's direct entries at p. */
static void direct_set(lm_heap_t *h, unsigned c, lm_page_t *p) {
  unsigned lo, hi;
  sizeclass_direct_range(c, &lo, &hi);
  for (unsigned i = lo; i <= hi; i++) h->direct[i] = p;
}

/* Sets the queue head, and the direct entries that lead to it. */
static void queue_set_head(lm_heap_t *h, unsigned c, lm_page_t *p) {
  h->pages[c] = p;
  if (c < LM_DIRECT_CLASSES) direct_set(h, c, p);
}

static void queue_push_front(lm_heap_t *h, unsigned c, lm_page_t *p) {
  p->prev = NULL;
  if (queue_empty(h, c)) { p->next = NULL; h->tails[c] = p; }
  else { p->next = h->pages[c]; p->next->prev = p; }
  queue_set_head(h, c, p);
}

static void queue_push_back(lm_heap_t *h, unsigned c, lm_page_t *p) {
  if (queue_empty(h, c)) { queue_push_front(h, c, p); return; }
  p->next = NULL;
  p->prev = h->tails[c];
  h->tails[c]->next = p;
  h->tails[c] = p;
}

static void queue_remove(lm_heap_t *h, unsigned c, lm_page_t *p) {
  for (unsigned i = 0; i < LM_BIG_KEPT; i++)
    if (h->big_kept[i] == p) h->big_kept[i] = NULL;
  if (p->prev) p->prev->next = p->next; else queue_set_head(h, c, p->next ? p->next : &lm_page_empty);
  if (p->next) p->next->prev = p->prev; else h->tails[c] = p->prev;
  p->next = p->prev = NULL;
}

/* ---- statistics publishing ------------------------------------------------ */

void heap_publish_bytes(int64_t delta) {
  int64_t sum = atomic_fetch_add_explicit(&lm_live_sum, delta, memory_order_relaxed) + delta;
  int64_t peak = atomic_load_explicit(&lm_live_peak, memory_order_relaxed);
  while (sum > peak && !atomic_compare_exchange_weak_explicit(&lm_live_peak, &peak, sum,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
  }
}

uint64_t heap_class_allocs(const lm_heap_t *h, unsigned c) {
  uint64_t n = lm_stat_read(h->allocs[c]);
  if (c >= LM_DIRECT_CLASSES) return n;
  unsigned lo, hi;
  sizeclass_direct_range(c, &lo, &hi);
  for (unsigned i = lo; i <= hi; i++) n += lm_stat_read(h->allocs_direct[i]);
  return n;
}

/* The change of class c's live bytes since it was last published. */
static int64_t heap_take_delta(lm_heap_t *h, unsigned c) {
  uint64_t live = heap_class_allocs(h, c) - h->frees[c];
  int64_t delta = (int64_t)(live - h->published[c]);
  h->published[c] = live;
  return delta * (int64_t)sizeclass_block_size(c);
}

/* lm_live_sum and lm_live_peak are shared lines that every thread's slow
 * paths would write: a heap adds its classes' changes up in `unpublished`
 * and publishes them once they reach PUBLISH_BYTES either way (in
 * mimalloc-bench's larson about one malloc in eight took the slow path,
 * and publishing each time was 5% of its time under perf).  A heap takes
 * the changes when it makes a page or gives one back (and every 64 remote
 * frees), not at every slow path: computing them cost about 100
 * instructions, a third of the slow path.  So the peak may miss up to
 * PUBLISH_BYTES per heap, and the blocks of the last page per class. */
#define PUBLISH_BYTES ((int64_t)64 * 1024)

void heap_publish(lm_heap_t *h, unsigned c) {
  int64_t delta = h->unpublished + heap_take_delta(h, c);
  if (delta >= PUBLISH_BYTES || delta <= -PUBLISH_BYTES) {
    heap_publish_bytes(delta);
    delta = 0;
  }
  h->unpublished = delta;
}

static void heap_publish_all(lm_heap_t *h) {
  int64_t delta = h->unpublished;
  for (unsigned c = 0; c < LM_CLASSES; c++) delta += heap_take_delta(h, c);
  h->unpublished = 0;
  if (delta) heap_publish_bytes(delta);
}

/* ---- hot lists -------------------------------------------------------------- */

/* How many blocks of class c a heap keeps on its hot list: 16 KiB worth, at
 * least 16 blocks, for blocks up to 32 KiB (as jemalloc's thread cache by
 * default); so at most 3.6 MiB per thread in all (4.8 MiB with lists of
 * 128 B to 1 KiB that remote frees grew: hot_grow).  Measured
 * (interleaved medians of 3 to 5): 8 KiB worth made larson-t1 5% slower;
 * at least 8 blocks, glibc-thread-t1 5% slower; every class up to 128 KiB,
 * realloc's peak RSS 29.7 -> 30.3 MiB for nothing else gained.
 *
 * A list pins the pages of its blocks, one page per block at worst: after
 * tests/bench frag's random free, the first blocks freed of each class lay
 * on as many pages, which stayed in use after its last free and, through
 * the thread-less dirty cap (arena.c), kept 238 MiB of its 245 MiB peak
 * resident, against 5 MiB before the lists.  So a list goes back to its
 * pages, and takes no block again until the class's next malloc from a
 * page (the list is empty then: alloc.c opens it), when its class is
 * shrinking: when a page of the class goes back to the arena, and when
 * frees found the list full LM_HOT_SPILL times more than
 * mallocs took from it (hot_room counts down below 0: heap_hot_spill; with
 * few pages, the list may pin them all, and none ever goes back).  frag
 * keeps 5 MiB again; larson-t1, glibc-thread and mstress within 3%
 * (interleaved medians of 5 to 9); glibc-simple's 4 KiB batches 23 -> 31 ns
 * a pair, as before the lists.  A page that goes to the spares stays the
 * heap's, so it flushes nothing: flushing there, a loop of batches of 25
 * blocks of 4 KiB emptied the list before every batch, and no malloc ever
 * took from it (callgrind 195 -> 121 instructions a pair; glibc-simple as
 * a whole, whose other phases churn pages through the arena, 264.8M ->
 * 265.9M; frag's RSS after its frees the same). */
#define HOT_BYTES ((size_t)16 * 1024)
#define HOT_MIN 16
#define HOT_BLOCK_MAX ((size_t)32 * 1024)
static uint32_t hot_max(unsigned c) {
  size_t size = sizeclass_block_size(c);
  if (size > HOT_BLOCK_MAX) return 0;
  size_t n = HOT_BYTES / size;
  return (uint32_t)(n < HOT_MIN ? HOT_MIN : n);
}

/* A remote free kept for reuse (heap_free_slow) that finds its list full
 * grows the list by hot_max(c), up to HOT_GROW times that: a thread that
 * frees many other threads' blocks and allocates the same classes hands
 * them out again instead of sending them home, where they wait in the
 * owner's remote stack for its next slow path while the freeing thread
 * takes fresh pages.  A list shrinks back to hot_max(c) whenever it goes
 * back to its pages (its class shrinking, thread exit, trim), and a thread
 * that frees only its own blocks never grows one (so frag's random free
 * pins no more pages).  Measured (tests/bench, interleaved medians of 5):
 * larson-t16 peak RSS 47.8 -> 36.1 MiB, larson-t1 8.1 -> 6.9, the same
 * time; over all 30 workloads (medians of 3) the RSS geometric mean -2.4%.
 * With the lists of 256 B to 1 KiB 4 times as long from the start instead,
 * larson the same, but frag's RSS after its last free 6.6 -> 15.4 MiB (the
 * lists pinned pages whose use raised the thread-less dirty cap of
 * arena.c). */
#define HOT_GROW 4
static bool hot_grow(lm_heap_t *h, unsigned c) {
  int64_t base = hot_max(c);
  /* full: no room, and blocks on it (an empty list without room was closed
   * because its class shrinks: it stays closed) */
  if (h->hot_room[c] != 0 || !h->hot[c] || h->hot_max[c] >= HOT_GROW * base) return false;
  h->hot_max[c] += base;
  h->hot_room[c] = base;
  return true;
}

/* Back to hot_max(c), before the list goes back to its pages (or when it is
 * empty: then its room shrinks with it). */
static void hot_shrink(lm_heap_t *h, unsigned c) {
  h->hot_max[c] = hot_max(c);
  if (h->hot_room[c] > h->hot_max[c]) h->hot_room[c] = h->hot_max[c];
}

/* ---- heaps: make, adopt, abandon ------------------------------------------ */

static void heap_spares_release(lm_heap_t *h);
static void hot_flush(lm_heap_t *h);
static void hot_flush_class(lm_heap_t *h, unsigned c, int64_t room);

extern int pthread_setspecific(unsigned key, const void *value) __attribute__((weak));
LM_HIDDEN extern unsigned lm_heap_key;
LM_HIDDEN extern bool lm_heap_key_ok;

static lm_heap_t *heap_new_locked(void) {
  size_t size = (sizeof(lm_heap_t) + 63) & ~(size_t)63;
  if ((uintptr_t)meta_end - (uintptr_t)meta_next < size) {
    void *p;
    if (os_map(META_CHUNK, NULL, false, &p) != 0) return NULL;
    meta_next = p;
    meta_end = meta_next + META_CHUNK;
  }
  lm_heap_t *h = (lm_heap_t *)meta_next;
  meta_next += size;
  for (unsigned c = 0; c < LM_CLASSES; c++) h->pages[c] = &lm_page_empty;
  for (unsigned i = 0; i < LM_DIRECT; i++) {
    h->direct[i] = &lm_page_empty;
    h->hot_class[i] = lm_class_direct[i];
  }
  for (unsigned c = 0; c < LM_CLASSES; c++) h->hot_room[c] = h->hot_max[c] = hot_max(c);
  h->next_all = heaps_all;
  __atomic_store_n(&heaps_all, h, __ATOMIC_RELEASE);
  __atomic_store_n(&heaps_made, heaps_made + 1, __ATOMIC_RELAXED);
  return h;
}

/* Wakes the threads in heap_acquire that wait for a held heap to come back. */
static void acquire_wake(void) {
  atomic_fetch_add(&reclaim_word, 1);
  os_futex_wake(&reclaim_word, 1 << 30);
}

/* Takes a heap without a thread (abandoned, else new) and marks it active. */
static lm_heap_t *heap_acquire(void) {
  lm_heap_t *h;
  for (;;) {
    arena_lock();
    if ((h = heaps_abandoned)) abandoned_set(h->next_abandoned);
    else if ((h = heaps_reclaiming)) __atomic_store_n(&heaps_reclaiming, h->next_abandoned, __ATOMIC_RELAXED);
    else if (reclaim_current || heaps_taken) {   /* the free heaps are being trimmed or taken from */
      int w = atomic_load(&reclaim_word);
      acquire_waiters++;
      arena_unlock();
      os_futex_wait(&reclaim_word, w);
      arena_lock();
      acquire_waiters--;
      arena_unlock();
      continue;
    } else {
      h = heap_new_locked();
    }
    break;
  }
  if (h) {
    __atomic_store_n(&h->active, true, __ATOMIC_RELAXED);
    __atomic_store_n(&h->kicked, false, __ATOMIC_RELAXED);
    h->next_abandoned = NULL;
    __atomic_store_n(&heaps_active, heaps_active + 1, __ATOMIC_RELAXED);
    if (heaps_active >= 2) __atomic_store_n(&heaps_multi, true, __ATOMIC_RELAXED);
  }
  arena_unlock();
  return h;
}

/* Puts a heap the calling thread is done with on the abandoned list.  A
 * remote free that saw it still active did not ask for a trim: if one came
 * after the last collect, ask now (seq_cst against remote_push). */
static void heap_release(lm_heap_t *h) {
  heap_publish_all(h);
  arena_lock();
  __atomic_store_n(&h->active, false, __ATOMIC_SEQ_CST);
  __atomic_store_n(&h->kicked, false, __ATOMIC_RELAXED);
  h->abandoned_ms = os_clock_ms();
  h->next_abandoned = heaps_abandoned;
  abandoned_set(h);
  __atomic_store_n(&heaps_active, heaps_active - 1, __ATOMIC_RELAXED);
  arena_unlock();
  if (atomic_load_explicit(&h->remote, memory_order_seq_cst) ||
      atomic_load_explicit(&h->parked, memory_order_seq_cst))
    purger_kick_reclaim();
}

lm_heap_t *heap_get(void) {
  lm_heap_t *h = lm_tls_heap;
  if (LM_LIKELY(h != &lm_heap_empty)) return h;
  if (lm_tls_exited) return NULL;
  init_process();
  if (lm_tls_heap != &lm_heap_empty) return lm_tls_heap;   /* start-up allocated one */
  h = heap_acquire();
  if (!h) return NULL;
  lm_tls_heap = h;
  heap_register_exit(h);
  return h;
}

/* Asks for the thread-exit hook for this thread's heap h, once the start-up
 * hooks are in place (a thread that starts while another thread registers
 * them gets it at its next slow path).  After the TLS pointer is set:
 * setspecific may itself allocate. */
void heap_register_exit(lm_heap_t *h) {
  if (lm_tls_registered || !lm_heap_key_ok || !pthread_setspecific) return;
  lm_tls_registered = true;
  pthread_setspecific(lm_heap_key, h);
}

/* The heap keeps its pages (the next thread to adopt it uses them; empty ones
 * beyond one per class went back as they emptied); its spares go back.
 * (Giving its empty pages to the arena as well raised mstress's peak RSS
 * from 17 to 23 MiB with one thread, 55 to 80 MiB with 16: the next thread
 * takes new spans instead.) */
void heap_abandon(lm_heap_t *h) {
  if (heap_is_sentinel(h)) return;
  lm_tls_heap = &lm_heap_empty;   /* for good: see the top of this file */
  lm_tls_exited = true;
  bool was = heap_busy(h);
  hot_flush(h);
  heap_collect_remote(h);
  heap_spares_release(h);
  heap_unbusy(h, was);
  heap_release(h);
}

/* Blocks freed into a heap whose thread has exited wait in its remote stack
 * until a new thread adopts the heap, which may be never (a new thread takes
 * the heap abandoned last).  So the purger (woken by such frees, see
 * purger.c; or, without its thread, the next slow path: purger_poll) and
 * lm_trim reclaim each abandoned heap in turn, keeping the others
 * adoptable, so the number of heaps stays bounded by the most threads alive
 * at once.  lm_trim, and the purger for a heap abandoned a purge delay ago
 * or more, trim it (collect, return every empty page); the purger only
 * collects one abandoned more recently (pages that empty go back, but the
 * last page of each class stays for the next thread).  Measured
 * (tests/bench churn: 20000 threads, 4 at a time, 50 objects each freed by
 * the main thread after the join), RSS grew by 43 KiB per 1000 threads
 * without the wake and 20 with it (medians of 5; runs spread from 12 to
 * 55); trimming at every wake, 52 against 19 without the wake (medians of
 * 4).  The reclaim never allocates or waits for a heap, so no thread waits
 * for itself. */

void heap_fork_prepare(void) { lock_acquire(&reclaim_lock); }
void heap_fork_parent(void) { lock_release(&reclaim_lock); }

/* The child has one thread: the other threads' heaps are abandoned there, so
 * that they are reclaimed and adopted and `threads` counts right.  (The
 * prepare handler held the reclaim lock, so no reclaim was under way.) */
void heap_fork_child(void) {
  atomic_store(&reclaim_lock.state, 0);
  size_t active = 0;
  for (lm_heap_t *h = heaps_all; h != &lm_heap_empty; h = h->next_all) {
    if (h == lm_tls_heap) { active++; continue; }
    if (!h->active) continue;
    h->active = false;
    h->kicked = false;
    /* A heap its thread was changing at the fork may be torn: it is left
     * out (its memory stays with it), never adopted or trimmed.  A torn
     * fast path (a block half taken or half freed) only loses that block. */
    if (h->busy) continue;
    h->next_abandoned = heaps_abandoned;
    abandoned_set(h);
  }
  heaps_active = active;
  heaps_multi = false;
  heaps_taken = acquire_waiters = 0;   /* their threads are not in the child */
}

/* Takes back the blocks other threads freed into abandoned heap h, as its
 * own thread would, but keeps no spare pages (as heap_abandon): pages that
 * empty go to the arena, except the last page of a class, kept for the
 * thread that adopts the heap next. */
static void heap_collect(lm_heap_t *h) {
  bool was = heap_busy(h);
  heap_collect_remote(h);
  heap_spares_release(h);
  heap_publish_all(h);
  heap_unbusy(h, was);
}

void heap_reclaim_abandoned(bool all) {
  lock_acquire(&reclaim_lock);
  arena_lock();
  __atomic_store_n(&heaps_reclaiming, heaps_abandoned, __ATOMIC_RELAXED);   /* still adoptable from there */
  abandoned_set(NULL);
  arena_unlock();
  for (;;) {
    arena_lock();
    lm_heap_t *h = heaps_reclaiming;
    if (h) __atomic_store_n(&heaps_reclaiming, h->next_abandoned, __ATOMIC_RELAXED);
    reclaim_current = h;
    arena_unlock();
    if (!h) break;
    __atomic_store_n(&h->kicked, false, __ATOMIC_RELAXED);
    uint64_t now = os_clock_ms();
    if (all || now < h->abandoned_ms || now - h->abandoned_ms >= lm_options.purge_delay_ms)
      heap_trim(h);
    else
      heap_collect(h);
    arena_lock();
    h->next_abandoned = heaps_abandoned;
    abandoned_set(h);
    reclaim_current = NULL;
    arena_unlock();
    acquire_wake();   /* heap_acquire may wait for it */
  }
  lock_release(&reclaim_lock);
}

lm_heap_t *heap_all(void) { return __atomic_load_n(&heaps_all, __ATOMIC_ACQUIRE); }

bool heap_multithreaded(void) { return __atomic_load_n(&heaps_multi, __ATOMIC_RELAXED); }

size_t heap_counts(size_t *made) {
  *made = __atomic_load_n(&heaps_made, __ATOMIC_RELAXED);
  return __atomic_load_n(&heaps_active, __ATOMIC_RELAXED);
}

/* ---- pages of a heap ------------------------------------------------------ */

/* The empty page of a class above LM_BIG_BLOCK may stay, as the only page
 * of its class; returns a page that was kept that way and must go now, or
 * NULL.  A heap keeps LM_BIG_KEPT such pages at most, over all those
 * classes: a loop that allocates and frees one or two big blocks keeps its
 * pages, but a heap that used many of those classes now and then does not
 * keep a page of each, a few hundred KiB apiece, all resident.  Measured
 * (tests/bench mstress, 0.1% of objects 64 KiB..1 MiB): peak RSS with 16
 * threads 96 -> 79 MiB (74 keeping none); keeping none cost 280 ns per
 * malloc+free pair of one 64 KiB block in a loop, against 23. */
static lm_page_t *heap_keep_big(lm_heap_t *h, lm_page_t *page) {
  for (unsigned i = 0; i < LM_BIG_KEPT; i++)
    if (h->big_kept[i] == page) return NULL;
  unsigned slot = h->big_next++ % LM_BIG_KEPT;
  lm_page_t *old = h->big_kept[slot];
  h->big_kept[slot] = page;
  if (!old || page_used(old) != 0) return NULL;
  unsigned c = old->cls;
  return h->pages[c] == old && h->tails[c] == old ? old : NULL;
}

/* Whether p is a kept empty page whose blocks were handed out. */
static bool page_idle(const lm_page_t *p) {
  return p != &lm_page_empty && !p->next && page_used(p) == 0 && p->reserved;
}

/* An empty page of a class above LM_IDLE_BLOCK that a heap keeps (the only
 * page of its class) gives its memory back beyond its first block once it
 * has stayed empty for 1/LM_IDLE_DIVISOR of the purge delay (20 ms by
 * default): with many threads, each heap's page of each such class it used
 * now and then stayed resident, every block it ever handed out (tests/bench
 * mstress with 16 threads, sampled at the peak: the pages of the 8 to
 * 32 KiB classes held 31.9 MiB resident for 3.1 MiB in use).  The first
 * block stays, so a thread that uses one block of the class at a time
 * faults nothing in.  The heap looks every LM_IDLE_EVENTS times it keeps
 * such a page empty: it stamps the idle pages it has not seen yet (each one
 * loses its stamp whenever it empties again) and resets those stamped a
 * delay ago or more.  So a loop that allocates and frees such blocks reads
 * the clock once per LM_IDLE_EVENTS frees: 12.5 -> 15.8 ns per malloc+free
 * of a 16 KiB block (a clock read and a look at every class on each free
 * took it to 46 ns, and looking only when the page differs from the last
 * one still cost 37 ns when two classes alternate).  Measured (mstress-t16,
 * interleaved): peak RSS 77.0 -> 70.3 MiB with the main job's build of the
 * workload, 73.6 -> 66.7 with a gcc build (medians of 9); CPU time 339 ->
 * 365 ms and 361 -> 374 ms (medians of 7), from the blocks faulted in
 * again.  Looking every time, with a stamp at every emptying: 76.5 -> 66.9
 * MiB, CPU time 626 -> 692 and 597 -> 608 ms.  Reset after 10 ms: 64.0
 * MiB for 17% more CPU time; 25 ms: 68.9; 100 ms: 75.4 (against 77.4).
 * Also resetting them at thread exit: 58.7 MiB, for 13% more CPU time.
 * Ageing them by the heap's count of such events instead of the clock kept
 * 70.8 to 75.1 MiB. */
static void heap_reset_idle(lm_heap_t *h, lm_page_t *kept) {
  kept->idle_ms = 0;
  if (++h->idle_events % LM_IDLE_EVENTS) return;
  uint32_t now = (uint32_t)os_clock_ms() | 1;
  uint32_t idle = (uint32_t)(lm_options.purge_delay_ms / LM_IDLE_DIVISOR);
  bool was = heap_busy(h);
  for (unsigned c = sizeclass_of(LM_IDLE_BLOCK + 1); c < LM_CLASSES; c++) {
    lm_page_t *p = h->pages[c];
    if (!page_idle(p)) continue;
    if (!p->idle_ms) p->idle_ms = now;
    else if (now - p->idle_ms >= idle) page_reset(p, h);
  }
  heap_unbusy(h, was);
}

/* A local free took the page down to its low mark: give its free units
 * back if it is sparse, or the page itself back if it is empty, unless it is
 * the only page of its class (for a class above LM_BIG_BLOCK, see
 * heap_keep_big), and for a class above 1 KiB of the plain size: kept
 * empty, grown pages of 1 to 4 KiB classes (heap_page_new; 256 KiB of
 * 4 KiB blocks) counted as memory in use, and the thread-less dirty cap,
 * eight times that, let tests/bench frag keep 36 MiB resident after its
 * last free, against 5.  (Not keeping the grown pages of classes up to
 * 1 KiB either cost glibc-simple 5% more instructions.)  Empty pages of
 * classes above LM_BIG_BLOCK go to the arena, not to the spares, where
 * large objects can use them. */
static LM_NOINLINE void page_low_slow(lm_heap_t *h, lm_page_t *page);

/* Counts page in (sign 1) or out (-1) of h's spares. */
static void spare_count_add(lm_heap_t *h, const lm_page_t *page, int sign) {
  h->spare_count += (uint32_t)sign;
  h->spare_slices += (uint32_t)sign * page->slice_count;
}

/* The spares have no room for page: their oldest (the last: pages go in
 * at the front) goes to the arena if HEAP_SPARE_STALE pages emptied since
 * it came.  Without this the spares kept a program's first sizes for good,
 * and every page of a size it moved on to went through the arena:
 * tests/bench glibc-simple (1 KiB blocks, then 4 KiB), callgrind 267.8M ->
 * 236.3M instructions (tcmalloc 228.5M), peak RSS 10.0 -> 9.5 MiB. */
static bool spare_room(lm_heap_t *h, const lm_page_t *page) {
  if (h->spare_count < HEAP_SPARE_MAX && h->spare_slices + page->slice_count <= HEAP_SPARE_SLICES)
    return true;
  if (!h->spare) return false;   /* a page larger than all the room */
  lm_page_t **at = &h->spare;
  while ((*at)->next) at = &(*at)->next;
  lm_page_t *old = *at;
  if (h->spare_clock - old->idle_ms < HEAP_SPARE_STALE) return false;
  *at = NULL;
  spare_count_add(h, old, -1);
  arena_free_span(old, false);
  return h->spare_slices + page->slice_count <= HEAP_SPARE_SLICES;
}

void heap_page_low(lm_heap_t *h, lm_page_t *page) {
  /* The common case first, without the slow part's register saves: the
   * only page of a class up to 1 KiB emptied, and stays (a loop that
   * allocates and frees one block ends here at every free; tests/bench
   * glibc-simple, callgrind: 31 -> 10 instructions a call on average). */
  unsigned c = page->cls;
  if (page->low == 0 && page->block_size <= LM_DIRECT_MAX && h->pages[c] == page &&
      h->tails[c] == page)
    return;
  page_low_slow(h, page);
}

static void page_low_slow(lm_heap_t *h, lm_page_t *page) {
  unsigned c = page->cls;
  if (page->low != 0) {
    bool was = heap_busy(h);
    if (page_ripe(page)) {
      page_scavenge(page);
      page_set_low(page, page_next_mark(page));
    } else {
      page_set_low(page, 0);
    }
    heap_unbusy(h, was);
    return;
  }
  bool big = page->block_size > LM_BIG_BLOCK;
  if (h->pages[c] == page && h->tails[c] == page &&
      (page->block_size <= LM_DIRECT_MAX || page->slice_count == sizeclass_slices(c))) {
    if (page->block_size > LM_IDLE_BLOCK) heap_reset_idle(h, page);
    if (!big || !(page = heap_keep_big(h, page))) return;
    c = page->cls;
  }
  bool was = heap_busy(h);
  queue_remove(h, c, page);
  h->npages[c]--;
  page_forget_purged(page);
  heap_publish(h, c);
  h->spare_clock++;
  if (!big && spare_room(h, page)) {
    __atomic_store_n(&page->owner, LM_OWNER_FREE, __ATOMIC_RELAXED);
    page->idle_ms = h->spare_clock;
    page->next = h->spare;
    h->spare = page;
    spare_count_add(h, page, 1);
  } else {
    arena_free_span(page, false);
    hot_shrink(h, c);
    if (h->hot[c]) hot_flush_class(h, c, 0);   /* see hot_max */
  }
  heap_unbusy(h, was);
}

static void heap_spares_release(lm_heap_t *h) {
  while (h->spare) {
    lm_page_t *page = h->spare;
    h->spare = page->next;
    spare_count_add(h, page, -1);
    arena_free_span(page, false);
  }
}

static void remote_forward(lm_heap_t *owner, lm_block_t *b);

/* Frees block b of page (owned by h when the caller looked) on h's behalf;
 * the block's checks are done.  A full page is out of h's queue, and
 * another heap may take it meanwhile (heap_drain): h takes it back into its
 * queue with a CAS on the owner word, or, if it was taken, sends b to the
 * new owner. */
static void heap_free_block(lm_heap_t *h, lm_page_t *page, lm_block_t *b) {
  b->tag = block_tag(b);
  uintptr_t w = __atomic_load_n(&page->owner, __ATOMIC_ACQUIRE);
  if ((w & LM_OWNER_FULL) || (w & ~LM_OWNER_FLAGS) != (uintptr_t)h) {
    if ((w & ~LM_OWNER_FLAGS) != (uintptr_t)h ||
        !__atomic_compare_exchange_n(&page->owner, &w, (uintptr_t)h | (w & LM_OWNER_SPARSE), false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
      lm_heap_t *to = (lm_heap_t *)(w & ~LM_OWNER_FLAGS);
      LM_INTERNAL_ASSERT(to != NULL);   /* a heap: b keeps its page in use */
      remote_forward(to, b);
      return;
    }
    queue_push_back(h, page->cls, page);
  }
  b->next = page->free;
  page->free = b;
  if (--page->used == 0) heap_page_low(h, page);   /* at the low mark */
}

/* Set in remote_since by heap_drain: the stack was emptied by another heap,
 * not by its owner, so the next push keeps the time its blocks have waited
 * since (without it each drain of larson's main heap made its blocks look
 * fresh, and for OUTBOX_IDLE_MS they were kept on hot lists again, to come
 * back as remote frees: larson-t1 at 48M steps made 2.95M remote frees,
 * 2.17M with it; at 16M steps 0.1824 -> 0.1765 s, medians of 21). */
#define REMOTE_DRAINED ((uint64_t)1 << 63)

/* Gives the chain head..tail of blocks (tagged free) to the heap that owns
 * their pages, with one CAS.  seq_cst, so that a pusher that then reads the
 * owner active is seen by heap_release. */
static void remote_push(lm_heap_t *owner, lm_block_t *head, lm_block_t *tail) {
  lm_block_t *top = atomic_load_explicit(&owner->remote, memory_order_relaxed);
  do {
    tail->next = top;
  } while (!atomic_compare_exchange_weak_explicit(&owner->remote, &top, head,
                                                  memory_order_seq_cst, memory_order_relaxed));
  if (!top) {   /* the clock starts, unless a drain emptied the stack (REMOTE_DRAINED) */
    uint64_t since = atomic_load_explicit(&owner->remote_since, memory_order_relaxed);
    atomic_store_explicit(&owner->remote_since,
                          since & REMOTE_DRAINED ? since & ~REMOTE_DRAINED : os_clock_ms(),
                          memory_order_relaxed);
  }
}

#ifndef OUTBOX_IDLE_MS   /* tests/core stress_test_drain sets 0 */
#define OUTBOX_IDLE_MS 50
#endif
/* Whether h's thread has stopped taking its blocks back: some have waited
 * on its remote stack for OUTBOX_IDLE_MS (larson's main thread, which
 * allocated the first objects and waits in join while the workers free
 * them).  A thread that is only off the CPU, with more threads than cores,
 * takes its blocks back sooner than that (mostly: tests/bench larson-t16
 * at 10 ms drained 850 times, mostly heaps of running threads, and took
 * 20% to 40% more CPU time). */
static bool heap_idle(const lm_heap_t *h, uint64_t now) {
  static const uint64_t idle_ms = OUTBOX_IDLE_MS;   /* a variable: 0 warns as a constant */
  uint64_t since = atomic_load_explicit(&h->remote_since, memory_order_relaxed) & ~REMOTE_DRAINED;
  return atomic_load_explicit(&h->remote, memory_order_relaxed) && now >= since &&
         now - since >= idle_ms;
}
/* Blocks pushed into a heap without a thread wait for its trim: ask for one,
 * once per cycle (seq_cst: see heap_release); poll runs it without the
 * purger thread (never from inside a trim). */
static void remote_kick(lm_heap_t *owner, bool poll) {
  if (__atomic_load_n(&owner->active, __ATOMIC_SEQ_CST) ||
      __atomic_load_n(&owner->kicked, __ATOMIC_RELAXED))
    return;
  __atomic_store_n(&owner->kicked, true, __ATOMIC_RELAXED);
  purger_kick_reclaim();
  if (poll) purger_poll();
}

/* Sends block b (tagged free) on to `owner`, the heap its page moved to. */
static void remote_forward(lm_heap_t *owner, lm_block_t *b) {
  remote_push(owner, b, b);
  remote_kick(owner, false);
}

/* The page of block b, the next in a chain of remote frees, prefetching
 * the block its batch hints at (see heap_collect_remote). */
static lm_page_t *chain_page(lm_block_t *b) {
  lm_page_t *page = page_lookup(b);
  LM_ASSERT(page);
  if (LM_DEBUG < 2 && page->block_size >= sizeof(lm_batch_block_t))
    __builtin_prefetch(((lm_batch_block_t *)b)->ahead, 1);
  return page;
}

/* ---- outboxes: remote frees batched per owner heap ------------------------ */

/* A remote free would otherwise cost a CAS on the owner's `remote` word per
 * block, a word the owner empties at its slow paths: the line moves between
 * cores once per block.  So blocks are gathered per owner in the freeing
 * heap's outbox slot for that owner and handed over a batch at a time.  A
 * block waiting there stays counted in its page's `used`, so its page cannot
 * be released under it; a slot holds at most OUTBOX_BYTES (or OUTBOX_BLOCKS),
 * and every slot is flushed at thread exit and trim, and whenever the heap
 * takes a new page.  So a thread that frees a few blocks of many pages and
 * then only waits keeps those pages (up to 4 x 63 of them) until it frees,
 * allocates a page's worth, trims or exits.  Blocks for a heap
 * without a thread are batched too (larson's threads free what their
 * exited predecessors allocated); its trim is asked for at the flush. */
#define OUTBOX_BLOCKS 64
#define OUTBOX_BYTES ((uint32_t)32 * 1024)

static struct lm_outbox_s *outbox_of(lm_heap_t *h, const lm_heap_t *to) {
  uint64_t k = (uintptr_t)to * 0x9e3779b97f4a7c15ull;
  return &h->outbox[k >> (64 - 2)];
}
_Static_assert(LM_OUTBOXES == 4, "outbox_of hashes to 2 bits");

static LM_NOINLINE void outbox_flush(struct lm_outbox_s *o) {
  if (!o->head) return;
  remote_push(o->to, o->head, o->tail);
  o->idle = heap_idle(o->to, os_clock_ms());
  o->head = o->tail = NULL;
  o->count = o->bytes = 0;
  remote_kick(o->to, false);   /* its poll waits until the heap is not busy */
}

static void outbox_flush_all(lm_heap_t *h) {
  for (unsigned i = 0; i < LM_OUTBOXES; i++) outbox_flush(&h->outbox[i]);
}

/* Adds block b (tagged free, of bs bytes) of a page owned by `to` to outbox
 * o, h's slot for `to` (outbox_of); h is busy.  The ahead hint is the block
 * added LM_OUTBOX_AHEAD frees before (in the first ones of a batch, one of
 * the last batch's: only ever prefetched, so a stale hint costs nothing). */
static inline void outbox_put(struct lm_outbox_s *o, lm_heap_t *to, lm_block_t *b, size_t bs) {
  if (LM_UNLIKELY(o->to != to)) {
    outbox_flush(o);
    o->to = to;
    o->idle = false;
  }
  lm_block_t *head = o->head;
  b->next = head;
  if (LM_DEBUG < 2 && bs >= sizeof(lm_batch_block_t)) {
    lm_block_t **r = &o->recent[o->count % LM_OUTBOX_AHEAD];
    ((lm_batch_block_t *)b)->ahead = *r;
    *r = b;
  }
  if (!head) o->tail = b;
  o->head = b;
  o->bytes += (uint32_t)bs;
  o->count++;
  if (LM_UNLIKELY(o->count >= OUTBOX_BLOCKS || o->bytes >= OUTBOX_BYTES)) outbox_flush(o);
}

static inline void outbox_add(lm_heap_t *h, lm_heap_t *to, lm_block_t *b, size_t bs) {
  outbox_put(outbox_of(h, to), to, b, bs);
}

/* Whether `to` was idle (heap_idle) at h's last flush to it.  Its blocks
 * then go home rather than onto h's hot lists, where they would stay its
 * blocks and come back as remote frees again and again (its full pages
 * change hands there instead: heap_drain). */
static inline bool outbox_idle(const struct lm_outbox_s *o, const lm_heap_t *to) {
  return o->to == to && o->idle;
}

/* Whether h keeps a block of class c that it frees for `to` (another heap)
 * on its hot list, room permitting, rather than sending it home: see "Frees
 * by other threads" at the top of this file. */
static inline bool foreign_keep(lm_heap_t *h, unsigned c, const lm_heap_t *to) {
  return c - FOREIGN_MIN_CLASS < LM_DIRECT_CLASSES - FOREIGN_MIN_CLASS && !queue_empty(h, c) &&
         !outbox_idle(outbox_of(h, to), to);
}

/* Takes the remote stack of `to`, a heap whose thread has stopped taking
 * its blocks back (outbox_idle: larson's main thread, which allocated the
 * first objects and waits in join while the workers free them), and with
 * it the full pages those blocks belong to: a full page is in no queue, so
 * h takes it over with one CAS on its owner word (heap_free_block's CAS
 * settles a race with `to` taking it back), then frees the blocks into it,
 * and the page serves h's mallocs, or goes back to the arena once empty.
 * Blocks of pages still in `to`'s queues are parked for it (its collect
 * takes them; the next drain takes only what came since); blocks of pages
 * that moved go to their owner.  h is busy; `to` keeps counting the
 * pages taken in its npages (used only to size its next pages). */
static LM_NOINLINE void heap_drain(lm_heap_t *h, lm_heap_t *to) {
  uint64_t since = atomic_load_explicit(&to->remote_since, memory_order_relaxed);
  lm_block_t *b = atomic_exchange_explicit(&to->remote, NULL, memory_order_acquire);
  if (b) atomic_store_explicit(&to->remote_since, since | REMOTE_DRAINED, memory_order_relaxed);
  lm_block_t *back = NULL, *back_tail = NULL;
  while (b) {
    lm_block_t *next = b->next;
    lm_page_t *page = chain_page(b);
    /* Taken not full, straight into h's queue: a page taken as full could
     * be taken again, by a drain of h, before h had freed b into it. */
    uintptr_t w = (uintptr_t)to | LM_OWNER_FULL;
    if (__atomic_compare_exchange_n(&page->owner, &w, (uintptr_t)h, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_ACQUIRE)) {
      LM_INTERNAL_ASSERT(!page->free && page->reserved == page->capacity &&
                         page_used(page) == page->reserved);
      h->npages[page->cls]++;
      page->idle_ms = 0;
      queue_push_back(h, page->cls, page);
      w = (uintptr_t)h;
    }
    lm_heap_t *owner = (lm_heap_t *)(w & ~LM_OWNER_FLAGS);
    if (owner == h) {
      heap_free_block(h, page, b);
    } else if (owner == to) {
      b->next = back;
      back = b;
      if (!back_tail) back_tail = b;
    } else {
      remote_forward(owner, b);
    }
    b = next;
  }
  if (back) {   /* parked, so that the next drain does not walk them again */
    lm_block_t *top = atomic_load_explicit(&to->parked, memory_order_relaxed);
    do {
      back_tail->next = top;
    } while (!atomic_compare_exchange_weak_explicit(&to->parked, &top, back, memory_order_seq_cst,
                                                    memory_order_relaxed));
    remote_kick(to, false);   /* it may have exited since */
  }
}

/* Before h takes a fresh page: drains the idle heaps (heap_idle) among the
 * next DRAIN_LOOK of heaps_all, a few at each call so that a process with
 * many threads does not walk them all each time, and once a millisecond at
 * most (each look reads other heaps' `remote` lines).  Whether any was. */
#define DRAIN_LOOK 4
static bool heap_drain_idle(lm_heap_t *h) {
  if (__atomic_load_n(&heaps_made, __ATOMIC_RELAXED) < 2) return false;   /* no other heap */
  uint64_t now = os_clock_ms();
  if (now == h->drain_ms) return false;
  h->drain_ms = now;
  bool any = false;
  lm_heap_t *o = h->drain_next;
  for (unsigned n = 0; n < DRAIN_LOOK; n++, o = o->next_all) {
    if (!o || o == &lm_heap_empty) o = heap_all();
    if (o != h && heap_idle(o, now) && __atomic_load_n(&o->active, __ATOMIC_RELAXED)) {
      heap_drain(h, o);
      any = true;
    }
  }
  h->drain_next = o;
  return any;
}

/* Gives the blocks on h's hot list of class c back to their pages, and
 * leaves the list room for `room` blocks; h is busy.  A block whose page
 * has another owner goes home as a remote free: a remote free kept for
 * reuse, or, in a fork child, a block of a page that heap_take_pages moved
 * out of an abandoned heap before its next adopter flushed (heap_fork_child
 * abandons the heaps of the threads that are gone with their lists). */
static void hot_flush_class(lm_heap_t *h, unsigned c, int64_t room) {
  lm_block_t *b = h->hot[c];
  h->hot[c] = NULL;
  h->hot_room[c] = room;
  while (b) {
    lm_block_t *next = b->next;
    lm_page_t *page = page_lookup(b);
    uintptr_t owner = __atomic_load_n(&page->owner, __ATOMIC_ACQUIRE) & ~LM_OWNER_FLAGS;
    if (owner == (uintptr_t)h) heap_free_block(h, page, b);
    else outbox_add(h, (lm_heap_t *)owner, b, page->block_size);
    b = next;
  }
}

/* lm_free's tail when the list of b's class spilled (see hot_max). */
void heap_hot_spill(lm_heap_t *h, lm_page_t *page, lm_block_t *b) {
  bool was = heap_busy(h);
  hot_shrink(h, page->cls);
  hot_flush_class(h, page->cls, 0);   /* the page keeps b counted: it stays */
  heap_free_block(h, page, b);
  heap_unbusy(h, was);
}

/* Gives every hot list back, and sends the outboxes (thread exit, trim). */
static void hot_flush(lm_heap_t *h) {
  for (unsigned c = 0; c < LM_CLASSES; c++) {
    hot_shrink(h, c);
    hot_flush_class(h, c, h->hot_max[c]);
  }
  outbox_flush_all(h);
}

/* Frees the blocks other threads sent home.  Each block's link is a miss
 * (another core wrote it last), and the links form one chain: walking it
 * missed at every block, one after the other (tests/bench prodcons-t2:
 * 28% of the run's samples, 95% of them on that load).  So the walk
 * prefetches each batch block's ahead hint (lm_batch_block_t), 8 blocks
 * further down, and about 8 misses are in flight at once. */
static void collect_chain(lm_heap_t *h, lm_block_t *b) {
  while (b) {
    lm_block_t *next = b->next;
    lm_page_t *page = chain_page(b);
    lm_heap_t *owner = (lm_heap_t *)(__atomic_load_n(&page->owner, __ATOMIC_ACQUIRE) & ~LM_OWNER_FLAGS);
    if (LM_LIKELY(owner == h)) heap_free_block(h, page, b);
    else remote_forward(owner, b);   /* its page moved after the push (heap_take_pages, heap_drain) */
    b = next;
  }
}

void heap_collect_remote(lm_heap_t *h) {
  collect_chain(h, atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire));
  if (atomic_load_explicit(&h->parked, memory_order_relaxed))
    collect_chain(h, atomic_exchange_explicit(&h->parked, NULL, memory_order_acquire));
}

void heap_trim(lm_heap_t *h) {
  bool was = heap_busy(h);
  hot_flush(h);
  heap_collect_remote(h);
  for (unsigned c = 0; c < LM_CLASSES; c++) {
    lm_page_t *page = queue_empty(h, c) ? NULL : h->pages[c];
    while (page) {
      lm_page_t *next = page->next;
      if (page_used(page) == 0) {
        queue_remove(h, c, page);
        h->npages[c]--;
        page_forget_purged(page);
        arena_free_span(page, false);
      }
      page = next;
    }
  }
  heap_collect(h);   /* what came back meanwhile, the spares, the statistics */
  heap_unbusy(h, was);
}

/* A new page for class c.  A heap's first HEAP_SMALL_PAGES pages of a class
 * up to 1 KiB hold 8 blocks or more; later ones at least LM_GROWN_BLOCKS.  A
 * page that runs dry takes malloc to its slow path, and a free into it puts
 * it back in the queue: with hundreds of blocks of a class live and freed at
 * random (mimalloc-bench's larson), 16 KiB pages did that every few
 * mallocs.  A thread with few blocks of a class keeps small pages (fewer
 * than 8 let more threads' pages grow: larson-t16's peak RSS rose with 2
 * from 36.6 to 45.3 MiB, with 8 to 39.4).  Classes above 1 KiB, up to
 * LM_GROWN_MAX, grow after HEAP_SMALL_PAGES_MEDIUM pages: batches of 1600
 * blocks of 4 KiB cycled 200 pages of 8 blocks through the arena each time
 * (tests/bench glibc-simple: 0.272 -> 0.249 s, peak RSS 8.3 -> 8.7 MiB;
 * growing after 8 pages raised it to 9.0). */
#define HEAP_SMALL_PAGES 8
#define HEAP_SMALL_PAGES_MEDIUM 16

/* A page of class c with free blocks, taken from an abandoned heap into h.
 * A thread that exits leaves its heap's pages to the next thread that
 * adopts the heap; while other threads run, the holes in them would wait
 * (tests/bench churn-xfree: waves of 32 threads that each free half of
 * their objects and exit; the pages of a wave held 57 to 60 MiB resident
 * at its peak for 36 to 38 MiB of blocks in use).  So a heap that needs a
 * page of class c first looks at the first TAKE_LOOK abandoned heaps (and
 * as many that a reclaim under way has not reached) for one whose queue of
 * class c is not empty, holds it as an adopter would (off the lists: no
 * other thread adopts, trims or takes from it; a new thread that finds no
 * other heap waits for it rather than making one, so heaps still never
 * outnumber the threads), and moves the head of that queue into its own.
 * A remote free that read the old owner lands in the abandoned heap's
 * remote stack, whose collect forwards it to the page's new owner.  Full pages stay where they are (no
 * list holds them), and so do the heap's other pages, for its next adopter.
 * Measured (tests/bench, interleaved medians of 7 to 15): churn-xfree peak
 * RSS 65.2 -> 34.9 MiB; mstress-t2 20.9 -> 21.0, mstress-t16 61.4 -> 57.3
 * (runs spread from 39 to 75); larson-t16 44.2 -> 42.8.  Moving the whole
 * queue gave churn-xfree the same but mstress-t2 21.2. */
#define TAKE_LOOK 8
static bool heap_take_pages(lm_heap_t *h, unsigned c) {
  if (!__atomic_load_n(&heaps_abandoned, __ATOMIC_RELAXED) &&
      !__atomic_load_n(&heaps_reclaiming, __ATOMIC_RELAXED))
    return false;
  arena_lock();
  lm_heap_t *a = NULL;
  /* the abandoned heaps, and those a reclaim under way has not reached */
  for (unsigned k = 0; k < 2 && !a; k++) {
    lm_heap_t **at = k ? &heaps_reclaiming : &heaps_abandoned;
    for (unsigned n = 0; *at && n < TAKE_LOOK; at = &(*at)->next_abandoned, n++) {
      if ((*at)->pages[c] != &lm_page_empty) {
        a = *at;
        __atomic_store_n(at, a->next_abandoned, __ATOMIC_RELAXED);
        /* held: a fork now leaves it out of the child's lists unless it is
         * whole (heap_fork_child), as a thread's own heap */
        __atomic_store_n(&a->active, true, __ATOMIC_RELAXED);
        heaps_taken++;
        break;
      }
    }
  }
  arena_unlock();
  if (!a) return false;
  bool was_a = heap_busy(a), was_h = heap_busy(h);
  heap_collect_remote(a);
  if (!queue_empty(a, c)) {
    lm_page_t *p = a->pages[c];
    queue_remove(a, c, p);
    a->npages[c]--;
    uintptr_t flags = __atomic_load_n(&p->owner, __ATOMIC_RELAXED) & LM_OWNER_SPARSE;
    __atomic_store_n(&p->owner, (uintptr_t)h | flags, __ATOMIC_SEQ_CST);
    p->idle_ms = 0;
    h->npages[c]++;
    queue_push_back(h, c, p);
  }
  heap_collect_remote(a);   /* frees that read the old owner go to h */
  heap_unbusy(h, was_h);
  heap_unbusy(a, was_a);
  arena_lock();
  __atomic_store_n(&a->active, false, __ATOMIC_SEQ_CST);
  a->next_abandoned = heaps_abandoned;
  abandoned_set(a);
  heaps_taken--;
  bool waiters = acquire_waiters != 0;
  arena_unlock();
  if (waiters) acquire_wake();
  /* a remote free that saw it held did not ask for a trim (as heap_release) */
  if (atomic_load_explicit(&a->remote, memory_order_seq_cst) ||
      atomic_load_explicit(&a->parked, memory_order_seq_cst))
    purger_kick_reclaim();
  return true;
}

static lm_page_t *heap_page_new(lm_heap_t *h, unsigned c) {
  uint32_t small = sizeclass_block_size(c) <= LM_DIRECT_MAX ? HEAP_SMALL_PAGES : HEAP_SMALL_PAGES_MEDIUM;
  size_t n = h->npages[c] < small ? sizeclass_slices(c) : sizeclass_slices_grown(c);
  lm_page_t *page = NULL;
  for (lm_page_t **at = &h->spare; *at; at = &(*at)->next) {
    if ((*at)->slice_count == n) {
      page = *at;
      *at = page->next;
      spare_count_add(h, page, -1);
      page->idle_ms = 0;
      break;
    }
  }
  bool zeroed, spare = page != NULL;
  if (!page) {
    outbox_flush_all(h);   /* what waits for other heaps goes home now and then */
    purger_poll();   /* without the purger thread, the trims it would do */
    page = arena_alloc_span(n, LM_KIND_SMALL, &zeroed);
  }
  if (!page) return NULL;
  if (spare && page->cls == c && page->free) {
    /* A spare of the same class: its blocks are all on its free list
     * still (page_forget_purged cleared a list that lacked some),
     * threaded: no extend per OS page again. */
    page->next = page->prev = NULL;
    __atomic_store_n(&page->owner, (uintptr_t)h, __ATOMIC_RELEASE);
  } else {
    page_init(page, h, c);
  }
  h->npages[c]++;
  queue_push_front(h, c, page);
  return page;
}

/* Checks class c's queue and every page in it; aborts on a violation. */
bool heap_validate_class(const lm_heap_t *h, unsigned c) {
  if (h->pages[c] != &lm_page_empty) {
    const lm_page_t *prev = NULL;
    for (const lm_page_t *p = h->pages[c]; p; prev = p, p = p->next) {
      LM_CHECK((__atomic_load_n(&p->owner, __ATOMIC_SEQ_CST) & ~LM_OWNER_SPARSE) == (uintptr_t)h && p->cls == c && p->prev == prev);
      page_validate(p);
    }
    LM_CHECK(h->tails[c] == prev);
  }
  for (unsigned i = 0; i < LM_BIG_KEPT; i++) {
    const lm_page_t *k = h->big_kept[i], *p = NULL;
    if (!k || k->cls != c) continue;
    LM_CHECK(k->block_size > LM_BIG_BLOCK);
    if (h->pages[c] != &lm_page_empty)
      for (p = h->pages[c]; p && p != k; p = p->next) {}
    LM_CHECK(p == k);
  }
  for (unsigned i = 0; i < LM_DIRECT; i++)
    if (lm_class_direct[i] == c)
      LM_CHECK(h->direct[i] == h->pages[c]);
  return true;
}

/* Checks h's hot list of class c. */
static void hot_validate(const lm_heap_t *h, unsigned c) {
  uint64_t n = 0;
  for (const lm_block_t *b = h->hot[c]; b; b = b->next, n++) {
    const lm_page_t *page = page_lookup(b);
    LM_CHECK(n < (uint64_t)h->hot_max[c] && page && page->cls == c && page_is_block(page, b));
    uintptr_t owner = __atomic_load_n(&page->owner, __ATOMIC_SEQ_CST) & ~LM_OWNER_FLAGS;
    /* another heap's: a remote free kept for reuse, or any block of a full
     * page another heap took (heap_drain) */
    LM_CHECK(owner == (uintptr_t)h || (owner != LM_OWNER_LARGE && page->kind == LM_KIND_SMALL));
    LM_CHECK(b->tag == block_tag(b));
  }
  int64_t base = hot_max(c);
  LM_CHECK(h->hot_max[c] >= base && h->hot_max[c] <= HOT_GROW * base &&
           (base == 0 || h->hot_max[c] % base == 0) && (int64_t)n + h->hot_room[c] <= h->hot_max[c]);
}

bool heap_validate(const lm_heap_t *h) {
  for (unsigned c = 0; c < LM_CLASSES; c++) heap_validate_class(h, c), hot_validate(h, c);
  uint32_t n = 0, slices = 0, age = 0;
  for (const lm_page_t *p = h->spare; p; p = p->next, n++) {
    LM_CHECK(__atomic_load_n(&p->owner, __ATOMIC_SEQ_CST) == LM_OWNER_FREE && page_used(p) == 0);
    LM_CHECK(h->spare_clock - p->idle_ms >= age);   /* newest first */
    age = h->spare_clock - p->idle_ms;
    slices += p->slice_count;
  }
  LM_CHECK(n == h->spare_count && n <= HEAP_SPARE_MAX && slices == h->spare_slices &&
           slices <= HEAP_SPARE_SLICES);
  return true;
}

/* ---- slow paths ------------------------------------------------------------- */

static LM_NOINLINE void *heap_malloc_sentinel(lm_heap_t *h, unsigned c);
static inline __attribute__((always_inline)) void *heap_malloc_from(lm_heap_t *h, unsigned c);

void *heap_malloc_slow(lm_heap_t *h, unsigned c) {
  if (LM_UNLIKELY(heap_is_sentinel(h))) return heap_malloc_sentinel(h, c);
  if (LM_UNLIKELY(!lm_tls_registered)) heap_register_exit(h);
  bool was = heap_busy(h);
  void *p = heap_malloc_from(h, c);
  heap_unbusy(h, was);
  return p;
}

/* The first allocation of a thread, or one after it gave its heap up at
 * exit: then it borrows an abandoned heap for this one block. */
static void *heap_malloc_sentinel(lm_heap_t *h, unsigned c) {
  if (!lm_tls_exited) {
    h = heap_get();
    if (!h) { error_set_errno(12 /* ENOMEM */); return NULL; }
    return heap_malloc_slow(h, c);
  }
  h = heap_acquire();
  if (!h) { error_set_errno(12 /* ENOMEM */); return NULL; }
  bool was = heap_busy(h);
  void *p = heap_malloc_from(h, c);
  heap_unbusy(h, was);
  heap_release(h);
  return p;
}

/* The slow path proper, for a heap the calling thread holds. */
static inline __attribute__((always_inline)) void *heap_malloc_from(lm_heap_t *h, unsigned c) {
  if (h->hot[c] == NULL) h->hot_room[c] = h->hot_max[c];   /* it takes blocks again */
  if (atomic_load_explicit(&h->remote, memory_order_relaxed) ||
      atomic_load_explicit(&h->parked, memory_order_relaxed))
    heap_collect_remote(h);
  bool took = false;
again:;
  lm_page_t *page = h->pages[c];
  while (page != &lm_page_empty && !page->free) {
    /* The next page has free blocks, already resident: use them before
     * threading fresh blocks (or faulting purged units back) here, if
     * there are as many as an extend would thread (so this path runs no
     * more often than before). */
    lm_page_t *next = page->next;
    if (next && next->free && (page->reserved < page->capacity || page->purged) &&
        next->reserved - page_used(next) - next->lost >= page_extend_blocks(page)) {
      queue_remove(h, c, page);
      queue_push_back(h, c, page);
      page = h->pages[c];
      break;
    }
    if (page_extend(page) || page_unpurge(page, h)) break;
    page_full(page);
    queue_remove(h, c, page);
    /* release: a heap that takes it (heap_drain) sees it whole */
    __atomic_store_n(&page->owner, (uintptr_t)h | LM_OWNER_FULL, __ATOMIC_RELEASE);
    page = h->pages[c];
  }
  if (page == &lm_page_empty && !took) {
    took = true;
    if (heap_take_pages(h, c) || heap_drain_idle(h)) goto again;
  }
  if (page == &lm_page_empty) {
    page = heap_page_new(h, c);
    if (!page) { error_set_errno(12); return NULL; }
    if (!page->free) page_extend(page);
    heap_publish(h, c);   /* the peak is sampled as pages come and go */
  }
  if (LM_DEBUG >= 3) {
    heap_validate_class(h, c);
    arena_validate();
  }
  lm_stat_add(h->allocs[c], 1);
  return page_take(page, page->free);
}

/* Abort with the right name for a pointer found in a page it is not a block
 * of, or in free memory: a free span's descriptor, and a freed huge object's
 * (kept while the mapping is cached), keep the geometry of the span that was
 * there (see lm_segment_t), so a block start of it was freed before. */
static LM_COLD void bad_pointer(const lm_page_t *page, const void *p) {
  if (!page_is_block(page, p)) error_free_invalid(p);
  if (page->kind == LM_KIND_SMALL && block_is_free(p, block_tag(p))) error_free_tagged(p);
  error_free_double(p);
}

/* free's slow path for what is not a small page in use: a large or huge
 * object, or a bad pointer. */
static LM_NOINLINE void free_not_small(lm_heap_t *h, lm_page_t *page, void *p, uintptr_t owner) {
  /* A small page being set up also reads LM_OWNER_LARGE for a moment. */
  if (owner == LM_OWNER_LARGE && page->kind != LM_KIND_SMALL) large_free(h, page, p);
  else bad_pointer(page, p);
}

/* A remote free by a thread without a heap of its own: a live thread gets
 * one here (its own counters, its outboxes: a consumer thread may never
 * allocate); a thread that gave its heap up at exit keeps nothing: the block
 * goes straight home.  (glibc frees at thread exit only what the thread
 * allocated, so the first allocator call of a thread is never such a late
 * free.) */
static LM_NOINLINE void free_remote_sentinel(lm_heap_t *h, lm_page_t *page, lm_block_t *b,
                                             lm_heap_t *owner_heap) {
  if (!lm_tls_exited && (h = heap_get()) != NULL) {
    heap_free_slow(h, page, b);
    return;
  }
  unsigned c = page->cls;
  size_t bs = page->block_size;
  b->tag = block_tag(b);
  remote_push(owner_heap, b, b);
  remote_kick(owner_heap, true);
  heap_count(h, frees[c], 1);
  heap_count(h, remote_frees, 1);
  heap_publish_bytes(-(int64_t)bs);
}

static LM_NOINLINE void free_slow_rest(lm_heap_t *h, lm_page_t *page, void *p);

/* The common remote free first, a block kept for reuse on a hot list with
 * room (foreign_keep, as free_slow_rest decides it; every check before any
 * store), with no call but the two tail calls, so no
 * registers to save: larson's threads free other threads' blocks, and
 * those blocks come back as remote frees each time they are handed out
 * again (callgrind, larson-t1: 90 -> 57 instructions a call; interleaved
 * medians of 9: larson-t16 0.316 -> 0.279 s, t2 0.213 -> 0.204, t1 0.193
 * -> 0.190).  Everything else goes on to free_slow_rest. */
void heap_free_slow(lm_heap_t *h, lm_page_t *page, void *p) {
  uintptr_t owner = __atomic_load_n(&page->owner, __ATOMIC_ACQUIRE);
  lm_heap_t *owner_heap = (lm_heap_t *)(owner & ~LM_OWNER_FLAGS);
  unsigned c = page->cls;
  lm_block_t *b = p;
  uintptr_t tag = block_tag(b);
  if ((owner & LM_OWNER_SPARSE) == 0 && owner > LM_OWNER_FLAGS && owner_heap != h &&
      h->hot_room[c] > 0 && page_is_block(page, p) && !block_is_free(b, tag) &&
      foreign_keep(h, c, owner_heap)) {
    debug_on_free(page, b);
    b->tag = tag;
    hot_push(h, c, b);
    lm_stat_add(h->frees[c], 1);
    if ((lm_stat_add(h->remote_frees, 1) & 63) == 0) heap_publish(h, c);
    return;
  }
  free_slow_rest(h, page, p);
}

static void free_slow_rest(lm_heap_t *h, lm_page_t *page, void *p) {
  uintptr_t owner = __atomic_load_n(&page->owner, __ATOMIC_ACQUIRE);
  if (LM_UNLIKELY(owner == LM_OWNER_FREE || owner == LM_OWNER_LARGE || page->kind != LM_KIND_SMALL)) {
    free_not_small(h, page, p, owner);
    return;
  }
  if (!page_is_block(page, p)) bad_pointer(page, p);
  lm_block_t *b = p;
  if (block_is_free(b, block_tag(b))) error_free_tagged(p);
  if ((owner & LM_OWNER_SPARSE) && page_block_lost(page, p)) error_free_double(p);
  lm_heap_t *owner_heap = (lm_heap_t *)(owner & ~LM_OWNER_FLAGS);
  debug_on_free(page, b);
  if (owner_heap == h) {   /* our own page (full, or outside the primary reservation) */
    lm_stat_add(h->frees[page->cls], 1);
    bool was = heap_busy(h);
    heap_free_block(h, page, b);
    heap_unbusy(h, was);
    return;
  }
  if (LM_UNLIKELY(heap_is_sentinel(h))) {
    free_remote_sentinel(h, page, b, owner_heap);
    return;
  }
  /* A remote free: keep the block for reuse (up to the list's `reserved`
   * blocks) if this heap allocates blocks of the class (else it would keep
   * the block, and its page, for good: a thread that frees what exited
   * threads allocated), or send it home.  The page may be reused as soon as the block
   * is home, so read its class first. */
  unsigned c = page->cls;
  b->tag = block_tag(b);
  bool was = heap_busy(h);
  struct lm_outbox_s *o = outbox_of(h, owner_heap);
  if (foreign_keep(h, c, owner_heap) && (h->hot_room[c] > 0 || hot_grow(h, c))) {
    hot_push(h, c, b);
    heap_unbusy(h, was);
  } else {
    outbox_put(o, owner_heap, b, page->block_size);
    heap_unbusy(h, was);
    purger_poll();   /* a trim a flush asked for, without the thread (not while busy) */
  }
  lm_stat_add(h->frees[c], 1);
  if ((lm_stat_add(h->remote_frees, 1) & 63) == 0) heap_publish(h, c);
}
