#!/usr/bin/env python3
"""Minimax polynomial coefficients of the math library (keops-ir/src/lower/math/).

Each approximation is a polynomial P(z) = c0 + c1 z + ... minimizing the maximum
weighted error max |W(z) (F(z) - P(z))| over an interval, found by the Remez exchange
algorithm in 60-digit arithmetic (mpmath), then rounded to f32 and to f64. The weight
turns the error of P into the relative error of the function it serves (see each entry).
The script prints the coefficients as Rust arrays (copied into the source) and the
measured weighted error after rounding, as log2.

Usage: python3 scripts/math_coeffs.py   (needs mpmath and numpy)
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 60


def polyval(c, z):
    acc = mp.mpf(0)
    for x in reversed(c):
        acc = acc * z + x
    return acc


def remez(F, W, a, b, n, iters=40, grid=3000):
    """Coefficients c[0..n) of the minimax P for max |W (F - P)| on [a, b]."""
    a, b = mp.mpf(a), mp.mpf(b)
    m = n + 1
    # Dense grid, Chebyshev-distributed (dense near the ends, where extrema cluster).
    zs = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (grid - 1)) for i in range(grid)]
    fs = [F(z) for z in zs]
    ws = [W(z) for z in zs]
    pts = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * (i + 0.5) / m) for i in range(m)]
    # Keep the first reference away from zeros of the weight (exp's is at r = 0).
    wref = max(abs(W(z)) for z in pts)
    pts = [z + (b - a) / (4 * m) if abs(W(z)) < wref * mp.mpf("1e-3") else z for z in pts]
    c = None
    for _ in range(iters):
        A = mp.matrix(m, m)
        rhs = mp.matrix(m, 1)
        for i, z in enumerate(pts):
            for j in range(n):
                A[i, j] = z**j
            A[i, n] = (-1) ** i / W(z)
            rhs[i] = F(z)
        sol = mp.lu_solve(A, rhs)
        c = [sol[j] for j in range(n)]
        E = abs(sol[n])
        err = [w * (f - polyval(c, z)) for z, f, w in zip(zs, fs, ws)]
        # Local extrema of the error, endpoints included.
        ext = []
        for i in range(grid):
            left = err[i - 1] if i > 0 else None
            right = err[i + 1] if i < grid - 1 else None
            e = err[i]
            if (left is None or abs(e) >= abs(left)) and (right is None or abs(e) >= abs(right)):
                ext.append(i)
        # Keep alternating signs (largest of each same-sign run).
        alt = []
        for i in ext:
            if alt and mp.sign(err[alt[-1]]) == mp.sign(err[i]):
                if abs(err[i]) > abs(err[alt[-1]]):
                    alt[-1] = i
            else:
                alt.append(i)
        while len(alt) > m:
            if abs(err[alt[0]]) < abs(err[alt[-1]]):
                alt.pop(0)
            else:
                alt.pop()
        if len(alt) < m:
            break
        pts = [zs[i] for i in alt]
        emax = max(abs(e) for e in err)
        if emax <= E * (1 + mp.mpf("1e-6")):
            break
    return c


def check(c, F, W, a, b, grid=20000):
    """Maximum weighted error of the coefficients `c` (already rounded), as log2."""
    a, b = mp.mpf(a), mp.mpf(b)
    emax = mp.mpf(0)
    for i in range(grid):
        z = (a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / (grid - 1))
        emax = max(emax, abs(W(z) * (F(z) - polyval([mp.mpf(x) for x in c], z))))
    return float(mp.log(emax, 2)) if emax > 0 else -999


def fmt(prec, c):
    """Shortest round-trip decimal texts and values of the coefficients rounded to `prec`."""
    if prec == "f32":
        vals = [np.float32(float(x)) for x in c]
        return [str(v) for v in vals], [float(v) for v in vals]
    vals = [float(x) for x in c]
    return [repr(v) for v in vals], vals


sq = mp.sqrt
EPS = mp.mpf("1e-12")

# name: (F, W, a, b, {prec: degree + 1})
PROBLEMS = {
    # exp(r) = 1 + r + r^2 P(r) on |r| <= ln2/2 (+ slack for the rounding of x*log2(e)).
    # Weight: r^2 / exp(r), the relative error of exp.
    "EXP": (
        lambda r: (mp.expm1(r) - r) / r**2 if r != 0 else mp.mpf(0.5),
        lambda r: r**2 / mp.exp(r),
        -0.3467,
        0.3467,
        {"f32": 5, "f64": 11},
    ),
    # log(m) = 2 s + s z Q(z), s = (m-1)/(m+1), z = s^2, m in [sqrt(2)/2, sqrt(2)]:
    # Q(z) = (2 atanh(s)/s - 2)/z. Weight z/2: the relative error of log(m) ~ 2s.
    "LOG": (
        lambda z: (2 * mp.atanh(sq(z)) / sq(z) - 2) / z,
        lambda z: z / 2,
        EPS,
        0.02944,
        {"f32": 3, "f64": 7},
    ),
    # The same series for the double-word logarithm of pow: log(m) = 2s + 2s^3/3 + s^5 W(z),
    # W(z) = (2 atanh(s) - 2s - 2s^3/3)/s^5. Weight z^2/2 (relative error of log(m)).
    "LOG_DW": (
        lambda z: (2 * mp.atanh(sq(z)) - 2 * sq(z) - 2 * sq(z) ** 3 / 3) / sq(z) ** 5,
        lambda z: z**2 / 2,
        EPS,
        0.02944,
        {"f32": 4, "f64": 8},
    ),
    # sin(r) = r + r^3 S(z), z = r^2, |r| <= 0.9 (pi/4 plus the slack of the rounded
    # quadrant, up to |x| ~ 2^20 in f32). Weight: the relative error of sin.
    "SIN": (
        lambda z: (mp.sin(sq(z)) - sq(z)) / sq(z) ** 3,
        lambda z: sq(z) ** 3 / mp.sin(sq(z)),
        EPS,
        0.81,
        {"f32": 4, "f64": 7},
    ),
    # cos(r) = 1 - z/2 + z^2 C(z), |r| <= 0.9. Weight: the relative error of cos.
    "COS": (
        lambda z: (mp.cos(sq(z)) - 1 + z / 2) / z**2,
        lambda z: z**2 / mp.cos(sq(z)),
        EPS,
        0.81,
        {"f32": 3, "f64": 6},
    ),
    # asin(u) = u + u^3 A(t), t = u^2 <= 1/4. Weight: twice the relative error of asin
    # (the reduction pi/2 - 2 asin(sqrt((1-x)/2)) doubles it, relative to its result).
    "ASIN": (
        lambda t: (mp.asin(sq(t)) - sq(t)) / sq(t) ** 3,
        lambda t: 2 * sq(t) ** 3 / mp.asin(sq(t)),
        EPS,
        0.25,
        {"f32": 6, "f64": 13},
    ),
    # atan(u) = u + u^3 T(z), z = u^2 <= 1/4. Weight: the relative error of atan.
    "ATAN": (
        lambda z: (mp.atan(sq(z)) - sq(z)) / sq(z) ** 3,
        lambda z: sq(z) ** 3 / mp.atan(sq(z)),
        EPS,
        0.25,
        {"f32": 6, "f64": 12},
    ),
}


def split(v, prec, parts):
    """`v` as a sum of `parts` floats of `prec`, each the rounding of what is left."""
    out, r = [], v
    for _ in range(parts):
        c = float(np.float32(float(r))) if prec == "f32" else float(r)
        out.append(c)
        r = r - mp.mpf(c)
    return out


# Constants split into a sum of floats (hi + lo [+ lo2]), so that products by small
# integers and sums stay exact to well beyond the precision.
CONSTANTS = {
    "LN2": (mp.log(2), 2),
    "PIO2": (mp.pi / 2, 3),
    "PI": (mp.pi, 2),
    "PIO4": (mp.pi / 4, 2),
    "PI3O4": (3 * mp.pi / 4, 2),
    "TWO_THIRDS": (mp.mpf(2) / 3, 2),
    "LOG2E": (1 / mp.log(2), 1),
    "TWO_OVER_PI": (2 / mp.pi, 1),
}


def main():
    import sys

    only = sys.argv[1:]
    if not only or "CONSTANTS" in only:
        for name, (v, parts) in CONSTANTS.items():
            for prec in ("f32", "f64"):
                vals = split(v, prec, parts)
                txt = [str(np.float32(x)) if prec == "f32" else repr(x) for x in vals]
                print(f"// {name} {prec}: {', '.join(txt)}")
        print()
    for name, (F, W, a, b, degs) in PROBLEMS.items():
        if only and name not in only:
            continue
        for prec, n in degs.items():
            for nn in (n - 1, n, n + 1):
                c = remez(F, W, a, b, nn)
                txt, vals = fmt(prec, c)
                e = check(vals, F, W, a, b)
                mark = " <- used" if nn == n else ""
                print(f"// {name} {prec} {nn} coefficients: max weighted error 2^{e:.1f}{mark}")
                if nn == n:
                    print(f"const {name}_{prec.upper()}: [{prec}; {n}] = [{', '.join(txt)}];")
            print()


if __name__ == "__main__":
    main()
