/* Frees by other threads travel home in batches (heap.c: outboxes), and none
 * is left behind.
 *
 * The main thread allocates 64,037 blocks of 64 bytes (below the foreign
 * lists' size, so every remote free goes through an outbox); a consumer
 * thread frees them all in random order and exits without any call that
 * would flush it.  Then main calls lm_trim and the memory must be back:
 * committed bytes within 256 KiB of what they were before the blocks were
 * made.  A last partial batch stuck in the exited thread's outbox would pin
 * up to 64 pages of 16 KiB (1 MiB).  Then the same with a consumer that
 * stays alive and calls lm_trim itself (which must flush its outboxes), and
 * with 8 consumers at once each freeing a share, into 4 producers' heaps.
 *
 * First, white-box: blocks waiting in an outbox carry their ahead hints
 * (lm_batch_block_t), each the block freed LM_OUTBOX_AHEAD frees before it,
 * which the owner prefetches when it collects the batch. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"
#include "litemalloc/internal.h"

enum { N = 64037, SIZE = 64 };   /* not a multiple of a batch */
static void *g_obj[N];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_stage;

typedef struct { size_t lo, hi; int trim_and_wait; } share_t;

static void stage_set(int stage) {
  pthread_mutex_lock(&g_mu);
  g_stage = stage;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

static void stage_wait(int stage) {
  pthread_mutex_lock(&g_mu);
  while (g_stage != stage) pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
}

static void shuffle(size_t lo, size_t hi, uint64_t seed) {
  for (size_t i = hi - 1; i > lo; i--) {
    size_t j = lo + xorshift(&seed) % (i - lo + 1);
    void *t = g_obj[i];
    g_obj[i] = g_obj[j];
    g_obj[j] = t;
  }
}

static void *consumer(void *arg) {
  share_t *s = arg;
  for (size_t i = s->lo; i < s->hi; i++) {
    CHECK(((unsigned char *)g_obj[i])[SIZE - 1] == (unsigned char)0x5a);
    lm_free(g_obj[i]);
  }
  if (s->trim_and_wait) {
    lm_trim();
    stage_set(1);
    stage_wait(2);
  }
  return NULL;
}

static void *producer(void *arg) {
  share_t *s = arg;
  for (size_t i = s->lo; i < s->hi; i++) {
    g_obj[i] = lm_malloc(SIZE);
    CHECK(g_obj[i] != NULL);
    memset(g_obj[i], 0x5a, SIZE);
  }
  return NULL;
}

enum { HINTED = 3 * LM_OUTBOX_AHEAD };   /* fewer than a batch */
static void *g_hinted[HINTED];

/* Frees the hinted blocks (remote frees), then waits for main's look. */
static void *hint_freer(void *arg) {
  (void)arg;
  for (int i = 0; i < HINTED; i++) lm_free(g_hinted[i]);
  stage_set(1);
  stage_wait(2);
  return NULL;
}

static void check_hints(void) {
  for (int i = 0; i < HINTED; i++) CHECK((g_hinted[i] = lm_malloc(SIZE)) != NULL);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, hint_freer, NULL) == 0);
  stage_wait(1);
  if (LM_DEBUG < 2)
    for (int i = 0; i < HINTED; i++) {
      const lm_batch_block_t *b = g_hinted[i];
      CHECK(b->block.next == (i ? g_hinted[i - 1] : NULL));
      /* the first ones may hint at any block of an earlier batch */
      if (i >= LM_OUTBOX_AHEAD) CHECK(b->ahead == g_hinted[i - LM_OUTBOX_AHEAD]);
    }
  stage_set(2);
  CHECK(pthread_join(t, NULL) == 0);
  stage_set(0);
}

static size_t committed(void) { return stats_now().committed_bytes; }

static void check_back(const char *what, size_t before) {
  lm_trim();
  size_t after = committed();
  printf("%s: committed %zu KiB before, %zu KiB after\n", what, before / 1024, after / 1024);
  CHECK(after <= before + 256 * KiB);
}

int main(void) {
  lm_free(lm_malloc(SIZE));   /* the main heap's first page exists */
  check_hints();
  lm_trim();
  size_t before = committed();

  /* 1. one consumer that exits */
  share_t all = {0, N, 0};
  producer(&all);
  shuffle(0, N, 42);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, consumer, &all) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  check_back("consumer exited", before);

  /* 2. one consumer that stays alive and trims */
  producer(&all);
  shuffle(0, N, 43);
  share_t live = {0, N, 1};
  CHECK(pthread_create(&t, NULL, consumer, &live) == 0);
  stage_wait(1);
  check_back("consumer alive after its lm_trim", before);
  stage_set(2);
  CHECK(pthread_join(t, NULL) == 0);

  /* 3. 4 producers, 8 consumers freeing shuffled shares */
  share_t ps[4], cs[8];
  pthread_t pt[4], ct[8];
  for (int i = 0; i < 4; i++) {
    ps[i] = (share_t){(size_t)i * N / 4, (size_t)(i + 1) * N / 4, 0};
    CHECK(pthread_create(&pt[i], NULL, producer, &ps[i]) == 0);
  }
  for (int i = 0; i < 4; i++) CHECK(pthread_join(pt[i], NULL) == 0);
  shuffle(0, N, 44);
  for (int i = 0; i < 8; i++) {
    cs[i] = (share_t){(size_t)i * N / 8, (size_t)(i + 1) * N / 8, 0};
    CHECK(pthread_create(&ct[i], NULL, consumer, &cs[i]) == 0);
  }
  for (int i = 0; i < 8; i++) CHECK(pthread_join(ct[i], NULL) == 0);
  check_back("4 producers, 8 consumers", before);
  lm_stats_t s = stats_now();
  CHECK(s.live_objects <= 1);   /* the first block is freed; nothing else */
  printf("remote_free_test: OK\n");
  return 0;
}
