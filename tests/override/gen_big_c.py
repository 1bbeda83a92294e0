"""Writes a large, valid C file for the gcc preload test: N functions with
loops, switches, structs and calls between them, so that gcc -O2 has plenty
to inline, unroll and allocate for.  Usage: gen_big_c.py N > big.c"""
import sys


def function(i):
    return f"""
struct s{i} {{ int a[{i % 17 + 3}]; double d; struct s{i} *next; }};
static int helper{i}(int x, int y) {{
  int acc = x ^ {i};
  for (int k = 0; k < y % 64; k++) {{
    switch ((acc + k) % 8) {{
    case 0: acc += k * {i % 13 + 1}; break;
    case 1: acc ^= acc << 3; break;
    case 2: acc -= y; break;
    case 3: acc = acc * 31 + k; break;
    case 4: acc |= k; break;
    case 5: acc &= ~k; break;
    case 6: acc += (acc >> 5); break;
    default: acc--; break;
    }}
  }}
  return acc;
}}
int func{i}(int n) {{
  struct s{i} v = {{{{0}}, {i}.5, 0}};
  for (int j = 0; j < (int)(sizeof v.a / sizeof v.a[0]); j++) v.a[j] = helper{i}(n + j, j * 7);
  double t = v.d;
  for (int j = 0; j < n % 100; j++) t = t * 1.0001 + v.a[j % (int)(sizeof v.a / sizeof v.a[0])];
  return (int)t + {f"func{i - 1}(n - 1)" if i else "0"} * (n > 0);
}}
"""


def main():
    n = int(sys.argv[1])
    out = [function(i) for i in range(n)]
    out.append(f"int main(void) {{ return func{n - 1}(3) & 1; }}\n")
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
