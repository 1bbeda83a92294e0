/* Gigabytes of live objects cost few mappings.  vm.max_map_count is 65530,
 * so an allocator that maps (or splits a mapping) per object runs out.
 * 4096 live objects of 1 MiB plus 16 of 64 MiB, never touched, must add
 * fewer than 200 lines to /proc/self/maps. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

/* Counts lines with read(2): stdio would allocate through glibc, harmless,
 * but this keeps the count to the mappings themselves. */
static int maps_lines(void) {
  int fd = open("/proc/self/maps", O_RDONLY);
  CHECK(fd >= 0);
  static char buf[1 << 16];
  int lines = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
  close(fd);
  return lines;
}

int main(void) {
  enum { SMALL = 4096, HUGE = 16 };
  static void *p[SMALL];
  void *h[HUGE];
  lm_free(lm_malloc(1)); /* start-up mappings are not the point */
  int before = maps_lines();
  for (int i = 0; i < SMALL; i++) {
    p[i] = lm_malloc(MiB);
    CHECK(p[i] != NULL);
  }
  int mid = maps_lines();
  for (int i = 0; i < HUGE; i++) {
    h[i] = lm_malloc(64 * MiB);
    CHECK(h[i] != NULL);
  }
  int after = maps_lines();
  lm_stats_t s = stats_now();
  printf("maps lines: %d before, %d with 4 GiB in 1 MiB objects, %d with 1 GiB more"
         " in 64 MiB objects; reserved %zu MiB, mmap calls %zu\n",
         before, mid, after, s.reserved_bytes / MiB, s.mmap_calls);
  CHECK(s.live_bytes >= (size_t)SMALL * MiB + (size_t)HUGE * 64 * MiB);
  CHECK(after - before < 200);
  for (int i = 0; i < SMALL; i++) lm_free(p[i]);
  for (int i = 0; i < HUGE; i++) lm_free(h[i]);
  lm_trim();
  int end = maps_lines();
  printf("maps lines after freeing: %d\n", end);
  CHECK(end - before < 200);
  puts("maps_test: OK");
  return 0;
}
