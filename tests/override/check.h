/* CHECK(condition): on failure, print where and exit 1.  The override tests
 * use the core tests' header (tests/core/check.h): the same macro and
 * helpers. */
#ifndef LM_OVERRIDE_CHECK_H
#define LM_OVERRIDE_CHECK_H

#include "../core/check.h"

#endif
