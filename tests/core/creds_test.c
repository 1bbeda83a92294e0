/* The purger thread does not outlive a change of credentials.
 *
 * It is made with a raw clone, so glibc's setuid() (which changes every
 * thread glibc knows of) does not reach it: it keeps the credentials of the
 * thread that made it.  So it ends when nothing has been cached for a purge
 * delay and asks to be replaced after 2 s; the next thread that caches
 * memory starts a fresh one.
 * Here, as root, two threads hold heaps, memory is cached (the purger
 * starts), the program drops to uid/gid 65534 and keeps caching memory: within
 * a few seconds every task of the process must have the new credentials.
 * Where setuid is not possible (not root, or a user namespace without that
 * uid), there is nothing to show and the test says so.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* How many tasks of the process do not have real uid `uid`. */
static int tasks_without_uid(unsigned uid) {
  DIR *d = opendir("/proc/self/task");
  CHECK(d != NULL);
  int other = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;   /* the task ended meanwhile */
    unsigned real = 0;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "Uid: %u", &real) == 1) break;
    fclose(f);
    if (real != uid) other++;
  }
  closedir(d);
  return other;
}

static pthread_barrier_t held;

static void *holder(void *arg) {
  void *p = lm_malloc(64);   /* a second heap: the process is multi-threaded */
  pthread_barrier_wait(&held);
  pthread_barrier_wait(&held);   /* until main has cached memory */
  lm_free(p);
  return arg;
}

static void cache_some(void) {
  void *p = lm_malloc(1 << 20);
  CHECK(p != NULL);
  memset(p, 1, 1 << 20);
  lm_free(p);   /* a free span: cached, the purger is kicked */
}

int main(void) {
  if (geteuid() != 0) {
    printf("creds_test: not root, nothing to show\n");
    return 0;
  }
  void *mine = lm_malloc(64);
  pthread_t t;
  CHECK(pthread_barrier_init(&held, NULL, 2) == 0);
  CHECK(pthread_create(&t, NULL, holder, NULL) == 0);
  pthread_barrier_wait(&held);   /* two heaps held at once */
  cache_some();                  /* the purger starts, as root */
  pthread_barrier_wait(&held);
  CHECK(pthread_join(t, NULL) == 0);
  int root = tasks_without_uid(65534);   /* every task is still root here */
  if (setgid(65534) != 0 || setuid(65534) != 0) {
    printf("creds_test: setuid(65534) not possible here, nothing to show\n");
    return 0;
  }
  int other = -1;
  for (int i = 0; i < 80 && other != 0; i++) {   /* up to 8 s */
    cache_some();
    struct timespec d = {0, 100 * 1000 * 1000};
    nanosleep(&d, NULL);
    other = tasks_without_uid(65534);
  }
  printf("creds_test: tasks other than main before setuid: %d; tasks not at uid 65534 a while "
         "after it: %d\n", root - 1, other);
  CHECK(root == 2);   /* main and the purger: otherwise nothing was shown */
  CHECK(other == 0);
  lm_free(mine);
  printf("creds_test: OK\n");
  return 0;
}
