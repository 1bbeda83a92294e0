/* A library that reentry_waves loads with dlopen: it has thread-local
 * storage, so glibc gives each thread that touches it a TLS block of its own
 * from malloc (__tls_get_addr), and frees that block when the thread's stack
 * leaves glibc's stack cache: with the stack-cache lock held, in whichever
 * thread then calls pthread_join or pthread_create, or exits detached
 * (__nptl_free_stacks -> _dl_deallocate_tls -> free).  The block is bigger
 * than 128 KiB, so for litemalloc it is a large object whose free goes to the
 * arena. */
#include <stddef.h>
#include <stdint.h>

#define REENTRY_TLS_BYTES (256 * 1024)

/* Exported, and written through a volatile pointer: a static variable that
 * nothing reads could be optimised away, and with it the TLS block. */
__thread unsigned char reentry_tls_block[REENTRY_TLS_BYTES];

/* Makes this thread's block exist and resident (every 4 KiB page written),
 * and returns a checksum of what it read back. */
uint64_t reentry_tls_touch(uint64_t seed) {
  volatile unsigned char *b = reentry_tls_block;
  uint64_t sum = 0;
  for (size_t i = 0; i < REENTRY_TLS_BYTES; i += 4096) {
    b[i] = (unsigned char)(seed + i / 4096);
    sum += b[i];
  }
  return sum;
}

size_t reentry_tls_bytes(void) { return REENTRY_TLS_BYTES; }
