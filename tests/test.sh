#!/bin/bash
# Runs every test of the project: `bazel test //...` (the core tests include
# the LM_DEBUG=3, ThreadSanitizer and UBSan builds of the stress test, so no
# separate sanitizer run is needed).  Ends with a line "N passed, N failed"
# and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
bazel test //... --test_output=errors --keep_going --color=no --curses=no \
  2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
end=$(date +%s)

# One summary line per test: "<label>  [(cached)] PASSED in 1.2s", or
# FAILED / TIMEOUT / FLAKY / NO STATUS / FAILED TO BUILD / INCOMPLETE.
passed=$(grep -cE '^(@|//)[^ ]+ +(\(cached\) )?PASSED( |$)' "$log")
failed=$(grep -cE '^(@|//)[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|NO STATUS|INCOMPLETE|FAILED TO BUILD)( |$)' "$log")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "bazel exited with status $rc without a failing test: counting the build as one failure"
  failed=1
fi
echo "tests took $((end - start)) s"
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
