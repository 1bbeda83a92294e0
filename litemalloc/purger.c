/* The purger: gives cached free memory back to the OS over time and trims
 * the heaps of exited threads.
 *
 * Freed spans stay resident for purge_delay_ms so that a program that frees
 * and allocates again does not pay the page faults (about 2 us a page here).
 * Without a thread, expired memory is purged on the allocator's own calls
 * (arena.c: whenever its lock is taken, with a dirty budget that follows the
 * memory in use), and a trim of abandoned heaps that a free asked for runs
 * at the next slow path, at most once per delay (purger_poll).  That is all
 * a single-threaded program gets: a process with one thread keeps one thread
 * (unshare(CLONE_NEWUSER), seccomp set-ups and sandboxes depend on it).
 *
 * Once the process has had a second thread of its own (two heaps held at
 * once) and memory is cached, a purger thread starts, so that a server whose threads
 * free everything and then sleep shrinks too.  It is made with a raw clone
 * (os_thread_start), not pthread_create: it is started from inside free,
 * which glibc calls with its own locks held (pthread_join frees a thread's
 * TLS under the stack-cache lock that pthread_create takes: a deadlock).  It
 * has no libc state, so it calls nothing of libc's and touches no
 * thread-local variable (heap_reclaim_abandoned and arena_purge_tick do
 * neither); glibc does not count it, so it never keeps alive a process whose
 * main thread called pthread_exit, and it dies with the process.  It runs
 * with every signal blocked; while anything is cached it steps (trim
 * abandoned heaps, purge what expired, sleep until the next expiry), and
 * otherwise it sleeps on a futex until kicked.  It lives as long as the
 * process.  A child after fork() has no purger until the same conditions
 * hold there.  Sanitizer builds never start it (their runtimes keep
 * per-thread state that a raw clone lacks).
 */
#include "internal.h"

#define STACK_SIZE ((size_t)64 * 1024)

static _Atomic int state;    /* 0 not started, 1 running, 2 cannot run */
static _Atomic int word;     /* futex word: bumped to wake the thread */
static _Atomic int idle;     /* the thread sleeps until kicked */
static _Atomic int due;      /* a trim of abandoned heaps was asked for */
static _Atomic uint64_t last_reclaim_ms;   /* without the thread: the last trim */
static void *stack;          /* the thread's stack mapping */

bool purger_running(void) { return atomic_load_explicit(&state, memory_order_relaxed) == 1; }

static void purger_main(void *arg) {
  (void)arg;
  for (;;) {
    int w = atomic_load_explicit(&word, memory_order_acquire);
    atomic_store(&due, 0);
    heap_reclaim_abandoned();
    uint64_t wait_ms = arena_purge_tick();
    if (wait_ms) {
      os_futex_wait_ms(&word, w, wait_ms);
      continue;
    }
    /* Sleep, unless work came in after the step: a kicker that cached
     * memory or set `due` before we set `idle` did not see us idle and will
     * not wake us.  (The tick takes the arena lock, which orders it against
     * a kicker's caching.) */
    atomic_store(&idle, 1);
    if (atomic_load(&due) || arena_purge_tick()) {
      atomic_store(&idle, 0);
      continue;
    }
    os_futex_wait(&word, w);
    atomic_store(&idle, 0);
  }
}

static void purger_start(void) {
  if (LM_SANITIZED || !lm_options.purge_thread || !heap_multithreaded()) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&state, &expected, 1)) return;
  if (os_map(STACK_SIZE, NULL, false, &stack) != 0) {
    atomic_store(&state, 2);
    return;
  }
  uint64_t old;
  os_block_signals(&old);   /* the new thread inherits the full mask */
  int e = os_thread_start((uint8_t *)stack + STACK_SIZE, purger_main, NULL);
  os_restore_signals(&old);
  if (e != 0) {
    os_unmap(stack, STACK_SIZE);
    stack = NULL;
    atomic_store(&state, 2);
  }
}

/* Wakes a thread that sleeps with nothing to do (see purger_main). */
static void purger_wake(void) {
  if (atomic_load_explicit(&idle, memory_order_seq_cst) && atomic_exchange(&idle, 0)) {
    atomic_fetch_add(&word, 1);
    os_futex_wake(&word, 1);
  }
}

void purger_kick(void) {
  int s = atomic_load_explicit(&state, memory_order_relaxed);
  if (s == 0) purger_start();
  else if (s == 1) purger_wake();
}

void purger_kick_reclaim(void) {
  atomic_store(&due, 1);
  if (atomic_load_explicit(&state, memory_order_relaxed) == 0) purger_start();
  if (purger_running()) purger_wake();
}

void purger_poll(void) {
  if (LM_LIKELY(!atomic_load_explicit(&due, memory_order_relaxed)) || purger_running()) return;
  uint64_t now = os_clock_ms(), last = atomic_load_explicit(&last_reclaim_ms, memory_order_relaxed);
  if (last && now - last < lm_options.purge_delay_ms) return;
  if (!atomic_exchange(&due, 0)) return;
  atomic_store_explicit(&last_reclaim_ms, now ? now : 1, memory_order_relaxed);
  heap_reclaim_abandoned();
}

void purger_after_fork_child(void) {
  if (stack) os_unmap(stack, STACK_SIZE);   /* the thread is not in the child */
  stack = NULL;
  atomic_store(&state, 0);
  atomic_store(&idle, 0);
}
