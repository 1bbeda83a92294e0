/* large - large objects from 64 KiB to 64 MiB, in the spirit of the
 * large-allocation cases of glibc's benchtests and mimalloc-bench (e.g.
 * "malloc-large").
 *
 * Rounds of allocations whose sizes climb octave by octave from 64 KiB to
 * 64 MiB (random size inside each octave); every third one is made with
 * calloc and checked to read zeroes.  Every page of every object is written
 * (so page faults count), and two objects are live at a time: each is checked
 * and freed two allocations later.
 *
 * Stresses: the large/huge object path (mmap or cached spans), page faults
 * versus memory kept for reuse, calloc of fresh memory.
 *
 * Usage: large [1 [SCALE]]; 10 x SCALE rounds (about 190 MiB written per
 * round).
 */
#include "bench.h"

#define LIVE 2

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  uint64_t rounds = bench_count(&a, 10, 1);
  uint64_t s = 4242;
  big_obj_t live[LIVE] = {{0}};
  uint64_t ops = 0, bytes = 0;
  double t0 = bench_now();
  for (uint64_t r = 0; r < rounds; r++) {
    for (int o = 16; o <= 25; o++) {
      size_t lo = (size_t)1 << o, n = lo + (size_t)rng_below(&s, lo);
      int slot = (int)(ops % LIVE);
      big_obj_drop(&live[slot], "large");
      void *p;
      if (ops % 3 == 2) {
        p = calloc(1, n);
        if (!p) bench_fail("calloc(%zu) returned NULL", n);
        for (size_t off = 0; off < n; off += 4096)
          if (((char *)p)[off] != 0) bench_fail("large: calloc(%zu) not zeroed at %zu", n, off);
      } else {
        p = bench_malloc(n);
      }
      big_obj_put(&live[slot], p, n, &s);
      ops++;
      bytes += n;
    }
  }
  for (int i = 0; i < LIVE; i++) big_obj_drop(&live[i], "large");
  double secs = bench_now() - t0;
  bench_result_head("large", &a, (unsigned long long)ops, secs);
  printf(" mib=%llu\n", (unsigned long long)(bytes >> 20));
  return 0;
}
