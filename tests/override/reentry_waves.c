/* Waves of threads created and joined while the allocator caches and purges
 * memory (libc re-entry, issue 7 point 1).
 *
 * glibc calls free with its own locks held.  When a thread's stack leaves
 * glibc's stack cache (40 MiB by default), __nptl_free_stacks frees that
 * stack's TLS vector and dynamic TLS blocks while it holds the stack-cache
 * lock, in whichever thread is then in pthread_join, or exiting detached
 * (__nptl_free_stacks -> _dl_deallocate_tls -> free).  An allocator whose free
 * may call back into libc there (pthread_create of a helper thread takes that
 * same lock) deadlocks, in a thread that blocks every signal.  This program
 * provokes the pattern; it cannot see the hang itself, so reentry_run.sh runs
 * it many times under a SIGKILL watchdog.
 *
 * A cycle (--cycles N, default 1; about 1 s each):
 *   busy:  BUSY_WAVES waves, PAUSE_MS apart (the purger runs): main creates
 *          THREADS threads; each allocates small blocks and 1 to 3 blocks of
 *          256 KiB..4 MiB, frees most of its own, swaps the rest through a
 *          shared exchange (so it frees blocks of other threads, many of them
 *          exited), and every other one creates a nested thread (its TLS
 *          vector and blocks then come from the heap of a thread that exits
 *          first), joined by its parent or detached.  8 MiB stacks, 12 at a
 *          time: glibc's stack cache overflows in every wave.
 *   quiet: QUIET_MS, longer than the 500 ms purge delay: the allocator's
 *          cache drains and a helper that stops when nothing is cached stops.
 *   fresh: FRESH_WAVES waves of threads that allocate nothing, with stacks
 *          larger than any cached one, so glibc cannot reuse the cached
 *          stacks and drops them at these joins: their frees, with the lock
 *          held, are the allocator's first calls after the quiet period.
 * With --plugin reentry_tls_plugin.so every thread also touches the plugin's
 * 256 KiB of thread-local storage, so each stack glibc drops frees a large
 * block of a thread that has exited: a free that caches memory, under the
 * lock.  (Before the fix: 10 runs of 10 hung with the plugin, preloaded and
 * linked; without it none of 20 hung, but the heap checks below failed.)
 *
 * Checks: the contents of every block before it is freed; with litemalloc,
 * at the end (every thread joined or gone from /proc/self/task) only main
 * holds a heap, and heaps never outnumbered the threads alive at once.  The
 * default options are used: no LITEMALLOC_* variable, no GLIBC_TUNABLES.
 *
 * Usage: reentry_waves [--cycles N] [--plugin reentry_tls_plugin.so]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "reentry_common.h"

#define THREADS 8
#define EXCHANGE 256
#define SMALL_PER_THREAD 48
#define BUSY_WAVES 40  /* per cycle */
#define PAUSE_MS 2     /* between busy waves */
#define QUIET_MS 650   /* longer than litemalloc's default purge delay (500 ms) */
#define FRESH_WAVES 3  /* per cycle, after the quiet period */

typedef struct {
  size_t size;
  uint64_t tag;
} hdr_t;

static _Atomic(hdr_t *) g_exchange[EXCHANGE];
static atomic_int g_detached_running;
static atomic_size_t g_allocated, g_freed, g_large;

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A block: a header with its size and a tag, the tag again in its last word,
 * and one word per 64 KiB touched so that large blocks are resident. */
static hdr_t *block_new(size_t size, uint64_t *rng) {
  if (size < 64) size = 64;
  hdr_t *h = (xorshift(rng) & 3) ? malloc(size) : calloc(1, size);
  CHECK(h != NULL);
  h->size = size;
  h->tag = mix((uintptr_t)h ^ size);
  unsigned char *p = (unsigned char *)h;
  for (size_t off = 4096; off + 16 <= size; off += 64 * KiB) memcpy(p + off, &h->tag, 8);
  memcpy(p + size - 8, &h->tag, 8);
  atomic_fetch_add_explicit(&g_allocated, 1, memory_order_relaxed);
  if (size > 128 * KiB) atomic_fetch_add_explicit(&g_large, 1, memory_order_relaxed);
  return h;
}

