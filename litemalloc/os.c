/* The OS seam: the only file that makes system calls.
 *
 * Contract: every call is a raw x86_64 `syscall` instruction (no libc, no
 * pthreads); addresses and sizes are multiples of the 4 KiB page; a call
 * returns 0 or a positive errno and never touches the caller's errno.
 * Mappings are anonymous, private and read/write.  The arena reserves large
 * pieces of address space with MAP_NORESERVE and never changes their
 * protection (an mprotect or a partial munmap would split a mapping, and
 * vm.max_map_count is only 65530), so memory is committed by touching it and
 * given back with madvise(MADV_DONTNEED).  A huge object's own mapping is
 * made without MAP_NORESERVE ("committed"), so the kernel's overcommit policy
 * judges it as it judges glibc's: an impossible size fails at once instead
 * of the OOM killer striking later.
 *
 * os_thread_start makes a thread with a raw clone(2): it shares the address
 * space, files and signal handlers but has no C library state of its own, so
 * starting it takes no lock of libc's (glibc calls malloc and free with its
 * own locks held: a pthread_create from there can deadlock).  glibc does not
 * count it, so it never keeps a process alive, and it dies with the process.
 * Its code must not touch thread-local variables (it has none of its own:
 * the TLS register is the creator's) nor call into libc, and must be built
 * without the stack protector (which reads the canary through that
 * register); copts.bzl says so.  glibc's setuid() and friends do not reach
 * it either: it has the credentials of the thread that made it.
 */
#include "internal.h"

#define SYS_read 0
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_mmap 9
#define SYS_munmap 11
#define SYS_rt_sigaction 13
#define SYS_rt_sigprocmask 14
#define SYS_mremap 25
#define SYS_clone 56
#define SYS_exit 60
#define SYS_mincore 27
#define SYS_madvise 28
#define SYS_getpid 39
#define SYS_exit_group 231
#define SYS_gettid 186
#define SYS_futex 202
#define SYS_clock_gettime 228
#define SYS_tgkill 234
#define SYS_getrandom 318

#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_DONTNEED 4
#define MADV_POPULATE_WRITE 23   /* Linux 5.14 */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define SIGABRT 6
#define CLOCK_MONOTONIC_COARSE 6
#define O_RDONLY 0
#define O_CLOEXEC 02000000

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* Raw syscalls return -errno in [-4095, -1]. */
static inline int sys_err(long r) { return (r < 0 && r > -4096) ? (int)-r : 0; }

int os_map(size_t size, void *hint, bool commit, void **out) {
  long flags = MAP_PRIVATE | MAP_ANONYMOUS | (commit ? 0 : MAP_NORESERVE);
  long r = sys6(SYS_mmap, (long)hint, (long)size, PROT_READ | PROT_WRITE, flags, -1, 0);
  int e = sys_err(r);
  if (e == 0) *out = (void *)r;
  return e;
}

int os_unmap(void *p, size_t size) { return sys_err(sys3(SYS_munmap, p, size, 0)); }

int os_purge(void *p, size_t size) { return sys_err(sys3(SYS_madvise, p, size, MADV_DONTNEED)); }

int os_populate(void *p, size_t size) {
  return sys_err(sys3(SYS_madvise, p, size, MADV_POPULATE_WRITE));
}

int os_resident(void *p, size_t size, uint8_t *vec) { return sys_err(sys3(SYS_mincore, p, size, vec)); }

/* Moves or resizes a mapping; with fixed != NULL the result lands there. */
int os_remap(void *p, size_t old_size, size_t new_size, void *fixed, void **out) {
  long flags = fixed ? (MREMAP_MAYMOVE | MREMAP_FIXED) : 0;
  long r = sys6(SYS_mremap, (long)p, (long)old_size, (long)new_size, flags, (long)fixed, 0);
  int e = sys_err(r);
  if (e == 0) *out = (void *)r;
  return e;
}

void os_write(int fd, const void *buf, size_t len) {
  const char *s = buf;
  while (len > 0) {
    long r = sys3(SYS_write, fd, s, len);
    if (r == -4 /* EINTR */) continue;
    if (r <= 0) return;
    s += r;
    len -= (size_t)r;
  }
}

/* abort(3) without libc: unblock SIGABRT, raise it, and if a handler returned,
 * restore the default action and raise it again. */
void os_abort(void) {
  unsigned long set = 1UL << (SIGABRT - 1);
  sys6(SYS_rt_sigprocmask, 1 /* SIG_UNBLOCK */, (long)&set, 0, 8, 0, 0);
  long pid = sys3(SYS_getpid, 0, 0, 0), tid = sys3(SYS_gettid, 0, 0, 0);
  sys3(SYS_tgkill, pid, tid, SIGABRT);
  struct { unsigned long handler, flags, restorer, mask; } dfl = {0, 0, 0, 0};
  sys6(SYS_rt_sigaction, SIGABRT, (long)&dfl, 0, 8, 0, 0);
  sys3(SYS_tgkill, pid, tid, SIGABRT);
  for (;;) sys3(SYS_exit_group, 127, 0, 0);
}

