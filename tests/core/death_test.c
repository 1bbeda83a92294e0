/* Freeing what must not be freed aborts with one line on stderr.
 *
 * Each case runs in a child process whose stderr is a pipe.  The child must
 * die of SIGABRT after writing exactly one line that starts with
 * "litemalloc:", names the fault and shows the faulty address in hex.  A case
 * that expects one fault ("double free", "invalid pointer", "use after
 * free") fails if the line names another as well: "invalid pointer (or a
 * double free)" does not tell the user which.  The parent never calls
 * litemalloc, so each child starts from fresh heaps. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"
#include "check.h"

static char g_static_array[256];

/* Each case does its fault and returns the address the message must show;
 * if the process survives, the parent reports it. */
typedef void *(*fault_fn)(void);

static void *report(void *p) {
  /* the parent learns the address through stdout (a pipe too) */
  printf("%p\n", p);
  fflush(stdout);
  return p;
}

static void *double_free_small(void) {
  void *keep = lm_malloc(64); /* the page stays in use */
  void *p = lm_malloc(64);
  memset(p, 1, 64);
  lm_free(p);
  report(p);
  lm_free(p);
  return keep;
}

static void *double_free_large(void) {
  void *p = lm_malloc(1024 * 1024);
  memset(p, 1, 4096);
  lm_free(p);
  report(p);
  lm_free(p);
  return p;
}

static void *double_free_huge(void) {
  void *p = lm_malloc((size_t)80 << 20);
  lm_free(p);
  report(p);
  lm_free(p);
  return p;
}

static void *free_stack(void) {
  char buf[64];
  memset(buf, 1, sizeof buf);
  void *p = buf;
  __asm__ volatile("" : : "r"(p) : "memory");
  report(p);
  lm_free(p);
  return NULL;
}

static void *free_glibc(void) {
  void *p = malloc(100); /* glibc's heap: this test does not override malloc */
  report(p);
  lm_free(p);
  return p;
}

static void *free_static(void) {
  void *p = g_static_array + 32;
  report(p);
  lm_free(p);
  return p;
}

static void *free_interior(void) {
  char *b = lm_malloc(64);
  memset(b, 1, 64);
  report(b + 16);
  lm_free(b + 16);
  return b;
}

static void *free_interior_large(void) {
  char *b = lm_malloc(1024 * 1024);
  report(b + 4096);
  lm_free(b + 4096);
  return b;
}

static void *realloc_foreign(void) {
  void *p = malloc(100);
  report(p);
  void *q = lm_realloc(p, 1000);
  return q;
}

static void *realloc_freed(void) {
  void *keep = lm_malloc(48);
  void *p = lm_malloc(48);
  lm_free(p);
  report(p);
  void *q = lm_realloc(p, 1000);
  (void)keep;
  return q;
}

/* A shrinking realloc, which could keep the block where it is. */
static void *realloc_freed_shrink(void) {
  void *keep = lm_malloc(48);
  void *p = lm_malloc(48);
  lm_free(p);
  report(p);
  void *q = lm_realloc(p, 10);
  (void)keep;
  return q;
}

static void *usable_size_freed(void) {
  void *keep = lm_malloc(48);
  void *p = lm_malloc(48);
  lm_free(p);
  report(p);
  size_t n = lm_usable_size(p);
  (void)keep;
  return (void *)n;
}

/* The block right after the first one of a fresh page: the page has set it
 * up (it is on the free list) but never handed it out. */
static void *free_block_never_handed_out(void) {
  char *p = lm_malloc(32);
  memset(p, 1, 32);
  report(p + 32);
  lm_free(p + 32);
  return p;
}

/* About 48 MiB in use, so that a freed 64 MiB block is kept for reuse. */
static void keep_48_mib(void) {
  for (int i = 0; i < 6; i++) {
    char *l = lm_malloc((size_t)8 << 20);
    memset(l, 1, (size_t)8 << 20);
  }
}

static void *double_free_huge_cached(void) {
  keep_48_mib();
  char *p = lm_malloc((size_t)64 << 20);
  memset(p, 1, 4096);
  lm_free(p);
  lm_stats_t s = stats_now();
  if (s.cached_bytes < ((size_t)64 << 20)) {
    printf("not cached: cached_bytes %zu after free of 64 MiB\n", s.cached_bytes);
    fflush(stdout);
    _exit(3);
  }
  report(p);
  lm_free(p);
  return p;
}

