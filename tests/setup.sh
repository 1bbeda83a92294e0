#!/bin/bash
# Makes this machine ready to build, test and benchmark litemalloc (Debian 12).
#
# Idempotent: installs with apt-get only the packages that are missing (and
# runs `apt-get update` only then), needs no stdin, and works as root or
# through sudo.  Then, when the Bazel on PATH is Debian's offline build
# (bazel-bootstrap, whose `bazel --version` prints "no_version"), it writes
# .bazelrc.local so that plain `bazel build //...` and `bazel test //...`
# use the offline flags of `--config=debian` (see .bazelrc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  bazel-bootstrap bazel-bootstrap-source   # Bazel 4.2.3 and its mock rule repos
  gcc g++ clang libclang-rt-14-dev binutils  # compilers, sanitizer runtimes, nm
  valgrind python3                          # instruction counts, scripts
  libjemalloc2 libmimalloc2.0 libtcmalloc-minimal4  # peer allocators
  sqlite3 python3.11 libpython3.11-testsuite        # benchmark workloads
)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive); fi
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold)
  "${sudo[@]}" "${apt[@]}" update </dev/null
  "${sudo[@]}" "${apt[@]}" install "${missing[@]}" </dev/null
  for p in "${missing[@]}"; do
    installed "$p" || { echo "setup: $p did not install" >&2; exit 1; }
  done
else
  echo "setup: all ${#packages[@]} packages present"
fi

# Debian's Bazel needs the offline flags; an upstream Bazel must not get them.
local_rc=.bazelrc.local
marker="# written by tests/setup.sh"
if bazel --version 2>/dev/null | grep -q no_version; then
  want="$marker: Debian's offline Bazel (bazel-bootstrap) found
build --config=debian
query --config=debian
fetch --config=debian"
  if [ ! -f "$local_rc" ] || [ "$(cat "$local_rc")" != "$want" ]; then
    printf '%s\n' "$want" >"$local_rc"
    echo "setup: wrote $local_rc (--config=debian)"
  fi
elif [ -f "$local_rc" ] && head -n 1 "$local_rc" | grep -qF "$marker"; then
  rm -f "$local_rc"
  echo "setup: removed $local_rc (this Bazel is not Debian's)"
fi
