/* What the core tests (tests/core/) share: the CHECK macro, KiB/MiB, the
 * xorshift generator and a statistics snapshot.  The override tests include it
 * through tests/override/check.h.  When tests/override/libc_names.h is
 * force-included before it (the override builds of stress_test.c), lm_stats
 * may be lm_probe.h's dlsym macro, which stats_now then uses.
 *
 * Everything here is a macro or a static inline function, so a test that uses
 * only part of it compiles without unused-function warnings. */
#ifndef LM_TESTS_CORE_CHECK_H
#define LM_TESTS_CORE_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"

/* CHECK(condition): on failure, print "file:line: CHECK failed: condition"
 * on stderr and exit 1. */
#define CHECK(e)                                                           \
  do {                                                                     \
    if (!(e)) {                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #e); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Deterministic randomness: xorshift64, state *s must not be 0. */
static inline uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* A snapshot of litemalloc's statistics, every field the library knows. */
static inline lm_stats_t stats_now(void) {
  lm_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  lm_stats(&s);
  return s;
}

/* After the test freed and trimmed everything it made: as many live objects
 * as at `start`, and at most 64 KiB more committed (a block lost, or freed
 * into the wrong heap, would keep its page). */
static inline void check_back_to(lm_stats_t start) {
  lm_stats_t now = stats_now();
  printf("live objects %zu -> %zu, committed %zu -> %zu KiB\n", (size_t)start.live_objects,
         (size_t)now.live_objects, (size_t)(start.committed_bytes / KiB),
         (size_t)(now.committed_bytes / KiB));
  CHECK(now.live_objects == start.live_objects);
  CHECK(now.committed_bytes <= start.committed_bytes + 64 * KiB);
}


/* ---- the machine ------------------------------------------------------- */

/* Resident memory of this process in KiB (/proc/self/statm). */
static inline long rss_kib(void) {
  char b[256];
  int fd = open("/proc/self/statm", O_RDONLY);
  CHECK(fd >= 0);
  ssize_t n = read(fd, b, sizeof b - 1);
  close(fd);
  CHECK(n > 0);
  b[n] = '\0';
  long size, rss;
  CHECK(sscanf(b, "%ld %ld", &size, &rss) == 2);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The kernel's overcommit policy (/proc/sys/vm/overcommit_memory: 0
 * heuristic, 1 always, 2 strict), or -1 if it cannot be read. */
static inline int overcommit_mode(void) {
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = -1;
  if (f) {
    if (fscanf(f, "%d", &mode) != 1) mode = -1;
    fclose(f);
  }
  return mode;
}

/* A /proc/meminfo field in bytes ("MemTotal:"), or 0. */
static inline size_t meminfo_bytes(const char *key) {
  FILE *f = fopen("/proc/meminfo", "r");
  char line[256];
  size_t v = 0, klen = strlen(key);
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, klen) == 0) v = (size_t)strtoull(line + klen, NULL, 10) * 1024;
  fclose(f);
  return v;
}

/* What the overcommit policy does with one private writable mapping of n
 * bytes: 1 grants it, 0 refuses it, -1 cannot tell.  Mode 0 refuses a
 * mapping larger than RAM + swap; mode 2 one beyond what is left of the
 * commit limit. */
static inline int kernel_grants(size_t n) {
  switch (overcommit_mode()) {
    case 0: {
      size_t total = meminfo_bytes("MemTotal:") + meminfo_bytes("SwapTotal:");
      if (total == 0) return -1;
      return n > total ? 0 : 1;
    }
    case 1:
      return 1;
    case 2: {
      size_t limit = meminfo_bytes("CommitLimit:"), used = meminfo_bytes("Committed_AS:");
      if (limit == 0) return -1;
      if (n > limit) return 0;
      return used < limit && n + 256 * MiB < limit - used ? 1 : -1;
    }
    default:
      return -1;
  }
}

#endif /* LM_TESTS_CORE_CHECK_H */
