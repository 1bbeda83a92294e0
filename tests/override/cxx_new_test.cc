// C++'s global operator new and delete with the override in place: they are
// litemalloc's own (the same object as lm_malloc defines them, not
// libstdc++'s, which would call malloc through two or three more calls), they
// serve litemalloc's memory, and they keep the language's contract where
// memory runs out: the new_handler is called until it gives up, then
// std::bad_alloc is thrown; the nothrow forms return nullptr.
#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <new>

#include "check.h"
#include "lm_probe.h"

namespace {

int handler_calls = 0;

// Gives up (removes itself) on its third call.
void counting_handler() {
  if (++handler_calls == 3) std::set_new_handler(nullptr);
}

// The object (executable or shared library) that holds function f.
const void *object_of(const void *f) {
  Dl_info info;
  CHECK(f != nullptr && dladdr(f, &info) != 0);
  return info.dli_fbase;
}

// Keeps the compiler from folding a new/delete pair away.
template <typename T> T *opaque(T *p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

}  // namespace

int main() {
  // The operators this program calls are defined where lm_malloc is.
#ifdef LM_PROBE_DLSYM
  const void *lm = object_of(dlsym(RTLD_DEFAULT, "lm_malloc"));
#else
  const void *lm = object_of(reinterpret_cast<const void *>(&lm_malloc));
#endif
  using new_fn = void *(*)(std::size_t);
  using delete_fn = void (*)(void *);
  using sized_delete_fn = void (*)(void *, std::size_t);
  const struct {
    const char *name;
    const void *f;
  } ops[] = {
      {"operator new", reinterpret_cast<const void *>(static_cast<new_fn>(&::operator new))},
      {"operator new[]", reinterpret_cast<const void *>(static_cast<new_fn>(&::operator new[]))},
      {"operator delete", reinterpret_cast<const void *>(static_cast<delete_fn>(&::operator delete))},
      {"operator delete[]", reinterpret_cast<const void *>(static_cast<delete_fn>(&::operator delete[]))},
      {"sized operator delete",
       reinterpret_cast<const void *>(static_cast<sized_delete_fn>(&::operator delete))},
      {"sized operator delete[]",
       reinterpret_cast<const void *>(static_cast<sized_delete_fn>(&::operator delete[]))},
  };
  for (const auto &op : ops) {
    if (object_of(op.f) != lm) {
      std::fprintf(stderr, "%s is not litemalloc's\n", op.name);
      return 1;
    }
  }

  // Each form allocates litemalloc's memory and frees it.
  size_t before = lm_probe_allocs();
  int *one = opaque(new int(7));
  char *many = opaque(new char[3000]);
  long *big = opaque(new long[1 << 20]);   // a large object (8 MiB)
  CHECK(lm_owns(one) && lm_owns(many) && lm_owns(big));
  CHECK(lm_probe_allocs() - before >= 3);
  CHECK(*one == 7);
  delete one;
  delete[] many;
  ::operator delete(opaque(::operator new(40)), 40);      // sized delete
  ::operator delete[](opaque(::operator new[](600)), 600);
  delete[] big;
  void *zero = opaque(::operator new(0));                   // a unique pointer
  CHECK(zero != nullptr && lm_owns(zero));
  ::operator delete(zero);

  // Out of memory: the handler is called until it removes itself, then
  // std::bad_alloc.
  const size_t impossible = SIZE_MAX / 2;
  std::set_new_handler(counting_handler);
  bool thrown = false;
  try {
    opaque(::operator new(impossible));
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown);
  CHECK(handler_calls == 3);
  CHECK(std::get_new_handler() == nullptr);

  // No handler: std::bad_alloc at once, from new[] too.
  thrown = false;
  try {
    opaque(::operator new[](impossible));
  } catch (const std::bad_alloc &) {
    thrown = true;
  }
  CHECK(thrown);

  // The nothrow forms (libstdc++'s, which call the throwing ones) return nullptr.
  CHECK(opaque(::operator new(impossible, std::nothrow)) == nullptr);
  CHECK(opaque(::operator new[](impossible, std::nothrow)) == nullptr);
  CHECK(handler_calls == 3);

  // Memory is still served after all that.
  int *again = opaque(new int[100]());
  CHECK(lm_owns(again) && again[99] == 0);
  delete[] again;
  std::puts("cxx_new_test: ok");
  return 0;
}
