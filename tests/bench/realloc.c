/* realloc - growing strings and vectors with realloc, the pattern of string
 * builders and dynamic arrays (compare the realloc tests of glibc's
 * benchtests and the "grow by doubling" vectors of C++ and Rust runtimes).
 *
 * 256 strings grow at once, in random interleaving, by appending 1..32 bytes
 * with realloc to the exact new length each time, until each reaches its
 * random target length (64 B..16 KiB); then it is checked and freed and a new
 * one starts.  Alongside, 8 vectors of 64-bit integers grow by doubling their
 * capacity (realloc to 2x) up to a random target of 2^10..2^19 elements, then
 * are checked and freed.  Every realloc is followed by a check that the old
 * contents moved intact (first, last and a middle element/byte; everything
 * when the object is retired).
 *
 * Stresses: in-place growth, move-and-copy of growing objects, small to large
 * size transitions.
 *
 * Usage: realloc [1 [SCALE]]; 4M x SCALE reallocs in all.
 */
#include "bench.h"

#define NSTR 256
#define NVEC 8

typedef struct {
  char *p;
  size_t len, target;
  uint64_t seed;
} str_t;
typedef struct {
  uint64_t *p;
  size_t len, cap, target;
} vec_t;

static char str_byte(const str_t *s, size_t i) {
  return (char)('a' + (char)((s->seed + i * 7) % 26));
}

static void str_check_all(const str_t *s) {
  for (size_t i = 0; i < s->len; i++)
    if (s->p[i] != str_byte(s, i)) bench_fail("realloc: string %p corrupted at %zu", (void *)s->p, i);
  if (s->p[s->len] != 0) bench_fail("realloc: string %p lost its NUL", (void *)s->p);
}

static void vec_check_all(const vec_t *v) {
  for (size_t i = 0; i < v->len; i++)
    if (v->p[i] != i * 2654435761u) bench_fail("realloc: vector %p corrupted at %zu", (void *)v->p, i);
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  uint64_t total = bench_count(&a, 4e6, 1000);
  uint64_t s = 777;
  str_t str[NSTR];
  vec_t vec[NVEC];
  memset(str, 0, sizeof str);
  memset(vec, 0, sizeof vec);
  uint64_t reallocs = 0, retired = 0;
  double t0 = bench_now();
  while (reallocs < total) {
    uint64_t r = rng_below(&s, 64);
    if (r != 0) { /* a string step */
      str_t *st = &str[rng_below(&s, NSTR)];
      if (!st->p) {
        st->target = rng_logsize(&s, 64, 16384);
        st->seed = rng_next(&s);
        st->len = 0;
      }
      size_t add = (size_t)rng_range(&s, 1, 32);
      char *np = realloc(st->p, st->len + add + 1);
      if (!np) bench_fail("realloc(%zu) returned NULL", st->len + add + 1);
      reallocs++;
      st->p = np;
      if (st->len) { /* old contents moved intact? */
        if (np[0] != str_byte(st, 0) || np[st->len - 1] != str_byte(st, st->len - 1) ||
            np[st->len / 2] != str_byte(st, st->len / 2))
          bench_fail("realloc: string %p corrupted by realloc", (void *)np);
      }
      for (size_t i = 0; i < add; i++) np[st->len + i] = str_byte(st, st->len + i);
      st->len += add;
      np[st->len] = 0;
      if (st->len >= st->target) {
        str_check_all(st);
        free(st->p);
        st->p = NULL;
        retired++;
      }
    } else { /* a vector push burst (up to 64 elements) */
      vec_t *v = &vec[rng_below(&s, NVEC)];
      if (!v->p) {
        v->target = (size_t)1 << rng_range(&s, 10, 19);
        v->len = v->cap = 0;
      }
      for (int b = 0; b < 64 && v->len < v->target; b++) {
        if (v->len == v->cap) {
          size_t nc = v->cap ? v->cap * 2 : 4;
          uint64_t *np = realloc(v->p, nc * sizeof *np);
          if (!np) bench_fail("realloc(%zu) returned NULL", nc * sizeof *np);
          reallocs++;
          if (v->len && (np[0] != 0 || np[v->len - 1] != (v->len - 1) * 2654435761u ||
                         np[v->len / 2] != (v->len / 2) * 2654435761u))
            bench_fail("realloc: vector %p corrupted by realloc", (void *)np);
          v->p = np;
          v->cap = nc;
        }
        v->p[v->len] = v->len * 2654435761u;
        v->len++;
      }
      if (v->len >= v->target) {
        vec_check_all(v);
        free(v->p);
        v->p = NULL;
        retired++;
      }
    }
  }
  for (int i = 0; i < NSTR; i++)
    if (str[i].p) {
      str_check_all(&str[i]);
      free(str[i].p);
    }
  for (int i = 0; i < NVEC; i++)
    if (vec[i].p) {
      vec_check_all(&vec[i]);
      free(vec[i].p);
    }
  double secs = bench_now() - t0;
  bench_result_head("realloc", &a, (unsigned long long)reallocs, secs);
  printf(" retired=%llu\n", (unsigned long long)retired);
  return 0;
}
