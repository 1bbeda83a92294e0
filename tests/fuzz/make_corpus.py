#!/usr/bin/env python3
"""Writes the seed corpus of lm_fuzz.c into tests/fuzz/corpus/ (or DIR).

Usage: python3 tests/fuzz/make_corpus.py [DIR]
       python3 tests/fuzz/make_corpus.py --decode FILE   (prints an input's ops)

Each seed is a list of 6-byte records {op, slot, s0, s1, s2, a}, decoded by
lm_fuzz.c; the tables below mirror that file's (size_of, align_of, count_of,
op_of), and enc_size/enc_align search them for a wanted value, so a seed says
what it does: op("memalign", 3, n=100, align=24).  Rerun after changing the
tables of lm_fuzz.c, and commit the output.
"""
import os
import sys

KiB, MiB = 1 << 10, 1 << 20
PTRDIFF_MAX, SIZE_MAX = (1 << 63) - 1, (1 << 64) - 1

BOUNDARY = [0, 1, 8, 15, 16, 17, 1024, 1025, 2048, 4096, 16 * KiB, 64 * KiB, 128 * KiB,
            128 * KiB + 1, 256 * KiB, 1 * MiB, 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB,
            32 * MiB - 16 * KiB, 32 * MiB - 64 * KiB, 32 * MiB, 32 * MiB + 1, 48 * MiB, 64 * MiB]
DELTA = [0, 0, -1, 1, -16, 16, -4096, 4096, -16384, 16384]
EXTREME = [PTRDIFF_MAX, PTRDIFF_MAX + 1, SIZE_MAX, 1 << 40, 1 << 44, 1 << 62, PTRDIFF_MAX - 4095,
           SIZE_MAX - 4095, (1 << 63) - 16, (1 << 30) + 1, 1 << 32, 3 << 29, (3 << 29) + 1,
           1 << 47, SIZE_MAX - 15, PTRDIFF_MAX - 15]
ALIGN = ([1 << k for k in range(31)] + [0, 1 << 31, 1 << 32, 1 << 40, 1 << 62, 1 << 63] +
         [3, 5, 12, 24, 48, 96, 100, 3000, 4095, 4097, 65537, (1 << 20) + 1, (1 << 30) - 1,
          (1 << 62) + 1, (1 << 63) + 1, SIZE_MAX, SIZE_MAX - 15] +
         [8, 16, 32, 64, 128, 4096, 65536, 1 << 21, 1 << 25, 1 << 26])
