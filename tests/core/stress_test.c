/* Deterministic multi-threaded stress test of the core.
 *
 * T worker threads per generation, G generations (threads exit and new ones
 * take their slots, so heaps are abandoned and adopted).  Each worker draws
 * its operations from a xorshift generator seeded by (seed, generation, slot):
 * allocate (malloc, calloc, aligned_alloc) into a local slot, free it, realloc
 * it, or hand it to another slot's mailbox, whose current thread (possibly of
 * a later generation) verifies and frees it: a remote free.  Every object's
 * bytes hold a pattern derived from (address, size, seed), verified before
 * every free and realloc.  A main-thread monitor takes statistics snapshots
 * and trims while the workers run.  At the end the statistics must balance.
 *
 * Built for the override (tests/override/libc_names.h force-included), the C
 * library's own allocations are litemalloc's too, and the test runs with the
 * defaults users get, glibc's stack cache and litemalloc's purger on.  glibc
 * keeps the TLS vector (one calloc'd block) of every exited thread's stack
 * it caches, up to 40 MiB of stacks, so the cache is emptied before both
 * snapshots that are compared, the baseline and the end (settle()); then
 * live objects and bytes must be exactly what they were.  The purger adds
 * nothing: it is made with a raw clone, not pthread_create (internal.h: no
 * libc call from an allocation entry point), so glibc allocates nothing for
 * it.
 *
 * Options (or environment): --threads N (LM_STRESS_THREADS), --gens N,
 * --ops N (per thread and generation; LM_STRESS_OPS), --seed N,
 * --print-stats (LM_STRESS_PRINT_STATS=1).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

#define MAX_THREADS 64
#define LOCAL_SLOTS 1024

typedef struct obj_s {
  unsigned char *p;
  size_t size;           /* bytes asked for */
  size_t usable;         /* lm_usable_size: the pattern covers all of it */
  uint64_t seed;
  unsigned owner;        /* uid of the thread whose heap allocated it */
  struct obj_s *next;    /* mailbox link */
} obj_t;

typedef struct {
  pthread_mutex_t lock;
  obj_t *head;
} mailbox_t;

static int g_threads = 8, g_gens = 4, g_ops = 100000;
static uint64_t g_seed = 12345;
static mailbox_t g_mail[MAX_THREADS];
static atomic_size_t g_allocs, g_frees, g_remote_frees, g_reallocs, g_large;
static atomic_int g_running;

/* ---- deterministic randomness and the content pattern ----------------- */

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t pattern_base(const obj_t *o) {
  return mix((uintptr_t)o->p ^ o->seed ^ (o->size * 0x9e3779b97f4a7c15ull));
}

static void pattern_fill(const obj_t *o) {
  uint64_t w = pattern_base(o);
  size_t words = o->usable / 8, i;
  for (i = 0; i < words; i++) {
    uint64_t v = w + i * 0x9e3779b97f4a7c15ull;
    memcpy(o->p + 8 * i, &v, 8);
  }
  uint64_t v = w + i * 0x9e3779b97f4a7c15ull;
  memcpy(o->p + 8 * i, &v, o->usable - 8 * i);
}

/* Checks that the n bytes at `at` hold the first n bytes of o's pattern
 * (o->p need not be `at`: after a moving realloc the copy keeps the pattern
 * of the old address). */
static void pattern_check_at(const obj_t *o, const unsigned char *at, size_t n) {
  uint64_t w = pattern_base(o);
  size_t words = n / 8, i;
  for (i = 0; i < words; i++) {
    uint64_t v = w + i * 0x9e3779b97f4a7c15ull, got;
    memcpy(&got, at + 8 * i, 8);
    if (got != v) goto bad;
  }
  {
    uint64_t v = w + i * 0x9e3779b97f4a7c15ull;
    if (memcmp(at + 8 * i, &v, n - 8 * i) != 0) goto bad;
  }
  return;
bad:
  fprintf(stderr, "corrupt object %p size %zu (owner %u) at word %zu of %zu (read at %p)\n",
          (void *)o->p, o->size, o->owner, i, n, (const void *)at);
  exit(1);
}

static void pattern_check(const obj_t *o, size_t n) { pattern_check_at(o, o->p, n); }

