/* A second file of the mode-3 probe that includes the hooks header too:
 * its definitions must not clash with those of probe.c. */
#define _GNU_SOURCE
#include "override/litemalloc_hooks.h"
