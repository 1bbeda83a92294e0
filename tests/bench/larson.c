/* larson - server simulation, modeled on the benchmark of P. Larson and
 * M. Krishnan, "Memory allocation for long-running server applications"
 * (ISMM 1998), as used in the Hoard and mimalloc-bench suites.
 *
 * A shared array of slots holds live objects of 16..1000 bytes.  Every worker
 * repeatedly picks a random slot, allocates a new object, swaps it into the
 * slot (atomic exchange) and frees the object it displaced, which was usually
 * allocated by another thread.  The workers run in rounds: at the end of a
 * round every worker thread exits and a fresh thread takes over its share, so
 * objects outlive the threads that allocated them (as in the original, where
 * each thread hands its objects to its successor).
 *
 * Stresses: small-object throughput, remote (cross-thread) frees, heaps of
 * exited threads that still own live objects.
 *
 * Usage: larson [THREADS [SCALE]]; the total number of replacements
 * (16M x SCALE) is split among the threads.
 */
#include "bench.h"

#define MIN_SIZE 16
#define MAX_SIZE 1000
#define SLOTS_PER_THREAD 1000
#define ROUNDS 5

static _Atomic(void *) *slots;
static size_t nslots;

static void *worker(void *arg) {
  bench_worker_t *w = (bench_worker_t *)arg;
  uint64_t s = w->seed;
  for (uint64_t i = 0; i < w->steps; i++) {
    size_t n = (size_t)rng_range(&s, MIN_SIZE, MAX_SIZE);
    size_t k = (size_t)rng_below(&s, nslots);
    void *p = bench_malloc(n);
    obj_fill(p, n);
    void *old = atomic_exchange_explicit(&slots[k], p, memory_order_acq_rel);
    obj_check(old, obj_size(old), "larson");
    free(old);
  }
  w->seed = s;
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int t = a.threads;
  uint64_t total = bench_count(&a, 16e6, 1000);
  nslots = (size_t)SLOTS_PER_THREAD * (size_t)(t < 4 ? 4 : t);
  slots = bench_malloc(nslots * sizeof *slots);
  uint64_t s = 42;
  for (size_t i = 0; i < nslots; i++) {
    size_t n = (size_t)rng_range(&s, MIN_SIZE, MAX_SIZE);
    void *p = bench_malloc(n);
    obj_fill(p, n);
    atomic_init(&slots[i], p);
  }
  bench_worker_t *w = bench_malloc((size_t)t * sizeof *w);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  for (int i = 0; i < t; i++) w[i].seed = 1000 + (uint64_t)i * 7919;

  double secs = bench_run_rounds(th, w, t, ROUNDS, total, worker);
  uint64_t done = total; /* the rounds run every step */

  for (size_t i = 0; i < nslots; i++) {
    void *p = atomic_load(&slots[i]);
    obj_check(p, obj_size(p), "larson final");
    free(p);
  }
  free(slots);
  free(w);
  free(th);
  bench_result_head("larson", &a, (unsigned long long)done, secs);
  printf(" mops_per_s=%.3f\n", (double)done / secs / 1e6);
  return 0;
}
