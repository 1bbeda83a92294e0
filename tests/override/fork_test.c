/* fork() from a program whose threads keep allocating, with the override in
 * place: 1,000 times, the child allocates and frees (blocks of its own, and
 * blocks the parent allocated), uses stdio, and exits through exit() so that
 * atexit handlers and destructors run.  A child that deadlocks is killed by
 * its alarm and fails the test instead of hanging it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "lm_probe.h"

#define THREADS 4
#define FORKS 1000
#define CHILD_SECONDS 20

static atomic_int g_stop;

static void *churn(void *arg) {
  uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
  void *slots[128] = {0};
  while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t i = x % 128, size = (x >> 8) % 100 < 95 ? (x >> 16) % 2000 : (x >> 16) % 400000;
    free(slots[i]);
    slots[i] = (x >> 40) % 4 ? malloc(size) : calloc(1, size);
    CHECK(slots[i] != NULL);
    memset(slots[i], 1, size < 64 ? size : 64);
  }
  for (int i = 0; i < 128; i++) free(slots[i]);
  return NULL;
}

static void child(char *from_parent) {
  alarm(CHILD_SECONDS);
  CHECK(lm_owns(from_parent) && from_parent[0] == 'p');
  free(from_parent);
  void *p[200];
  for (int i = 0; i < 200; i++) {
    p[i] = malloc((size_t)(i * 37) % 3000);
    CHECK(p[i] != NULL && lm_owns(p[i]));
  }
  for (int i = 0; i < 200; i += 2) free(p[i]);
  char *s = NULL;
  CHECK(asprintf(&s, "child %d", (int)getpid()) > 0 && lm_owns(s));
  free(s);
  for (int i = 1; i < 200; i += 2) free(p[i]);
  FILE *null = fopen("/dev/null", "w");
  CHECK(null != NULL);
  fprintf(null, "child done\n");
  fclose(null);
  exit(0);
}

int main(void) {
  pthread_t tid[THREADS];
  for (uintptr_t t = 0; t < THREADS; t++)
    CHECK(pthread_create(&tid[t], NULL, churn, (void *)t) == 0);
  fflush(stdout);
  for (int i = 0; i < FORKS; i++) {
    char *from_parent = malloc(100);
    CHECK(from_parent != NULL);
    from_parent[0] = 'p';
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child(from_parent);
    free(from_parent);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "fork %d: child %s %d%s\n", i, WIFEXITED(status) ? "exited with" : "killed by signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
              WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (deadlock: alarm)" : "");
      return 1;
    }
  }
  atomic_store(&g_stop, 1);
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(tid[t], NULL) == 0);
  printf("override fork_test: OK (%d forks)\n", FORKS);
  return 0;
}
