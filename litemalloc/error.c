/* Fatal errors, warnings, errno, and the debug fills.  Messages are built in a stack buffer and
 * written with one write(2): no stdio, no allocation, so they work from inside
 * a broken heap.  errno belongs to the C library, so it is reached through a
 * weak reference to __errno_location: the core links without libc and simply
 * cannot report errno where there is none. */
#include "internal.h"

extern int *__errno_location(void) __attribute__((weak));

void error_set_errno(int e) {
  if (__errno_location) *__errno_location() = e;
}

size_t error_hex(char *buf, uintptr_t v) {
  static const char digits[] = "0123456789abcdef";
  char tmp[16];
  size_t n = 0;
  do { tmp[n++] = digits[v & 15]; v >>= 4; } while (v);
  buf[0] = '0'; buf[1] = 'x';
  for (size_t i = 0; i < n; i++) buf[2 + i] = tmp[n - 1 - i];
  return n + 2;
}

static size_t append(char *buf, size_t at, size_t cap, const char *s) {
  while (*s && at < cap) buf[at++] = *s++;
  return at;
}

static size_t append_uint(char *buf, size_t at, size_t cap, unsigned long v) {
  char tmp[24];
  size_t n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n && at < cap) buf[at++] = tmp[--n];
  return at;
}

void error_fatal(const char *what, const void *p) {
  char buf[160];
  size_t n = append(buf, 0, sizeof buf - 24, "litemalloc: ");
  n = append(buf, n, sizeof buf - 24, what);
  buf[n++] = ' ';
  n += error_hex(buf + n, (uintptr_t)p);
  buf[n++] = '\n';
  os_write(2, buf, n);
  os_abort();
}

void error_out_of_memory(size_t size) {
  char buf[160];
  size_t n = append(buf, 0, sizeof buf - 1, "litemalloc: out of memory in operator new (");
  n = append_uint(buf, n, sizeof buf - 1, size);
  n = append(buf, n, sizeof buf - 1, " bytes), and std::bad_alloc's thrower is not linked in\n");
  os_write(2, buf, n);
  os_abort();
}

void error_free_invalid(const void *p) {
  error_fatal("invalid pointer (not a block start, or not allocated by litemalloc):", p);
}

void error_free_double(const void *p) { error_fatal("double free of", p); }

void error_free_foreign(const void *p) {
  error_fatal("invalid pointer (not allocated by litemalloc):", p);
}

void error_free_tagged(const void *b) {
  if (((const lm_block_t *)b)->tag == block_tag(b)) error_free_double(b);
  error_free_invalid(b);
}

void error_use_after_free(const void *p) {
  error_fatal("use after free: realloc or usable size of the freed block", p);
}

void debug_fill_freed(void *p, size_t size) {
  uint8_t *b = p;
  for (size_t i = sizeof(lm_block_t); i < size; i++) b[i] = LM_FREED_BYTE;
}

void debug_check_freed(void *p, size_t size) {
  const uint8_t *b = p;
  for (size_t i = sizeof(lm_block_t); i < size; i++)
    if (b[i] != LM_FREED_BYTE) error_fatal("write after free detected in block", p);
}

void error_assert(const char *expr, const char *file, int line) {
  char buf[256];
  size_t n = append(buf, 0, sizeof buf - 2, "litemalloc: assertion failed: ");
  n = append(buf, n, sizeof buf - 2, expr);
  n = append(buf, n, sizeof buf - 2, " at ");
  n = append(buf, n, sizeof buf - 2, file);
  n = append(buf, n, sizeof buf - 2, ":");
  n = append_uint(buf, n, sizeof buf - 2, (unsigned long)line);
  buf[n++] = '\n';
  os_write(2, buf, n);
  os_abort();
}

void error_warn(const char *msg, const char *detail) {
  char buf[256];
  size_t n = append(buf, 0, sizeof buf - 2, "litemalloc: warning: ");
  n = append(buf, n, sizeof buf - 2, msg);
  if (detail) n = append(buf, n, sizeof buf - 2, detail);
  buf[n++] = '\n';
  os_write(2, buf, n);
}
