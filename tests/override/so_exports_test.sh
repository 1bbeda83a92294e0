#!/bin/bash
# liblitemalloc.so exports the malloc family, glibc's entry points to it, the
# malloc statistics calls, C++'s operator new and delete (by their mangled
# names) and the lm_* API, and nothing else; it needs only
# libc.so.6 (not the libstdc++ and libm that the toolchain links by default).
# Usage: so_exports_test.sh liblitemalloc.so
set -euo pipefail
# lib.sh lies beside this script's source (Bazel runs it through a link)
source "$(dirname "$(readlink -f "$0")")/lib.sh" || exit 1
so=$(abspath "$1")

expected="_ZdaPv _ZdaPvm _ZdlPv _ZdlPvm _Znam _Znwm
__libc_calloc __libc_free __libc_malloc __libc_memalign __libc_pvalloc
__libc_realloc __libc_valloc __posix_memalign aligned_alloc calloc cfree free
free_aligned_sized free_sized lm_aligned_alloc lm_calloc lm_free lm_free_or
lm_malloc lm_memalign lm_new lm_owns lm_posix_memalign lm_pvalloc lm_realloc
lm_realloc_or lm_reallocarray lm_reallocarray_or lm_stats lm_stats_json
lm_stats_print lm_trim lm_usable_size lm_usable_size_or lm_valloc mallinfo
mallinfo2 malloc malloc_stats malloc_trim malloc_usable_size memalign
posix_memalign pvalloc realloc reallocarray valloc"

# global and weak definitions (nm's upper-case types); local ones such as
# the initial-exec TLS variable's entry are not exported
got=$(nm -D --defined-only "$so" | awk '$2 ~ /^[A-Z]$/ {print $3}' | sort)
want=$(printf '%s\n' $expected | sort)
if [ "$got" != "$want" ]; then
  diff <(echo "$want") <(echo "$got") | sed 's/^</missing:/; s/^>/unexpected:/' | grep -E '^(missing|unexpected):' || true
  fail "liblitemalloc.so exports a different set of symbols"
fi
echo "exports: $(echo "$got" | wc -l) symbols, as expected"

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
[ "$needed" = "libc.so.6 " ] || fail "liblitemalloc.so needs '$needed', expected only libc.so.6"
echo "needs: $needed"
echo "PASS"
