/* dlopen of a library that allocates and frees across the boundary: blocks
 * the library allocates are freed and resized by the program and the other
 * way round, before and after the library is unloaded.
 * Usage: dlopen_test PATH_OF_dlopen_plugin.so
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lm_probe.h"

#define SYM(type, name) ((type)lookup(lib, name))

static void *lookup(void *lib, const char *name) {
  void *f = dlsym(lib, name);
  CHECK(f != NULL);
  return f;
}

int main(int argc, char **argv) {
  CHECK(argc == 2);
  char *path = realpath(argv[1], NULL);
  CHECK(path != NULL);
  size_t before = lm_probe_allocs();
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) fprintf(stderr, "dlopen: %s\n", dlerror());
  CHECK(lib != NULL);
  void *(*plugin_alloc)(size_t) = SYM(void *(*)(size_t), "plugin_alloc");
  void (*plugin_free)(void *) = SYM(void (*)(void *), "plugin_free");
  void *(*plugin_realloc)(void *, size_t) = SYM(void *(*)(void *, size_t), "plugin_realloc");
  char *(*plugin_strdup)(const char *) = SYM(char *(*)(const char *), "plugin_strdup");
  void *(*plugin_aligned)(size_t, size_t) = SYM(void *(*)(size_t, size_t), "plugin_aligned");

  void *kept[1000];
  for (int i = 0; i < 1000; i++) {
    /* the library allocates, the program resizes and frees */
    char *a = plugin_alloc((size_t)i * 10 + 1);
    CHECK(a && lm_owns(a));
    a[0] = 'a';
    a = realloc(a, (size_t)i * 100 + 50);
    CHECK(a && a[0] == 'a');
    free(a);
    /* the program allocates, the library resizes and frees */
    char *b = malloc((size_t)i + 1);
    CHECK(b && lm_owns(b));
    b = plugin_realloc(b, (size_t)i * 1000 + 1);
    CHECK(b && lm_owns(b));
    plugin_free(b);
    char *s = plugin_strdup("from the library");
    CHECK(s && lm_owns(s) && strcmp(s, "from the library") == 0);
    free(s);
    void *w = plugin_aligned(256, 1000);
    CHECK(w && lm_owns(w) && (uintptr_t)w % 256 == 0);
    plugin_free(w);
    kept[i] = plugin_alloc(64);
    CHECK(kept[i] != NULL);
  }
  /* blocks outlive the library that allocated them */
  CHECK(dlclose(lib) == 0);
  for (int i = 0; i < 1000; i++) free(kept[i]);
  free(path);
  size_t served = lm_probe_allocs() - before;
  CHECK(served >= 6000);
  printf("override dlopen_test: OK (%zu allocations served by litemalloc)\n", served);
  return 0;
}