static void *double_free_huge_trimmed(void) {
  char *p = lm_malloc((size_t)64 << 20);
  memset(p, 1, 4096);
  lm_free(p);
  lm_trim();   /* the mapping is gone now */
  report(p);
  lm_free(p);
  return p;
}

static void *free_or_foreign(void) {
  /* lm_free_or with no foreign function: the usual invalid-pointer error */
  void *p = g_static_array;
  report(p);
  lm_free_or(p, NULL);
  return p;
}

/* A block-aligned address in a small page that malloc never handed out
 * (the page hands out its first blocks first; this one is far past them). */
static void *free_never_allocated_block(void) {
  char *p = lm_malloc(64);
  memset(p, 1, 64);
  report(p + 64 * 200);
  lm_free(p + 64 * 200);
  return p;
}

/* An address well inside the memory litemalloc has reserved but not used. */
static void *free_unused_address(void) {
  char *p = lm_malloc(64);
  report(p + 8 * 1024 * 1024);
  lm_free(p + 8 * 1024 * 1024);
  return p;
}

static void *free_low_address(void) {
  void *p = (void *)(uintptr_t)0x1000;
  report(p);
  lm_free(p);
  return p;
}

static void *free_kernel_address(void) {
  void *p = (void *)(uintptr_t)0xffff800000001000ull;
  report(p);
  lm_free(p);
  return p;
}

/* Interior pointers of a huge object, in and past its first 32 MiB. */
static void *free_interior_huge(void) {
  char *h = lm_malloc((size_t)40 << 20);
  report(h + ((size_t)33 << 20));
  lm_free(h + ((size_t)33 << 20));
  return h;
}

static void *free_interior_huge_first(void) {
  char *h = lm_malloc((size_t)40 << 20);
  report(h + 65536);
  lm_free(h + 65536);
  return h;
}

/* A page of 4 KiB blocks, all freed but the last after they aged: the
 * owner gives the free blocks' OS pages back and their tags with them, so
 * the fault is found from the page's purged units (page.c). */
static void *sparse_block(void) {
  enum { N = 64 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = lm_malloc(4096);
    memset(p[i], 1, 4096);
  }
  usleep(300 * 1000);   /* past a quarter of the purge delay */
  for (int i = 0; i < N - 1; i++) lm_free(p[i]);
  return p[N - 2];
}

static void *double_free_sparse(void) {
  void *p = sparse_block();
  report(p);
  lm_free(p);
  return p;
}

static void *realloc_sparse(void) {
  void *p = sparse_block();
  report(p);
  return lm_realloc(p, 100);
}

static const struct {
  const char *name;
  fault_fn fn;
  const char *fault;
} g_cases[] = {
    {"double free of a small block", double_free_small, "double free"},
    {"double free of a large block", double_free_large, "double free"},
    {"double free of a block in a purged OS page", double_free_sparse, "double free"},
    {"realloc of a block in a purged OS page", realloc_sparse, "use after free"},
    {"double free of a huge block", double_free_huge, NULL /* either fault */},
    {"free of a stack pointer", free_stack, "invalid pointer"},
    {"free of a glibc heap pointer", free_glibc, "invalid pointer"},
    {"free of a static array", free_static, "invalid pointer"},
    {"free of an interior pointer (small)", free_interior, "invalid pointer"},
    {"free of an interior pointer (large)", free_interior_large, "invalid pointer"},
    {"realloc of a foreign pointer", realloc_foreign, "invalid pointer"},
    {"realloc of a freed block", realloc_freed, "use after free"},
    {"realloc(p, 10) of a freed block", realloc_freed_shrink, "use after free"},
    {"lm_usable_size of a freed block", usable_size_freed, "use after free"},
    {"free of a block never handed out", free_block_never_handed_out, "invalid pointer"},
    {"double free of a cached huge block", double_free_huge_cached, "double free"},
    {"double free of a huge block after lm_trim", double_free_huge_trimmed, "double free"},
    {"lm_free_or(foreign, NULL)", free_or_foreign, "invalid pointer"},
    {"free of a never-allocated block", free_never_allocated_block, "invalid pointer"},
    {"free of an unused address of litemalloc", free_unused_address, NULL},
    {"free of address 0x1000", free_low_address, "invalid pointer"},
    {"free of a kernel address", free_kernel_address, "invalid pointer"},
    {"free of an interior pointer (huge, +33M)", free_interior_huge, "invalid pointer"},
    {"free of an interior pointer (huge, +64K)", free_interior_huge_first, "invalid pointer"},
};

