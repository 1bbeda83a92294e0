#!/bin/bash
# The main job (for now): build everything, then run the multi-threaded
# stress test of the core and print the allocator's statistics at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/setup.sh
bazel build //... --color=no --curses=no
LM_STRESS_PRINT_STATS=1 bazel run --color=no --curses=no @tests//:stress_test -- --print-stats
