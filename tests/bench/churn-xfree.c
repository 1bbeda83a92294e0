/* churn-xfree - waves of short-lived threads whose objects outlive them.
 *
 * The main thread runs WAVES x SCALE waves.  In every wave it starts THREADS
 * threads (default 32) at once; each allocates OBJS objects (default 2000,
 * log-uniform 16..4095 bytes), shuffles them, checks and frees half of them
 * itself and hands the other half (and the array that lists them) to the main
 * thread, which after joining the whole wave checks and frees them - remote
 * frees of objects whose allocating thread has exited.  RSS is sampled after
 * every wave, once everything of that wave has been freed, so a flat series
 * is what a well-behaved allocator shows; the peak is reached while a wave
 * runs.
 *
 * Stresses: creation and teardown of many thread heaps / caches at once,
 * memory left behind by dead threads (freed or still live), reuse of that
 * memory by the next wave.
 *
 * Usage: churn-xfree [THREADS [SCALE [waves=N] [objs=N]]] (waves: at scale 1,
 * default 64).  Result line, KiB: rss_first (after wave 1), rss_q (after
 * wave N/4), rss_h (after wave N/2), rss_last (after the last wave),
 * growth_q = rss_last - rss_q, growth_h = rss_last - rss_h, peak_rss (VmHWM);
 * lived= threads; series=WAVE:KiB,... (every wave).
 */
#include "bench.h"

typedef struct {
  size_t n;
  void *obj[];
} handoff_t;

static int objs_per_thread = 2000;

static void *worker(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull;
  int n = objs_per_thread;
  void **obj = bench_malloc((size_t)n * sizeof *obj);
  for (int i = 0; i < n; i++) {
    size_t sz = rng_logsize(&s, 16, 4095);
    obj[i] = bench_malloc(sz);
    obj_fill(obj[i], sz);
  }
  for (int i = n - 1; i > 0; i--) {
    int j = (int)rng_below(&s, (uint64_t)i + 1);
    void *t = obj[i];
    obj[i] = obj[j];
    obj[j] = t;
  }
  int keep = n / 2;
  for (int i = keep; i < n; i++) {
    obj_check(obj[i], obj_size(obj[i]), "churn-xfree own");
    free(obj[i]);
  }
  handoff_t *h = bench_malloc(sizeof *h + (size_t)keep * sizeof(void *));
  h->n = (size_t)keep;
  memcpy(h->obj, obj, (size_t)keep * sizeof(void *));
  free(obj);
  return h;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 32);
  int c = a.threads;
  int waves = (int)bench_count(&a, bench_opt(&a, "waves", 64), 4);
  objs_per_thread = (int)bench_opt(&a, "objs", 2000);
  if (objs_per_thread < 2) objs_per_thread = 2;
  pthread_t *th = bench_malloc((size_t)c * sizeof *th);
  void **ret = bench_malloc((size_t)c * sizeof *ret);
  size_t *rss = bench_malloc((size_t)waves * sizeof *rss);
  uint64_t lived = 0;
  double t0 = bench_now();
  for (int w = 0; w < waves; w++) {
    for (int i = 0; i < c; i++)
      bench_spawn(&th[i], worker, (void *)(uintptr_t)(lived + (uint64_t)i + 1));
    for (int i = 0; i < c; i++) bench_join(th[i], &ret[i]);
    for (int i = 0; i < c; i++) {
      handoff_t *h = ret[i];
      for (size_t k = 0; k < h->n; k++) {
        obj_check(h->obj[k], obj_size(h->obj[k]), "churn-xfree handed");
        free(h->obj[k]);
      }
      free(h);
    }
    lived += (uint64_t)c;
    rss[w] = bench_rss() / 1024;
  }
  double secs = bench_now() - t0;
  free(th);
  free(ret);
  size_t peak = bench_peak_rss() / 1024;
  /* after wave N/4 and wave N/2 (1-based wave numbers) */
  size_t first = rss[0], q = rss[waves / 4 - 1], hh = rss[waves / 2 - 1], last = rss[waves - 1];
  bench_result_head("churn-xfree", &a, (unsigned long long)(lived * (uint64_t)objs_per_thread),
                    secs);
  printf(" waves=%d lived=%llu objs=%d rss_first=%zu rss_q=%zu rss_h=%zu rss_last=%zu"
         " growth_q=%lld growth_h=%lld peak_rss=%zu series=",
         waves, (unsigned long long)lived, objs_per_thread, first, q, hh, last,
         (long long)last - (long long)q, (long long)last - (long long)hh, peak);
  for (int w = 0; w < waves; w++) printf("%s%d:%zu", w ? "," : "", w + 1, rss[w]);
  printf("\n");
  free(rss);
  return 0;
}