static size_t read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  ssize_t r;
  while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) != 0) {
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    n += (size_t)r;
  }
  buf[n] = '\0';
  return n;
}

static const char *const g_faults[] = {"double free", "invalid pointer", "use after free"};

/* Does `line` name `fault` and no other?  With fault NULL: any one of them. */
static int names_fault(const char *line, const char *fault) {
  int named = 0, others = 0;
  for (size_t i = 0; i < sizeof g_faults / sizeof g_faults[0]; i++) {
    if (!strstr(line, g_faults[i])) continue;
    if (fault && strcmp(fault, g_faults[i]) == 0) named = 1;
    else others++;
  }
  return fault ? named && others == 0 : others > 0;
}

/* Does `line` hold a hex number equal to v? */
static int has_hex(const char *line, uintptr_t v) {
  for (const char *c = line; (c = strstr(c, "0x")) != NULL; c += 2) {
    char *end;
    unsigned long long x = strtoull(c, &end, 16);
    if (end > c + 2 && x == v) return 1;
  }
  return 0;
}

static int run_case(size_t i) {
  int err[2], out[2];
  CHECK(pipe(err) == 0 && pipe(out) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    dup2(err[1], 2);
    dup2(out[1], 1);
    close(err[0]);
    close(out[0]);
    close(err[1]);
    close(out[1]);
    alarm(30);
    g_cases[i].fn();
    printf("survived\n");
    fflush(stdout);
    _exit(0);
  }
  close(err[1]);
  close(out[1]);
  char errbuf[4096], outbuf[256];
  read_all(err[0], errbuf, sizeof errbuf);
  read_all(out[0], outbuf, sizeof outbuf);
  close(err[0]);
  close(out[0]);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);

  int ok = 1;
  const char *why = "";
  void *addr = NULL;
  if (sscanf(outbuf, "%p", &addr) != 1) {
    ok = 0;
    why = outbuf[0] ? outbuf : "child did not report its address";
  } else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
    ok = 0;
    why = strstr(outbuf, "survived") ? "survived the fault" : "did not die of SIGABRT";
  } else {
    size_t len = strlen(errbuf);
    char *nl = strchr(errbuf, '\n');
    if (len == 0 || nl == NULL || nl != errbuf + len - 1) {
      ok = 0;
      why = "stderr is not exactly one line";
    } else if (strncmp(errbuf, "litemalloc:", 11) != 0) {
      ok = 0;
      why = "line does not start with \"litemalloc:\"";
    } else if (!names_fault(errbuf, g_cases[i].fault)) {
      ok = 0;
      why = "line does not name the fault, or names another too";
    } else if (!has_hex(errbuf, (uintptr_t)addr)) {
      ok = 0;
      why = "line does not show the address in hex";
    }
  }
  printf("%-40s %s", g_cases[i].name, ok ? "ok" : "FAILED: ");
  if (!ok) {
    printf("%s (status 0x%x", why, status);
    if (WIFSIGNALED(status)) printf(", signal %d", WTERMSIG(status));
    if (WIFEXITED(status)) printf(", exit %d", WEXITSTATUS(status));
    printf(", expected %s at %p)", g_cases[i].fault ? g_cases[i].fault : "a fault", addr);
  }
  printf("\n    stderr: %s%s", errbuf[0] ? errbuf : "(empty)\n",
         errbuf[0] && errbuf[strlen(errbuf) - 1] != '\n' ? "\n" : "");
  return ok;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int failed = 0;
  size_t n = sizeof g_cases / sizeof g_cases[0];
  for (size_t i = 0; i < n; i++) {
    if (argc > 1 && !strstr(g_cases[i].name, argv[1])) continue;
    fflush(stdout);
    failed += !run_case(i);
  }
  if (failed) {
    printf("death_test: %d case(s) FAILED\n", failed);
    return 1;
  }
  printf("death_test: OK\n");
  return 0;
}