uint64_t os_now_ms(void) {
  struct { long sec, nsec; } ts = {0, 0};
  sys3(SYS_clock_gettime, CLOCK_MONOTONIC_COARSE, &ts, 0);
  return (uint64_t)ts.sec * 1000u + (uint64_t)ts.nsec / 1000000u;
}

/* The system call is made again only when the cycle counter says 2^22
 * cycles (1 to 4 ms at 1 to 4 GHz) have passed, or went backwards.  The two
 * words race benignly: any recent pair will do. */
static _Atomic uint64_t clock_cycles, clock_ms;

uint64_t os_clock_ms(void) {
  unsigned lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  uint64_t c = (uint64_t)hi << 32 | lo;
  if (c - atomic_load_explicit(&clock_cycles, memory_order_relaxed) < ((uint64_t)1 << 22))
    return atomic_load_explicit(&clock_ms, memory_order_relaxed);
  uint64_t ms = os_now_ms();
  atomic_store_explicit(&clock_ms, ms, memory_order_relaxed);
  atomic_store_explicit(&clock_cycles, c, memory_order_relaxed);
  return ms;
}

int os_open_read(const char *path) { return (int)sys3(SYS_open, path, O_RDONLY | O_CLOEXEC, 0); }

long os_read(int fd, void *buf, size_t len) {
  long r;
  do r = sys3(SYS_read, fd, buf, len); while (r == -4 /* EINTR */);
  return r;
}

void os_close(int fd) { sys3(SYS_close, fd, 0, 0); }

void os_futex_wait(_Atomic int *addr, int val) {
  sys6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, val, 0, 0, 0);
}

void os_futex_wait_ms(_Atomic int *addr, int val, uint64_t ms) {
  struct { long sec, nsec; } ts = {(long)(ms / 1000), (long)(ms % 1000) * 1000000};
  sys6(SYS_futex, (long)addr, FUTEX_WAIT_PRIVATE, val, (long)&ts, 0, 0);
}

void os_block_signals(uint64_t *old) {
  uint64_t all = ~0ull;
  sys6(SYS_rt_sigprocmask, 0 /* SIG_BLOCK */, (long)&all, (long)old, 8, 0, 0);
}

void os_restore_signals(const uint64_t *old) {
  sys6(SYS_rt_sigprocmask, 2 /* SIG_SETMASK */, (long)old, 0, 8, 0, 0);
}

void os_futex_wake(_Atomic int *addr, int n) {
  sys6(SYS_futex, (long)addr, FUTEX_WAKE_PRIVATE, n, 0, 0, 0);
}

/* CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM */
#define THREAD_FLAGS 0x00000100 | 0x00000200 | 0x00000400 | 0x00000800 | 0x00010000 | 0x00040000

int os_thread_start(void *stack, size_t size, void (*fn)(void *), void *arg) {
  /* The child starts at the top of the stack with no frame of ours: it pops
   * fn, arg and the stack's bounds from there, keeps the bounds in r12 and
   * r13 (callee-saved), calls fn, and when fn returns unmaps the stack and
   * ends the thread (not the process) without touching the stack again. */
  void **sp = (void **)(((uintptr_t)stack + size) & ~(uintptr_t)15);
  *--sp = (void *)size;
  *--sp = stack;
  *--sp = arg;
  *--sp = (void *)fn;
  long r;
  register long r10 __asm__("r10") = 0;
  register long r8 __asm__("r8") = 0;
  __asm__ volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "pop %%rax\n\t"
      "pop %%rdi\n\t"
      "pop %%r12\n\t"
      "pop %%r13\n\t"
      "sub $16, %%rsp\n\t"
      "call *%%rax\n\t"
      "mov %[unmap], %%eax\n\t"
      "mov %%r12, %%rdi\n\t"
      "mov %%r13, %%rsi\n\t"
      "syscall\n\t"
      "mov %[exit], %%eax\n\t"
      "xor %%edi, %%edi\n\t"
      "syscall\n\t"
      "hlt\n"
      "1:"
      : "=a"(r)
      : "a"(SYS_clone), "D"((long)(THREAD_FLAGS)), "S"(sp), "d"(0), "r"(r10), "r"(r8),
        [exit] "i"(SYS_exit), [unmap] "i"(SYS_munmap)
      : "rcx", "r11", "memory");
  return sys_err(r);
}

uint64_t os_random(void) {
  uint64_t v = 0;
  if (sys3(SYS_getrandom, &v, sizeof v, 1 /* GRND_NONBLOCK */) != (long)sizeof v) {
    unsigned lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    v = ((uint64_t)hi << 32 | lo) * 0x9E3779B97F4A7C15ull ^ (uintptr_t)&v;
  }
  return v;
}
