/* The hot lists (heap.c): per class, the blocks a thread freed, handed out
 * again first, newest first; bounded; given back to their pages by lm_trim
 * and at thread exit; also holding blocks of other threads' pages that this
 * thread freed (128 bytes to 1 KiB), which grow the list when it is full
 * and go home when the list is given back; smaller blocks of other threads
 * go home at once.
 *
 * White-box: reads the heap's lists and its pages' counts through
 * internal.h.  A block kept on a list that its page did not count, or one
 * sent home twice, would show in the page counts, the live count or the
 * validators at the end. */
#define _GNU_SOURCE
#include <pthread.h>

#include "check.h"
#include "stage.h"
#include "litemalloc/internal.h"

/* Length of h's hot list of class c. */
static size_t hot_len(const lm_heap_t *h, unsigned c) {
  size_t n = 0;
  for (const lm_block_t *b = h->hot[c]; b; b = b->next) n++;
  return n;
}

/* The most blocks a list of class c holds (heap.c: hot_max). */
static int64_t hot_cap(unsigned c) {
  size_t size = sizeclass_block_size(c);
  if (size > 32 * KiB) return 0;
  return 16 * KiB / size > 16 ? 16 * KiB / size : 16;
}

/* Blocks of class c in use in h's queued pages, by their counts. */
static size_t pages_used(const lm_heap_t *h, unsigned c) {
  size_t n = 0;
  if (h->pages[c] == &lm_page_empty) return 0;
  for (const lm_page_t *p = h->pages[c]; p; p = p->next) n += page_used(p);
  return n;
}

/* A block freed is the next one handed out, for a small and a medium
 * class; none above 32 KiB is kept. */
static void test_reuse(void) {
  static const size_t sizes[] = {16, 200, 1000, 3000, 20000};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    void *keep = lm_malloc(sizes[i]);   /* the page stays */
    void *p = lm_malloc(sizes[i]);
    CHECK(keep && p);
    lm_free(p);
    CHECK(lm_tls_heap->hot[sizeclass_of(sizes[i])] == p);
    CHECK(lm_malloc(sizes[i]) == p);
    lm_free(p);
    lm_free(keep);
  }
  void *big = lm_malloc(40000);
  unsigned c = sizeclass_of(40000);
  lm_free(big);
  CHECK(lm_tls_heap->hot[c] == NULL && lm_tls_heap->hot_room[c] <= 0);
}

/* A list takes blocks while it has room (hot_cap in all; a free into a
 * full page goes to the page, which the slow path puts back in its queue).
 * They come out newest first.  Pages that empty go to the heap's spares,
 * still the heap's: the list stays, and the next mallocs take from it (a
 * loop of batches emptied it before every batch when it went back then);
 * it goes back when a page goes to the arena (test_random_free) and on
 * lm_trim. */
static void test_bound(void) {
  enum { N = 64, SIZE = 1000 };
  static void *p[N];
  unsigned c = sizeclass_of(SIZE);
  lm_trim();
  lm_heap_t *h = lm_tls_heap;
  CHECK(hot_len(h, c) == 0 && h->hot_room[c] == hot_cap(c) && hot_cap(c) == 16);
  for (int i = 0; i < N; i++) CHECK((p[i] = lm_malloc(SIZE)) != NULL);
  for (int i = 0; i < N; i += 2) lm_free(p[i]);   /* no page empties */
  int64_t room = h->hot_room[c];   /* below 0 by the frees that found it full */
  CHECK(hot_len(h, c) == 16 && room <= 0 && room > -LM_HOT_SPILL);
  CHECK(pages_used(h, c) == N / 2 + 16);   /* the listed blocks still count */
  int listed[16], n = 0, last = N;
  for (const lm_block_t *b = h->hot[c]; b; b = b->next) {   /* newest first */
    int k = last - 2;
    while (k >= 0 && p[k] != b) k -= 2;
    CHECK(k >= 0);
    listed[n++] = last = k;
  }
  for (int i = 0; i < 16; i++) CHECK(lm_malloc(SIZE) == p[listed[i]]);
  CHECK(hot_len(h, c) == 0 && h->hot_room[c] == room + 16);
  for (int i = 0; i < 16; i++) lm_free(p[listed[i]]);
  CHECK(hot_len(h, c) == (size_t)(room + 16) && h->hot_room[c] == room);
  CHECK(heap_validate(h));
  size_t listed_now = hot_len(h, c);
  const lm_block_t *newest = h->hot[c];
  CHECK(listed_now > 0);
  for (int i = 1; i < N; i += 2) lm_free(p[i]);   /* pages empty, to the spares */
  CHECK(hot_len(h, c) == listed_now && h->hot[c] == newest);
  CHECK(pages_used(h, c) == listed_now);   /* the listed blocks alone */
  CHECK(h->spare_count > 0);
  CHECK(heap_validate(h));
  for (int i = 0; i < N; i++) CHECK((p[i] = lm_malloc(SIZE)) != NULL);   /* the list, then pages */
  CHECK(p[0] == newest);
  CHECK(h->hot_room[c] == 16);
  for (int i = 0; i < N; i++) lm_free(p[i]);
  lm_trim();
  CHECK(h->hot[c] == NULL && h->hot_room[c] == 16 && h->npages[c] == 0);
}

