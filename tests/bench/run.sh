#!/bin/sh
# Thin entry point for the benchmark runner: tests/bench/run.sh [--quick] [...]
# (see tests/bench/run.py --help).  Also the bench_runner_selftest test, whose
# runfiles put run.py under bench/ beside the test executable.
d=$(dirname "$0")
for py in "$d/run.py" "$d/bench/run.py" "${TEST_SRCDIR:-/nonexistent}/tests/bench/run.py" \
          "${TEST_SRCDIR:-/nonexistent}/litemalloc/external/tests/bench/run.py"; do
  [ -f "$py" ] && exec python3 "$py" "$@"
done
echo "run.sh: cannot find run.py beside $0" >&2
exit 2
