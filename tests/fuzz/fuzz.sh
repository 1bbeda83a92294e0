#!/bin/bash
# Builds the libFuzzer harness lm_fuzz.c with the core sources (litemalloc/*.c)
# under AddressSanitizer and UBSan (clang 14) and runs it for SECONDS from the
# committed seed corpus.  Exits non-zero on a crash, a sanitizer report, a
# model mismatch (a "lm_fuzz: MISMATCH" line), a timeout or an out-of-memory;
# the failing input is kept and its path printed.
#
# Usage: fuzz.sh [SECONDS] [FILE...]
#   SECONDS   how long to fuzz (default $LM_FUZZ_SECONDS, else 60); 0 runs
#             the seeds once (with LM_FUZZ_KEEP=1: a build to replay inputs
#             with, WORKDIR/lm_fuzz INPUT...)
#   FILE      what to build from (Bazel passes them, see BUILD.tests): the core
#             sources (*.c, *.h, copts.bzl), lm_fuzz.c and the seeds (files in
#             a directory named corpus); without FILEs all are found beside
#             this script and in ../../litemalloc.
# By hand, from the repository root:  bash tests/fuzz/fuzz.sh 3600
# Environment: CLANG (default clang, else clang-14); LM_FUZZ_KEEP=1 keeps the
# work directory (build, grown corpus, logs) even on success; LM_FUZZ_CFLAGS
# adds compiler flags (e.g. -DLM_DEBUG=3); LM_FUZZ_ARGS adds libFuzzer options
# (e.g. "-seed=1" or "-fork=2").
# Nothing is written into the source tree: the work directory is under
# $TEST_TMPDIR (Bazel) or $TMPDIR; a failing input is also copied to
# $TEST_UNDECLARED_OUTPUTS_DIR when Bazel sets it.
set -euo pipefail

die() { echo "fuzz.sh: $*" >&2; exit 2; }

secs=${LM_FUZZ_SECONDS:-60}
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then secs=$1; shift; fi

# -- the files -------------------------------------------------------------
# Under `bazel test` the arguments are runfiles paths relative to the main
# repository's runfiles directory (the working directory), "../tests/..."
# for the tests repository; also look under $TEST_SRCDIR.
resolve() {
  local f=$1 c
  for c in "$f" "${TEST_SRCDIR:-/nonexistent}/litemalloc/$f" "${TEST_SRCDIR:-/nonexistent}/$f" \
           "${TEST_SRCDIR:-/nonexistent}/${f#../}"; do
    if [ -f "$c" ]; then echo "$c"; return; fi
  done
  die "cannot find $f (pwd $(pwd))"
}

