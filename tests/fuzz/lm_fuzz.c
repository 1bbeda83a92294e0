/* libFuzzer harness: litemalloc's public API against a shadow model.
 *
 * Encoding.  The input is a sequence of 6-byte records {op, slot, s0, s1, s2,
 * a}; a trailing partial record is ignored.  op & 31 picks the operation
 * (table op_of[]), op >> 5 a variant (lm_free_or instead of lm_free, a short
 * stats struct, ...).  slot picks one of 256 slots, each empty or holding one
 * live block.  s0..s2 pick a size (size_of): s0 & 7 is the kind (tiny 0..64,
 * small 0..2 KiB, medium 0..1 MiB, large 0..64 MiB, a boundary such as 1024,
 * 128 KiB + 1 or 32 MiB plus a small delta, a power of two +-1, or an extreme
 * such as 2^40, 2^44, PTRDIFF_MAX, PTRDIFF_MAX + 1, SIZE_MAX), the other 21
 * bits the value.  a picks an alignment (align_of: every power of two from 1
 * to 2^30, larger ones, and 0, 3, 24, 48, 3000, SIZE_MAX...), or the element
 * count of calloc/reallocarray (count_of), or the buffer size of
 * lm_stats_json.  An allocation into an occupied slot frees the old block
 * first; at the end of each input every slot is freed.
 *
 * Model.  Each slot records pointer, requested size n, usable size and a
 * pattern seed.  Only the first min(n, 256) and last min(n, 64) bytes of a
 * block are written and checked (so RSS stays small even for huge blocks),
 * plus one byte at usable - 1.  Every check is a CHECK("name", ...) whose
 * name says which rule failed; the rules are marked SPEC in the code.  A
 * mismatch prints one line and aborts, so libFuzzer saves the input.  Sizes
 * are bounded by a budget: a request whose cost (size, plus the alignment
 * when above 4 KiB, a proxy for address space) is at most BUDGET must
 * succeed, after freeing other slots until the live total fits; a costlier
 * one (2^40, 2^44, ...) may succeed or fail with ENOMEM, and a success is
 * checked at its first and last bytes and freed at once.  Single-threaded,
 * so lm_stats is exact: live_objects equals the model's count after every op.
 */
#define _GNU_SOURCE   /* open's O_CLOEXEC under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "litemalloc/litemalloc.h"

#define SLOTS 256
#define PREFIX 256                   /* bytes written and checked at the start */
#define SUFFIX 64                    /* ... and at the end of each block */
#define BUDGET ((size_t)3 << 29)     /* 1.5 GiB: must succeed at or below */
#define ERRNO_SENTINEL 12345         /* errno before every call */
#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

typedef struct {
  unsigned char *p;   /* NULL: empty */
  size_t n;           /* requested size */
  size_t usable;      /* lm_usable_size at allocation */
  size_t cost;        /* n + big alignment, counted against BUDGET */
  uint8_t seed;       /* content pattern */
} slot_t;

static slot_t slots[SLOTS];
static size_t live_count, live_req, live_cost;
static uint8_t next_seed;
static unsigned op_no;            /* index of the record being run */
static char op_desc[160];         /* "malloc(slot 3, n=1025)", for messages */

/* ---- failures ----------------------------------------------------------- */

static void fail(const char *check, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  fprintf(stderr, "lm_fuzz: MISMATCH %s: op #%u %s: %s\n", check, op_no, op_desc, detail);
  abort();
}

#define CHECK(name, cond, ...) do { if (!(cond)) fail(name, __VA_ARGS__); } while (0)

/* ---- decoding ------------------------------------------------------------ */

