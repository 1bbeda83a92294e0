#!/bin/bash
# Runs a program that was given litemalloc one way (see probe.c) three times:
# as is (it checks itself), with LITEMALLOC_SHOW_STATS=1 (the text statistics
# must reach stderr at exit) and with LITEMALLOC_SHOW_STATS=json (one JSON
# object starting a line, showing at least MIN allocations).
# Usage: run_mode.sh [--preload LIB.so] [--min-allocs MIN] PROGRAM [ARGS...]
set -euo pipefail
# lib.sh lies beside this script's source (Bazel runs it through a link)
source "$(dirname "$(readlink -f "$0")")/lib.sh"

preload="" min=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --preload) preload=$(abspath "$2"); shift 2 ;;
    --min-allocs) min=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || fail "usage: run_mode.sh [--preload LIB] [--min-allocs N] PROGRAM [ARGS]"
prog=$(abspath "$1")
shift
args=("$@")
dir=$(scratch run_mode)

run() {   # run SHOW_STATS_VALUE: the program's output in $dir/out, $dir/err
  local rc=0
  env ${preload:+LD_PRELOAD="$preload"} LITEMALLOC_SHOW_STATS="$1" \
    "$prog" "${args[@]}" >"$dir/out" 2>"$dir/err" || rc=$?
  cat "$dir/out"
  [ $rc -eq 0 ] || { cat "$dir/err" >&2; fail "$prog exited with status $rc (LITEMALLOC_SHOW_STATS=$1)"; }
}

run 0
if grep -q "litemalloc" "$dir/err"; then
  cat "$dir/err" >&2
  fail "statistics printed without LITEMALLOC_SHOW_STATS"
fi

run 1
grep -q "^litemalloc statistics" "$dir/err" || { cat "$dir/err" >&2; fail "no text statistics on stderr with LITEMALLOC_SHOW_STATS=1"; }
n=$(sed -n 's/^ *allocs: \([0-9]*\)$/\1/p' "$dir/err" | head -n 1)
[ -n "$n" ] && [ "$n" -ge "$min" ] || fail "text statistics show '${n:-no}' allocs, expected at least $min"
echo "LITEMALLOC_SHOW_STATS=1: text statistics, $n allocations"

run json
expect_json_allocs "$dir/err" "$min"

# Malformed and unknown options: one warning line each, no crash, and the
# well-formed ones still act.
rc=0
env ${preload:+LD_PRELOAD="$preload"} LITEMALLOC_SHOW_STATS=loud LITEMALLOC_PURGE_DELAY_MS=soon \
  LITEMALLOC_NO_SUCH_OPTION=1 LITEMALLOC_DIRTY_MB=4 \
  "$prog" "${args[@]}" >"$dir/out" 2>"$dir/err" || rc=$?
[ $rc -eq 0 ] || { cat "$dir/err" >&2; fail "$prog exited with status $rc with bad LITEMALLOC_* values"; }
w=$(grep -c "^litemalloc: warning: " "$dir/err" || true)
[ "$w" -eq 3 ] || { cat "$dir/err" >&2; fail "expected 3 warning lines for 3 bad options, got $w"; }
grep -q "LITEMALLOC_SHOW_STATS" "$dir/err" && grep -q "LITEMALLOC_PURGE_DELAY_MS" "$dir/err" &&
  grep -q "LITEMALLOC_NO_SUCH_OPTION" "$dir/err" || { cat "$dir/err" >&2; fail "warnings do not name the options"; }
echo "bad options: 3 one-line warnings"
echo "PASS"
