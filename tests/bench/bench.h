/* bench.h - helpers shared by the litemalloc benchmark workloads.
 *
 * Every workload is a standalone C11 program that uses only plain
 * malloc/calloc/realloc/free, so any allocator can be swapped in with
 * LD_PRELOAD.  Command line of every workload:
 *
 *     WORKLOAD [THREADS [SCALE [key=value ...]]]
 *
 * THREADS defaults to 1, SCALE (a float multiplying the amount of work) to 1.
 * Each program writes what it allocates, checks it before freeing it, exits
 * with status 3 on any corruption (after one line on stderr) and prints one
 * result line on stdout:
 *
 *     WORKLOAD threads=T scale=S ops=N secs=X alloc=LIB [more key=value]
 *
 * where alloc= names the shared object that provides malloc (libc.so.6 when no
 * allocator is preloaded), so a runner can check that the preload took.
 */
#ifndef LM_BENCH_H
#define LM_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_UNUSED __attribute__((unused))

/* ---- failure ----------------------------------------------------------- */

static BENCH_UNUSED __attribute__((noreturn, format(printf, 1, 2)))
void bench_fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  /* write(2), not stdio: the heap may be what is broken. */
  ssize_t w BENCH_UNUSED = write(2, "bench: FAIL: ", 13);
  w = write(2, buf, (size_t)n);
  _exit(3);
}

static inline void *bench_malloc(size_t n) {
  void *p = malloc(n);
  if (!p) bench_fail("malloc(%zu) returned NULL", n);
  return p;
}

/* ---- random numbers (splitmix64: fast, good enough, reproducible) ------- */

static inline uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* Uniform in [0, n). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n) {
  return (uint64_t)(((unsigned __int128)rng_next(s) * n) >> 64);
}
/* Uniform in [lo, hi]. */
static inline uint64_t rng_range(uint64_t *s, uint64_t lo, uint64_t hi) {
  return lo + rng_below(s, hi - lo + 1);
}
/* Log-uniform in [lo, hi] (probability ~ 1/size). */
static inline size_t rng_logsize(uint64_t *s, size_t lo, size_t hi) {
  /* pick a power-of-two octave, then uniform inside it */
  int a = 63 - __builtin_clzll(lo), b = 63 - __builtin_clzll(hi);
  int o = a + (int)rng_below(s, (uint64_t)(b - a + 1));
  size_t base = (size_t)1 << o;
  size_t v = base + rng_below(s, base);
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return v;
}

/* ---- object contents ---------------------------------------------------- */

static inline uint64_t obj_key(const void *p, size_t n) {
  return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ (n * 0xD6E8FEB86659FD93ull);
}

/* Stamps an object of n >= 1 bytes: its size and a key derived from its
 * address in the first 16 bytes and a check byte at the end; objects under 16
 * bytes get every byte written. */
static inline void obj_fill(void *p, size_t n) {
  unsigned char *c = (unsigned char *)p;
  uint64_t k = obj_key(p, n);
  if (n >= 16) {
    uint64_t w[2] = {n, k};
    memcpy(c, w, 16);
    c[n - 1] = (unsigned char)(k >> 56);
  } else {
    for (size_t i = 0; i < n; i++) c[i] = (unsigned char)(k >> (8 * (i & 7)));
  }
}

/* Checks a stamp written by obj_fill(p, n); fails the run when it is wrong. */
static inline void obj_check(const void *p, size_t n, const char *what) {
  const unsigned char *c = (const unsigned char *)p;
  uint64_t k = obj_key(p, n);
  if (n >= 16) {
    uint64_t w[2];
    memcpy(w, c, 16);
    if (w[0] != n || w[1] != k || c[n - 1] != (unsigned char)(k >> 56))
      bench_fail("%s: object %p of %zu bytes corrupted", what, p, n);
  } else {
    for (size_t i = 0; i < n; i++)
      if (c[i] != (unsigned char)(k >> (8 * (i & 7))))
        bench_fail("%s: object %p of %zu bytes corrupted", what, p, n);
  }
}

/* Size recorded by obj_fill for n >= 16 (used where the owner forgot n). */
static inline size_t obj_size(const void *p) {
  uint64_t n;
  memcpy(&n, p, 8);
  return (size_t)n;
}

/* Writes one word in every 4 KiB page of [p, p+n) and the last word, so every
 * page is faulted in.  n >= 16. */
static inline void page_fill(void *p, size_t n, uint64_t seed) {
  char *c = (char *)p;
  for (size_t off = 0; off + 16 <= n; off += 4096) {
    uint64_t v = seed ^ off;
    memcpy(c + off, &v, 8);
  }
  uint64_t v = seed ^ ~(uint64_t)n;
  memcpy(c + n - 8, &v, 8);
}
static inline void page_check(const void *p, size_t n, uint64_t seed, const char *what) {
  const char *c = (const char *)p;
  for (size_t off = 0; off + 16 <= n; off += 4096) {
    uint64_t v;
    memcpy(&v, c + off, 8);
    if (v != (seed ^ off)) bench_fail("%s: large object %p+%zu corrupted", what, p, off);
  }
  uint64_t v;
  memcpy(&v, c + n - 8, 8);
  if (v != (seed ^ ~(uint64_t)n)) bench_fail("%s: large object %p tail corrupted", what, p);
}

