/* launch - runs one benchmark process and reports its wall time and peak RSS.
 *
 *     launch [-p PRELOAD] [-t TIMEOUT_S] -- PROGRAM [ARGS...]
 *
 * Forks, sets LD_PRELOAD=PRELOAD in the child only (none when -p is absent or
 * empty), execs PROGRAM and waits for it with wait4.  When it is done, prints
 * one line on stdout:
 *
 *     @@launch wall=SECS maxrss_kb=KB user=SECS sys=SECS status=N signal=N timeout=0|1 exit_hwm=0|1
 *
 * Why not measure from Python directly: ru_maxrss survives exec, so a child
 * forked (or vforked) from a big Python process starts with Python's RSS as
 * its high-water mark.  Forked from this small program, the child's mark
 * starts at about 1 MiB, below anything a benchmark reaches.
 *
 * maxrss_kb is the larger of ru_maxrss and the child's VmHWM read from
 * /proc when its main thread exits (stopped there with ptrace's
 * PTRACE_EVENT_EXIT, before its memory is torn down).  Since Linux 6.2 the
 * RSS counters are per-CPU, and the high-water mark behind ru_maxrss is
 * taken from their approximate sum, which misses up to 31 pages a CPU that
 * were not folded in yet: measured on this project's 2-CPU machine, 56 to
 * 328 KiB too low on 3 to 5 MiB workloads (8% of cache-scratch's RSS),
 * for every allocator, by a different amount each.  /proc's VmHWM adds the
 * current RSS, which this project's kernel (6.18) sums exactly there
 * (checked against smaps_rollup), so it is exact for a workload whose peak
 * is at its end, as small ones' is.
 * exit_hwm=1 when that was read; where ptrace is refused, ru_maxrss alone.
 * Exit status: 0 when the child ran (whatever its status), 125 on a usage or
 * fork/exec error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* VmHWM of process pid in KiB, or 0. */
static long vm_hwm_kb(pid_t pid) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *p = strstr(buf, "\nVmHWM:");
  return p ? atol(p + 7) : 0;
}

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
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);   /* refused: run untraced */
    execv(argv[optind], argv + optind);
    fprintf(stderr, "launch: exec %s: %s\n", argv[optind], strerror(errno));
    _exit(127);
  }
  if (timeout > 0) alarm((unsigned)timeout);
  int status = 0;
  struct rusage ru;
  long hwm_kb = 0;
  bool traced = false;
  int exit_read = 0;
  for (;;) {
    pid_t r = wait4(pid, &status, 0, &ru);
    if (r == pid && WIFSTOPPED(status)) {   /* traced: the stop after exec, or an event */
      int sig = WSTOPSIG(status);
      if (sig == SIGTRAP && !traced) {
        traced = true;
        ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL));
        sig = 0;
      } else if (sig == SIGTRAP && (status >> 16) == PTRACE_EVENT_EXIT) {
        hwm_kb = vm_hwm_kb(pid);
        exit_read = hwm_kb > 0;
        sig = 0;
      }
      ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);   /* other signals go through */
      continue;
    }
    if (r == pid) break;
    if (r < 0 && errno == EINTR) {
      if (timed_out) kill(pid, SIGKILL);
      continue;
    }
    perror("launch: wait4");
    return 125;
  }
  if (hwm_kb < ru.ru_maxrss) hwm_kb = ru.ru_maxrss;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("@@launch wall=%.6f maxrss_kb=%ld user=%.6f sys=%.6f status=%d signal=%d timeout=%d "
         "exit_hwm=%d\n",
         wall, hwm_kb, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6,
         WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
         (int)timed_out, exit_read);
  return 0;
}
