#!/bin/bash
# Runs a libc re-entry test program (reentry_*.c) under a watchdog that kills
# it with SIGKILL: the deadlocks these tests look for leave a thread inside
# pthread_create with every signal blocked, so no other signal would end the
# process.  A run that is killed, or exits non-zero, fails the test, after a
# description of its threads (and their stacks, when gdb is there and may
# attach).  Several runs go two at a time.
#
# Usage: reentry_run.sh [--preload LIB.so] [--runs N] [--timeout S]
#                       [--bare-every K] PROGRAM [ARGS...]
#   --preload LIB.so  run PROGRAM with LD_PRELOAD=LIB.so (a *_plain build)
#   --runs N          N runs [1]; a hang that strikes 1 run in 10 is caught
#                     with probability 1 - 0.9^N (30 runs: 96%)
#   --timeout S       a run still going after S seconds is hung [60]
#   --bare-every K    every K-th run gets no ARGS (e.g. without a plugin)
# Arguments that name files are made absolute.  The runs get the caller's
# environment without LITEMALLOC_* variables and GLIBC_TUNABLES: the tests
# are of the defaults users get.
set -uo pipefail
# lib.sh lies beside this script's source (Bazel runs it through a link)
source "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() { fail "usage: reentry_run.sh [--preload LIB.so] [--runs N] [--timeout S] [--bare-every K] PROGRAM [ARGS...]"; }
lib='' runs=1 limit=60 bare=0
while [ $# -gt 0 ]; do
  case "$1" in
    --preload) [ $# -ge 2 ] || usage; lib=$(abspath "$2"); shift 2 ;;
    --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
    --timeout) [ $# -ge 2 ] || usage; limit=$2; shift 2 ;;
    --bare-every) [ $# -ge 2 ] || usage; bare=$2; shift 2 ;;
    --*) usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
prog=$(abspath "$1")
shift
args=()
for a in "$@"; do
  if [ -e "$a" ]; then args+=("$(abspath "$a")"); else args+=("$a"); fi
done
name=$(basename "$prog")
dir=$(scratch "reentry_run_$name")

for v in $(env | sed -n 's/^\(LITEMALLOC_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset GLIBC_TUNABLES

# The threads of process $1: state, blocked signals, where they wait.
describe() {
  local pid=$1 t
  echo "--- threads of the hung process $pid:"
  for t in /proc/"$pid"/task/*; do
    [ -d "$t" ] || continue
    echo "  thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)):" \
      "$(grep -E '^(State|SigBlk):' "$t/status" 2>/dev/null | tr -s '\t\n' '  ')" \
      "wchan $(cat "$t/wchan" 2>/dev/null)"
  done
  if command -v gdb >/dev/null 2>&1; then
    echo "--- stacks (gdb, if it may attach):"
    timeout -s KILL 60 gdb -p "$pid" -batch -ex "thread apply all bt" 2>&1 |
      grep -E '^(#|Thread)' | head -n 150
  fi
}

bare_run() { [ "$bare" -gt 0 ] && [ $(($1 % bare)) -eq 0 ]; }

# run_one N: one watched run; output in $dir/N.out, verdict in $dir/N.verdict
# ("ok", "hung SECONDS" or "failed STATUS").
run_one() {
  local n=$1 out="$dir/$1.out" start=$SECONDS pid state rc
  local a=("${args[@]}")
  if bare_run "$n"; then a=(); fi
  if [ -n "$lib" ]; then
    LD_PRELOAD="$lib" "$prog" "${a[@]}" >"$out" 2>&1 &
  else
    "$prog" "${a[@]}" >"$out" 2>&1 &
  fi
  pid=$!
  while :; do
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/"$pid"/status 2>/dev/null)
    if [ -z "$state" ] || [ "$state" = Z ]; then break; fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      describe "$pid" >>"$out" 2>&1
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      echo "hung $((SECONDS - start))" >"$dir/$n.verdict"
      return
    fi
    sleep 0.05
  done
  wait "$pid"
  rc=$?
  if [ $rc -eq 0 ]; then echo ok >"$dir/$n.verdict"; else echo "failed $rc" >"$dir/$n.verdict"; fi
}

echo "$name: $runs run(s)${lib:+ with LD_PRELOAD=$(basename "$lib")}, each killed (SIGKILL)" \
  "after $limit s${args[*]:+, arguments: ${args[*]}}$([ "$bare" -gt 0 ] && echo " (none every ${bare}th run)")"
t0=$SECONDS
bad=0
for ((n = 1; n <= runs; n += 2)); do
  run_one "$n" &
  if [ $((n + 1)) -le "$runs" ]; then run_one $((n + 1)) & fi
  wait
  for m in "$n" $((n + 1)); do
    [ "$m" -le "$runs" ] || continue
    verdict=$(cat "$dir/$m.verdict" 2>/dev/null || echo "no verdict")
    [ "$verdict" = ok ] && continue
    bad=$((bad + 1))
    how=$(bare_run "$m" && echo "without arguments" || echo "with the arguments")
    case "$verdict" in
      hung*) echo "run $m ($how): HUNG: still running after ${verdict#hung } s, killed with SIGKILL" ;;
      *) echo "run $m ($how): $verdict" ;;
    esac
    cat "$dir/$m.out"
  done
  [ "$bad" -eq 0 ] || break
done
[ "$bad" -eq 0 ] || fail "$name: a run hung or failed (see above)"
cat "$dir/1.out"
echo "$name: OK ($runs run(s) in $((SECONDS - t0)) s, none hung or failed)"