/* obj_fill plus one word in every further 4 KiB page of the object (so every
 * page is faulted in); n >= 16. */
static inline void obj_fill_pages(void *p, size_t n) {
  obj_fill(p, n);
  uint64_t k = obj_key(p, n);
  for (size_t off = 4096; off + 9 <= n; off += 4096) {
    uint64_t v = k ^ off;
    memcpy((char *)p + off, &v, 8);
  }
}
static inline void obj_check_pages(const void *p, size_t n, const char *what) {
  obj_check(p, n, what);
  uint64_t k = obj_key(p, n);
  for (size_t off = 4096; off + 9 <= n; off += 4096) {
    uint64_t v;
    memcpy(&v, (const char *)p + off, 8);
    if (v != (k ^ off)) bench_fail("%s: object %p+%zu corrupted", what, p, off);
  }
}

/* The phases of frag and frag90.  bench_fill_small allocates and fills n
 * objects of lo..hi bytes (log-uniform when log is set, else uniform),
 * adding their bytes to *live.  bench_free_random shuffles them and checks
 * and frees the first 90%, taking their bytes off *live; returns how many.
 * bench_fill_large allocates objects  bench_fill_large allocates objects
 * of lo..hi bytes, every page written, until `want` bytes: returns them,
 * their count in *n and their bytes in *got.  bench_free_rest checks and
 * frees small[from..to) and large[0..n), then both arrays. */
static inline void **bench_fill_small(uint64_t *s, size_t n, size_t lo, size_t hi, int log,
                                      size_t *live) {
  void **small = bench_malloc(n * sizeof(void *));
  for (size_t i = 0; i < n; i++) {
    size_t sz = log ? rng_logsize(s, lo, hi) : (size_t)rng_range(s, lo, hi);
    small[i] = bench_malloc(sz);
    obj_fill(small[i], sz);
    *live += sz;
  }
  return small;
}

static inline size_t bench_free_random(void **small, size_t n, uint64_t *s, const char *what,
                                       size_t *live) {
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)rng_below(s, i + 1);
    void *t = small[i];
    small[i] = small[j];
    small[j] = t;
  }
  size_t nfree = n / 10 * 9;
  for (size_t i = 0; i < nfree; i++) {
    size_t sz = obj_size(small[i]);
    obj_check(small[i], sz, what);
    free(small[i]);
    *live -= sz;
  }
  return nfree;
}

static inline void **bench_fill_large(uint64_t *s, size_t want, size_t lo, size_t hi, size_t *n,
                                      size_t *got) {
  size_t cap = want / lo + 16;
  void **large = bench_malloc(cap * sizeof(void *));
  *n = *got = 0;
  while (*got < want && *n < cap) {
    size_t sz = (size_t)rng_range(s, lo, hi);
    large[*n] = bench_malloc(sz);
    obj_fill_pages(large[*n], sz);
    (*n)++;
    *got += sz;
  }
  return large;
}

static inline void bench_free_rest(void **small, size_t from, size_t to, void **large, size_t n,
                                   const char *small_what, const char *large_what) {
  for (size_t i = from; i < to; i++) {
    obj_check(small[i], obj_size(small[i]), small_what);
    free(small[i]);
  }
  for (size_t i = 0; i < n; i++) {
    obj_check_pages(large[i], obj_size(large[i]), large_what);
    free(large[i]);
  }
  free(small);
  free(large);
}

/* A live large object whose pages page_fill stamped with key. */
typedef struct {
  void *p; /* NULL: none */
  size_t n;
  uint64_t key;
} big_obj_t;

/* Stamps the n >= 16 bytes at p (every page) with a key drawn from s and
 * records them in b. */
static inline void big_obj_put(big_obj_t *b, void *p, size_t n, uint64_t *s) {
  b->key = rng_next(s);
  page_fill(p, n, b->key);
  b->p = p;
  b->n = n;
}
/* Checks and frees the object in b, if any. */
static inline void big_obj_drop(big_obj_t *b, const char *what) {
  if (!b->p) return;
  page_check(b->p, b->n, b->key, what);
  free(b->p);
  b->p = NULL;
}

/* The inner loop of cache-scratch and cache-thrash: iters times, allocate a
 * small object of size bytes, set every byte reps times (one increment at a
 * time, through volatile), check it and free it. */
static inline void scribble_objects(uint64_t iters, int size, int reps, const char *what) {
  for (uint64_t i = 0; i < iters; i++) {
    volatile char *p = bench_malloc((size_t)size);
    for (int b = 0; b < size; b++) p[b] = 0;
    for (int r = 0; r < reps; r++)
      for (int b = 0; b < size; b++) p[b] = (char)(p[b] + 1);
    for (int b = 0; b < size; b++)
      if (p[b] != (char)reps) bench_fail("%s: object %p corrupted", what, (void *)p);
    free((void *)p);
  }
}

