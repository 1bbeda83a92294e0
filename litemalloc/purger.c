/* The background purger: gives cached free memory back to the OS over time.
 *
 * Freed spans stay resident for purge_delay_ms so that a program that frees
 * and allocates again does not pay the page faults (about 2 us a page here).
 * Without a thread, such memory could only be purged at the next allocator
 * call, and a program that frees everything and then sleeps would keep it.
 * So the first time memory is cached (not at start-up: small programs never
 * get here), a thread is started through a weak reference to pthread_create
 * (the core still links without pthreads); it sleeps on a futex until the
 * oldest cached span expires, purges what has expired, and ends when nothing
 * is cached any more (the next caching starts a new one).  At each step it
 * also trims the heaps of exited threads (heap_reclaim_abandoned); a free
 * into such a heap starts it if none runs.  It never allocates, runs with
 * every signal blocked, and is not restarted in a child after fork() until
 * memory is cached there.  Where there is no pthread_create (a static binary) or
 * LITEMALLOC_PURGE_THREAD=0, the arena falls back to purging on its own calls
 * with a budget tied to the memory in use (see arena.c).
 */
#include "internal.h"

extern int pthread_create(unsigned long *thread, const void *attr, void *(*start)(void *),
                          void *arg) __attribute__((weak));
extern int pthread_detach(unsigned long thread) __attribute__((weak));

static _Atomic int state;   /* 0 none running, 1 running, 2 cannot run */
static _Atomic int word;    /* futex word: bumped to wake the purger */
static _Atomic int ticking; /* it has stepped since it last woke */

bool purger_ticking(void) {
  return atomic_load_explicit(&ticking, memory_order_relaxed) &&
         atomic_load_explicit(&state, memory_order_relaxed) == 1;
}

bool purger_running(void) { return atomic_load_explicit(&state, memory_order_relaxed) == 1; }

/* The thread steps while anything is cached and ends when nothing is: a
 * thread that lived on would keep alive a process whose last thread of its
 * own calls pthread_exit.  It hands its state back to 0 before it ends, and
 * carries on instead if memory was cached meanwhile and no one has started a
 * new purger yet. */
static void *purger_main(void *arg) {
  (void)arg;
  for (;;) {
    int w = atomic_load_explicit(&word, memory_order_acquire);
    heap_reclaim_abandoned();
    uint64_t wait_ms = arena_purge_tick();
    atomic_store_explicit(&ticking, 1, memory_order_relaxed);
    if (wait_ms) {
      os_futex_wait_ms(&word, w, wait_ms);
      continue;
    }
    atomic_store_explicit(&ticking, 0, memory_order_relaxed);
    atomic_store_explicit(&state, 0, memory_order_seq_cst);
    if (arena_purge_tick() == 0) return NULL;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&state, &expected, 1)) return NULL;
  }
}

static void purger_start(void) {
  if (!lm_options.purge_thread || !pthread_create || !init_constructed()) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&state, &expected, 1)) return;
  uint64_t old;
  unsigned long thread;
  os_block_signals(&old);   /* the new thread inherits the full mask */
  int r = pthread_create(&thread, NULL, purger_main, NULL);
  os_restore_signals(&old);
  if (r != 0) atomic_store(&state, 2);
  else if (pthread_detach) pthread_detach(thread);
}

void purger_kick(void) {
  int s = atomic_load_explicit(&state, memory_order_relaxed);
  if (s == 0) {
    purger_start();
  } else if (s == 1) {
    /* A purger sleeping until its next step sees the change when it wakes. */
    atomic_fetch_add_explicit(&word, 1, memory_order_relaxed);
  }
}

void purger_after_fork_child(void) {
  atomic_store(&state, 0);
  atomic_store(&ticking, 0);
}
