/* launch - runs one benchmark process and reports its wall time and peak RSS.
 *
 *     launch [-p PRELOAD] [-t TIMEOUT_S] -- PROGRAM [ARGS...]
 *
 * Forks, sets LD_PRELOAD=PRELOAD in the child only (none when -p is absent or
 * empty), execs PROGRAM and waits for it with wait4.  When it is done, prints
 * one line on stdout:
 *
 *     @@launch wall=SECS maxrss_kb=KB user=SECS sys=SECS status=N signal=N timeout=0|1
 *
 * Why not measure from Python directly: ru_maxrss survives exec, so a child
 * forked (or vforked) from a big Python process starts with Python's RSS as
 * its high-water mark.  Forked from this small program, the child's mark
 * starts at about 1 MiB, below anything a benchmark reaches.
 * Exit status: 0 when the child ran (whatever its status), 125 on a usage or
 * fork/exec error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
}

int main(int argc, char **argv) {
  const char *preload = NULL;
  int timeout = 0, opt;
  while ((opt = getopt(argc, argv, "+p:t:")) != -1) {
    if (opt == 'p') preload = optarg;
    else if (opt == 't') timeout = atoi(optarg);
    else return 125;
  }
  if (optind >= argc) {
    fprintf(stderr, "usage: launch [-p PRELOAD] [-t TIMEOUT_S] -- PROGRAM [ARGS...]\n");
    return 125;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: wait4 returns EINTR */
  sigaction(SIGALRM, &sa, NULL);

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("launch: fork");
    return 125;
  }
  if (pid == 0) {
    if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    execv(argv[optind], argv + optind);
    fprintf(stderr, "launch: exec %s: %s\n", argv[optind], strerror(errno));
    _exit(127);
  }
  if (timeout > 0) alarm((unsigned)timeout);
  int status = 0;
  struct rusage ru;
  for (;;) {
    pid_t r = wait4(pid, &status, 0, &ru);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) {
      if (timed_out) kill(pid, SIGKILL);
      continue;
    }
    perror("launch: wait4");
    return 125;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("@@launch wall=%.6f maxrss_kb=%ld user=%.6f sys=%.6f status=%d signal=%d timeout=%d\n",
         wall, ru.ru_maxrss, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6,
         WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
         (int)timed_out);
  return 0;
}
