/* A heap that needs a page takes the pages of that class, holes and all,
 * from a heap whose thread has exited (heap.c: heap_take_pages), and a free
 * sent to the exited thread's heap after the move still comes home.
 *
 * Thread T allocates 200 blocks of 96 bytes (two pages), frees every other
 * one itself and exits; the survivors stay live.  Thread F, which has its own
 * heap, frees ten survivors: remote frees, held in its outbox for T's heap.
 * Then the main thread, with no page of that class, allocates one: it must
 * get one of T's holes, not a fresh page.  Then F flushes (lm_trim) into the
 * exited heap, whose pages the main thread owns now; the reclaim forwards
 * those blocks to the main heap.  In the end every block is freed and
 * trimmed, and the live count and the committed memory are back where they
 * started: a block lost or freed into the wrong heap would keep a page. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"
#include "stage.h"

enum { N = 200, SIZE = 96, REMOTE = 10 };
static void *g_obj[N];

static void *allocator(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) {
    CHECK((g_obj[i] = lm_malloc(SIZE)) != NULL);
    memset(g_obj[i], 0x5a, SIZE);
  }
  for (int i = 0; i < N; i += 2) lm_free(g_obj[i]);   /* holes */
  return NULL;
}

static void *freer(void *arg) {
  (void)arg;
  lm_free(lm_malloc(16));   /* a heap of its own, made before T's is abandoned */
  stage_set(1);
  stage_wait(2);
  for (int i = 1; i < 2 * REMOTE; i += 2) {
    CHECK(((unsigned char *)g_obj[i])[SIZE - 1] == 0x5a);
    lm_free(g_obj[i]);
  }
  stage_set(3);
  stage_wait(4);
  lm_trim();   /* flushes the outbox: to T's heap, which no longer owns the pages */
  return NULL;
}

int main(void) {
  lm_free(lm_malloc(16));
  lm_trim();
  lm_stats_t s0 = stats_now();

  pthread_t f, t;
  CHECK(pthread_create(&f, NULL, freer, NULL) == 0);
  stage_wait(1);
  CHECK(pthread_create(&t, NULL, allocator, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  stage_set(2);
  stage_wait(3);

  void *q = lm_malloc(SIZE);
  CHECK(q != NULL);
  int hole = 0;
  for (int i = 0; i < N; i += 2) hole |= q == g_obj[i];
  printf("the first block of the class: %p, %s\n", q, hole ? "a hole of the exited heap" : "elsewhere");
  CHECK(hole);

  stage_set(4);
  CHECK(pthread_join(f, NULL) == 0);
  lm_trim();   /* the reclaim forwards F's blocks to this heap */
  lm_trim();   /* and this heap collects them */
  for (int i = 2 * REMOTE + 1; i < N; i += 2) {
    CHECK(((unsigned char *)g_obj[i])[SIZE - 1] == 0x5a);
    lm_free(g_obj[i]);
  }
  lm_free(q);
  lm_trim();
  lm_trim();
  check_back_to(s0);
  printf("take_pages_test: OK\n");
  return 0;
}
