/* The purger: gives cached free memory back to the OS over time and trims
 * the heaps of exited threads.
 *
 * Freed spans stay resident for purge_delay_ms so that a program that frees
 * and allocates again does not pay the page faults (about 2 us a page here).
 * Without a thread, expired memory is purged on the allocator's own calls
 * (arena.c: whenever its lock is taken, with a dirty budget on the recent
 * peak in use, capped by the use now), and a trim of abandoned heaps that a free asked for runs
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
 * abandoned heaps, purge what expired, sleep until the next expiry or a
 * trim is asked for), and
 * when nothing has been for a purge delay, it ends (so a program back to
 * one thread is back to one task) and the next kick starts another.  (It
 * ended as soon as nothing was cached: in mimalloc-bench's mleak, 5000
 * threads of one allocation each, whose freed spans the next threads take
 * at once, that started 868 purgers, each a clone, a stack mapped and
 * unmapped and a futex wait; with the delay, one.  mleak 50: 2.26 -> 1.88
 * s, medians of 5; glibc 1.52.)  A thread made with a raw clone
 * keeps the credentials of the thread that made it: glibc's setuid() and
 * friends do not reach it.  So a purger that has run for LIFE_MS asks to be
 * replaced, and the next thread that kicks it starts a fresh one, with its
 * own credentials then; the old one sees a newer generation and ends.  A
 * child after fork() has no purger until the same conditions hold there.
 * Sanitizer builds never start it (their runtimes keep per-thread state
 * that a raw clone lacks).
 */
#include "internal.h"

#define STACK_SIZE ((size_t)64 * 1024)
#define LIFE_MS 2000

/* Bit 0: a purger runs (or is being started); the bits above: the
 * generation of the latest one.  A purger of an older generation ends. */
static _Atomic unsigned run;
static _Atomic int broken;   /* a start failed: purge on the allocator's calls */
static _Atomic int renew;    /* the running purger asks to be replaced */
static _Atomic int word;     /* futex word the thread sleeps on between steps;
                                bumped by a kick that wakes it */
_Atomic int lm_purge_due;    /* a trim of abandoned heaps was asked for */
static _Atomic int napping;  /* the purger sleeps until its next expiry and
                                the next trim asked for may wake it */
static _Atomic uint64_t last_reclaim_ms;   /* without the thread: the last trim */

bool purger_running(void) {
  return (atomic_load_explicit(&run, memory_order_relaxed) & 1) &&
         !atomic_load_explicit(&broken, memory_order_relaxed);
}

/* Trims of abandoned heaps.  The blocks that other threads free into an
 * exited thread's heap are reusable only once the heap is trimmed or
 * adopted, and a thread adopts the heap abandoned last, so the others can
 * wait long.  So a trim asked for wakes the purger from its sleep until the
 * next expiry (up to the purge delay away); after a step, trims asked for
 * wait RECLAIM_WAKE_MS, so a stream of them costs a step per
 * RECLAIM_WAKE_MS at most.  Measured (tests/bench churn-xfree: waves of 32
 * threads whose objects the main thread frees after the join, about 25 ms a
 * wave): peak RSS 97 MiB without the wake, 81 with it (medians of 5; runs
 * spread by about 20%; RSS growth over the second half 0 to 15 MiB either
 * way).  mimalloc-bench larson, where each thread frees what its exited
 * predecessors allocated, ran about as fast: medians 1 to 12% lower in four
 * comparisons of 7 to 9 runs, within their spread, and 4% fewer allocator
 * instructions under callgrind.  Waking at most every 10 ms, it looked
 * slower (19 and 25M against 32 and 34M ops/s), and with no limit the
 * purger stepped 240 to 952 times in 2 s there (17 without the wake). */
#define RECLAIM_WAKE_MS 20

