/* Process-wide start-up, options, and the fork and exit hooks.
 *
 * init_process runs once, at the first slow path or from the constructor,
 * whichever comes first (malloc is often called before constructors run).  It
 * reads the LITEMALLOC_* options from /proc/self/environ with raw reads into
 * a stack buffer, so it needs neither libc's environ nor an allocation, picks
 * the random cookie for free-block tags, and registers, through weak
 * references so the core links without pthreads: a pthread key whose
 * destructor abandons an exiting thread's heap, and fork handlers that hold
 * the arena lock across fork() so a child never inherits it locked.
 *
 * Options (documented in the README):
 *   LITEMALLOC_SHOW_STATS=1|json  print statistics to stderr at exit
 *   LITEMALLOC_PURGE_DELAY_MS=N   keep freed spans resident N ms (default 500)
 *   LITEMALLOC_DIRTY_MB=N         always allow N MiB of freed spans (default 8)
 *   LITEMALLOC_PURGE_THREAD=0|1   purge in a background thread (default 1)
 *   LITEMALLOC_SCAVENGE=0|1       give back free OS pages inside sparse pages (default 1)
 */
#include "internal.h"

lm_options_t lm_options = {
    .purge_delay_ms = 500,
    .dirty_min = (size_t)8 << 20,
    .show_stats = 0,
    .purge_thread = 1,
    .scavenge = 1,
};
uintptr_t lm_cookie;
unsigned lm_heap_key;
bool lm_heap_key_ok;

extern int pthread_key_create(unsigned *key, void (*destructor)(void *)) __attribute__((weak));
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void),
                             void *dso) __attribute__((weak));
extern void *__dso_handle __attribute__((weak));
LM_HIDDEN bool sizeclass_validate(void);

static _Atomic int init_state;      /* 0 not yet, 1 core done, 2 hooks done */

/* ---- options --------------------------------------------------------------- */

static bool starts_with(const char *s, const char *prefix) {
  while (*prefix) if (*s++ != *prefix++) return false;
  return true;
}

static bool streq(const char *a, const char *b) {
  while (*a && *a == *b) { a++; b++; }
  return *a == *b;
}

/* Parses a decimal number <= max; false if malformed. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (!*s) return false;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > max) return false;
  }
  *out = v;
  return true;
}

static void option_set(const char *entry) {
  const char *name = entry + 11;   /* after "LITEMALLOC_" */
  const char *eq = name;
  while (*eq && *eq != '=') eq++;
  if (!*eq) return;
  const char *value = eq + 1;
  uint64_t v;
  if (starts_with(name, "SHOW_STATS=")) {
    if (streq(value, "1") || streq(value, "text")) lm_options.show_stats = 1;
    else if (streq(value, "json")) lm_options.show_stats = 2;
    else if (streq(value, "0") || !*value) lm_options.show_stats = 0;
    else error_warn("LITEMALLOC_SHOW_STATS must be 0, 1, text or json, not ", value);
  } else if (starts_with(name, "PURGE_DELAY_MS=")) {
    if (parse_uint(value, 3600000, &v)) lm_options.purge_delay_ms = v;
    else error_warn("LITEMALLOC_PURGE_DELAY_MS must be 0..3600000 (ms), not ", value);
  } else if (starts_with(name, "PURGE_THREAD=")) {
    if (streq(value, "0") || streq(value, "1")) lm_options.purge_thread = value[0] - '0';
    else error_warn("LITEMALLOC_PURGE_THREAD must be 0 or 1, not ", value);
  } else if (starts_with(name, "SCAVENGE=")) {
    if (streq(value, "0") || streq(value, "1")) lm_options.scavenge = value[0] - '0';
    else error_warn("LITEMALLOC_SCAVENGE must be 0 or 1, not ", value);
  } else if (starts_with(name, "DIRTY_MB=")) {
    if (parse_uint(value, 1 << 20, &v)) lm_options.dirty_min = (size_t)v << 20;
    else error_warn("LITEMALLOC_DIRTY_MB must be 0..1048576 (MiB), not ", value);
  } else {
    error_warn("unknown option ignored: ", entry);
  }
}

/* Streams /proc/self/environ through a small buffer; entries are NUL-ended.
 * Entries of interest are short; a longer one is skipped, with a warning if
 * it is ours. */
static void options_read(void) {
  int fd = os_open_read("/proc/self/environ");
  if (fd < 0) return;
  char buf[2048];
  size_t have = 0;
  bool skipping = false;
  for (;;) {
    long r = os_read(fd, buf + have, sizeof buf - 1 - have);
    if (r <= 0) break;
    have += (size_t)r;
    size_t at = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf[i] != 0) continue;
      if (!skipping && starts_with(buf + at, "LITEMALLOC_")) option_set(buf + at);
      skipping = false;
      at = i + 1;
    }
    if (at == 0 && have == sizeof buf - 1) {
      if (!skipping && starts_with(buf, "LITEMALLOC_")) {
        buf[64] = 0;
        error_warn("option too long, ignored: ", buf);
      }
      skipping = true;
      have = 0;
      continue;
    }
    for (size_t i = at; i < have; i++) buf[i - at] = buf[i];
    have -= at;
  }
  os_close(fd);
}

/* ---- hooks ------------------------------------------------------------------- */

static void thread_exit(void *heap) { heap_abandon((lm_heap_t *)heap); }
static void fork_prepare(void) {
  heap_fork_prepare();
  arena_lock();
}
static void fork_parent(void) {
  arena_unlock();
  heap_fork_parent();
}
static void fork_child(void) {
  /* The hooks are registered if this runs at all. */
  atomic_store_explicit(&init_state, 2, memory_order_release);
  arena_after_fork_child();
  heap_fork_child();
  purger_after_fork_child();
}

/* The thread running init_process: its own allocations (pthread_key_create
 * and __register_atfork may allocate) must not wait for it to finish. */
static __thread bool initializing __attribute__((tls_model("initial-exec")));

void init_process(void) {
  if (LM_LIKELY(atomic_load_explicit(&init_state, memory_order_acquire) == 2)) return;
  if (initializing) return;
  bool mine = false;
  arena_lock();
  if (atomic_load_explicit(&init_state, memory_order_relaxed) == 0) {
    lm_cookie = (uintptr_t)os_random() | 1;
    options_read();
#if LM_DEBUG >= 2
    LM_ASSERT(sizeclass_validate());
#endif
    atomic_store_explicit(&init_state, 1, memory_order_release);
    mine = true;
  }
  arena_unlock();
  /* Another thread may still be registering the hooks: go on without
   * waiting (it may hold a lock that thread needs); this thread's heap asks
   * for the exit hook at a later slow path (heap_register_exit). */
  if (!mine) return;
  /* Outside the lock: these may allocate, which re-enters malloc. */
  initializing = true;
  if (pthread_key_create && pthread_key_create(&lm_heap_key, thread_exit) == 0)
    lm_heap_key_ok = true;
  if (__register_atfork && &__dso_handle)
    __register_atfork(fork_prepare, fork_parent, fork_child, __dso_handle);
  initializing = false;
  atomic_store_explicit(&init_state, 2, memory_order_release);
}

__attribute__((constructor)) static void init_at_load(void) { init_process(); }

__attribute__((destructor)) static void show_stats_at_exit(void) {
  if (lm_options.show_stats == 1) {
    lm_stats_print(2);
  } else if (lm_options.show_stats == 2) {
    char buf[16384];
    size_t n = lm_stats_json(buf, sizeof buf - 1);
    if (n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n] = '\n';
    os_write(2, "\n", 1);
    os_write(2, buf, n + 1);
  }
}
