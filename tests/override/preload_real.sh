#!/bin/bash
# Real programs with liblitemalloc.so preloaded.  Each must succeed, agree
# with a run without litemalloc where its output is deterministic, and show
# (LITEMALLOC_SHOW_STATS=json at exit) that litemalloc served its
# allocations.  Usage: preload_real.sh LIB.so WORKLOAD [FILES...], WORKLOAD:
#   python-regrtest          CPython's regression tests of a few modules
#   python-alloc SCRIPT      an allocation-heavy Python script
#   sqlite SQL               sqlite3 running a generated workload
#   gcc GENERATOR            gcc -O2 compiling a large generated C file
set -euo pipefail
# lib.sh lies beside this script's source (Bazel runs it through a link)
source "$(dirname "$(readlink -f "$0")")/lib.sh" || exit 1

python=/usr/bin/python3.11   # Debian's, whose test suite is installed
lib=$(abspath "$1")
workload=$2
shift 2
dir=$(scratch "$workload")
export TMPDIR="$dir" HOME="$dir"

# preloaded COMMAND...: runs COMMAND with litemalloc, statistics to $dir/stats
preloaded() {
  local rc=0
  env LD_PRELOAD="$lib" LITEMALLOC_SHOW_STATS=json "$@" 2>"$dir/stats" || rc=$?
  [ $rc -eq 0 ] || { tail -n 50 "$dir/stats" >&2; fail "$* exited with status $rc under litemalloc"; }
}

case "$workload" in
  python-regrtest)
    # Modules that pass quickly on plain glibc here and in Bazel's sandbox,
    # where /usr is read-only (test_pickle is left out: it deletes .pyc
    # files beside the standard library).  PYTHONMALLOC=malloc
    # sends every Python object through malloc.  test_threading forks from
    # threads.  Subprocesses the tests start inherit LD_PRELOAD (so they run
    # on litemalloc too) but not LITEMALLOC_SHOW_STATS: some tests compare a
    # child's stderr with the empty string.  The variable is dropped from
    # the environment after the core has read it at start-up.
    [ -d /usr/lib/python3.11/test/libregrtest ] ||
      fail "CPython's test suite is missing: apt-get install libpython3.11-testsuite"
    modules=(test_dict test_list test_set test_tuple test_unicode test_bytes
             test_json test_re test_collections test_heapq test_sort test_deque
             test_array test_struct test_string test_bisect test_enum
             test_functools test_copy test_ordered_dict test_weakref test_gc test_itertools
             test_threading test_mmap test_memoryview)
    PYTHONMALLOC=malloc preloaded "$python" -c '
import os, runpy
del os.environ["LITEMALLOC_SHOW_STATS"]
runpy.run_module("test", run_name="__main__", alter_sys=True)
' -W "${modules[@]}"
    expect_json_allocs "$dir/stats" 1000000
    ;;
  python-alloc)
    PYTHONMALLOC=malloc preloaded "$python" "$(abspath "$1")"
    expect_json_allocs "$dir/stats" 5000000
    ;;
  sqlite)
    sql=$(abspath "$1")
    sqlite3 "$dir/plain.db" <"$sql" >"$dir/plain.out" || fail "sqlite3 failed without litemalloc"
    preloaded sqlite3 "$dir/litemalloc.db" <"$sql" >"$dir/litemalloc.out"
    cmp "$dir/plain.out" "$dir/litemalloc.out" || fail "sqlite3's output differs under litemalloc"
    grep -qx ok "$dir/litemalloc.out" || fail "sqlite3's integrity check did not say ok"
    expect_json_allocs "$dir/stats" 100000
    ;;
  gcc)
    "$python" "$(abspath "$1")" 800 >"$dir/big.c" || fail "cannot generate the C file"
    /usr/bin/gcc -O2 -c "$dir/big.c" -o "$dir/plain.o" || fail "gcc failed without litemalloc"
    preloaded /usr/bin/gcc -O2 -c "$dir/big.c" -o "$dir/litemalloc.o"
    cmp "$dir/plain.o" "$dir/litemalloc.o" || fail "gcc's object file differs under litemalloc"
    # the driver, cc1 and as each print statistics; cc1 does the work
    expect_json_allocs "$dir/stats" 500000
    ;;
  *) fail "unknown workload $workload" ;;
esac
echo "PASS"
