/* glibc-simple - tight single-thread malloc/free loops of fixed sizes,
 * modeled on glibc's benchtests/bench-malloc-simple.c.
 *
 * For each size in {16, 32, 64, 128, 256, 512, 1024, 4096} and each batch
 * length in {1, 25, 100, 400, 1600}: allocate a batch of objects of that one
 * size, stamp each, then check and free them in allocation order, and repeat.
 * Batch length 1 is the tightest loop, free(malloc(n)).  Every (size, batch)
 * combination gets the same number of malloc+free pairs.
 *
 * Stresses: the single-thread fast path of malloc and free (thread cache /
 * free-list pop and push), with nothing else going on.
 *
 * Usage: glibc-simple [1 [SCALE]]; 10M x SCALE pairs in all.  Prints the
 * mean nanoseconds per pair for each size (ns_<size>=...).
 */
#include "bench.h"

static const size_t sizes[] = {16, 32, 64, 128, 256, 512, 1024, 4096};
static const int batches[] = {1, 25, 100, 400, 1600};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define NBATCH (sizeof batches / sizeof batches[0])

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  uint64_t total = bench_count(&a, 10e6, NSIZES * NBATCH * 1600);
  uint64_t per = total / (NSIZES * NBATCH);
  void **arr = bench_malloc(1600 * sizeof(void *));
  double ns[NSIZES];
  uint64_t done = 0;
  double t0 = bench_now();
  for (size_t si = 0; si < NSIZES; si++) {
    size_t n = sizes[si];
    double ts = bench_now();
    for (size_t bi = 0; bi < NBATCH; bi++) {
      int b = batches[bi];
      for (uint64_t left = per; left >= (uint64_t)b; left -= (uint64_t)b) {
        for (int i = 0; i < b; i++) {
          arr[i] = bench_malloc(n);
          obj_fill(arr[i], n);
        }
        for (int i = 0; i < b; i++) {
          obj_check(arr[i], n, "glibc-simple");
          free(arr[i]);
        }
        done += (uint64_t)b;
      }
    }
    ns[si] = (bench_now() - ts) * 1e9 / (double)(per * NBATCH);
  }
  double secs = bench_now() - t0;
  free(arr);
  bench_result_head("glibc-simple", &a, (unsigned long long)done, secs);
  for (size_t si = 0; si < NSIZES; si++) printf(" ns_%zu=%.2f", sizes[si], ns[si]);
  printf("\n");
  return 0;
}
