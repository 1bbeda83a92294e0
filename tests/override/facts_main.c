/* A program that refers to nothing of //override:wrap by name, only to
 * malloc and free: what a program linked with --defsym or --wrap looks like
 * to the linker (wrap_link_facts_test.sh). */
#include <stdlib.h>

int main(void) {
  void *p = malloc(10);
  free(p);
  return p == NULL;
}
