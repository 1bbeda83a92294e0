/* frag90 - a large heap of small objects, 90% of it freed at random, then
 * larger objects: how much of the freed memory the allocator can give back
 * or reuse.  A bigger, more varied cousin of frag (Johnstone & Wilson style
 * fragmentation test).
 *
 * Phase 1 (small): allocate 2.4M x SCALE objects of 16..1023 bytes
 *          (log-uniform: as many of 16..31 as of 512..1023), about 0.6 GiB
 *          live at scale 1.
 * Phase 2 (holes): free 90% of them, chosen at random, in random order; the
 *          10% that survive are scattered over every page phase 1 used, so
 *          few pages become entirely free.
 * Phase 3 (large): allocate objects of 2..16 KiB (uniform), 100 MiB x SCALE
 *          in all, every page touched; they fit in the holes only where the
 *          allocator can reuse memory freed by other size classes.
 * Phase 4 (freed): free everything.
 *
 * Stresses: RSS after a mass free (purging partly used pages is not
 * possible; giving back or reusing the wholly free ones is), reuse across
 * size classes, peak footprint of a large small-object heap.
 *
 * Usage: frag90 [1 [SCALE]].  Result line, KiB: live_P and rss_P for P in
 * small, holes, large (after phases 1-3), rss_freed (after phase 4), peak_rss
 * (VmHWM); nsmall=, nlarge= objects.
 */
#include "bench.h"

#define KB(x) ((unsigned long long)((x) / 1024))

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  size_t nsmall = (size_t)bench_count(&a, 2.4e6, 1000);
  size_t want_large = (size_t)bench_count(&a, 100.0 * 1024 * 1024, 1 << 20);
  uint64_t s = 90909;
  double t0 = bench_now();

  /* phase 1 */
  size_t live = 0;
  void **small = bench_fill_small(&s, nsmall, 16, 1023, 1, &live);
  size_t live1 = live, rss1 = bench_rss();

  /* phase 2: shuffle, then free the first 90% */
  size_t nfree = bench_free_random(small, nsmall, &s, "frag90 small", &live);
  size_t live2 = live, rss2 = bench_rss();

  /* phase 3 */
  size_t nlarge, got;
  void **large = bench_fill_large(&s, want_large, 2048, 16384, &nlarge, &got);
  live += got;
  size_t live3 = live, rss3 = bench_rss();

  /* phase 4 */
  bench_free_rest(small, nfree, nsmall, large, nlarge, "frag90 small", "frag90 large");
  double secs = bench_now() - t0;
  size_t rss4 = bench_rss();
  size_t peak = bench_peak_rss();

  bench_result_head("frag90", &a, (unsigned long long)(nsmall + nlarge), secs);
  printf(" nsmall=%zu nlarge=%zu live_small=%llu rss_small=%llu live_holes=%llu rss_holes=%llu"
         " live_large=%llu rss_large=%llu rss_freed=%llu peak_rss=%llu\n",
         nsmall, nlarge, KB(live1), KB(rss1), KB(live2), KB(rss2), KB(live3), KB(rss3), KB(rss4),
         KB(peak));
  return 0;
}
