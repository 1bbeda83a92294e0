/* cache-thrash - active false sharing, modeled on the cache-thrash benchmark
 * of the Hoard suite (E. Berger et al., "Hoard: A Scalable Memory Allocator
 * for Multithreaded Applications", ASPLOS 2000).
 *
 * Every worker, over and over, allocates a small (8-byte) object, writes every
 * byte of it many times, checks it and frees it.  An allocator that serves
 * different threads from the same cache line (one shared free list, or
 * per-thread caches carved from a shared page at fine grain) makes the
 * workers' writes bounce that line between the cores.
 *
 * Stresses: false sharing between threads' own small objects.
 *
 * Usage: cache-thrash [THREADS [SCALE]]; 400000 x SCALE objects in all, split
 * among the workers, each written 250 times per byte.
 */
#include "bench.h"

#define OBJ_SIZE 8
#define REPS 250

typedef struct {
  uint64_t iters;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = (worker_t *)arg;
  scribble_objects(w->iters, OBJ_SIZE, REPS, "cache-thrash");
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int t = a.threads;
  uint64_t total = bench_count(&a, 400000, (uint64_t)t);
  worker_t *w = bench_malloc((size_t)t * sizeof *w);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  for (int i = 0; i < t; i++) w[i].iters = total / (uint64_t)t;
  double secs = bench_run_threads(th, t, worker, w, sizeof *w);
  uint64_t done = (total / (uint64_t)t) * (uint64_t)t;
  free(w);
  free(th);
  bench_result_head("cache-thrash", &a, (unsigned long long)done, secs);
  printf(" writes=%llu\n", (unsigned long long)done * OBJ_SIZE * REPS);
  return 0;
}