static void block_free(hdr_t *h) {
  if (!h) return;
  unsigned char *p = (unsigned char *)h;
  uint64_t want = mix((uintptr_t)h ^ h->size), got;
  CHECK(h->tag == want);
  for (size_t off = 4096; off + 16 <= h->size; off += 64 * KiB) {
    memcpy(&got, p + off, 8);
    CHECK(got == want);
  }
  memcpy(&got, p + h->size - 8, 8);
  CHECK(got == want);
  free(h);
  atomic_fetch_add_explicit(&g_freed, 1, memory_order_relaxed);
}

/* Puts h into a random exchange slot and frees what was there (a block of
 * another thread, often of one that has exited). */
static void swap_out(hdr_t *h, uint64_t *rng) {
  hdr_t *old = atomic_exchange(&g_exchange[xorshift(rng) % EXCHANGE], h);
  block_free(old);
}

static size_t small_size(uint64_t *rng) {
  uint64_t r = xorshift(rng);
  return r % 8 ? 16 + r % 512 : 512 + (r >> 8) % 8192;
}

static size_t large_size(uint64_t *rng) {
  return 256 * KiB + xorshift(rng) % (4 * MiB - 256 * KiB + 1);
}

typedef struct {
  uint64_t seed;
  int large;             /* allocate large blocks too */
  int quick;             /* no allocation of its own */
  int nest;              /* 0 none, 1 a joined child, 2 a detached child */
  pthread_attr_t *attr;  /* for the nested child */
} job_t;

static uint64_t (*g_tls_touch)(uint64_t);
static atomic_uint_fast64_t g_tls_sum;

static void work(const job_t *job) {
  if (job->quick) return; /* no allocator call of its own */
  uint64_t rng = job->seed | 1;
  if (g_tls_touch) atomic_fetch_add(&g_tls_sum, g_tls_touch(rng));
  hdr_t *mine[SMALL_PER_THREAD + 4];
  int n = 0;
  for (int i = 0; i < SMALL_PER_THREAD; i++) mine[n++] = block_new(small_size(&rng), &rng);
  if (job->large) {
    int k = 1 + (int)(xorshift(&rng) % 3);
    for (int i = 0; i < k; i++) mine[n++] = block_new(large_size(&rng), &rng);
  }
  for (int i = 0; i < n; i++) {
    if (xorshift(&rng) % 8 < 5) block_free(mine[i]); /* ours */
    else swap_out(mine[i], &rng);                    /* others' */
  }
}

/* Kernel thread ids of the detached threads of the current wave; main waits
 * until they have left /proc/self/task (their exit, and glibc's frees in it,
 * are over) before the next wave, so that the threads alive at once are
 * never more than 1 + THREADS + THREADS / 2. */
static atomic_int g_detached_tids[THREADS];
static atomic_int g_detached_count;

static void *detached_main(void *arg) {
  job_t job = *(job_t *)arg;
  free(arg);
  int slot = atomic_fetch_add(&g_detached_count, 1);
  CHECK(slot < THREADS);
  atomic_store(&g_detached_tids[slot], (int)syscall(SYS_gettid));
  atomic_fetch_sub(&g_detached_running, 1);
  work(&job);
  return NULL;
}

static void wait_detached(void) {
  while (atomic_load(&g_detached_running) > 0) reentry_sleep_ms(1);
  int n = atomic_exchange(&g_detached_count, 0);
  for (int i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", atomic_load(&g_detached_tids[i]));
    while (access(path, F_OK) == 0) reentry_sleep_ms(1);
  }
}

static void *joined_main(void *arg) {
  work(arg);
  return NULL;
}

static void *thread_main(void *arg) {
  job_t *job = arg;
  if (!job->nest) {
    work(job);
    return NULL;
  }
  /* the child's TLS vector comes from this thread's heap, and this thread
   * exits before the child's stack leaves glibc's cache */
  job_t *cj = malloc(sizeof *cj);
  CHECK(cj != NULL);
  *cj = *job;
  cj->seed = mix(job->seed + 1);
  cj->nest = 0;
  pthread_t t;
  if (job->nest == 2) {
    atomic_fetch_add(&g_detached_running, 1);
    CHECK(pthread_create(&t, job->attr, detached_main, cj) == 0);
    CHECK(pthread_detach(t) == 0);
    work(job);
  } else {
    CHECK(pthread_create(&t, job->attr, joined_main, cj) == 0);
    work(job);
    CHECK(pthread_join(t, NULL) == 0);
    free(cj);
  }
  return NULL;
}