/* Blocks freed in random order: the first ones listed lie on as many
 * pages, but once pages of the class go back, the list goes with them, and
 * freeing everything leaves at most the one page a class keeps (tests/bench
 * frag kept 238 MiB of a 245 MiB peak when lists pinned their pages). */
static void test_random_free(void) {
  enum { N = 20000, SIZE = 48 };
  static void *p[N];
  unsigned c = sizeclass_of(SIZE);
  lm_trim();
  lm_heap_t *h = lm_tls_heap;
  for (int i = 0; i < N; i++) CHECK((p[i] = lm_malloc(SIZE)) != NULL);
  size_t pages = h->npages[c];
  CHECK(pages >= 20);
  uint64_t s = 88172645463325252ull;
  for (int i = N - 1; i > 0; i--) {   /* shuffle */
    int k = (int)(xorshift(&s) % (uint64_t)(i + 1));
    void *t = p[i];
    p[i] = p[k];
    p[k] = t;
  }
  for (int i = 0; i < N; i++) lm_free(p[i]);
  CHECK(h->npages[c] <= 1 && hot_len(h, c) == 0);
  CHECK(heap_validate(h));
}

/* Thread A allocates blocks of 512 bytes and hands them to the main thread,
 * which has a page of that class: its frees keep them on its own list (A's
 * pages still count them), hands them out again, and lm_trim sends them
 * home, where A's lm_trim gives its pages back. */
enum { R = 10, RSIZE = 512 };
static void *g_obj[R];
static lm_heap_t *g_heap_a;

static void *thread_a(void *arg) {
  (void)arg;
  for (int i = 0; i < R; i++) CHECK((g_obj[i] = lm_malloc(RSIZE)) != NULL);
  g_heap_a = lm_tls_heap;
  stage_set(1);
  stage_wait(2);   /* the main thread sent them home */
  lm_trim();       /* collects them */
  unsigned c = sizeclass_of(RSIZE);
  CHECK(g_heap_a->npages[c] == 0 && hot_len(g_heap_a, c) == 0);
  CHECK(heap_validate(g_heap_a));
  return NULL;
}

static void test_remote(void) {
  unsigned c = sizeclass_of(RSIZE);
  lm_trim();
  void *mine = lm_malloc(RSIZE);   /* the main heap allocates the class */
  lm_heap_t *h = lm_tls_heap;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_a, NULL) == 0);
  stage_wait(1);
  for (int i = 0; i < R; i++) {
    CHECK(page_lookup(g_obj[i])->owner == (uintptr_t)g_heap_a);
    lm_free(g_obj[i]);
  }
  CHECK(hot_len(h, c) == R && h->hot[c] == g_obj[R - 1]);
  CHECK(heap_validate(h));
  void *again = lm_malloc(RSIZE);   /* the last one freed, still A's */
  CHECK(again == g_obj[R - 1]);
  CHECK(page_lookup(again)->owner == (uintptr_t)g_heap_a);
  memset(again, 1, RSIZE);
  lm_free(again);   /* a remote free again: back on the list */
  CHECK(hot_len(h, c) == R && h->hot[c] == again);
  lm_free(mine);
  lm_trim();   /* the list goes: mine to its page, A's blocks home */
  CHECK(hot_len(h, c) == 0 && h->npages[c] == 0);
  stage_set(2);
  CHECK(pthread_join(t, NULL) == 0);
}

/* A thread that frees more of another thread's blocks than its list holds
 * grows the list (heap.c: hot_grow), by hot_cap steps up to 4 times that;
 * the rest go home; lm_trim gives the list back and shrinks it again. */
enum { G = 5 * 32, GSIZE = 512 };   /* hot_cap(512 B) is 32 */
static void *g_grow[G];
static lm_heap_t *g_heap_g;

static void *thread_g(void *arg) {
  (void)arg;
  for (int i = 0; i < G; i++) CHECK((g_grow[i] = lm_malloc(GSIZE)) != NULL);
  g_heap_g = lm_tls_heap;
  stage_set(3);
  stage_wait(4);   /* the main thread freed them all */
  lm_trim();       /* collects those that came home */
  CHECK(g_heap_g->npages[sizeclass_of(GSIZE)] == 0);
  CHECK(heap_validate(g_heap_g));
  return NULL;
}

