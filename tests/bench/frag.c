/* frag - fragmentation and memory return, in the spirit of the
 * fragmentation tests of Johnstone & Wilson ("The Memory Fragmentation
 * Problem: Solved?", ISMM 1998) and of the RSS figures that mimalloc-bench
 * reports.
 *
 * Phase 1: allocate 2M x SCALE small objects (16..128 bytes, uniform).
 * Phase 2: free 90% of them, chosen at random (in random order), so the
 *          survivors are scattered over all the pages that phase 1 used.
 * Phase 3: allocate larger objects (256 B..4 KiB, every page touched) worth
 *          half of phase 1's bytes; they can reuse the holes only where the
 *          allocator can merge or repurpose freed small-object memory.
 * Phase 4: free everything, then sleep (no allocator calls at all) and look
 *          at RSS again after 1 s and 2 s: does the allocator give the memory
 *          back to the OS, and how soon?
 *
 * Stresses: fragmentation between size classes, reuse of freed memory for
 * other sizes, returning memory to the OS (eagerly or with a delay).
 *
 * Usage: frag [1 [SCALE [sleep=SECS]]]; sleep= sets each of the two waits
 * (default 1 s).  The result line has, in KiB: live_P and rss_P for each
 * phase P in small (after 1), holes (after 2), large (after 3); rss_freed
 * right after phase 4; rss_t1 and rss_t2 after the first and second wait;
 * peak_rss (VmHWM).
 */
#include "bench.h"

#define KB(x) ((unsigned long long)((x) / 1024))

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  double wait = bench_opt(&a, "sleep", 1.0);
  size_t nsmall = (size_t)bench_count(&a, 2e6, 1000);
  uint64_t s = 12345;
  double t0 = bench_now();

  /* phase 1 */
  size_t live = 0;
  void **small = bench_fill_small(&s, nsmall, 16, 128, 0, &live);
  size_t live1 = live, rss1 = bench_rss();

  /* phase 2: shuffle, then free the first 90% */
  size_t nfree = bench_free_random(small, nsmall, &s, "frag small", &live);
  size_t live2 = live, rss2 = bench_rss();

  /* phase 3 */
  size_t nlarge, got;
  void **large = bench_fill_large(&s, live1 / 2, 256, 4096, &nlarge, &got);
  live += got;
  size_t live3 = live, rss3 = bench_rss();

  /* phase 4 */
  bench_free_rest(small, nfree, nsmall, large, nlarge, "frag small", "frag large");
  double secs = bench_now() - t0;
  size_t rss4 = bench_rss();
  bench_sleep(wait);
  size_t rss_t1 = bench_rss();
  bench_sleep(wait);
  size_t rss_t2 = bench_rss();
  size_t peak = bench_peak_rss();

  bench_result_head("frag", &a, (unsigned long long)(nsmall + nlarge), secs);
  printf(" live_small=%llu rss_small=%llu live_holes=%llu rss_holes=%llu"
         " live_large=%llu rss_large=%llu rss_freed=%llu rss_t1=%llu rss_t2=%llu"
         " t1=%g t2=%g peak_rss=%llu\n",
         KB(live1), KB(rss1), KB(live2), KB(rss2), KB(live3), KB(rss3), KB(rss4), KB(rss_t1),
         KB(rss_t2), wait, 2 * wait, KB(peak));
  return 0;
}
