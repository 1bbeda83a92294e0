#!/bin/bash
# The core archive may need nothing from the outside world but memcpy,
# memset and memmove (and weak references): it makes its own system calls,
# so it works under any libc and inside malloc itself.  Also, the only
# symbols it exports (global, default visibility) are the lm_* API.
# Usage: symbols_test.sh ARCHIVE...
set -u
nm_bin=${NM:-nm}
readelf_bin=${READELF:-readelf}
status=0
archives=()
# Under `bazel test` the paths are relative to the main repository's
# runfiles; find each file there or beside the current directory.
for f in "$@"; do
  case "$f" in *.a) ;; *) continue ;; esac
  for cand in "$f" "${TEST_SRCDIR:-/nonexistent}/litemalloc/$f" "../litemalloc/$f" \
              "${TEST_SRCDIR:-/nonexistent}/$f"; do
    if [ -f "$cand" ]; then archives+=("$cand"); continue 2; fi
  done
  echo "symbols_test: cannot find $f (pwd $(pwd))"
  exit 1
done
if [ ${#archives[@]} -eq 0 ]; then
  echo "symbols_test: no archive given (args: $*)"
  exit 1
fi
for a in "${archives[@]}"; do
  echo "== $a"
  # nm -P: "name type [value size]" per symbol of each member.  A symbol
  # is undefined for the archive when some member needs it (U) and no
  # member defines it.  _GLOBAL_OFFSET_TABLE_ is made by the linker.
  syms=$("$nm_bin" -P "$a") || { echo "FAIL: nm failed on $a"; status=1; continue; }
  defined=$(printf '%s\n' "$syms" | awk 'NF >= 2 && $2 ~ /^[A-TV-Za-z]$/ && $2 != "w" && $2 != "v" { print $1 }' | sort -u)
  needed=$(printf '%s\n' "$syms" | awk 'NF >= 2 && $2 == "U" { print $1 }' | sort -u)
  undefined=$(comm -23 <(printf '%s\n' "$needed") <(printf '%s\n' "$defined") |
    grep -vx '_GLOBAL_OFFSET_TABLE_' | grep -v '^$' || true)
  echo "undefined symbols:"
  if [ -n "$undefined" ]; then printf '  %s\n' $undefined; else echo "  (none)"; fi
  weak=$(printf '%s\n' "$syms" | awk 'NF >= 2 && ($2 == "w" || $2 == "v") { print $1 }' | sort -u)
  weak=$(comm -23 <(printf '%s\n' "$weak") <(printf '%s\n' "$defined") | grep -v '^$' || true)
  echo "weak references:"
  if [ -n "$weak" ]; then printf '  %s\n' $weak; else echo "  (none)"; fi
  bad=$(printf '%s\n' $undefined | grep -vxE 'memcpy|memset|memmove' || true)
  if [ -n "$bad" ]; then
    echo "FAIL: undefined symbols other than memcpy/memset/memmove:"
    printf '  %s\n' $bad
    status=1
  fi
  # exported: GLOBAL or WEAK binding, DEFAULT visibility, defined (Ndx not UND)
  exported=$("$readelf_bin" -sW "$a" 2>/dev/null |
    awk '($5 == "GLOBAL" || $5 == "WEAK") && $6 == "DEFAULT" && $7 != "UND" { print $8 }' | sort -u)
  echo "exported symbols:"
  if [ -n "$exported" ]; then printf '  %s\n' $exported; else echo "  (none)"; fi
  bad=$(printf '%s\n' $exported | grep -vE '^lm_' | grep -v '^$' || true)
  if [ -n "$bad" ]; then
    echo "FAIL: exported symbols outside the lm_ API (should be hidden):"
    printf '  %s\n' $bad
    status=1
  fi
  if [ -z "$exported" ]; then
    echo "FAIL: the archive exports no lm_ symbol"
    status=1
  fi
done
[ $status -eq 0 ] && echo "symbols_test: OK"
exit $status
