/* large-churn - random large objects allocated and freed over and over with
 * a few live, modeled on the "large object churn" pattern of buffers in
 * servers and compilers (compare mimalloc-bench's malloc-large and the glibc
 * mmap-threshold discussions).
 *
 * Four slots; at each step a random slot's object is checked and freed and a
 * new object of a uniformly random size between 64 KiB and 5 MiB takes its
 * place, with every one of its pages written.
 *
 * Stresses: reuse of large spans of different sizes; an allocator that
 * returns each freed large object to the OS at once (munmap or immediate
 * purge) pays a page fault per page on every step.
 *
 * Usage: large-churn [1 [SCALE]]; 1000 x SCALE steps (about 2.5 GiB written).
 */
#include "bench.h"

#define LIVE 4
#define MINSZ ((size_t)64 << 10)
#define MAXSZ ((size_t)5 << 20)

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  uint64_t steps = bench_count(&a, 1000, 1);
  uint64_t s = 31337;
  big_obj_t live[LIVE] = {{0}};
  uint64_t bytes = 0;
  double t0 = bench_now();
  for (uint64_t i = 0; i < steps; i++) {
    int k = (int)rng_below(&s, LIVE);
    big_obj_drop(&live[k], "large-churn");
    size_t n = (size_t)rng_range(&s, MINSZ, MAXSZ);
    big_obj_put(&live[k], bench_malloc(n), n, &s);
    bytes += n;
  }
  for (int k = 0; k < LIVE; k++) big_obj_drop(&live[k], "large-churn");
  double secs = bench_now() - t0;
  bench_result_head("large-churn", &a, (unsigned long long)steps, secs);
  printf(" mib=%llu\n", (unsigned long long)(bytes >> 20));
  return 0;
}
