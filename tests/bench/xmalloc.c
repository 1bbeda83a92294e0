/* xmalloc - producer/consumer, modeled on xmalloc-test by C. Lever and
 * D. Boreham ("malloc() Performance in a Multithreaded Linux Environment",
 * USENIX 2000), as used in mimalloc-bench (xmalloc-testN).
 *
 * Producer threads allocate objects of 16..512 bytes (mostly small), stamp
 * them and hand them over in batches of 64 through a shared bounded queue;
 * consumer threads take the batches, check every object and free it.  Every
 * free is remote (done by a thread that did not allocate the object), batch
 * records included.  The threads are asymmetric: THREADS producers and
 * max(1, THREADS/2) consumers (one consumer per two producers), so a
 * consumer frees objects of several producers.
 *
 * Stresses: remote frees at a high rate, returning memory to the owning
 * thread's heap, producer heaps that grow while consumers lag.
 *
 * Usage: xmalloc [THREADS [SCALE]]; 4M x SCALE objects in all, split among
 * the producers.
 */
#include "bench.h"

#define BATCH 64
#define QUEUE_MAX 256 /* batches in flight */

typedef struct batch_s {
  struct batch_s *next;
  int n;
  void *obj[BATCH];
} batch_t;

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qnotempty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t qnotfull = PTHREAD_COND_INITIALIZER;
static batch_t *qhead, *qtail;
static int qlen;
static int producers_left;

static void push(batch_t *b) {
  pthread_mutex_lock(&qlock);
  while (qlen >= QUEUE_MAX) pthread_cond_wait(&qnotfull, &qlock);
  b->next = NULL;
  if (qtail) qtail->next = b; else qhead = b;
  qtail = b;
  qlen++;
  pthread_cond_signal(&qnotempty);
  pthread_mutex_unlock(&qlock);
}

/* NULL when every producer is done and the queue is empty. */
static batch_t *pop(void) {
  pthread_mutex_lock(&qlock);
  while (!qhead && producers_left > 0) pthread_cond_wait(&qnotempty, &qlock);
  batch_t *b = qhead;
  if (b) {
    qhead = b->next;
    if (!qhead) qtail = NULL;
    qlen--;
    pthread_cond_signal(&qnotfull);
  }
  pthread_mutex_unlock(&qlock);
  return b;
}

typedef struct {
  uint64_t seed;
  uint64_t objs;  /* producer: objects to make; consumer: objects freed */
} role_t;

static size_t pick_size(uint64_t *s) {
  uint64_t r = rng_next(s);
  if ((r & 7) != 0) return 16 + (size_t)((r >> 8) % 8) * 16; /* 16..128 */
  return (size_t)(128 + (r >> 8) % 385);                     /* 128..512 */
}

static void *producer(void *arg) {
  role_t *ro = (role_t *)arg;
  uint64_t s = ro->seed;
  uint64_t left = ro->objs;
  while (left > 0) {
    batch_t *b = bench_malloc(sizeof *b);
    b->n = left < BATCH ? (int)left : BATCH;
    for (int i = 0; i < b->n; i++) {
      size_t n = pick_size(&s);
      b->obj[i] = bench_malloc(n);
      obj_fill(b->obj[i], n);
    }
    left -= (uint64_t)b->n;
    push(b);
  }
  pthread_mutex_lock(&qlock);
  if (--producers_left == 0) pthread_cond_broadcast(&qnotempty);
  pthread_mutex_unlock(&qlock);
  return NULL;
}

static void *consumer(void *arg) {
  role_t *ro = (role_t *)arg;
  batch_t *b;
  while ((b = pop()) != NULL) {
    for (int i = 0; i < b->n; i++) {
      obj_check(b->obj[i], obj_size(b->obj[i]), "xmalloc");
      free(b->obj[i]);
    }
    ro->objs += (uint64_t)b->n;
    free(b);
  }
  return NULL;
}

int main(int argc, char **argv) {
  bench_args_t a = bench_parse(argc, argv, 1);
  int np = a.threads, nc = a.threads / 2 > 0 ? a.threads / 2 : 1;
  uint64_t total = bench_count(&a, 4e6, 100);
  role_t *ro = calloc((size_t)(np + nc), sizeof *ro);
  pthread_t *th = bench_malloc((size_t)(np + nc) * sizeof *th);
  if (!ro) bench_fail("calloc");
  producers_left = np;
  uint64_t given = 0;
  for (int i = 0; i < np; i++) {
    ro[i].seed = 77 + (uint64_t)i * 131;
    ro[i].objs = i == np - 1 ? total - given : total / (uint64_t)np;
    given += ro[i].objs;
  }
  double t0 = bench_now();
  for (int i = 0; i < nc; i++) bench_spawn(&th[np + i], consumer, &ro[np + i]);
  for (int i = 0; i < np; i++) bench_spawn(&th[i], producer, &ro[i]);
  for (int i = 0; i < np + nc; i++) bench_join(th[i], NULL);
  double secs = bench_now() - t0;
  uint64_t freed = 0;
  for (int i = 0; i < nc; i++) freed += ro[np + i].objs;
  if (freed != total) bench_fail("xmalloc: %llu objects made, %llu freed",
                                 (unsigned long long)total, (unsigned long long)freed);
  free(ro);
  free(th);
  bench_result_head("xmalloc", &a, (unsigned long long)total, secs);
  printf(" producers=%d consumers=%d mops_per_s=%.3f\n", np, nc, (double)total / secs / 1e6);
  return 0;
}
