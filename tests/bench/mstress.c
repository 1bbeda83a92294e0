/* mstress - mixed lifetimes and sizes, modeled on mimalloc's test-stress
 * program (the "mstress" entry of mimalloc-bench, D. Leijen et al.).
 *
 * Each worker keeps its own array of live objects and shares a global
 * transfer array with the others.  At every step it allocates into a random
 * slot of its own array (freeing what was there), frees a random slot, or
 * swaps one of its objects with a random transfer slot, taking over an object
 * that another (possibly dead) thread allocated.  Sizes are mostly small
 * (16..512 B), 2% medium (1..32 KiB) and 0.1% large (64 KiB..1 MiB, every
 * page touched).  The run is split into rounds: at the end of a round every
 * worker frees its own array and exits, and fresh threads start the next
 * round, while the transfer array keeps its objects across rounds (long
 * lifetimes).
 *
 * Stresses: mixed size classes, short and long lifetimes, objects that
 * outlive their thread, large objects among small ones, thread restarts.
 *
 * Usage: mstress [THREADS [SCALE]]; 8M x SCALE steps in all, split among
 * rounds and threads.
 */
#include "bench.h"

#define ROUNDS 10
#define OWN_SLOTS 1000
#define TRANSFER_SLOTS 2000

static _Atomic(void *) transfer[TRANSFER_SLOTS];

static size_t pick_size(uint64_t *s) {
  uint64_t r = rng_below(s, 1000);
  if (r == 0) return rng_logsize(s, 64 << 10, 1 << 20);
  if (r < 21) return rng_logsize(s, 1 << 10, 32 << 10);
  return rng_logsize(s, 16, 512);
}

static void *make(uint64_t *s) {
  size_t n = pick_size(s);
  void *p = bench_malloc(n);
  obj_fill_pages(p, n);
  return p;
}

static void drop(void *p) {
  if (!p) return;
  obj_check_pages(p, obj_size(p), "mstress");
  free(p);
}

static void *worker(void *arg) {
  bench_worker_t *w = (bench_worker_t *)arg;
  uint64_t s = w->seed;
  void **own = calloc(OWN_SLOTS, sizeof(void *));
  if (!own) bench_fail("calloc");
  for (uint64_t i = 0; i < w->steps; i++) {
    uint64_t r = rng_below(&s, 100);
    size_t k = (size_t)rng_below(&s, OWN_SLOTS);
    if (r < 55) {                 /* replace */
      drop(own[k]);
      own[k] = make(&s);
    } else if (r < 85) {          /* free */
      drop(own[k]);
      own[k] = NULL;
    } else {                      /* swap with the transfer array */
      if (!own[k]) own[k] = make(&s);
      size_t j = (size_t)rng_below(&s, TRANSFER_SLOTS);
      own[k] = atomic_exchange(&transfer[j], own[k]);
    }
  }
  for (size_t k = 0; k < OWN_SLOTS; k++) drop(own[k]);
  free(own);
  w->seed = s;
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int t = a.threads;
  uint64_t total = bench_count(&a, 8e6, 1000);
  bench_worker_t *w = bench_malloc((size_t)t * sizeof *w);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  for (int i = 0; i < t; i++) w[i].seed = 5 + (uint64_t)i * 1237;
  double secs = bench_run_rounds(th, w, t, ROUNDS, total, worker);
  uint64_t done = total; /* the rounds run every step */
  for (size_t j = 0; j < TRANSFER_SLOTS; j++) drop(atomic_load(&transfer[j]));
  free(w);
  free(th);
  bench_result_head("mstress", &a, (unsigned long long)done, secs);
  printf(" rounds=%d\n", ROUNDS);
  return 0;
}