COUNT = [2, 3, 16, 4097, 1 << 16, 1 << 20, 1 << 31, 1 << 32, 1 << 33, 1 << 40, 1 << 62,
         1 << 63, PTRDIFF_MAX, SIZE_MAX, SIZE_MAX // 2, 1 << 24]
assert len(ALIGN) == 64

# The first index of each operation in lm_fuzz.c's op_of[32].
OPS = {"malloc": 0, "calloc": 5, "realloc": 8, "reallocarray": 12, "aligned_alloc": 13,
       "memalign": 15, "posix_memalign": 17, "valloc": 18, "pvalloc": 19, "free": 20,
       "check_slot": 25, "trim": 26, "stats": 27, "stats_json": 29, "null_args": 30,
       "verify_all": 31}


def size_of(s0, s1, s2):
    v = (s0 >> 3) << 16 | s1 << 8 | s2
    kind = s0 & 7
    if kind == 0:
        return v % 65
    if kind in (1, 2):
        return v % (2 * KiB + 1)
    if kind == 3:
        return v % (1 * MiB + 1)
    if kind == 4:
        return (v * 32 + (v & 31)) % (64 * MiB + 1)
    if kind == 5:
        b, d = BOUNDARY[s1 % len(BOUNDARY)], DELTA[s2 % len(DELTA)]
        return b if d < 0 and -d > b else b + d
    if kind == 6:
        return (1 << (v % 27)) + s2 % 3 - 1
    return EXTREME[s1 % len(EXTREME)]


def enc_size(n):
    """(s0, s1, s2) that size_of decodes to n."""
    if n <= 2 * KiB:
        return (1, n >> 8, n & 255)
    if n <= 1 * MiB:
        return (3 | (n >> 16) << 3, (n >> 8) & 255, n & 255)
    for s0 in (5, 6, 7):   # boundaries, powers of two, extremes
        for s1 in range(256):
            for s2 in range(256):
                if size_of(s0, s1, s2) == n:
                    return (s0, s1, s2)
    v = n // 32
    if n <= 64 * MiB and v * 32 + (v & 31) == n:
        return (4 | (v >> 16) << 3, (v >> 8) & 255, v & 255)
    raise ValueError("no encoding for size %d" % n)


def enc_align(a):
    return ALIGN.index(a)


def enc_count(k):
    return k if k <= 8 else 224 + COUNT.index(k)


def op(name, slot=0, n=0, align=None, count=None, variant=0, a=None):
    if align is not None:
        a = enc_align(align)
    elif count is not None:
        a = enc_count(count)
    elif a is None:
        a = 0
    return bytes([OPS[name] | variant << 5, slot, *enc_size(n), a])


def seed_basics():
    r = [op("null_args")]
    for slot, n in enumerate([0, 1, 7, 8, 15, 16, 17, 100, 1024, 1025, 2048, 5000, 65536]):
        r.append(op("malloc", slot, n))
    r += [op("check_slot", 3), op("stats"), op("calloc", 20, 100, count=3),
          op("calloc", 21, 0, count=5), op("calloc", 22, 4096, count=0)]
    r += [op("realloc", 1, 100), op("realloc", 1, 3000), op("realloc", 1, 10),
          op("realloc", 30, 50), op("realloc", 30, 0), op("realloc", 31, 0),
          op("reallocarray", 5, 100, count=4), op("reallocarray", 6, 0, count=2)]
    r += [op("free", s) for s in range(0, 13, 2)]
    r += [op("free", 1, variant=1), op("stats_json", a=255), op("stats_json", a=1),
          op("stats_json", a=40), op("stats", variant=1), op("stats", variant=2),
          op("verify_all")]
    return r


def seed_aligned():
    r = []
    for k in range(31):
        r.append(op("aligned_alloc", k, 100 + k, align=1 << k))
    r += [op("aligned_alloc", 40, 10, align=a) for a in (0, 3, 24, 3000, SIZE_MAX)]
    r += [op("aligned_alloc", 41, 1 * MiB, align=1 << 26),
          op("aligned_alloc", 42, 32 * MiB, align=1 << 25)]
    for i, a in enumerate([0, 1, 8, 16, 24, 48, 3000, 4097, 1 << 20, 1 << 25, 1 << 26,
                           1 << 30, (1 << 63) + 1, SIZE_MAX]):
        r.append(op("memalign", 50 + i, 200, align=a))
    for i, a in enumerate([0, 1, 4, 8, 16, 24, 4096, 1 << 25, 1 << 30, 3000]):
        r.append(op("posix_memalign", 70 + i, 64, align=a))
    r += [op("valloc", 80, 0), op("valloc", 81, 5000), op("pvalloc", 82, 0),
          op("pvalloc", 83, 1), op("pvalloc", 84, 4097), op("pvalloc", 85, SIZE_MAX - 4095),
          op("realloc", 10, 100000), op("stats"), op("trim"), op("verify_all")]
    return r


def seed_extremes():
    r = []
    ext = [PTRDIFF_MAX, PTRDIFF_MAX + 1, SIZE_MAX, 1 << 40, 1 << 44, 1 << 62]
    for i, n in enumerate(ext):
        r += [op("malloc", i, n), op("valloc", 10 + i, n), op("pvalloc", 20 + i, n),
              op("aligned_alloc", 30 + i, n, align=64), op("memalign", 40 + i, n, align=4096),
              op("posix_memalign", 50 + i, n, align=32)]
    r += [op("calloc", 60, 1 << 40, count=1), op("calloc", 61, 1 << 44, count=1),
          op("calloc", 62, 16, count=SIZE_MAX), op("calloc", 63, 1 << 32, count=1 << 32),
          op("calloc", 64, PTRDIFF_MAX, count=2), op("calloc", 65, 2, count=1 << 62)]
    r += [op("malloc", 70, 100), op("realloc", 70, PTRDIFF_MAX + 1),
          op("realloc", 70, SIZE_MAX), op("realloc", 70, 1 << 40),
          op("reallocarray", 70, 16, count=SIZE_MAX), op("reallocarray", 70, 2, count=1 << 63),
          op("realloc", 71, 1 << 44), op("check_slot", 70), op("stats")]
    return r


def seed_large():
    r = []
    sizes = [128 * KiB, 128 * KiB + 1, 256 * KiB, 1 * MiB, 32 * MiB - 16 * KiB, 32 * MiB,
             32 * MiB + 1, 48 * MiB, 64 * MiB]
    for i, n in enumerate(sizes):
        r.append(op("malloc", 100 + i, n))
    r += [op("calloc", 120, 1 * MiB, count=3), op("stats"),
          op("realloc", 100, 200), op("realloc", 100, 1 * MiB), op("realloc", 100, 48 * MiB),
          op("realloc", 100, 32 * MiB + 1), op("realloc", 100, 16), op("realloc", 101, 64 * MiB),
          op("free", 102), op("trim"), op("calloc", 102, 64 * MiB, count=1),
          op("realloc", 103, 128 * KiB + 1), op("stats_json", a=200), op("verify_all")]
    return r


def seed_churn():
    r = []
    for i in range(40):
        r.append(op("malloc", i, (i * 37) % 600))
    for i in range(0, 40, 3):
        r.append(op("free", i))
    for i in range(0, 40, 3):
        r.append(op("calloc", i, (i * 13) % 300, count=2))
    for i in range(1, 40, 4):
        r.append(op("realloc", i, (i * 91) % 2000))
    r += [op("stats", variant=1), op("stats_json", a=100), op("trim"), op("stats")]
    return r


SEEDS = {"basics": seed_basics, "aligned": seed_aligned, "extremes": seed_extremes,
         "large": seed_large, "churn": seed_churn}


def decode(path):
    names = {v: k for k, v in OPS.items()}
    op_of = [0] * 5 + [5] * 3 + [8] * 4 + [12] + [13] * 2 + [15] * 2 + [17, 18, 19] + \
        [20] * 5 + [25, 26, 27, 27, 29, 30, 31]
    data = open(path, "rb").read()
    for i in range(0, len(data) - 5, 6):
        o, slot, s0, s1, s2, a = data[i:i + 6]
        print("#%d %s(slot %d, n=%d, align=%d, count=%d, variant %d)" % (
            i // 6, names[op_of[o & 31]], slot, size_of(s0, s1, s2), ALIGN[a % 64],
            a % 9 if a < 224 else COUNT[a % 16], o >> 5))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--decode":
        return decode(sys.argv[2])
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, fn in SEEDS.items():
        data = b"".join(fn())
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        print("%s: %d ops, %d bytes" % (name, len(data) // 6, len(data)))


if __name__ == "__main__":
    main()