static const size_t k_boundary[] = {
  0, 1, 8, 15, 16, 17, 1024, 1025, 2048, 4096, 16 * KiB, 64 * KiB, 128 * KiB,
  128 * KiB + 1, 256 * KiB, 1 * MiB, 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB,
  32 * MiB - 16 * KiB, 32 * MiB - 64 * KiB, 32 * MiB, 32 * MiB + 1, 48 * MiB, 64 * MiB,
};
static const long k_delta[] = {0, 0, -1, 1, -16, 16, -4096, 4096, -16384, 16384};
static const size_t k_extreme[] = {
  (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX, (size_t)1 << 40,
  (size_t)1 << 44, (size_t)1 << 62, (size_t)PTRDIFF_MAX - 4095, SIZE_MAX - 4095,
  ((size_t)1 << 63) - 16, ((size_t)1 << 30) + 1, (size_t)1 << 32, (size_t)3 << 29,
  ((size_t)3 << 29) + 1, (size_t)1 << 47, SIZE_MAX - 15, (size_t)PTRDIFF_MAX - 15,
};
static const size_t k_align[64] = {
  /* 0..30: every power of two from 1 to 2^30 */
  1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
  1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22, 1 << 23,
  1 << 24, 1 << 25, 1 << 26, 1 << 27, 1 << 28, 1 << 29, 1 << 30,
  /* 31..36: zero and larger powers */
  0, (size_t)1 << 31, (size_t)1 << 32, (size_t)1 << 40, (size_t)1 << 62, (size_t)1 << 63,
  /* 37..53: not powers of two */
  3, 5, 12, 24, 48, 96, 100, 3000, 4095, 4097, 65537, (1 << 20) + 1, (1 << 30) - 1,
  ((size_t)1 << 62) + 1, ((size_t)1 << 63) + 1, SIZE_MAX, SIZE_MAX - 15,
  /* 54..63: the common ones again */
  8, 16, 32, 64, 128, 4096, 65536, 1 << 21, 1 << 25, 1 << 26,
};
static const size_t k_count[16] = {
  2, 3, 16, 4097, 1 << 16, 1 << 20, (size_t)1 << 31, (size_t)1 << 32, (size_t)1 << 33,
  (size_t)1 << 40, (size_t)1 << 62, (size_t)1 << 63, (size_t)PTRDIFF_MAX, SIZE_MAX,
  SIZE_MAX / 2, 1 << 24,
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static size_t size_of(uint8_t s0, uint8_t s1, uint8_t s2) {
  size_t v = (size_t)(s0 >> 3) << 16 | (size_t)s1 << 8 | s2;   /* 21 bits */
  switch (s0 & 7) {
    case 0: return v % 65;
    case 1: case 2: return v % (2 * KiB + 1);
    case 3: return v % (1 * MiB + 1);
    case 4: return (v * 32 + (v & 31)) % (64 * MiB + 1);
    case 5: {
      size_t b = k_boundary[s1 % COUNT(k_boundary)];
      long d = k_delta[s2 % COUNT(k_delta)];
      return d < 0 && (size_t)-d > b ? b : b + (size_t)d;
    }
    case 6: return ((size_t)1 << (v % 27)) + (size_t)(s2 % 3) - 1;   /* 2^k - 1, 2^k, 2^k + 1 */
    default: return k_extreme[s1 % COUNT(k_extreme)];
  }
}

static size_t align_of(uint8_t a) { return k_align[a % 64]; }

/* Element counts for calloc and reallocarray: mostly 0..8, sometimes extreme. */
static size_t count_of(uint8_t a) { return a < 224 ? a % 9 : k_count[a % 16]; }

/* ---- the model ----------------------------------------------------------- */

static int is_pow2(size_t a) { return a && !(a & (a - 1)); }

static size_t next_pow2(size_t a) {
  size_t p = 1;
  while (p < a && p) p <<= 1;
  return p;   /* 0 when a > 2^63 */
}

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

/* SPEC: 16-byte aligned when n >= 16, 8 at least otherwise. */
static size_t basic_align(size_t n) { return n >= 16 ? 16 : 8; }

/* Cost of a request against BUDGET: its size plus the alignment when that
 * reserves more address space than a page. */
static size_t cost_of(size_t n, size_t align) { return sat_add(n, align > 4096 ? align : 0); }

static uint8_t pat(uint8_t seed, size_t i) { return (uint8_t)(seed * 29u + i * 7u + (i >> 8) + 1u); }

/* Runs body with i set to every checked offset of a block of n bytes. */
#define FOR_TOUCHED(n, i, body) do { \
    size_t n_ = (n), pre_ = n_ < PREFIX ? n_ : PREFIX, suf_ = n_ < SUFFIX ? n_ : SUFFIX; \
    for (size_t i = 0; i < pre_; i++) { body; } \
    for (size_t i = n_ - suf_; i < n_; i++) { body; } \
  } while (0)

static void fill(slot_t *s) {
  s->seed = ++next_seed;
  unsigned char *p = s->p;
  uint8_t seed = s->seed;
  FOR_TOUCHED(s->n, i, p[i] = pat(seed, i));
}

/* SPEC: contents preserved (and lm_usable_size stable, lm_owns true). */
static void verify(const slot_t *s, const char *where) {
  unsigned char *p = s->p;
  FOR_TOUCHED(s->n, i, CHECK("contents", p[i] == pat(s->seed, i),
                             "%s: block %p n=%zu byte %zu is %#x, wrote %#x",
                             where, (void *)p, s->n, i, p[i], pat(s->seed, i)));
  errno = ERRNO_SENTINEL;
  size_t u = lm_usable_size(p);
  CHECK("usable_size.stable", u == s->usable, "%s: lm_usable_size(%p) = %zu, was %zu",
        where, (void *)p, u, s->usable);
  CHECK("owns", lm_owns(p), "%s: lm_owns(%p) = 0 for a live block", where, (void *)p);
  CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "%s: lm_usable_size/lm_owns set errno %d",
        where, errno);
}