/* ---- time, memory, threads ---------------------------------------------- */

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads up to cap - 1 bytes of a /proc file into buf, NUL-terminated, with
 * read(2): no allocator calls.  0 when it cannot, else the bytes read. */
static inline ssize_t bench_read_proc(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  return n;
}

/* Resident set size in bytes, from /proc/self/statm. */
static inline size_t bench_rss(void) {
  char buf[128];
  if (!bench_read_proc("/proc/self/statm", buf, sizeof buf)) return 0;
  unsigned long long size = 0, res = 0;
  if (sscanf(buf, "%llu %llu", &size, &res) != 2) return 0;
  return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* Peak RSS in bytes (VmHWM of /proc/self/status). */
static inline size_t bench_peak_rss(void) {
  char buf[4096];
  if (!bench_read_proc("/proc/self/status", buf, sizeof buf)) return 0;
  char *h = strstr(buf, "VmHWM:");
  if (!h) return 0;
  return (size_t)strtoull(h + 6, NULL, 10) * 1024;
}

static inline void bench_sleep(double secs) {
  struct timespec ts;
  ts.tv_sec = (time_t)secs;
  ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Basename of the shared object that defines the malloc this program calls. */
static inline const char *bench_malloc_lib(void) {
  Dl_info info;
  void *(*volatile m)(size_t) = malloc;
  if (!dladdr((void *)m, &info) || !info.dli_fname) return "unknown";
  const char *s = strrchr(info.dli_fname, '/');
  return s ? s + 1 : info.dli_fname;
}

static inline void bench_spawn(pthread_t *t, void *(*fn)(void *), void *arg) {
  int e = pthread_create(t, NULL, fn, arg);
  if (e) bench_fail("pthread_create: %s", strerror(e));
}
static inline void bench_join(pthread_t t, void **ret) {
  int e = pthread_join(t, ret);
  if (e) bench_fail("pthread_join: %s", strerror(e));
}

/* Runs fn on t threads, thread i getting (char *)args + i * elem (args: an
 * array of t elements of elem bytes), and returns the seconds from the first
 * start to the last join.  th: room for t handles. */
static inline double bench_run_threads(pthread_t *th, int t, void *(*fn)(void *), void *args,
                                       size_t elem) {
  double t0 = bench_now();
  for (int i = 0; i < t; i++) bench_spawn(&th[i], fn, (char *)args + (size_t)i * elem);
  for (int i = 0; i < t; i++) bench_join(th[i], NULL);
  return bench_now() - t0;
}

/* A worker thread's share: its random state (a worker leaves it where its
 * sequence ended, for its successor in the next round) and its steps. */
typedef struct {
  uint64_t seed;
  uint64_t steps;
} bench_worker_t;

/* Runs `rounds` rounds of t fresh threads, thread i running fn(&w[i]), and
 * returns the seconds of all rounds.  The total steps are split evenly over
 * rounds and threads, the very last share taking the rest, so all of total
 * runs.  th: room for t handles. */
static inline double bench_run_rounds(pthread_t *th, bench_worker_t *w, int t, int rounds,
                                      uint64_t total, void *(*fn)(void *)) {
  double t0 = bench_now();
  uint64_t done = 0;
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < t; i++) {
      uint64_t share = total / (uint64_t)rounds / (uint64_t)t;
      if (r == rounds - 1 && i == t - 1) share = total - done;
      w[i].steps = share;
      done += share;
      bench_spawn(&th[i], fn, &w[i]);
    }
    for (int i = 0; i < t; i++) bench_join(th[i], NULL);
  }
  return bench_now() - t0;
}

/* ---- command line -------------------------------------------------------- */

typedef struct {
  int threads;
  double scale;
  int argc;
  char **argv;
} bench_args_t;

static inline bench_args_t bench_parse(int argc, char **argv, int def_threads) {
  bench_args_t a = {def_threads, 1.0, argc, argv};
  if (argc > 1) a.threads = atoi(argv[1]);
  if (argc > 2) a.scale = atof(argv[2]);
  if (a.threads < 1 || a.threads > 1024 || !(a.scale > 0)) {
    fprintf(stderr, "usage: %s [THREADS [SCALE [key=value ...]]]\n", argv[0]);
    exit(2);
  }
  return a;
}

/* Value of option key=... among argv[3..], or def. */
static inline double bench_opt(const bench_args_t *a, const char *key, double def) {
  size_t kl = strlen(key);
  for (int i = 3; i < a->argc; i++)
    if (!strncmp(a->argv[i], key, kl) && a->argv[i][kl] == '=') return atof(a->argv[i] + kl + 1);
  return def;
}

/* Scaled count, at least min. */
static inline uint64_t bench_count(const bench_args_t *a, double base, uint64_t min) {
  double v = base * a->scale;
  return v < (double)min ? min : (uint64_t)v;
}

/* Prints the common head of the result line (no newline). */
static inline void bench_result_head(const char *name, const bench_args_t *a,
                                     unsigned long long ops, double secs) {
  printf("%s threads=%d scale=%g ops=%llu secs=%.4f alloc=%s", name, a->threads, a->scale, ops,
         secs, bench_malloc_lib());
}

#endif /* LM_BENCH_H */
