/* Statistics: a snapshot merged from per-thread counters.
 *
 * Each heap counts its own allocations and frees per class with plain
 * increments (no atomics on the fast path); a snapshot walks the list of
 * heaps (which only grows, heaps are never freed) and sums the counters with
 * relaxed loads, so it never stops or slows an allocating thread.  A block
 * freed by another thread counts as a free of the freeing thread's heap, so
 * only the sums are meaningful.  The arena's counters come from arena_stats.
 * Text and JSON are formatted without stdio and without allocating.
 */
#include <string.h>

#include "internal.h"

void lm_stats(lm_stats_t *out) {
  lm_stats_t s;
  memset(&s, 0, sizeof s);
  s.size = sizeof s;
  s.version = LM_STATS_VERSION;
  s.class_count = LM_CLASSES;
  uint64_t large_allocs = 0, large_frees = 0, large_in = 0, large_out = 0;
  for (unsigned c = 0; c < LM_CLASSES; c++) s.classes[c].block_size = sizeclass_block_size(c);
  for (lm_heap_t *h = heap_all(); h; h = h->next_all) {
    for (unsigned c = 0; c < LM_CLASSES; c++) {
      s.classes[c].allocs += heap_class_allocs(h, c);
      s.classes[c].frees += lm_stat_read(h->frees[c]);
    }
    large_allocs += lm_stat_read(h->large_allocs);
    large_frees += lm_stat_read(h->large_frees);
    large_in += lm_stat_read(h->large_alloc_bytes);
    large_out += lm_stat_read(h->large_free_bytes);
    s.remote_frees += lm_stat_read(h->remote_frees);
  }
  for (unsigned c = 0; c < LM_CLASSES; c++) {
    lm_class_stats_t *k = &s.classes[c];
    /* Counters of different heaps are read at slightly different times. */
    k->live = k->allocs > k->frees ? k->allocs - k->frees : 0;
    s.allocs += k->allocs;
    s.frees += k->frees;
    s.live_objects += k->live;
    s.live_bytes += k->live * k->block_size;
  }
  s.allocs += large_allocs;
  s.frees += large_frees;
  s.live_objects += large_allocs > large_frees ? large_allocs - large_frees : 0;
  s.large_live_bytes = large_in > large_out ? large_in - large_out : 0;
  s.live_bytes += s.large_live_bytes;
  int64_t peak = atomic_load_explicit(&lm_live_peak, memory_order_relaxed);
  s.peak_live_bytes = (size_t)peak > s.live_bytes ? (size_t)peak : s.live_bytes;
  arena_stats(&s);
  s.threads = heap_counts(&s.heaps);
  size_t n = out->size;
  if (n == 0 || n > sizeof s) n = sizeof s;
  memcpy(out, &s, n);
  out->size = n;
}

/* ---- formatting ----------------------------------------------------------- */

/* A snprintf-like writer: counts every byte, stores those that fit. */
typedef struct out_s {
  char *buf;
  size_t cap, len;
  int fd;          /* >= 0: flush to this fd when the buffer fills */
} out_t;

static void out_flush(out_t *o) {
  if (o->fd >= 0 && o->len) { os_write(o->fd, o->buf, o->len); o->len = 0; }
}

static void out_str(out_t *o, const char *s) {
  for (; *s; s++) {
    if (o->fd >= 0 && o->len == o->cap) out_flush(o);
    if (o->len < o->cap) o->buf[o->len] = *s;
    o->len++;
  }
}

static void out_uint(out_t *o, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  char s[24];
  for (size_t i = 0; i < n; i++) s[i] = tmp[n - 1 - i];
  s[n] = 0;
  out_str(o, s);
}

/* The scalar fields, in struct order, listed once for both formats. */
#define LM_STATS_FIELDS(X) \
  X(live_bytes) X(live_objects) X(peak_live_bytes) X(allocs) X(frees) X(remote_frees) \
  X(large_live_bytes) X(committed_bytes) X(cached_bytes) X(reserved_bytes) X(purged_bytes) X(mmap_calls) \
  X(threads) X(heaps)

size_t lm_stats_json(char *buf, size_t cap) {
  lm_stats_t s;
  s.size = sizeof s;
  lm_stats(&s);
  out_t o = {buf, cap ? cap - 1 : 0, 0, -1};
  out_str(&o, "{\"version\":");
  out_uint(&o, s.version);
#define X(f) out_str(&o, ",\"" #f "\":"); out_uint(&o, s.f);
  LM_STATS_FIELDS(X)
#undef X
  out_str(&o, ",\"class_count\":");
  out_uint(&o, s.class_count);
  out_str(&o, ",\"classes\":[");
  for (size_t c = 0; c < s.class_count; c++) {
    out_str(&o, c ? ",{\"block_size\":" : "{\"block_size\":");
    out_uint(&o, s.classes[c].block_size);
    out_str(&o, ",\"allocs\":");
    out_uint(&o, s.classes[c].allocs);
    out_str(&o, ",\"frees\":");
    out_uint(&o, s.classes[c].frees);
    out_str(&o, ",\"live\":");
    out_uint(&o, s.classes[c].live);
    out_str(&o, "}");
  }
  out_str(&o, "]}");
  if (cap) buf[o.len < cap ? o.len : cap - 1] = 0;
  return o.len;
}

void lm_stats_print(int fd) {
  lm_stats_t s;
  s.size = sizeof s;
  lm_stats(&s);
  char buf[1024];
  out_t o = {buf, sizeof buf, 0, fd};
  out_str(&o, "litemalloc statistics\n");
#define X(f) out_str(&o, "  " #f ": "); out_uint(&o, s.f); out_str(&o, "\n");
  LM_STATS_FIELDS(X)
#undef X
  out_str(&o, "  classes (block_size: allocs frees live), those used:\n");
  for (size_t c = 0; c < s.class_count; c++) {
    if (!s.classes[c].allocs) continue;
    out_str(&o, "    ");
    out_uint(&o, s.classes[c].block_size);
    out_str(&o, ": ");
    out_uint(&o, s.classes[c].allocs);
    out_str(&o, " ");
    out_uint(&o, s.classes[c].frees);
    out_str(&o, " ");
    out_uint(&o, s.classes[c].live);
    out_str(&o, "\n");
  }
  out_flush(&o);
}