static void verify_all(const char *where) {
  for (int i = 0; i < SLOTS; i++) if (slots[i].p) verify(&slots[i], where);
}

/* Forgets slot s in the model (its block was freed or moved). */
static void forget(slot_t *s) {
  live_count--;
  live_req -= s->n;
  live_cost -= s->cost;
  s->p = NULL;
}

static void free_slot(slot_t *s, int variant) {
  if (!s->p) return;
  verify(s, "before free");
  errno = ERRNO_SENTINEL;
  if (variant & 1) lm_free_or(s->p, NULL);
  else lm_free(s->p);
  CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "lm_free set errno %d", errno);
  forget(s);
}

/* Frees slots other than keep until a block of `cost` fits in BUDGET. */
static void make_room(size_t cost, const slot_t *keep) {
  for (int i = 0; i < SLOTS && live_cost + cost > BUDGET; i++)
    if (&slots[i] != keep) free_slot(&slots[i], 0);
}

enum { MUST_OK, MAY_FAIL, FAIL_ENOMEM, FAIL_EINVAL };

/* SPEC: sizes above PTRDIFF_MAX fail with ENOMEM; a request within BUDGET
 * succeeds; a huge one (2^40, 2^44, 2^62) may fail with ENOMEM or succeed,
 * depending on the kernel's overcommit policy. */
static int expect_size(size_t n, size_t cost) {
  if (n > PTRDIFF_MAX) return FAIL_ENOMEM;
  return cost <= BUDGET ? MUST_OK : MAY_FAIL;
}

/* Checks a call's outcome (q, err: errno or posix_memalign's result)
 * against `expect`; returns whether q is a new block to adopt. */
static int outcome(void *q, int err, int expect) {
  if (expect == FAIL_ENOMEM || expect == FAIL_EINVAL) {
    int want = expect == FAIL_ENOMEM ? ENOMEM : EINVAL;
    CHECK(want == ENOMEM ? "fails.enomem" : "fails.einval", q == NULL,
          "returned %p, expected NULL with %s", q, want == ENOMEM ? "ENOMEM" : "EINVAL");
    CHECK(want == ENOMEM ? "errno.enomem" : "errno.einval", err == want,
          "failed with errno %d, expected %d", err, want);
    return 0;
  }
  if (!q) {
    CHECK("succeeds", expect == MAY_FAIL, "returned NULL (errno %d), expected a block", err);
    CHECK("errno.enomem", err == ENOMEM, "huge request failed with errno %d, expected ENOMEM", err);
    return 0;
  }
  /* SPEC: a successful call never changes errno. */
  CHECK("errno.unchanged", err == ERRNO_SENTINEL, "succeeded but set errno to %d", err);
  return 1;
}

