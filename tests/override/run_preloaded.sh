#!/bin/bash
# Runs PROGRAM with liblitemalloc.so preloaded; its status is the test's.
# Paths are made absolute, so that PROGRAM's arguments may be data files.
# Usage: run_preloaded.sh LIB.so PROGRAM [ARGS...]
set -euo pipefail
# lib.sh lies beside this script's source (Bazel runs it through a link)
source "$(dirname "$(readlink -f "$0")")/lib.sh"
[ $# -ge 2 ] || fail "usage: run_preloaded.sh LIB.so PROGRAM [ARGS]"
lib=$(abspath "$1")
prog=$(abspath "$2")
shift 2
LD_PRELOAD="$lib" exec "$prog" "$@"
