/* churn - thread churn: tens of thousands of short-lived threads, in the
 * spirit of the thread-lifecycle tests of allocator suites (e.g. the
 * "threadtest"/thread-cache cleanup cases discussed for tcmalloc and
 * mimalloc).
 *
 * The main thread starts 20000 x SCALE threads in batches of THREADS running
 * at once.  Each thread allocates 100 objects (16..2048 bytes, log-uniform),
 * frees half of them itself and hands the other half (and the array that
 * lists them) to the main thread through pthread_join, which checks and frees
 * them - remote frees of objects whose owner thread is gone.  The RSS is
 * sampled after every 5% of the threads.
 *
 * Stresses: heap / thread-cache creation and teardown, memory held by dead
 * threads, remote frees to dead heaps; an allocator that leaks per-thread
 * state shows RSS growing with the number of threads that have lived.
 *
 * Usage: churn [THREADS [SCALE]].  Result line: lived= threads, rss_first and
 * rss_last (KiB, after the first 5% and at the end), growth_kib_per_1k
 * (their difference per 1000 threads lived in between), series=N:KiB,...
 */
#include "bench.h"

#define OBJS 100
#define SAMPLES 20

typedef struct {
  int n;
  void *obj[OBJS / 2];
} handoff_t;

static void *worker(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg;
  void *obj[OBJS];
  for (int i = 0; i < OBJS; i++) {
    size_t n = rng_logsize(&s, 16, 2048);
    obj[i] = bench_malloc(n);
    obj_fill(obj[i], n);
  }
  handoff_t *h = bench_malloc(sizeof *h);
  h->n = 0;
  for (int i = 0; i < OBJS; i++) {
    if (i & 1) {
      h->obj[h->n++] = obj[i];
    } else {
      obj_check(obj[i], obj_size(obj[i]), "churn own");
      free(obj[i]);
    }
  }
  return h;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 4);
  int c = a.threads;
  uint64_t total = bench_count(&a, 20000, (uint64_t)c * SAMPLES);
  uint64_t step = total / SAMPLES;
  pthread_t *th = bench_malloc((size_t)c * sizeof *th);
  size_t series_n[SAMPLES + 1], series_rss[SAMPLES + 1];
  int ns = 0;
  uint64_t lived = 0, next_sample = step;
  double t0 = bench_now();
  while (lived < total) {
    int batch = total - lived < (uint64_t)c ? (int)(total - lived) : c;
    for (int i = 0; i < batch; i++)
      bench_spawn(&th[i], worker, (void *)(uintptr_t)(lived + (uint64_t)i + 1));
    for (int i = 0; i < batch; i++) {
      void *ret;
      bench_join(th[i], &ret);
      handoff_t *h = ret;
      for (int k = 0; k < h->n; k++) {
        obj_check(h->obj[k], obj_size(h->obj[k]), "churn handed");
        free(h->obj[k]);
      }
      free(h);
    }
    lived += (uint64_t)batch;
    if (lived >= next_sample && ns <= SAMPLES) {
      series_n[ns] = lived;
      series_rss[ns] = bench_rss();
      ns++;
      next_sample += step;
    }
  }
  double secs = bench_now() - t0;
  free(th);
  double growth = 0;
  if (ns >= 2 && series_n[ns - 1] > series_n[0])
    growth = ((double)series_rss[ns - 1] - (double)series_rss[0]) / 1024.0 /
             ((double)(series_n[ns - 1] - series_n[0]) / 1000.0);
  bench_result_head("churn", &a, (unsigned long long)lived, secs);
  printf(" lived=%llu rss_first=%zu rss_last=%zu growth_kib_per_1k=%.2f series=",
         (unsigned long long)lived, ns ? series_rss[0] / 1024 : 0,
         ns ? series_rss[ns - 1] / 1024 : 0, growth);
  for (int i = 0; i < ns; i++) printf("%s%zu:%zu", i ? "," : "", series_n[i], series_rss[i] / 1024);
  printf("\n");
  return 0;
}
