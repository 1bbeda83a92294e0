/* A library that the dlopen test loads at run time: it allocates and frees
 * with the C library's names, so across the boundary with the program. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

void *plugin_alloc(size_t size) { return malloc(size); }
void plugin_free(void *p) { free(p); }
void *plugin_realloc(void *p, size_t size) { return realloc(p, size); }
char *plugin_strdup(const char *s) { return strdup(s); }
void *plugin_aligned(size_t alignment, size_t size) { return aligned_alloc(alignment, size); }
