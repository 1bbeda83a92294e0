/* CHECK(condition): on failure, print where and exit 1. */
#ifndef LM_OVERRIDE_CHECK_H
#define LM_OVERRIDE_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(e)                                                             \
  do {                                                                       \
    if (!(e)) {                                                              \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #e);  \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

#endif