static pthread_attr_t *attr_stack(pthread_attr_t *a, size_t bytes) {
  CHECK(pthread_attr_init(a) == 0);
  CHECK(pthread_attr_setstacksize(a, bytes) == 0);
  return a;
}

/* One wave: THREADS threads (half of them with a nested child unless quick),
 * all joined. */
static void wave(pthread_attr_t *attr, int large, int quick, uint64_t w) {
  static job_t jobs[THREADS];
  pthread_t tid[THREADS];
  for (int t = 0; t < THREADS; t++) {
    jobs[t] = (job_t){mix((w << 16) + (uint64_t)t), large, quick,
                      quick || t % 2 == 0 ? 0 : 1 + (int)((w + (uint64_t)t / 2) % 2), attr};
    CHECK(pthread_create(&tid[t], attr, thread_main, &jobs[t]) == 0);
  }
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(tid[t], NULL) == 0);
  wait_detached();
}

static void usage(void) {
  fprintf(stderr, "usage: reentry_waves [--cycles N] [--plugin reentry_tls_plugin.so]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int cycles = 1;
  const char *plugin = NULL;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage();
    else if (!strcmp(argv[i], "--cycles")) cycles = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--plugin")) plugin = argv[++i];
    else usage();
  }
  if (cycles < 1) usage();
  if (plugin) {
    void *lib = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (!lib) fprintf(stderr, "dlopen %s: %s\n", plugin, dlerror());
    CHECK(lib != NULL);
    g_tls_touch = (uint64_t(*)(uint64_t))dlsym(lib, "reentry_tls_touch");
    CHECK(g_tls_touch != NULL);
    g_tls_touch(1); /* main's own block */
  }
  double t0 = reentry_now();
  /* Explicit stack sizes, whatever RLIMIT_STACK says: 12 stacks of 8 MiB
   * overflow glibc's 40 MiB stack cache in every wave. */
  pthread_attr_t busy_attr;
  attr_stack(&busy_attr, 8 * MiB);
  uint64_t w = 0;
  int waves = 0;
  for (int c = 0; c < cycles; c++) {
    /* busy: memory cached and purged while threads come and go */
    for (int i = 0; i < BUSY_WAVES; i++, waves++) {
      wave(&busy_attr, 1, 0, w++);
      reentry_sleep_ms(PAUSE_MS);
    }
    /* quiet: longer than the purge delay; the allocator's cache drains */
    reentry_sleep_ms(QUIET_MS);
    /* fresh: stacks larger than any cached one, so glibc cannot reuse them
     * and drops the cached stacks at these joins; their TLS vectors and TLS
     * blocks (allocated by threads that have exited) are the first frees
     * after the quiet period, with the stack-cache lock held */
    pthread_attr_t fresh_attr;
    attr_stack(&fresh_attr, 8 * MiB + (size_t)(c + 1) * 64 * KiB);
    for (int i = 0; i < FRESH_WAVES; i++, waves++) wave(&fresh_attr, 0, 1, w++);
    CHECK(pthread_attr_destroy(&fresh_attr) == 0);
  }
  for (int i = 0; i < EXCHANGE; i++) block_free(atomic_exchange(&g_exchange[i], NULL));
  size_t allocated = atomic_load(&g_allocated), freed = atomic_load(&g_freed);
  CHECK(allocated == freed);
  lm_stats_t s;
  int have = reentry_stats(&s);
  printf("reentry_waves: %s: %d cycles, %d waves in %.2f s: %zu blocks (%zu large)%s",
         reentry_allocator(), cycles, waves, reentry_now() - t0, allocated,
         (size_t)atomic_load(&g_large), plugin ? ", TLS blocks of 256 KiB" : "");
  if (have)
    printf("; heaps %zu, threads %zu, purged %zu MiB", s.heaps, s.threads, s.purged_bytes / MiB);
  printf("\n");
  fflush(stdout);
  if (have) {
    /* Every thread of the test has gone (joined, or left /proc/self/task):
     * only main holds a heap, and there were never more heaps than threads
     * alive at once: main, THREADS, THREADS / 2 nested, and one for a helper
     * thread of the allocator should it ever allocate. */
    CHECK(s.threads == 1);
    CHECK(s.heaps <= 1 + THREADS + THREADS / 2 + 1);
  }
  printf("reentry_waves: OK\n");
  return 0;
}
