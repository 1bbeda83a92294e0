/* A process whose main thread calls pthread_exit ends when its last thread
 * of its own ends: litemalloc's background purger must not keep it alive.
 * The child caches memory (which starts the purger), its main thread calls
 * pthread_exit, and the parent checks that the child exits by itself, with
 * status 0, within a few seconds. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static void *worker(void *arg) {
  (void)arg;
  for (int round = 0; round < 20; round++) {
    void *p[64];
    for (int i = 0; i < 64; i++) CHECK((p[i] = lm_malloc(200 * KiB)) != NULL);
    for (int i = 0; i < 64; i++) lm_free(p[i]);
  }
  return NULL;
}

int main(void) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
    void *big = lm_malloc(40 * MiB);
    CHECK(big != NULL);
    lm_free(big);
    pthread_exit(NULL);
  }
  int status = 0;
  for (int i = 0; i < 100; i++) {   /* up to 10 s */
    pid_t r = waitpid(pid, &status, WNOHANG);
    CHECK(r >= 0);
    if (r == pid) {
      CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      printf("child ended by itself after %d ms\n", i * 100);
      printf("PASS\n");
      return 0;
    }
    struct timespec d = {0, 100 * 1000 * 1000};
    nanosleep(&d, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  fprintf(stderr, "child still alive 10 s after its last thread ended\n");
  return 1;
}