core=() seeds=() harness="" copts_bzl=""
if [ $# -eq 0 ]; then
  here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
  harness=$here/lm_fuzz.c
  seeds=("$here"/corpus/*)
  core=("$here"/../../litemalloc/*.c "$here"/../../litemalloc/*.h)
  copts_bzl=$here/../../litemalloc/copts.bzl
else
  for f in "$@"; do
    p=$(resolve "$f")
    case "$f" in
      */corpus/*) seeds+=("$p") ;;
      *lm_fuzz.c) harness=$p ;;
      *copts.bzl) copts_bzl=$p ;;
      *.c | *.h) core+=("$p") ;;
      *) die "do not know what $f is" ;;
    esac
  done
fi
[ -n "$harness" ] || die "no lm_fuzz.c given"
[ -f "${seeds[0]:-}" ] || die "no seed corpus"
[ -f "${core[0]:-}" ] || die "no core sources"

cc=${CLANG:-}
if [ -z "$cc" ]; then
  for c in clang clang-14; do command -v "$c" >/dev/null && { cc=$c; break; }; done
fi
[ -n "$cc" ] || die "clang not found (apt-get install -y clang libclang-rt-14-dev)"

# -- the work directory ----------------------------------------------------
work=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/lm_fuzz.XXXXXX")
ok=0
cleanup() {
  if [ $ok -eq 1 ] && [ "${LM_FUZZ_KEEP:-0}" != 1 ]; then rm -rf "$work"
  elif [ -z "${TEST_TMPDIR:-}" ]; then echo "fuzz.sh: work directory kept: $work"; fi
}
trap cleanup EXIT

# The core's own include layout: #include "litemalloc/litemalloc.h".
mkdir -p "$work/src/litemalloc" "$work/obj" "$work/corpus" "$work/artifacts"
cp "${core[@]}" "$work/src/litemalloc/"
cp "$harness" "$work/src/lm_fuzz.c"
cp "${seeds[@]}" "$work/corpus/"   # libFuzzer adds new inputs to this copy
chmod -R u+w "$work"

# The core's flags (litemalloc/copts.bzl) without -O2; a fixed list if the
# file is not at hand.
copts=(-std=c11 -fvisibility=hidden -ftls-model=initial-exec -fno-stack-protector
       -U_FORTIFY_SOURCE -fno-builtin-malloc -fno-builtin-free -Wall -Wextra
       -Wno-unused-parameter)
if [ -n "$copts_bzl" ] && [ -f "$copts_bzl" ]; then
  mapfile -t from_bzl < <(sed -n '/^LM_COPTS *=/,/^]/p' "$copts_bzl" | grep -o '"[^"]*"' |
                          tr -d '"' | grep -vx -- '-O[0-9s]')
  if [ ${#from_bzl[@]} -gt 0 ]; then copts=("${from_bzl[@]}"); fi
fi
san=(-g -O1 -fno-omit-frame-pointer "-fsanitize=fuzzer,address,undefined" -fno-sanitize-recover=all)
# shellcheck disable=SC2206
extra=(${LM_FUZZ_CFLAGS:-})

# -- build -----------------------------------------------------------------
echo "fuzz.sh: building with $cc: ${copts[*]} ${san[*]} ${extra[*]}"
pids=()
for f in "$work"/src/litemalloc/*.c "$work/src/lm_fuzz.c"; do
  "$cc" "${san[@]}" "${copts[@]}" "${extra[@]}" -I"$work/src" -c "$f" \
    -o "$work/obj/$(basename "$f" .c).o" 2>"$work/obj/$(basename "$f" .c).log" &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
cat "$work"/obj/*.log
[ $fail -eq 0 ] || die "compilation failed"
"$cc" "${san[@]}" "${extra[@]}" "$work"/obj/*.o -o "$work/lm_fuzz" || die "link failed"

# -- run -------------------------------------------------------------------
# Leak detection is off: litemalloc's blocks live in its own mappings, which
# LeakSanitizer cannot see (the model's final live_objects == 0 is the leak
# check), and LeakSanitizer fails where ptrace is not allowed.
export ASAN_OPTIONS="detect_leaks=0:handle_abort=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
args=(-rss_limit_mb=4096 -timeout=10 -max_len=4096
      -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$work/artifacts/")
if [ "$secs" -eq 0 ]; then args+=(-runs=0); else args+=(-max_total_time="$secs"); fi
# shellcheck disable=SC2206
args+=(${LM_FUZZ_ARGS:-})
if [ "$secs" -eq 0 ]; then echo "fuzz.sh: running the ${#seeds[@]} seeds once"
else echo "fuzz.sh: fuzzing for $secs s from ${#seeds[@]} seeds"; fi
rc=0
(cd "$work" && ./lm_fuzz "${args[@]}" corpus) 2>&1 | tee "$work/fuzz.log" || rc=$?

if [ $rc -ne 0 ] || grep -qE 'lm_fuzz: MISMATCH|runtime error:|ERROR: (AddressSanitizer|libFuzzer)' "$work/fuzz.log"; then
  echo "fuzz.sh: FAILED (status $rc)"
  grep -m1 -E 'lm_fuzz: MISMATCH|runtime error:|ERROR: ' "$work/fuzz.log" || true
  for a in "$work"/artifacts/*; do
    [ -f "$a" ] || continue
    if [ -n "${TEST_UNDECLARED_OUTPUTS_DIR:-}" ]; then
      cp "$a" "$TEST_UNDECLARED_OUTPUTS_DIR/"
      echo "fuzz.sh: failing input $(basename "$a") saved in the test's outputs" \
           "(bazel-testlogs/.../test.outputs/); replay it with a build from" \
           "LM_FUZZ_KEEP=1 bash tests/fuzz/fuzz.sh 0: WORKDIR/lm_fuzz INPUT"
    else
      echo "fuzz.sh: failing input $a; replay with: $work/lm_fuzz $a"
    fi
  done
  exit 1
fi
echo "fuzz.sh: passed, $(find "$work/corpus" -type f | wc -l) inputs in the corpus"
ok=1