/* ---- objects ----------------------------------------------------------- */

static size_t pick_size(uint64_t *rng) {
  uint64_t r = xorshift(rng) % 10000, x = xorshift(rng);
  if (r < 6000) return x % 129;                         /* 0 .. 128 */
  if (r < 8500) return 129 + x % 896;                   /* .. 1 KiB */
  if (r < 9600) return 1025 + x % (16 * KiB - 1024);    /* .. 16 KiB */
  if (r < 9990) return 16 * KiB + x % (112 * KiB + 1);  /* .. 128 KiB */
  return 128 * KiB + 1 + x % (4 * MiB - 128 * KiB);     /* large */
}

static obj_t *obj_new(uint64_t *rng, unsigned uid) {
  obj_t *o = malloc(sizeof *o); /* bookkeeping uses the C library */
  CHECK(o != NULL);
  o->size = pick_size(rng);
  o->seed = xorshift(rng);
  o->owner = uid;
  o->next = NULL;
  unsigned kind = (unsigned)(xorshift(rng) % 20);
  if (kind == 0) {
    o->p = lm_calloc(1, o->size);
    CHECK(o->p != NULL);
    for (size_t i = 0; i < o->size; i++) CHECK(o->p[i] == 0);
  } else if (kind == 1) {
    size_t align = (size_t)8 << (xorshift(rng) % 11); /* 8 .. 8 KiB */
    o->p = lm_aligned_alloc(align, o->size);
    CHECK(o->p != NULL);
    CHECK(((uintptr_t)o->p & (align - 1)) == 0);
  } else {
    o->p = lm_malloc(o->size);
    CHECK(o->p != NULL);
  }
  if (o->size >= 16) CHECK(((uintptr_t)o->p & 15) == 0);
  o->usable = lm_usable_size(o->p);
  CHECK(o->usable >= o->size);
  if (o->size > 128 * KiB) atomic_fetch_add_explicit(&g_large, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
  pattern_fill(o);
  return o;
}

static void obj_free(obj_t *o, unsigned uid) {
  pattern_check(o, o->usable);
  lm_free(o->p);
  atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
  if (o->owner != uid)
    atomic_fetch_add_explicit(&g_remote_frees, 1, memory_order_relaxed);
  free(o);
}

/* Resizes o, checking that the common prefix survived; o is ours afterwards
 * unless the block stayed in place (then its heap is unchanged). */
static void obj_realloc(obj_t *o, uint64_t *rng, unsigned uid) {
  pattern_check(o, o->usable);
  size_t nsize = pick_size(rng);
  unsigned char *q = lm_realloc(o->p, nsize);
  if (nsize == 0) { /* realloc(p, 0) frees and returns NULL */
    CHECK(q == NULL);
    q = lm_malloc(0);
    CHECK(q != NULL);
    o->owner = uid;
  } else {
    CHECK(q != NULL);
    pattern_check_at(o, q, nsize < o->size ? nsize : o->size);
    if (q != o->p) o->owner = uid;
  }
  if (nsize >= 16) CHECK(((uintptr_t)q & 15) == 0);
  o->p = q;
  o->size = nsize;
  o->usable = lm_usable_size(q);
  CHECK(o->usable >= nsize);
  o->seed = xorshift(rng);
  pattern_fill(o);
  atomic_fetch_add_explicit(&g_reallocs, 1, memory_order_relaxed);
}

static void mail_push(int slot, obj_t *o) {
  pthread_mutex_lock(&g_mail[slot].lock);
  o->next = g_mail[slot].head;
  g_mail[slot].head = o;
  pthread_mutex_unlock(&g_mail[slot].lock);
}

static obj_t *mail_take(int slot) {
  pthread_mutex_lock(&g_mail[slot].lock);
  obj_t *o = g_mail[slot].head;
  g_mail[slot].head = NULL;
  pthread_mutex_unlock(&g_mail[slot].lock);
  return o;
}

/* ---- workers ----------------------------------------------------------- */

typedef struct {
  int slot, gen;
  unsigned uid;
} worker_arg_t;

static int other_slot(uint64_t *rng, int me) {
  if (g_threads == 1) return me;
  int s = (int)(xorshift(rng) % (uint64_t)(g_threads - 1));
  return s >= me ? s + 1 : s;
}

static void drain(int slot, uint64_t *rng, unsigned uid, obj_t **local) {
  obj_t *o = mail_take(slot);
  while (o) {
    obj_t *next = o->next;
    /* now and then keep a received object: realloc it and own it */
    size_t i = (size_t)(xorshift(rng) % LOCAL_SLOTS);
    if (xorshift(rng) % 10 == 0 && local[i] == NULL) {
      obj_realloc(o, rng, uid);
      local[i] = o;
    } else {
      obj_free(o, uid);
    }
    o = next;
  }
}

static void *worker(void *argp) {
  worker_arg_t *arg = argp;
  unsigned uid = arg->uid;
  int me = arg->slot;
  uint64_t rng = mix(g_seed ^ ((uint64_t)arg->gen << 32) ^ (uint64_t)me) | 1;
  obj_t **local = calloc(LOCAL_SLOTS, sizeof *local);
  CHECK(local != NULL);

  for (int op = 0; op < g_ops; op++) {
    size_t i = (size_t)(xorshift(&rng) % LOCAL_SLOTS);
    if (local[i] == NULL) {
      local[i] = obj_new(&rng, uid);
    } else {
      unsigned r = (unsigned)(xorshift(&rng) % 100);
      if (r < 45) {
        obj_free(local[i], uid);
        local[i] = NULL;
      } else if (r < 82) {
        mail_push(other_slot(&rng, me), local[i]);
        local[i] = NULL;
      } else if (r < 95) {
        obj_realloc(local[i], &rng, uid);
      } else {
        pattern_check(local[i], local[i]->usable);
      }
    }
    if (op % 64 == 63) drain(me, &rng, uid, local);
  }
  /* leave: free half, hand the rest to other slots (freed by this or the
   * next generation, after this thread's heap has been abandoned) */
  for (size_t i = 0; i < LOCAL_SLOTS; i++) {
    if (!local[i]) continue;
    if (xorshift(&rng) & 1) obj_free(local[i], uid);
    else mail_push(other_slot(&rng, me), local[i]);
  }
  free(local);
  atomic_fetch_sub(&g_running, 1);
  return NULL;
}

/* ---- the same glibc state at the baseline and at the end ------------------ */

#ifdef LM_LIBC_NAMES_H
static void *settle_noop(void *arg) { return arg; }

/* Called with main the only thread of the test: empties glibc's stack cache.
 * glibc frees the stacks it caches, each with its TLS vector, when the cache
 * grows past its limit (40 MiB by default), oldest first; a thread whose stack
 * alone is bigger (64 MiB of address space, never touched) makes it drop all
 * of them at its join, and then its own. */
static void settle(void) {
  pthread_attr_t attr;
  pthread_t t;
  CHECK(pthread_attr_init(&attr) == 0);
  CHECK(pthread_attr_setstacksize(&attr, 64 * MiB) == 0);
  CHECK(pthread_create(&t, &attr, settle_noop, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(pthread_attr_destroy(&attr) == 0);
}
#else
/* The core alone: glibc allocates with its own malloc, nothing to settle. */
static void settle(void) {}
#endif

/* ---- main -------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr, "usage: stress_test [--threads N] [--gens N] [--ops N] [--seed N] "
                  "[--print-stats]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int print_stats = 0;
  const char *e;
  if ((e = getenv("LM_STRESS_THREADS")) && *e) g_threads = atoi(e);
  if ((e = getenv("LM_STRESS_OPS")) && *e) g_ops = atoi(e);
  if ((e = getenv("LM_STRESS_PRINT_STATS")) && *e == '1') print_stats = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--print-stats")) print_stats = 1;
    else if (i + 1 >= argc) usage();
    else if (!strcmp(argv[i], "--threads")) g_threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--gens")) g_gens = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--ops")) g_ops = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--seed")) g_seed = strtoull(argv[++i], NULL, 0);
    else usage();
  }
  if (g_threads < 1 || g_threads > MAX_THREADS || g_gens < 1 || g_ops < 0) usage();
  for (int i = 0; i < MAX_THREADS; i++) pthread_mutex_init(&g_mail[i].lock, NULL);

  /* a few objects of main's own, alive throughout */
  void *keep[16];
  for (int i = 0; i < 16; i++) keep[i] = lm_malloc((size_t)i * 100);
  settle();
  lm_stats_t base = stats_now();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);

  pthread_t tid[MAX_THREADS];
  worker_arg_t args[MAX_THREADS];
  static char json[1 << 16];
  size_t snapshots = 0;
  for (int gen = 0; gen < g_gens; gen++) {
    atomic_store(&g_running, g_threads);
    for (int t = 0; t < g_threads; t++) {
      args[t] = (worker_arg_t){t, gen, (unsigned)(gen * g_threads + t + 1)};
      CHECK(pthread_create(&tid[t], NULL, worker, &args[t]) == 0);
    }
    /* monitor: snapshots and trims must be safe while threads allocate */
    while (atomic_load(&g_running) > 0) {
      lm_stats_t s = stats_now();
      CHECK(s.version == LM_STATS_VERSION);
      CHECK(s.class_count > 0 && s.class_count <= LM_MAX_CLASSES);
      size_t n = lm_stats_json(json, sizeof json);
      CHECK(n > 0 && n < sizeof json && strlen(json) == n);
      if (++snapshots % 16 == 0) lm_trim();
      struct timespec d = {0, 2 * 1000 * 1000};
      nanosleep(&d, NULL);
    }
    for (int t = 0; t < g_threads; t++) CHECK(pthread_join(tid[t], NULL) == 0);
  }
  /* what is left in the mailboxes is freed by main (remote for its owner) */
  for (int t = 0; t < g_threads; t++) {
    obj_t *o = mail_take(t);
    while (o) {
      obj_t *next = o->next;
      obj_free(o, 0);
      o = next;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  settle();
  lm_stats_t end = stats_now();
  for (int i = 0; i < 16; i++) lm_free(keep[i]);
  lm_stats_t fin = stats_now();

  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  size_t allocs = atomic_load(&g_allocs), frees = atomic_load(&g_frees);
  size_t remote = atomic_load(&g_remote_frees);
  printf("stress: %d threads x %d generations x %d ops in %.2f s: %zu allocations"
         " (%zu large), %zu reallocs, %zu frees of which %zu by another thread;"
         " %zu snapshots\n",
         g_threads, g_gens, g_ops, secs, allocs, (size_t)atomic_load(&g_large),
         (size_t)atomic_load(&g_reallocs), frees, remote, snapshots);
  printf("library: allocs %zu frees %zu remote_frees %zu live_objects %zu heaps %zu"
         " threads %zu committed %zu KiB reserved %zu KiB\n",
         end.allocs, end.frees, end.remote_frees, end.live_objects, end.heaps,
         end.threads, end.committed_bytes / KiB, end.reserved_bytes / KiB);
  if (print_stats) {
    fflush(stdout);
    lm_stats_print(2);
  }

  CHECK(frees == allocs);
  if (g_threads > 1 && g_ops >= 1000) CHECK(remote * 3 >= frees);
  /* the library's counters balance once every worker has exited */
  CHECK(end.frees + end.live_objects == end.allocs);
  CHECK(end.allocs - base.allocs >= allocs);
  if (end.live_objects != base.live_objects || end.live_bytes != base.live_bytes)
    fprintf(stderr, "live objects %zu at the start, %zu at the end; live bytes %zu, %zu\n",
            base.live_objects, end.live_objects, base.live_bytes, end.live_bytes);
  CHECK(end.live_objects == base.live_objects);
  CHECK(end.live_bytes == base.live_bytes);
  CHECK(end.large_live_bytes == base.large_live_bytes);
  if (g_threads > 1 && g_ops >= 1000) CHECK(end.remote_frees > 0);
  CHECK(end.threads == 1);
  CHECK(end.heaps <= (size_t)g_threads + 1);
  CHECK(end.peak_live_bytes >= end.live_bytes);
  CHECK(fin.live_objects == base.live_objects - 16);
  CHECK(fin.frees + fin.live_objects == fin.allocs);
  puts("stress_test: OK");
  return 0;
}
