/* What the libc re-entry tests (tests/override/reentry_*.c) share.
 *
 * These programs run with litemalloc linked in (//override) or preloaded, and
 * for comparison under another allocator (glibc, jemalloc, mimalloc, tcmalloc
 * preloaded, with REENTRY_ANY_MALLOC=1).  So litemalloc's statistics are
 * optional here, unlike lm_probe.h's: reentry_stats() fills a snapshot and
 * returns 1 when the process has litemalloc, and returns 0 otherwise.  Built with -DLM_PROBE_DLSYM (the *_plain binaries, run with
 * LD_PRELOAD) lm_stats is looked up with dlsym(RTLD_DEFAULT, "lm_stats");
 * linked with //override it is called directly.
 *
 * Also: the process's resident memory and thread count from /proc, and a
 * millisecond sleep.  Everything is static inline.
 */
#ifndef LM_REENTRY_COMMON_H
#define LM_REENTRY_COMMON_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "litemalloc/litemalloc.h"

#ifdef LM_PROBE_DLSYM
#include <dlfcn.h>
#endif

/* Fills *s with litemalloc's statistics; 0 when the process has no litemalloc
 * (then *s is all zeroes).  A plain build (LM_PROBE_DLSYM) without litemalloc
 * is an error, so that a preload that did not take cannot pass for a
 * success, unless REENTRY_ANY_MALLOC=1 (to run the programs under other
 * allocators for comparison). */
static inline int reentry_stats(lm_stats_t *s) {
  memset(s, 0, sizeof *s);
  s->size = sizeof *s;
#ifdef LM_PROBE_DLSYM
  void (*fn)(lm_stats_t *) = (void (*)(lm_stats_t *))dlsym(RTLD_DEFAULT, "lm_stats");
  if (!fn) {
    const char *any = getenv("REENTRY_ANY_MALLOC");
    if (any && strcmp(any, "1") == 0) return 0;
    fprintf(stderr, "lm_stats not found: run this program with LD_PRELOAD=liblitemalloc.so"
                    " (or REENTRY_ANY_MALLOC=1 to run it under another allocator)\n");
    exit(1);
  }
  fn(s);
#else
  lm_stats(s);
#endif
  return 1;
}

/* "litemalloc" when reentry_stats works, else "another allocator". */
static inline const char *reentry_allocator(void) {
  lm_stats_t s;
  return reentry_stats(&s) ? "litemalloc" : "another allocator";
}

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"); -1 if absent. */
static inline long reentry_status_kib(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static inline long reentry_rss_kib(void) { return reentry_status_kib("VmRSS"); }

/* Entries of /proc/self/task: the threads of this process, helper threads of
 * the allocator included, whoever made them (pthread_create or clone). */
static inline int reentry_task_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static inline void reentry_sleep_ms(long ms) {
  struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&d, &d) != 0) {
  }
}

static inline double reentry_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#endif /* LM_REENTRY_COMMON_H */
