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

#endif /* LM_TESTS_CORE_CHECK_H */