static void test_remote_grow(void) {
  unsigned c = sizeclass_of(GSIZE);
  CHECK(hot_cap(c) == 32);
  lm_trim();
  void *mine = lm_malloc(GSIZE);
  lm_heap_t *h = lm_tls_heap;
  CHECK(h->hot_max[c] == hot_cap(c));
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_g, NULL) == 0);
  stage_wait(3);
  for (int i = 0; i < G; i++) lm_free(g_grow[i]);
  CHECK(h->hot_max[c] == 4 * hot_cap(c));
  CHECK(hot_len(h, c) == (size_t)(4 * hot_cap(c)) && h->hot[c] == g_grow[4 * hot_cap(c) - 1]);
  CHECK(heap_validate(h));
  lm_free(mine);
  lm_trim();   /* the list goes home, and is back to its size */
  CHECK(hot_len(h, c) == 0 && h->hot_max[c] == hot_cap(c) && h->npages[c] == 0);
  CHECK(heap_validate(h));
  stage_set(4);
  CHECK(pthread_join(t, NULL) == 0);
}

/* Blocks under 128 bytes of another thread are never kept (heap.c:
 * FOREIGN_MIN_CLASS), even by a thread with a page of their class: handed
 * out here, they would share cache lines with the blocks their owner hands
 * out (passive false sharing; a cache-scratch whose threads malloc and free
 * one object before freeing the one they were given ran 0.20 s with this
 * rule and 1.62 s without it, tcmalloc 1.81).  They go home, and the
 * main thread's next malloc comes from its own page. */
enum { S = 8 };
static const size_t g_small_sizes[] = {16, 112};
static void *g_small[S];
static lm_heap_t *g_heap_s;
static size_t g_small_size;
static int g_small_stage;   /* the thread sets it, the main thread the next */

static void *thread_s(void *arg) {
  (void)arg;
  size_t size = g_small_size;
  for (int i = 0; i < S; i++) CHECK((g_small[i] = lm_malloc(size)) != NULL);
  g_heap_s = lm_tls_heap;
  stage_set(g_small_stage);
  stage_wait(g_small_stage + 1);   /* the main thread freed them and flushed its outbox */
  lm_trim();       /* collects them: its pages go back */
  CHECK(g_heap_s->npages[sizeclass_of(size)] == 0);
  CHECK(heap_validate(g_heap_s));
  return NULL;
}

static void test_remote_small(void) {
  for (size_t k = 0; k < sizeof g_small_sizes / sizeof g_small_sizes[0]; k++) {
    size_t size = g_small_sizes[k];
    unsigned c = sizeclass_of(size);
    CHECK(c < 7 && sizeclass_block_size(c) < 128);
    lm_trim();
    void *mine = lm_malloc(size);   /* the main heap has a page of the class */
    lm_heap_t *h = lm_tls_heap;
    CHECK(mine && page_lookup(mine)->owner == (uintptr_t)h && hot_len(h, c) == 0);
    g_small_size = size;
    g_small_stage = 5 + 2 * (int)k;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_s, NULL) == 0);
    stage_wait(g_small_stage);
    for (int i = 0; i < S; i++) {
      CHECK(page_lookup(g_small[i])->owner == (uintptr_t)g_heap_s);
      lm_free(g_small[i]);
    }
    CHECK(hot_len(h, c) == 0);   /* none kept */
    void *q = lm_malloc(size);
    CHECK(q && page_lookup(q)->owner == (uintptr_t)h);
    for (int i = 0; i < S; i++) CHECK(q != g_small[i]);
    lm_free(q);
    lm_free(mine);
    lm_trim();   /* sends them home */
    CHECK(heap_validate(h));
    stage_set(g_small_stage + 1);
    CHECK(pthread_join(t, NULL) == 0);
  }
}

/* A thread's lists go back to their pages when it exits. */
static void *thread_b(void *arg) {
  static void *p[20];
  for (int i = 0; i < 20; i++) CHECK((p[i] = lm_malloc(64)) != NULL);
  for (int i = 0; i < 20; i++) lm_free(p[i]);
  *(lm_heap_t **)arg = lm_tls_heap;
  CHECK(hot_len(lm_tls_heap, sizeclass_of(64)) == 20);
  return NULL;
}

static void test_exit(void) {
  lm_heap_t *hb = NULL;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_b, &hb) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(hb != NULL);
  for (unsigned c = 0; c < LM_CLASSES; c++) CHECK(hb->hot[c] == NULL);
}

int main(void) {
  lm_free(lm_malloc(1));   /* the main thread has a heap */
  lm_stats_t before = stats_now();
  test_reuse();
  test_bound();
  test_random_free();
  test_remote();
  test_remote_grow();
  test_remote_small();
  test_exit();
  lm_trim();
  lm_stats_t after = stats_now();
  CHECK(after.live_bytes == before.live_bytes);
  CHECK(heap_validate(lm_tls_heap));
  CHECK(arena_validate());
  printf("hot_list_test: OK\n");
  return 0;
}
