/* A freed span keeps its purge delay when it merges with a neighbour that the
 * purger thread was purging meanwhile.
 *
 * The purger purges an expired span with the arena lock released (madvise of
 * megabytes takes milliseconds); a neighbour freed in that window is filed
 * on its own, and when the purge ends the two merge.  The merged span must
 * count as freed when the neighbour was, not when the purged span was:
 * otherwise the next step purges the neighbour at once (08ae851 did).
 *
 * Large object A (30 MiB, touched) is followed by B (256 KiB, touched).  A is
 * freed; when mincore shows its first page gone (the purge has started), B
 * is freed.  If A's last page was still resident then, B was freed inside
 * the window; 100 ms later (well within the 500 ms delay) B must still be
 * resident.  Missing the window proves nothing and is retried (up to 12
 * times); the test fails only on a purge of B before its delay.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define A_SIZE (30 * MiB)
#define B_SIZE (256 * KiB)

static bool resident(const void *p) {
  unsigned char v = 0;
  CHECK(mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v) == 0);
  return v & 1;
}

static void sleep_ms(long ms) {
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&d, NULL);
}

/* A second thread holding a heap, so that the purger thread runs. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage;
static void *holder(void *arg) {
  void *p = lm_malloc(64);
  pthread_mutex_lock(&mu);
  stage = 1;
  pthread_cond_broadcast(&cv);
  while (stage != 2) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  lm_free(p);
  return arg;
}

int main(void) {
  void *mine = lm_malloc(64);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, holder, NULL) == 0);
  pthread_mutex_lock(&mu);
  while (stage != 1) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);

  int hit = 0;
  for (int attempt = 0; attempt < 12 && !hit; attempt++) {
    char *a = lm_malloc(A_SIZE), *b = lm_malloc(B_SIZE);
    CHECK(a && b);
    memset(a, 1, A_SIZE);
    memset(b, 2, B_SIZE);
    if (b != a + A_SIZE) {
      printf("attempt %d: B is not right after A; retrying\n", attempt);
      lm_free(b);
      lm_free(a);
      lm_trim();
      continue;
    }
    lm_free(a);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (resident(a)) {
      clock_gettime(CLOCK_MONOTONIC, &t1);
      CHECK(t1.tv_sec - t0.tv_sec < 5);   /* the purger purges within a few delays */
    }
    bool in_window = resident(a + A_SIZE - 4096);
    lm_free(b);
    if (!in_window) {
      printf("attempt %d: A was purged before B was freed; retrying\n", attempt);
      lm_trim();
      continue;
    }
    hit = 1;
    sleep_ms(100);
    bool kept = resident(b) && resident(b + B_SIZE - 4096);
    printf("attempt %d: B freed during A's purge; 100 ms later B is %s\n", attempt,
           kept ? "still resident (its delay kept)" : "purged (its delay lost)");
    CHECK(kept);
  }
  if (!hit) printf("the purge window was never hit: nothing shown either way\n");
  pthread_mutex_lock(&mu);
  stage = 2;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  CHECK(pthread_join(t, NULL) == 0);
  lm_free(mine);
  printf("purge_timing_test: OK\n");
  return 0;
}