/* Takes a new block q into slot s: alignment, usable size, no overlap,
 * zeroes for calloc; writes its pattern.  A block over BUDGET is checked
 * at both ends and freed at once. */
static void adopt(slot_t *s, void *q, size_t n, size_t cost, size_t align, size_t min_usable,
                  int zeroed) {
  unsigned char *p = q;
  /* SPEC: alignment */
  CHECK("alignment", ((uintptr_t)p & (align - 1)) == 0, "%p is not %zu-aligned", q, align);
  /* SPEC: usable size >= n (pvalloc: n rounded up to the page) */
  errno = ERRNO_SENTINEL;
  size_t u = lm_usable_size(p);
  CHECK("usable_size", u >= min_usable, "lm_usable_size(%p) = %zu < %zu", q, u, min_usable);
  CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "lm_usable_size set errno %d", errno);
  /* SPEC: no overlap with any live block (and so a unique pointer) */
  uintptr_t lo = (uintptr_t)p, hi = lo + (u ? u : 1);
  for (int i = 0; i < SLOTS; i++) {
    const slot_t *o = &slots[i];
    if (!o->p || o == s) continue;
    uintptr_t olo = (uintptr_t)o->p, ohi = olo + (o->usable ? o->usable : 1);
    CHECK("no_overlap", hi <= olo || ohi <= lo, "[%p, +%zu) overlaps slot %d [%p, +%zu)",
          q, u, i, (void *)o->p, o->usable);
  }
  /* SPEC: calloc memory reads zero */
  if (zeroed) FOR_TOUCHED(n, i, CHECK("calloc.zero", p[i] == 0, "byte %zu of %p is %#x", i, q, p[i]));
  if (u > n) p[u - 1] = 0xA5;   /* the whole usable size is ours */
  *s = (slot_t){p, n, u, cost, 0};
  fill(s);
  live_count++;
  live_req += n;
  live_cost += cost;
  if (cost > BUDGET) free_slot(s, 0);
}

/* ---- statistics ---------------------------------------------------------- */

/* SPEC: live_objects equals the model's count; live_bytes covers the
 * requested sizes of the live blocks. */
static void check_stats(int variant) {
  lm_stats_t s;
  memset(&s, 0xAB, sizeof s);
  size_t want = variant == 1 ? offsetof(lm_stats_t, peak_live_bytes) : sizeof s;
  s.size = want;
  errno = ERRNO_SENTINEL;
  lm_stats(&s);
  CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "lm_stats set errno %d", errno);
  CHECK("stats.size", s.size == want, "size %zu, gave %zu", s.size, want);
  CHECK("stats.version", s.version == LM_STATS_VERSION, "version %zu", s.version);
  CHECK("stats.live_objects", s.live_objects == live_count,
        "live_objects %zu, model %zu", s.live_objects, live_count);
  CHECK("stats.live_bytes", s.live_bytes >= live_req,
        "live_bytes %zu < requested %zu", s.live_bytes, live_req);
  CHECK("stats.live_bytes_zero", live_count || s.live_bytes == 0,
        "live_bytes %zu with no live object", s.live_bytes);
  if (variant == 1) {   /* a short struct: nothing written beyond it */
    const unsigned char *rest = (const unsigned char *)&s + want;
    for (size_t i = 0; i < sizeof s - want; i++)
      CHECK("stats.short_struct", rest[i] == 0xAB, "byte %zu past size=%zu written", want + i, want);
  } else {
    CHECK("stats.class_count", s.class_count <= LM_MAX_CLASSES, "class_count %zu", s.class_count);
  }
}

/* SPEC: lm_stats_json is snprintf-like: returns the full length, stores at
 * most cap - 1 characters and a NUL; the whole text is one {...} object. */
