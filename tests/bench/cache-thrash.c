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
  for (uint64_t i = 0; i < w->iters; i++) {
    volatile char *p = bench_malloc(OBJ_SIZE);
    for (int b = 0; b < OBJ_SIZE; b++) p[b] = 0;
    for (int r = 0; r < REPS; r++)
      for (int b = 0; b < OBJ_SIZE; b++) p[b] = (char)(p[b] + 1);
    for (int b = 0; b < OBJ_SIZE; b++)
      if (p[b] != (char)REPS) bench_fail("cache-thrash: object %p corrupted", (void *)p);
    free((void *)p);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int t = a.threads;
  uint64_t total = bench_count(&a, 400000, (uint64_t)t);
  worker_t *w = bench_malloc((size_t)t * sizeof *w);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  for (int i = 0; i < t; i++) w[i].iters = total / (uint64_t)t;
  double t0 = bench_now();
  for (int i = 0; i < t; i++) bench_spawn(&th[i], worker, &w[i]);
  for (int i = 0; i < t; i++) bench_join(th[i], NULL);
  double secs = bench_now() - t0;
  uint64_t done = (total / (uint64_t)t) * (uint64_t)t;
  free(w);
  free(th);
  bench_result_head("cache-thrash", &a, (unsigned long long)done, secs);
  printf(" writes=%llu\n", (unsigned long long)done * OBJ_SIZE * REPS);
  return 0;
}
