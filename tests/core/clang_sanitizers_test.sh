#!/bin/bash
# The core's stress test built with clang 14 under UndefinedBehaviorSanitizer
# and ThreadSanitizer (the gcc builds are Bazel targets: stress_test_ubsan,
# stress_test_tsan).  clang names other checks than gcc, and it announces
# TSan through __has_feature rather than __SANITIZE_THREAD__, so both
# compilers are kept.  The UBSan build runs the purger's raw-clone thread;
# the TSan build has none (see LM_SANITIZED in internal.h) and exercises the
# same trims and purges through the test's lm_trim calls.
# Usage: clang_sanitizers_test.sh STRESS_TEST.c CHECK.h LITEMALLOC_SOURCE...
set -euo pipefail
find_file() {
  for cand in "$1" "${TEST_SRCDIR:-/nonexistent}/litemalloc/$1" "${TEST_SRCDIR:-/nonexistent}/$1" \
              "${TEST_SRCDIR:-/nonexistent}/tests/$1"; do
    if [ -f "$cand" ]; then echo "$cand"; return; fi
  done
  echo "clang_sanitizers_test: cannot find $1 (pwd $(pwd))" >&2
  exit 1
}
stress=$(find_file "$1")
shift
tmp=${TEST_TMPDIR:-$(mktemp -d)}
mkdir -p "$tmp/inc/litemalloc" "$tmp/src"
sources=()
for f in "$@"; do
  path=$(find_file "$f")
  case "$f" in
    *.h) cp "$path" "$tmp/inc/$(basename "$f")"; cp "$path" "$tmp/inc/litemalloc/$(basename "$f")" ;;
    *.c) cp "$path" "$tmp/src/$(basename "$f")"; sources+=("$tmp/src/$(basename "$f")") ;;
  esac
done
cp "$stress" "$tmp/stress_test.c"
cc=${CLANG:-clang}
command -v "$cc" >/dev/null || { echo "clang_sanitizers_test: $cc not found"; exit 1; }
flags=(-std=c11 -O1 -g -I"$tmp/inc" -I"$tmp" -fvisibility=hidden -ftls-model=initial-exec
       -fno-stack-protector -fno-builtin-malloc -fno-builtin-free -pthread)
status=0
for san in undefined thread; do
  bin="$tmp/stress_$san"
  "$cc" "${flags[@]}" -fsanitize=$san -fno-sanitize-recover=all "$tmp/stress_test.c" \
    "${sources[@]}" -o "$bin"
  echo "== clang -fsanitize=$san"
  if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
     "$bin" --ops 20000 --gens 2; then
    echo "clang -fsanitize=$san: PASS"
  else
    echo "clang -fsanitize=$san: FAIL"
    status=1
  fi
done
exit $status