static void check_json(uint8_t a) {
  static char buf[64 * KiB];
  size_t cap = a == 0 ? 0 : a < 128 ? a : sizeof buf;
  memset(buf, 'x', sizeof buf);
  errno = ERRNO_SENTINEL;
  size_t len = lm_stats_json(cap ? buf : NULL, cap);
  CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "lm_stats_json set errno %d", errno);
  CHECK("json.length", len >= 2 && len < sizeof buf - 1, "returned %zu", len);
  if (cap == 0) return;
  size_t stored = len < cap ? len : cap - 1;
  CHECK("json.nul", buf[stored] == 0 && strlen(buf) == stored,
        "cap %zu, returned %zu: strlen %zu", cap, len, strlen(buf));
  CHECK("json.object", stored == 0 || buf[0] == '{', "starts with %.20s", buf);
  if (len >= cap) return;
  CHECK("json.object", buf[len - 1] == '}', "ends with %s", buf + (len > 20 ? len - 20 : 0));
  const char *f = strstr(buf, "\"live_objects\":");
  CHECK("json.live_objects", f && strtoull(f + 15, NULL, 10) == live_count,
        "live_objects in %.80s, model %zu", f ? f : "(missing)", live_count);
}

/* ---- operations ---------------------------------------------------------- */

enum { MALLOC, CALLOC, REALLOC, REALLOCARRAY, ALIGNED_ALLOC, MEMALIGN, POSIX_MEMALIGN,
       VALLOC, PVALLOC, FREE, CHECK_SLOT, TRIM, STATS, STATS_JSON, NULL_ARGS, VERIFY_ALL };
static const char *const op_names[] = {
  "malloc", "calloc", "realloc", "reallocarray", "aligned_alloc", "memalign",
  "posix_memalign", "valloc", "pvalloc", "free", "check_slot", "trim", "stats",
  "stats_json", "null_args", "verify_all",
};
static const uint8_t op_of[32] = {
  MALLOC, MALLOC, MALLOC, MALLOC, MALLOC, CALLOC, CALLOC, CALLOC, REALLOC, REALLOC, REALLOC,
  REALLOC, REALLOCARRAY, ALIGNED_ALLOC, ALIGNED_ALLOC, MEMALIGN, MEMALIGN, POSIX_MEMALIGN,
  VALLOC, PVALLOC, FREE, FREE, FREE, FREE, FREE, CHECK_SLOT, TRIM, STATS, STATS, STATS_JSON,
  NULL_ARGS, VERIFY_ALL,
};

/* realloc / reallocarray of slot s to n bytes (SIZE_MAX stands for an
 * overflowing product). */
static void do_realloc(slot_t *s, size_t n, int use_or, int is_array, size_t k, size_t m) {
  int expect = expect_size(n, n);
  if (expect == MUST_OK) make_room(n, s);
  void *old = s->p;
  errno = ERRNO_SENTINEL;
  void *q = is_array ? (use_or ? lm_reallocarray_or(old, k, m, NULL) : lm_reallocarray(old, k, m))
                     : (use_or ? lm_realloc_or(old, n, NULL) : lm_realloc(old, n));
  int err = errno;
  if (!old) {   /* SPEC: realloc(NULL, n) is malloc(n) */
    if (outcome(q, err, expect)) adopt(s, q, n, n, basic_align(n), n, 0);
    return;
  }
  if (n == 0) {   /* SPEC: realloc(p, 0) frees p and returns NULL */
    CHECK("realloc0.null", q == NULL, "realloc(p, 0) returned %p", q);
    CHECK("errno.unchanged", err == ERRNO_SENTINEL, "realloc(p, 0) set errno %d", err);
    forget(s);
    return;
  }
  if (!outcome(q, err, expect)) {   /* SPEC: on failure p stays valid, unchanged */
    verify(s, "after failed realloc");
    return;
  }
  /* SPEC: contents preserved up to min(old, new) */
  const unsigned char *b = q;
  size_t keep = s->n < n ? s->n : n;
  FOR_TOUCHED(s->n, i, if (i < keep) CHECK("realloc.preserved", b[i] == pat(s->seed, i),
      "byte %zu of %p (was %p, n %zu -> %zu) is %#x, was %#x", i, q, old, s->n, n, b[i], pat(s->seed, i)));
  forget(s);
  adopt(s, q, n, n, basic_align(n), n, 0);
}

