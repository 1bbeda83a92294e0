"""Compiler options shared by every target that compiles the core sources."""

# The core must link against nothing but memcpy/memset/memmove, so the options
# that Bazel's auto-configured toolchain adds in opt mode (-fstack-protector,
# -D_FORTIFY_SOURCE) are countered here.
LM_COPTS = [
    "-std=c11",
    "-O2",
    "-fvisibility=hidden",
    "-ftls-model=initial-exec",
    "-fno-stack-protector",
    "-U_FORTIFY_SOURCE",
    "-fno-builtin-malloc",
    "-fno-builtin-free",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]
