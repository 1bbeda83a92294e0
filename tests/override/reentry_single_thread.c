/* A single-threaded program stays single-threaded (libc re-entry, issue 7
 * point 3).
 *
 * An allocator that starts a helper thread to give memory back makes a
 * single-threaded program multi-threaded behind its back: /proc/self/task
 * shows two threads, unshare(CLONE_NEWUSER) fails with EINVAL (the kernel
 * refuses it to a multi-threaded caller), and sandboxing tools and programs
 * that rely on being single-threaded break.  Yet the memory must still go back
 * to the OS: the allocator can purge during its own calls.
 *
 * The program allocates and touches large blocks (64 MiB, 4 MiB, 64 of
 * 256 KiB) and small ones, frees everything, sleeps longer than the purge
 * delay (500 ms by default), makes one more allocator call (malloc and free
 * of 256 KiB), and checks:
 *   - /proc/self/task has exactly one entry, before and after that call;
 *   - unshare(CLONE_NEWUSER) does not fail with EINVAL.  Where the
 *     environment refuses user namespaces for other reasons (EPERM from a
 *     seccomp filter or a container, ENOSPC at the namespace limit, or EINVAL
 *     even for a single-threaded child forked at the start, i.e. no user
 *     namespaces in this kernel) that check is reported as not possible here
 *     and the thread count alone decides;
 *   - with litemalloc, resident memory, measured after that call, is within
 *     a quarter of the large bytes freed of what it was before the
 *     allocations.
 * The default options are used: no LITEMALLOC_* variable, no GLIBC_TUNABLES.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reentry_common.h"

#define SMALL_COUNT 20000
#define MID_COUNT 1000
#define LARGE_COUNT 64
#define SLEEP_MS 650 /* longer than the default purge delay (500 ms) */

/* errno of unshare(CLONE_NEWUSER) in a child forked now (0: it worked). */
static int unshare_in_child(void) {
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno & 0xff);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void *touched(size_t size) {
  unsigned char *p = malloc(size);
  CHECK(p != NULL);
  memset(p, 0x5a, size);
  return p;
}

int main(void) {
  /* at the start: one thread, and what unshare says to a single-threaded
   * process here */
  int tasks0 = reentry_task_count();
  CHECK(tasks0 == 1);
  int baseline = unshare_in_child();
  long rss0 = reentry_rss_kib();

  void *huge = touched(64 * MiB), *big = touched(4 * MiB);
  void *large[LARGE_COUNT], *mid[MID_COUNT], **small = touched(SMALL_COUNT * sizeof *small);
  for (int i = 0; i < LARGE_COUNT; i++) large[i] = touched(256 * KiB);
  for (int i = 0; i < MID_COUNT; i++) mid[i] = touched(4 * KiB);
  for (int i = 0; i < SMALL_COUNT; i++) small[i] = touched(16 + (size_t)(i % 8) * 16);
  size_t large_bytes = 64 * MiB + 4 * MiB + LARGE_COUNT * 256 * KiB;
  long rss_peak = reentry_rss_kib();

  free(huge);
  free(big);
  for (int i = 0; i < LARGE_COUNT; i++) free(large[i]);
  for (int i = 0; i < MID_COUNT; i++) free(mid[i]);
  for (int i = 0; i < SMALL_COUNT; i++) free(small[i]);
  free(small);
  int tasks_freed = reentry_task_count();

  reentry_sleep_ms(SLEEP_MS);
  int tasks_slept = reentry_task_count();
  /* one more allocator call: a single-threaded allocator purges here */
  free(touched(256 * KiB));
  long rss_end = reentry_rss_kib();
  int tasks_end = reentry_task_count();

  int end = unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
  lm_stats_t s;
  int have = reentry_stats(&s);
  printf("reentry_single_thread: %s: tasks %d at start, %d after the frees, %d after %d ms,"
         " %d after one more call; RSS %ld KiB at start, %ld KiB at peak, %ld KiB at the end"
         " (large blocks freed: %zu KiB)",
         reentry_allocator(), tasks0, tasks_freed, tasks_slept, SLEEP_MS, tasks_end, rss0,
         rss_peak, rss_end, large_bytes / KiB);
  if (have) printf("; litemalloc threads %zu, purged %zu KiB", s.threads, s.purged_bytes / KiB);
  printf("\nreentry_single_thread: unshare(CLONE_NEWUSER) in a child at start: %s; here at the"
         " end: %s\n",
         baseline ? strerror(baseline) : "ok", end ? strerror(end) : "ok");
  fflush(stdout);

  CHECK(tasks_freed == 1);
  CHECK(tasks_slept == 1);
  CHECK(tasks_end == 1);
  if (end == EINVAL && baseline != EINVAL) {
    fprintf(stderr, "unshare(CLONE_NEWUSER) failed with EINVAL: the process is multi-threaded\n");
    exit(1);
  }
  if (end != 0)
    printf("reentry_single_thread: unshare cannot succeed in this environment (%s at the start"
           " too): only the thread count was checked\n",
           baseline ? strerror(baseline) : "ok");
  /* litemalloc's promise (jemalloc and tcmalloc keep freed memory longer) */
  if (have) CHECK(rss_end - rss0 < (long)(large_bytes / KiB / 4));
  printf("reentry_single_thread: OK\n");
  return 0;
}
