/* Sparse pages give their free OS pages back (litemalloc/page.c).
 *
 * 40,000 blocks of 1000 bytes are written, left to age past a quarter of the
 * purge delay, and 90% of them freed at random.  Then resident memory must
 * drop by at least a quarter of what the blocks take (at 10% live, about 60%
 * of the OS pages of 1 KiB blocks hold no live block), and lm_stats must count
 * the purged bytes; every survivor keeps its contents; another thread frees
 * some survivors (remote frees into sparse pages); and the blocks allocated
 * again are writable and distinct while the survivors stay intact.  The
 * same program with LITEMALLOC_SCAVENGE=0 (run as a child) must keep its
 * memory, which shows that the drop comes from the scavenger. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

enum { N = 40000, SIZE = 1000 };
static unsigned char *g_p[N];

static void fill(int i) { memset(g_p[i], (unsigned char)(i * 7 + 1), SIZE); }
static int intact(int i) {
  for (int k = 0; k < SIZE; k += 97)
    if (g_p[i][k] != (unsigned char)(i * 7 + 1)) return 0;
  return g_p[i][SIZE - 1] == (unsigned char)(i * 7 + 1);
}

static void *remote_free(void *arg) {
  (void)arg;
  int n = 0;
  for (int i = 0; i < N && n < 500; i++)
    if (g_p[i]) { lm_free(g_p[i]); g_p[i] = NULL; n++; }
  return NULL;
}

/* Returns the KiB of resident memory the random free gave back. */
static long run(int check_purged) {
  for (int i = 0; i < N; i++) {
    g_p[i] = lm_malloc(SIZE);
    CHECK(g_p[i] != NULL);
    fill(i);
  }
  struct timespec ts = {0, 300 * 1000 * 1000};
  nanosleep(&ts, NULL);   /* older than a quarter of the 500 ms purge delay */
  lm_stats_t s0 = stats_now();
  long rss0 = rss_kib();
  uint64_t x = 88172645463325252ull;
  int kept = 0;
  for (int i = 0; i < N; i++) {
    if (xorshift(&x) % 10 != 0) { lm_free(g_p[i]); g_p[i] = NULL; }
    else kept++;
  }
  long rss1 = rss_kib();
  lm_stats_t s1 = stats_now();
  for (int i = 0; i < N; i++)
    if (g_p[i]) CHECK(intact(i));
  long dropped = rss0 - rss1;
  printf("scavenge %s: %d of %d blocks kept; RSS %ld -> %ld KiB (-%ld); purged +%zu KiB; "
         "committed %zu KiB for %zu KiB live\n",
         check_purged ? "on" : "off", kept, N, rss0, rss1, dropped,
         (s1.purged_bytes - s0.purged_bytes) / 1024, s1.committed_bytes / 1024, s1.live_bytes / 1024);
  if (check_purged) {
    CHECK(s1.purged_bytes - s0.purged_bytes >= (size_t)N * SIZE / 4);
    CHECK(s1.committed_bytes < s0.committed_bytes);
  }
  pthread_t t;
  CHECK(pthread_create(&t, NULL, remote_free, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  /* allocate the freed ones again: the purged blocks come back */
  for (int i = 0; i < N; i++) {
    if (g_p[i]) continue;
    g_p[i] = lm_malloc(SIZE);
    CHECK(g_p[i] != NULL);
    fill(i);
  }
  for (int i = 0; i < N; i++) CHECK(intact(i));
  for (int i = 0; i < N; i++) lm_free(g_p[i]);
  return dropped;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) {
    long dropped = run(0);
    return dropped < (long)(N * (size_t)SIZE / 1024) / 10 ? 0 : 3;
  }
  long dropped = run(1);
  CHECK(dropped >= (long)(N * (size_t)SIZE / 1024) / 4);
  fflush(stdout);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    setenv("LITEMALLOC_SCAVENGE", "0", 1);
    execl("/proc/self/exe", argv[0], "child", (char *)NULL);
    _exit(2);
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);   /* without the scavenger, no drop */
  printf("sparse_test: OK\n");
  return 0;
}
