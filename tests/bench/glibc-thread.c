/* glibc-thread - per-thread loops over a working set, modeled on glibc's
 * benchtests/bench-malloc-thread.c.
 *
 * Every thread owns a working set of 1024 blocks.  At each step it picks a
 * random block, checks and frees it, and allocates a new block whose size is
 * drawn from a log-uniform distribution over 4..32768 bytes (probability
 * about 1/size, as in the glibc benchmark), taken from a precomputed table.
 * No object crosses threads.
 *
 * Stresses: thread-local allocation with a realistic size mix and a working
 * set larger than a thread cache; arena / heap contention when there are more
 * threads than cores.
 *
 * Usage: glibc-thread [THREADS [SCALE]]; 6M x SCALE steps in all, split among
 * the threads.
 */
#include "bench.h"

#define WORKING_SET 1024
#define TABLE 4096

static size_t size_table[TABLE];

static void *worker(void *arg) {
  bench_worker_t *w = (bench_worker_t *)arg;
  uint64_t s = w->seed;
  void *ws[WORKING_SET];
  size_t wn[WORKING_SET];
  for (int i = 0; i < WORKING_SET; i++) {
    wn[i] = size_table[rng_below(&s, TABLE)];
    ws[i] = bench_malloc(wn[i]);
    obj_fill(ws[i], wn[i]);
  }
  for (uint64_t i = 0; i < w->steps; i++) {
    uint64_t r = rng_next(&s);
    size_t k = (size_t)(r & (WORKING_SET - 1));
    size_t n = size_table[(r >> 20) & (TABLE - 1)];
    obj_check(ws[k], wn[k], "glibc-thread");
    free(ws[k]);
    ws[k] = bench_malloc(n);
    wn[k] = n;
    obj_fill(ws[k], n);
  }
  for (int i = 0; i < WORKING_SET; i++) {
    obj_check(ws[i], wn[i], "glibc-thread final");
    free(ws[i]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int t = a.threads;
  uint64_t total = bench_count(&a, 6e6, 1000);
  uint64_t s = 99;
  for (int i = 0; i < TABLE; i++) size_table[i] = rng_logsize(&s, 4, 32768);
  bench_worker_t *w = bench_malloc((size_t)t * sizeof *w);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  for (int i = 0; i < t; i++) {
    w[i].seed = 3 + (uint64_t)i * 4099;
    w[i].steps = total / (uint64_t)t;
  }
  double secs = bench_run_threads(th, t, worker, w, sizeof *w);
  uint64_t done = (total / (uint64_t)t) * (uint64_t)t;
  free(w);
  free(th);
  bench_result_head("glibc-thread", &a, (unsigned long long)done, secs);
  printf(" mops_per_s=%.3f\n", (double)done / secs / 1e6);
  return 0;
}
