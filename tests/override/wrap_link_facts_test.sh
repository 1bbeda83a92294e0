#!/bin/bash
# Two facts about the linker-flag modes, checked with GNU ld (bfd, gcc's
# default linker; gold differs on the first) and the archives Bazel built:
#  1. --defsym=malloc=__wrap_malloc does not pull a member out of an archive,
#     so the wrap library must be linked whole (-Wl,--whole-archive); --wrap
#     does pull it (it makes __wrap_malloc an undefined reference).
#  2. Without --wrap there is no __real_malloc, so the wrap library refers to
#     the __real_* names only weakly: the --defsym link needs none of them.
# Usage: wrap_link_facts_test.sh facts_main.c ARCHIVES...
set -euo pipefail
# lib.sh lies beside this script's source (Bazel runs it through a link)
source "$(dirname "$(readlink -f "$0")")/lib.sh" || exit 1

main_c=$(abspath "$1")
shift
wrap="" core=""
for f in "$@"; do
  case "$f" in
    *libwrap.a | *libwrap.lo) wrap=$(abspath "$f") ;;
    *liblitemalloc.a) core=$(abspath "$f") ;;
  esac
done
[ -n "$wrap" ] && [ -n "$core" ] || fail "wrap or core archive missing among: $*"
dir=$(scratch facts)
cp "$wrap" "$dir/libwrap.a"   # Bazel names an alwayslink archive .lo
cc=(/usr/bin/gcc -fuse-ld=bfd)
six=(malloc free calloc realloc memalign valloc)
defsym=() wrapflags=()
for s in "${six[@]}"; do
  defsym+=("-Wl,--defsym=$s=__wrap_$s")
  wrapflags+=("-Wl,--wrap,$s")
done
"${cc[@]}" -c "$main_c" -o "$dir/main.o" || fail "cannot compile $main_c"

# served PROGRAM: runs it and checks that litemalloc served its malloc
served() {
  LITEMALLOC_SHOW_STATS=json "$1" 2>"$dir/stats" || fail "$1 exited with status $?"
  expect_json_allocs "$dir/stats" 1
}

echo "== the wrap library refers to __real_* only weakly"
nm "$dir/libwrap.a" | grep '__real_' >"$dir/real" || fail "no __real_ reference in the wrap library"
cat "$dir/real"
if grep -qv ' w __real_' "$dir/real"; then fail "a __real_ reference is not weak"; fi

echo "== --defsym with the archive linked as usual: the link must fail"
if "${cc[@]}" "$dir/main.o" "$dir/libwrap.a" "$core" "${defsym[@]}" -o "$dir/defsym_plain" 2>"$dir/err"; then
  fail "linked without --whole-archive: --defsym pulled a member out of the archive"
fi
grep -q "__wrap_malloc" "$dir/err" || { cat "$dir/err"; fail "the link failed for another reason"; }
cat "$dir/err"

echo "== --defsym with the archive linked whole, and no __real_*: links and runs"
"${cc[@]}" "$dir/main.o" -Wl,--whole-archive "$dir/libwrap.a" -Wl,--no-whole-archive "$core" \
  "${defsym[@]}" -o "$dir/defsym_whole" || fail "the --defsym link with --whole-archive failed"
served "$dir/defsym_whole"

echo "== --wrap, static, with the archive linked as usual: links and runs"
"${cc[@]}" -static "$dir/main.o" "$dir/libwrap.a" "$core" "${wrapflags[@]}" \
  -o "$dir/wrap_static" || fail "the static --wrap link failed"
served "$dir/wrap_static"
echo "PASS"
