/* pairs - single-thread malloc+free pairs with a ring of live objects, the
 * kind of loop behind "instructions per malloc/free pair" figures (compare
 * the per-operation cost tables of mimalloc's and snmalloc's papers).
 *
 * A ring of 1000 live objects of random sizes 8..512 bytes; every step frees
 * the oldest object (after checking its stamp) and allocates a new one in its
 * place.  Sizes come from a table of 4096 random sizes filled before the loop
 * starts, so the loop itself costs only a few instructions besides malloc and
 * free.
 *
 * Stresses: the fast paths, with objects that are not freed in LIFO order
 * (the ring is FIFO), over many size classes at once.
 *
 * Usage: pairs [1 [SCALE [iters=N] [noop=1]]]
 *   iters=N  exact number of steps (default 20M x SCALE);
 *   noop=1   same loop with malloc/free left out (the old object is reused),
 *            to measure the loop's own cost.
 * Instruction count per pair, exactly (valgrind --tool=callgrind):
 *   ((Ir(iters=N2) - Ir(iters=N1)) - (Ir(noop, N2) - Ir(noop, N1))) / (N2 - N1)
 * The difference of two runs cancels start-up and exit; subtracting the noop
 * runs cancels the loop, leaving malloc + free (call and return included).
 */
#include "bench.h"

#define RING 1000
#define TABLE 4096

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  uint64_t iters = (uint64_t)bench_opt(&a, "iters", (double)bench_count(&a, 20e6, 1));
  int noop = bench_opt(&a, "noop", 0) != 0;

  static uint32_t sizes[TABLE];
  static uint64_t *ring[RING];
  static uint64_t stamp[RING];
  uint64_t s = 2024;
  for (int i = 0; i < TABLE; i++) sizes[i] = (uint32_t)rng_range(&s, 8, 512);
  for (int k = 0; k < RING; k++) {
    /* noop mode reuses these, so make them big enough for any size */
    ring[k] = bench_malloc(noop ? 512 : sizes[k]);
    ring[k][0] = stamp[k] = (uint64_t)k;
  }

  double t0 = bench_now();
  unsigned k = 0, j = RING;
  for (uint64_t i = 0; i < iters; i++) {
    uint64_t *old = ring[k];
    if (__builtin_expect(old[0] != stamp[k], 0)) bench_fail("pairs: object %p corrupted", (void *)old);
    size_t n = sizes[j];
    j = (j + 1) & (TABLE - 1);
    uint64_t *p;
    if (noop) {
      p = old;
    } else {
      free(old);
      p = malloc(n);
      if (__builtin_expect(!p, 0)) bench_fail("malloc(%zu) returned NULL", n);
    }
    p[0] = stamp[k] = i ^ n;
    ring[k] = p;
    if (++k == RING) k = 0;
  }
  double secs = bench_now() - t0;

  for (int q = 0; q < RING; q++) {
    if (ring[q][0] != stamp[q]) bench_fail("pairs: object %p corrupted", (void *)ring[q]);
    free(ring[q]);
  }
  bench_result_head("pairs", &a, (unsigned long long)iters, secs);
  printf(" noop=%d ns_per_pair=%.2f\n", noop, iters ? secs * 1e9 / (double)iters : 0.0);
  return 0;
}
