/* prodcons - producer -> consumer through lock-free rings, every free
 * remote.
 *
 * Threads hand small objects to each other through single-producer /
 * single-consumer rings of pointers: the producer allocates an object,
 * stamps it and stores the pointer in the ring; the consumer checks the
 * stamp and frees the object, so every object is freed by a thread that did
 * not allocate it.  The rings are cheap on purpose (one release store per
 * CHUNK objects on each side, no locks, no allocation of their own), so the
 * allocator, not the queue, is what is measured.  A thread that finds its
 * ring full or empty spins briefly and then yields (the machine may have
 * fewer cores than threads).
 *
 * Topology: with an even THREADS, THREADS/2 pairs of one producer and one
 * consumer (thread 2k -> thread 2k+1); with an odd THREADS, or with ring=1, a
 * ring in which every thread produces for the next one and consumes what the
 * previous one made (one thread alone passes to itself: no remote frees).
 *
 * Sizes: 15/16 of the objects log-uniform 16..511 bytes, 1/16 uniform
 * 512..2047 bytes.
 *
 * Stresses: remote frees at a high rate, memory flowing from the freeing
 * thread back to the allocating one (a pure producer never frees anything
 * itself), cross-thread cache traffic on object headers.
 *
 * Usage: prodcons [THREADS [SCALE [ring=0|1]]]; 3M x SCALE objects in all,
 * split among the producers.  Result line: mode=pairs|ring producers=
 * consumers= passed= (objects passed and freed) mops_per_s= rss_end= (KiB,
 * after every thread ended) peak_rss= (KiB, VmHWM).
 */
#include "bench.h"

#include <sched.h>

#ifndef RING
#define RING 4096 /* slots per ring (a power of two; -DRING=N to try another) */
#endif
#define CHUNK 32  /* objects made / freed between two index publications */
#define PAD 128   /* keeps the two indices and the flag off each other's lines */

typedef struct {
  _Atomic uint64_t tail; /* next slot the producer fills; written by it only */
  char pad1[PAD - sizeof(uint64_t)];
  _Atomic uint64_t head; /* next slot the consumer takes; written by it only */
  char pad2[PAD - sizeof(uint64_t)];
  _Atomic int done; /* set by the producer after its last tail */
  char pad3[PAD - sizeof(int)];
  void *slot[RING];
} ring_t;

typedef struct {
  ring_t *out;     /* produce into (NULL: consumer only) */
  ring_t *in;      /* consume from (NULL: producer only) */
  uint64_t seed;
  uint64_t make;   /* objects to produce */
  uint64_t freed;  /* objects consumed and freed (result) */
  char pad[64];
} role_t;

static size_t pick_size(uint64_t *s) {
  if ((rng_next(s) & 15) == 0) return (size_t)rng_range(s, 512, 2047);
  return rng_logsize(s, 16, 511);
}

static void backoff(unsigned *idle) {
  if (++*idle < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    sched_yield();
  }
}

static void *worker(void *arg) {
  role_t *ro = (role_t *)arg;
  uint64_t s = ro->seed;
  uint64_t left = ro->make;
  /* producer side: own tail, cached head */
  uint64_t tail = 0, head_seen = 0;
  int out_done = ro->out == NULL;
  /* consumer side: own head */
  uint64_t head = 0;
  int in_done = ro->in == NULL;
  unsigned idle = 0;
  while (!out_done || !in_done) {
    int progress = 0;
    if (!out_done) {
      if (left == 0) {
        atomic_store_explicit(&ro->out->done, 1, memory_order_release);
        out_done = 1;
      } else {
        uint64_t n = left < CHUNK ? left : CHUNK;
        if (tail + n - head_seen > RING)
          head_seen = atomic_load_explicit(&ro->out->head, memory_order_acquire);
        if (tail + n - head_seen <= RING) {
          for (uint64_t i = 0; i < n; i++) {
            size_t sz = pick_size(&s);
            void *p = bench_malloc(sz);
            obj_fill(p, sz);
            ro->out->slot[(tail + i) & (RING - 1)] = p;
          }
          tail += n;
          left -= n;
          atomic_store_explicit(&ro->out->tail, tail, memory_order_release);
          progress = 1;
        }
      }
    }
    if (!in_done) {
      int done = atomic_load_explicit(&ro->in->done, memory_order_acquire);
      uint64_t t = atomic_load_explicit(&ro->in->tail, memory_order_acquire);
      if (t == head) {
        if (done) in_done = 1;
      } else {
        /* at most one ring's worth, so a ring member also gets to produce */
        while (head != t) {
          uint64_t end = t - head > CHUNK ? head + CHUNK : t;
          for (; head != end; head++) {
            void *p = ro->in->slot[head & (RING - 1)];
            obj_check(p, obj_size(p), "prodcons");
            free(p);
          }
          atomic_store_explicit(&ro->in->head, head, memory_order_release);
        }
        progress = 1;
      }
    }
    if (progress) idle = 0;
    else backoff(&idle);
  }
  ro->freed = head; /* every object taken from the ring was freed */
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 2);
  int t = a.threads;
  int ring_mode = bench_opt(&a, "ring", 0) != 0 || (t & 1);
  uint64_t total = bench_count(&a, 3e6, 1000);
  int nrings = ring_mode ? t : t / 2;
  int nprod = nrings;
  ring_t *rings = calloc((size_t)nrings, sizeof *rings);
  role_t *ro = calloc((size_t)t, sizeof *ro);
  pthread_t *th = bench_malloc((size_t)t * sizeof *th);
  if (!rings || !ro) bench_fail("calloc");
  uint64_t given = 0;
  for (int i = 0; i < t; i++) {
    ro[i].seed = 1000003ull * (uint64_t)(i + 1);
    int producer = ring_mode || (i & 1) == 0;
    int k = ring_mode ? i : i / 2; /* index among the producers */
    if (producer) {
      ro[i].out = &rings[k];
      ro[i].make = k == nprod - 1 ? total - given : total / (uint64_t)nprod;
      given += ro[i].make;
    }
    if (ring_mode) ro[i].in = &rings[(i + t - 1) % t];
    else if (i & 1) ro[i].in = &rings[i / 2];
  }
  double secs = bench_run_threads(th, t, worker, ro, sizeof *ro);
  uint64_t passed = 0;
  for (int i = 0; i < t; i++) passed += ro[i].freed;
  if (passed != total)
    bench_fail("prodcons: %llu objects made, %llu freed", (unsigned long long)total,
               (unsigned long long)passed);
  free(th);
  free(ro);
  free(rings);
  size_t rss_end = bench_rss(), peak = bench_peak_rss();
  bench_result_head("prodcons", &a, (unsigned long long)total, secs);
  printf(" mode=%s producers=%d consumers=%d passed=%llu mops_per_s=%.3f rss_end=%zu"
         " peak_rss=%zu\n",
         ring_mode ? "ring" : "pairs", nprod, ring_mode ? t : t / 2, (unsigned long long)passed,
         (double)total / secs / 1e6, rss_end / 1024, peak / 1024);
  return 0;
}