static void run_op(uint8_t opb, slot_t *s, uint8_t s0, uint8_t s1, uint8_t s2, uint8_t a) {
  int op = op_of[opb & 31], variant = opb >> 5;
  size_t n = size_of(s0, s1, s2), al = align_of(a), k = count_of(a);
  void *q;
  int expect, err;
  snprintf(op_desc, sizeof op_desc, "%s(slot %d, n=%zu, align=%zu, count=%zu, variant %d)",
           op_names[op], (int)(s - slots), n, al, k, variant);
  switch (op) {
    case MALLOC:
      free_slot(s, variant);
      expect = expect_size(n, n);
      if (expect == MUST_OK) make_room(n, NULL);
      errno = ERRNO_SENTINEL;
      q = lm_malloc(n);
      err = errno;
      if (outcome(q, err, expect)) adopt(s, q, n, n, basic_align(n), n, 0);
      break;
    case CALLOC: {   /* SPEC: k * n overflowing or above PTRDIFF_MAX is ENOMEM */
      free_slot(s, variant);
      size_t total;
      int ovf = __builtin_mul_overflow(k, n, &total);
      expect = ovf ? FAIL_ENOMEM : expect_size(total, total);
      if (expect == MUST_OK) make_room(total, NULL);
      errno = ERRNO_SENTINEL;
      q = lm_calloc(k, n);
      err = errno;
      if (outcome(q, err, expect)) adopt(s, q, total, total, basic_align(total), total, 1);
      break;
    }
    case REALLOC:
      do_realloc(s, n, variant & 1, 0, 0, 0);
      break;
    case REALLOCARRAY: {   /* SPEC: an overflowing product is ENOMEM, p untouched */
      size_t total;
      if (__builtin_mul_overflow(k, n, &total)) total = SIZE_MAX;
      do_realloc(s, total, variant & 1, 1, k, n);
      break;
    }
    /* SPEC: aligned_alloc(a, n): a power of two (1 .. 2^30 and more) gives an
     * a-aligned block (every a <= 2^30 must succeed within BUDGET); 0 or
     * not a power of two is EINVAL.  memalign(a, n), glibc's rules: a <= 16
     * (0 too) is malloc; another a is rounded up to the next power of two
     * (24 -> 32, 3000 -> 4096); a > SIZE_MAX / 2 + 1 is EINVAL.  valloc:
     * 4096-aligned.  pvalloc: 4096-aligned, usable >= n rounded up to 4096,
     * ENOMEM when that rounding overflows or passes PTRDIFF_MAX. */
    case ALIGNED_ALLOC:
    case MEMALIGN:
    case VALLOC:
    case PVALLOC: {
      free_slot(s, variant);
      size_t eff = al, min_usable = n;   /* eff: the alignment the block must have */
      if (op == VALLOC || op == PVALLOC) eff = 4096;
      if (op == MEMALIGN) eff = al <= 16 ? basic_align(n) : next_pow2(al);   /* 0 if al > 2^63 */
      size_t cost = cost_of(n, eff);
      if (op == ALIGNED_ALLOC && !is_pow2(al)) expect = FAIL_EINVAL;
      else if (op == MEMALIGN && al > SIZE_MAX / 2 + 1) expect = FAIL_EINVAL;
      else expect = expect_size(n, cost);
      if (op == PVALLOC) {
        min_usable = n > SIZE_MAX - 4095 ? SIZE_MAX : (n + 4095) & ~(size_t)4095;
        if (n > SIZE_MAX - 4095 || min_usable > PTRDIFF_MAX) expect = FAIL_ENOMEM;
      }
      if (expect == MUST_OK) make_room(cost, NULL);
      errno = ERRNO_SENTINEL;
      q = op == ALIGNED_ALLOC ? lm_aligned_alloc(al, n)
        : op == MEMALIGN ? lm_memalign(al, n)
        : op == VALLOC ? lm_valloc(n) : lm_pvalloc(n);
      err = errno;
      size_t need = eff > basic_align(n) ? eff : basic_align(n);
      if (outcome(q, err, expect)) adopt(s, q, n, cost, need, min_usable, 0);
      break;
    }
    /* SPEC: posix_memalign: an alignment not a power of two or below
     * sizeof(void *) is EINVAL with *out untouched; else 0 and an aligned
     * block, or ENOMEM (sizes above PTRDIFF_MAX, huge requests). */
    case POSIX_MEMALIGN: {
      free_slot(s, variant);
      size_t cost = cost_of(n, al);
      if (!is_pow2(al) || al < sizeof(void *)) expect = FAIL_EINVAL;
      else expect = expect_size(n, cost);
      if (expect == MUST_OK) make_room(cost, NULL);
      void *out = (void *)&op_no;   /* a marker that must survive a failure */
      errno = ERRNO_SENTINEL;
      int rc = lm_posix_memalign(&out, al, n);
      err = errno;
      CHECK("posix_memalign.rc", (rc == 0) == (out != (void *)&op_no) && (rc || out),
            "returned %d, *out %p", rc, out);
      if (rc == 0) {
        CHECK("errno.unchanged", err == ERRNO_SENTINEL, "succeeded but set errno %d", err);
        err = ERRNO_SENTINEL;
      } else {
        err = rc;   /* errno after a failure is not specified */
      }
      if (outcome(rc ? NULL : out, err, expect))
        adopt(s, out, n, cost, al > basic_align(n) ? al : basic_align(n), n, 0);
      break;
    }
    case FREE:
      free_slot(s, variant);
      break;
    case CHECK_SLOT: {
      if (s->p) verify(s, "check_slot");
      int local;
      /* SPEC: lm_owns is false for memory that is not litemalloc's */
      CHECK("owns.foreign", !lm_owns(&local) && !lm_owns(op_desc), "lm_owns true for a foreign pointer");
      break;
    }
    case TRIM:   /* SPEC: lm_trim anywhere, live blocks untouched */
      errno = ERRNO_SENTINEL;
      lm_trim();
      CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "lm_trim set errno %d", errno);
      verify_all("after trim");
      break;
    case STATS:
      if (variant == 2) {
        static int devnull = -2;
        if (devnull == -2) devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) lm_stats_print(devnull);
      }
      check_stats(variant == 1);
      break;
    case STATS_JSON:
      check_json(a);
      break;
    case NULL_ARGS:   /* SPEC: lm_free(NULL) is a no-op; lm_usable_size(NULL) is 0 */
      errno = ERRNO_SENTINEL;
      lm_free(NULL);
      lm_free_or(NULL, NULL);
      CHECK("usable_size.null", lm_usable_size(NULL) == 0, "lm_usable_size(NULL) != 0");
      CHECK("owns.null", !lm_owns(NULL), "lm_owns(NULL) != 0");
      CHECK("errno.unchanged", errno == ERRNO_SENTINEL, "set errno %d", errno);
      break;
    case VERIFY_ALL:
      verify_all("verify_all");
      break;
  }
  check_stats(0);   /* SPEC: live_objects matches after every op */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  op_no = 0;
  snprintf(op_desc, sizeof op_desc, "start of input");
  check_stats(0);   /* nothing live between inputs */
  for (size_t i = 0; i + 6 <= size; i += 6, op_no++)
    run_op(data[i], &slots[data[i + 1]], data[i + 2], data[i + 3], data[i + 4], data[i + 5]);
  snprintf(op_desc, sizeof op_desc, "end of input");
  for (int i = 0; i < SLOTS; i++) free_slot(&slots[i], 0);
  check_stats(0);   /* SPEC: 0 live objects, 0 live bytes at the end */
  return 0;
}
