/* cache-scratch - passive false sharing, modeled on the cache-scratch
 * benchmark of the Hoard suite (E. Berger et al., "Hoard: A Scalable Memory
 * Allocator for Multithreaded Applications", ASPLOS 2000).
 *
 * The main thread allocates one small (8-byte) object per worker, back to
 * back, so several of them share a cache line, and hands object i to worker
 * i.  Each worker frees the object it was given and then, over and over,
 * allocates an 8-byte object, writes every byte of it many times, checks it
 * and frees it.  An allocator that hands a freed object back to the thread
 * that freed it (instead of to its owner) keeps the workers' objects in the
 * cache line the main thread filled, and the workers' writes then bounce that
 * line between the cores.
 *
 * Stresses: false sharing induced by remote frees being reused locally.
 *
 * Usage: cache-scratch [THREADS [SCALE]]; 400000 x SCALE objects in all, split
 * among the workers, each written 250 times per byte.
 */
#include "bench.h"

#define OBJ_SIZE 8
#define REPS 250

typedef struct {
  char *given;
  uint64_t iters;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = (worker_t *)arg;
  obj_check(w->given, OBJ_SIZE, "cache-scratch given");
  free(w->given);
  scribble_objects(w->iters, OBJ_SIZE, REPS, "cache-scratch");
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int t = a.threads;
  uint64_t total = bench_count(&a, 400000, (uint64_t)t);
  worker_t *w = bench_malloc((size_t)t * sizeof *w);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  for (int i = 0; i < t; i++) {
    w[i].given = bench_malloc(OBJ_SIZE);
    obj_fill(w[i].given, OBJ_SIZE);
    w[i].iters = total / (uint64_t)t;
  }
  double secs = bench_run_threads(th, t, worker, w, sizeof *w);
  uint64_t done = (total / (uint64_t)t) * (uint64_t)t;
  free(w);
  free(th);
  bench_result_head("cache-scratch", &a, (unsigned long long)done, secs);
  printf(" writes=%llu\n", (unsigned long long)done * OBJ_SIZE * REPS);
  return 0;
}
