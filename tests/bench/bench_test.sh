#!/bin/bash
# Runs one benchmark workload briefly and checks that it succeeded: exit
# status 0 (the workloads check the contents of everything they allocate and
# exit 3 on corruption), one result line, and malloc taken from the expected
# library (proof that LD_PRELOAD took).  Contents are checked, time is not.
#
# Usage: bench_test.sh [--preload LIB] BINARY [WORKLOAD ARGS...]
#   --preload LIB  run with LD_PRELOAD=LIB and expect malloc from it
#                  (without it: no preload, malloc from libc.so.6)
# Paths may be relative to the runfiles of the main repository (bazel test)
# or to the current directory.
set -u
find_file() {
  local f=$1 cand
  for cand in "$f" "${TEST_SRCDIR:-/nonexistent}/litemalloc/$f" "../litemalloc/$f" \
              "${TEST_SRCDIR:-/nonexistent}/$f" "${f#external/}" "../${f#external/}"; do
    if [ -e "$cand" ]; then
      readlink -f "$cand"
      return 0
    fi
  done
  echo "bench_test: cannot find $f (pwd $(pwd))" >&2
  return 1
}

preload=""
if [ "${1:-}" = "--preload" ]; then
  preload=$(find_file "$2") || exit 1
  shift 2
fi
[ $# -ge 1 ] || { echo "usage: bench_test.sh [--preload LIB] BINARY [ARGS...]" >&2; exit 2; }
bin=$(find_file "$1") || exit 1
shift

out=$(mktemp "${TEST_TMPDIR:-/tmp}/bench_test.XXXXXX")
trap 'rm -f "$out"' EXIT
echo "== ${preload:+LD_PRELOAD=$preload }$bin $*"
if [ -n "$preload" ]; then
  LD_PRELOAD="$preload" "$bin" "$@" >"$out"
else
  env -u LD_PRELOAD "$bin" "$@" >"$out"
fi
status=$?
cat "$out"
if [ $status -ne 0 ]; then
  echo "bench_test: FAIL: exit status $status"
  exit 1
fi
line=$(grep -E '^[a-z0-9_-]+ threads=' "$out" | tail -n 1)
if [ -z "$line" ]; then
  echo "bench_test: FAIL: no result line"
  exit 1
fi
want=libc.so.6
[ -n "$preload" ] && want=$(basename "$preload")
got=$(printf '%s\n' "$line" | sed -n 's/.* alloc=\([^ ]*\).*/\1/p')
if [ "$got" != "$want" ]; then
  echo "bench_test: FAIL: malloc came from '$got', expected '$want'"
  exit 1
fi
echo "bench_test: OK (malloc from $got)"
