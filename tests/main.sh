#!/bin/bash
# The main job: install what is needed, build litemalloc, and compare it with
# glibc, jemalloc, mimalloc and tcmalloc on every workload of tests/bench/
# (interleaved runs, medians, ratios, callgrind instruction counts, a table,
# a Markdown report and an SVG chart in the folder printed at the end).
# Arguments go to the runner: --quick for a one-minute run, --help for more.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash tests/setup.sh
exec bash tests/bench/run.sh "$@"