static void purger_main(void *arg) {
  unsigned mine = (unsigned)(uintptr_t)arg;   /* my run value: generation | 1 */
  uint64_t born = os_now_ms();
  uint64_t idle_since = 0;   /* when a step first found nothing to do; 0: busy */
  for (;;) {
    if (atomic_load(&run) != mine) return;   /* replaced */
    int w = atomic_load(&word);
    atomic_store(&lm_purge_due, 0);
    heap_reclaim_abandoned(false);
    uint64_t wait_ms = arena_purge_tick();
    if (os_now_ms() - born >= LIFE_MS) atomic_store(&renew, 1);
    if (wait_ms) {
      idle_since = 0;
      if (wait_ms > RECLAIM_WAKE_MS) {
        /* First a sleep of RECLAIM_WAKE_MS that no kicker cuts short
         * (`word` moves only while napping), then a nap until the expiry
         * that the next trim asked for does.  napping is set before
         * lm_purge_due is read, lm_purge_due before a kicker reads napping
         * (seq_cst): either this sees the trim asked for, or the kicker
         * sees the nap and bumps `word` (the wait then returns at once). */
        os_futex_wait_ms(&word, w, RECLAIM_WAKE_MS);
        wait_ms -= RECLAIM_WAKE_MS;
        if (atomic_load(&lm_purge_due)) continue;
        w = atomic_load(&word);
        atomic_store(&napping, 1);
        if (atomic_load(&lm_purge_due) && atomic_exchange(&napping, 0)) continue;
      }
      os_futex_wait_ms(&word, w, wait_ms);
      atomic_store(&napping, 0);
      continue;
    }
    /* Nothing cached: end once there has been nothing to do for a purge
     * delay (a trim asked for meanwhile cuts the wait short, as a nap). */
    uint64_t now = os_now_ms();
    if (!idle_since) idle_since = now;
    if (now - idle_since < lm_options.purge_delay_ms) {
      atomic_store(&napping, 1);
      if (!(atomic_load(&lm_purge_due) && atomic_exchange(&napping, 0)))
        os_futex_wait_ms(&word, w, lm_options.purge_delay_ms - (now - idle_since));
      atomic_store(&napping, 0);
      continue;
    }
    idle_since = 0;
    /* End, unless work came in after the step (a kicker that
     * cached memory or set `lm_purge_due` before `run` changed did not start
     * another purger).  The tick takes the arena lock, which orders it
     * against a kicker's caching. */
    unsigned expected = mine;
    if (!atomic_compare_exchange_strong(&run, &expected, mine & ~1u)) return;
    if (!atomic_load(&lm_purge_due) && arena_purge_tick() == 0) return;
    expected = mine & ~1u;
    if (!atomic_compare_exchange_strong(&run, &expected, mine)) return;
  }
}

/* Starts a purger of the next generation if r (the value of run the caller
 * saw) is still current. */
static void purger_start(unsigned r) {
  if (LM_SANITIZED || !lm_options.purge_thread || !heap_multithreaded() ||
      atomic_load_explicit(&broken, memory_order_relaxed))
    return;
  unsigned next = ((r | 1) + 2) | 1;
  if (!atomic_compare_exchange_strong(&run, &r, next)) return;
  void *s;
  if (os_map(STACK_SIZE, NULL, false, &s) != 0) {
    atomic_store(&broken, 1);
    return;
  }
  uint64_t old;
  os_block_signals(&old);   /* the new thread inherits the full mask */
  int e = os_thread_start(s, STACK_SIZE, purger_main, (void *)(uintptr_t)next);
  os_restore_signals(&old);
  if (e != 0) {
    os_unmap(s, STACK_SIZE);
    atomic_store(&broken, 1);
  }
}

/* A running purger sees the work at its next step (within the purge delay);
 * none running, or one that asks to be replaced: start one. */
void purger_kick(void) {
  unsigned r = atomic_load_explicit(&run, memory_order_seq_cst);
  /* One kicker takes a renewal request (the purger asks again if it fails). */
  if ((r & 1) && (!atomic_load_explicit(&renew, memory_order_relaxed) || !atomic_exchange(&renew, 0)))
    return;
  purger_start(r);
}

void purger_kick_reclaim(void) {
  atomic_store(&lm_purge_due, 1);
  if (atomic_load(&napping) && atomic_exchange(&napping, 0)) {
    atomic_fetch_add(&word, 1);
    os_futex_wake(&word, 1 << 30);
  }
  purger_kick();
}

void purger_poll_due(void) {
  if (purger_running()) return;
  uint64_t now = os_clock_ms(), last = atomic_load_explicit(&last_reclaim_ms, memory_order_relaxed);
  if (last && now > last && now - last < lm_options.purge_delay_ms) return;
  if (!atomic_exchange(&lm_purge_due, 0)) return;
  atomic_store_explicit(&last_reclaim_ms, now ? now : 1, memory_order_relaxed);
  heap_reclaim_abandoned(false);
}

/* A purger that ran in the parent is not in the child; its stack mapping
 * (64 KiB) stays there, forgotten: it may have been unmapped and reused by
 * the time of the fork, so it is not ours to unmap. */
void purger_after_fork_child(void) {
  atomic_store(&run, 0);
  atomic_store(&renew, 0);
  atomic_store(&broken, 0);
}
