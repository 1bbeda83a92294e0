# Shell helpers of the override tests (sourced).
#
# Under `bazel test` the paths the tests get ($(rootpath ...)) are relative
# to the runfiles directory of the main repository, which is the working
# directory; `abspath` makes one absolute, for LD_PRELOAD and for programs
# that change directory.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

abspath() {
  [ -e "$1" ] || fail "no such file: $1 (in $(pwd))"
  echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}

# The largest top-level "allocs" among the JSON statistics lines (one per
# process that exited with LITEMALLOC_SHOW_STATS=json) in file $1; the
# top-level field comes before the per-class ones, so it is a line's first.
json_max_allocs() {
  local max=0 n line
  while IFS= read -r line; do
    case "$line" in '{"version":'*) ;; *) continue ;; esac
    n=$(printf '%s\n' "$line" | grep -o '"allocs":[0-9]*' | head -n 1 | cut -d: -f2)
    [ -n "$n" ] && [ "$n" -gt "$max" ] && max=$n
  done <"$1"
  echo "$max"
}

# Checks that file $1 holds JSON statistics showing at least $2 allocations.
expect_json_allocs() {
  local got
  got=$(json_max_allocs "$1")
  [ "$got" -ge "$2" ] || {
    tail -n 20 "$1" >&2
    fail "litemalloc's statistics show $got allocations, expected at least $2"
  }
  echo "litemalloc served $got allocations (at least $2 expected)"
}

# The directory for a test's scratch files.
scratch() {
  local d="${TEST_TMPDIR:-$(mktemp -d)}/$1"
  rm -rf "$d" && mkdir -p "$d" && echo "$d"
}
