#!/usr/bin/env python3
"""Correctly rounded references for the f64 accuracy tests of the math library.

Writes keops-ir/tests/data/math_f64_reference.txt: f64 inputs drawn at random (fixed
seed; log-uniform magnitudes, both signs, and the edges of each function: near overflow
and underflow, subnormals, near 1, near multiples of pi/2, region boundaries), each with
the exact value of the function computed by mpmath at 256 bits, as

    <fn> <input bits (hex)> [<second input bits>] <e> <hi bits> <lo bits>

meaning value = (hi + lo) * 2^e with hi in [1, 2) (or (-2, -1]) and lo the rounding
error of hi (so the value is known to about 106 bits, whatever its magnitude: overflowing
and subnormal values too). `fn` is exp, log, sin, cos, asin, acos, atan, atan2 (y, x),
powf (x, y), powi:<n> or rsqrt. Inputs whose value is 0, infinite or NaN are left to the
special-value tests.

Usage: python3 scripts/math_reference.py   (needs mpmath; a few seconds)
"""

import math
import os
import random
import struct

import mpmath as mp

mp.mp.prec = 256
rng = random.Random(20240521)

MAX = 1.7976931348623157e308


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def loguniform(lo_e, hi_e, signed=True):
    """A double with a uniform exponent in [lo_e, hi_e) and a random mantissa."""
    e = rng.uniform(lo_e, hi_e)
    x = math.ldexp(1.0 + rng.random(), math.floor(e))
    if x == 0.0 or math.isinf(x):
        x = math.ldexp(1.0, max(min(math.floor(e), 1023), -1074))
    return -x if signed and rng.random() < 0.5 else x


def anybits(lo=1, hi=0x7FEFFFFFFFFFFFFF):
    """A positive finite double with uniformly random bits (log-uniform, subnormals)."""
    return from_bits(rng.randint(lo, hi))


def near(x, ulps=4):
    """x moved by a few ulps."""
    b = bits(abs(x)) + rng.randint(-ulps, ulps)
    return math.copysign(from_bits(max(b, 0)), x)


def encode(v):
    m, e = mp.frexp(v)  # v = m 2^e, |m| in [0.5, 1)
    m, e = 2 * m, e - 1
    hi = float(m)
    lo = float(m - hi)
    return f"{e} {bits(hi):016x} {bits(lo):016x}"


lines = []


def emit(name, args, v):
    if v is None:
        return
    if isinstance(v, mp.mpc) or not mp.isfinite(v) or v == 0:
        return
    lines.append(f"{name} {' '.join(f'{bits(a):016x}' for a in args)} {encode(v)}")


def f(x):
    return mp.mpf(x)


# ---------------------------------------------------------------- exp
for _ in range(350):
    x = rng.uniform(-745.1, 709.78)
    emit("exp", [x], mp.exp(f(x)))
for _ in range(350):
    x = loguniform(-60, 9.47)
    emit("exp", [x], mp.exp(f(x)))
for _ in range(150):  # subnormal results
    x = rng.uniform(-745.13, -708.39)
    emit("exp", [x], mp.exp(f(x)))
for x0 in (709.782712893384, -708.3964185322641, -745.1332191019411, -745.1332191019412):
    for _ in range(25):
        x = near(x0, 64)
        emit("exp", [x], mp.exp(f(x)))
for _ in range(50):  # tiny
    x = loguniform(-1074, -50)
    emit("exp", [x], mp.exp(f(x)))

# ---------------------------------------------------------------- log
for _ in range(450):
    x = anybits()
    emit("log", [x], mp.log(f(x)))
for _ in range(150):
    x = 1.0 + rng.uniform(-0.3, 0.42)
    emit("log", [x], mp.log(f(x)))
for _ in range(200):  # close to 1
    x = 1.0 + math.copysign(math.ldexp(1.0 + rng.random(), -rng.randint(1, 52)), rng.random() - 0.5)
    emit("log", [x], mp.log(f(x)))
for _ in range(100):  # subnormal inputs
    x = anybits(1, 0x000FFFFFFFFFFFFF)
    emit("log", [x], mp.log(f(x)))
for _ in range(100):  # near sqrt(1/2) 2^e, the reduction's boundary
    x = near(math.ldexp(math.sqrt(0.5), rng.randint(-1000, 1000)), 8)
    emit("log", [x], mp.log(f(x)))

# ---------------------------------------------------------------- sin, cos
for name, fn in (("sin", mp.sin), ("cos", mp.cos)):
    for _ in range(450):
        x = loguniform(-30, 20)
        emit(name, [x], fn(f(x)))
    for _ in range(150):
        x = rng.uniform(-10, 10)
        emit(name, [x], fn(f(x)))
    for _ in range(150):
        x = rng.uniform(-1e5, 1e5)
        emit(name, [x], fn(f(x)))
    for _ in range(250):  # near multiples of pi/2 (small reduced arguments)
        k = rng.randint(1, 1 << rng.randint(1, 30))
        x = near(float(k * mp.pi / 2), 2) * (1 if rng.random() < 0.5 else -1)
        emit(name, [x], fn(f(x)))
    for _ in range(120):  # toward the end of the documented range
        x = loguniform(20, 48)
        emit(name, [x], fn(f(x)))
    for _ in range(80):  # beyond it (reported, not bounded)
        x = loguniform(48, 1023)
        emit(name, [x], fn(f(x)))

# ---------------------------------------------------------------- asin, acos
for name, fn in (("asin", mp.asin), ("acos", mp.acos)):
    for _ in range(300):
        x = rng.uniform(-1, 1)
        emit(name, [x], fn(f(x)))
    for _ in range(200):  # near ±1
        x = 1.0 - math.ldexp(1.0 + rng.random(), -rng.randint(1, 53))
        x = -x if rng.random() < 0.5 else x
        emit(name, [x], fn(f(x)))
    for _ in range(100):  # near ±1/2
        x = near(0.5, 1000) * (1 if rng.random() < 0.5 else -1)
        emit(name, [x], fn(f(x)))
    for _ in range(200):
        x = loguniform(-80, -1)
        emit(name, [x], fn(f(x)))

# ---------------------------------------------------------------- atan
for _ in range(550):
    x = loguniform(-60, 70)
    emit("atan", [x], mp.atan(f(x)))
for _ in range(200):  # region boundaries
    x = near(rng.choice([0.5, 2.0, 1.0]), 1000) * (1 if rng.random() < 0.5 else -1)
    emit("atan", [x], mp.atan(f(x)))
for _ in range(50):
    x = loguniform(-1074, -60)
    emit("atan", [x], mp.atan(f(x)))

# ---------------------------------------------------------------- atan2
def atan2_pair(x, ratio):
    y = x * ratio
    if y == 0.0 or math.isinf(y) or math.isnan(y):
        return None
    if rng.random() < 0.5:
        y = -y
    return y


for _ in range(700):
    x = loguniform(-1000, 1000)
    y = atan2_pair(x, loguniform(-70, 70, signed=False))
    if y is not None:
        emit("atan2", [y, x], mp.atan2(f(y), f(x)))
for _ in range(300):  # the middle region and its boundaries
    x = loguniform(-1000, 1000)
    y = atan2_pair(x, rng.choice([rng.uniform(0.3, 3.0), near(0.5, 100), near(2.0, 100)]))
    if y is not None:
        emit("atan2", [y, x], mp.atan2(f(y), f(x)))
for _ in range(100):  # huge and subnormal magnitudes
    e = rng.choice([(1015, 1023.9), (-1074, -1020)])
    x = loguniform(*e)
    y = loguniform(*e)
    emit("atan2", [y, x], mp.atan2(f(y), f(x)))

# ---------------------------------------------------------------- powf
def pow_ref(x, y):
    if x < 0:
        assert y == int(y)
        v = mp.power(f(-x), f(y))
        return -v if int(y) % 2 else v
    return mp.power(f(x), f(y))


for _ in range(600):
    x = anybits()
    if x == 1.0:
        continue
    t = rng.uniform(-745.1, 709.7)
    y = t / math.log(x)
    emit("powf", [x, y], pow_ref(x, y))
for _ in range(300):  # base near 1, huge exponents: the precision test of log
    x = 1.0 + math.copysign(math.ldexp(1.0 + rng.random(), -rng.randint(1, 52)), rng.random() - 0.5)
    t = rng.uniform(-745.1, 709.7)
    y = t / math.log(x)
    emit("powf", [x, y], pow_ref(x, y))
for _ in range(200):
    x, y = rng.uniform(0, 10), rng.uniform(-20, 20)
    emit("powf", [x, y], pow_ref(x, y))
for _ in range(200):  # negative base, integer exponent
    x = -loguniform(-20, 20, signed=False)
    lim = max(1, int(700 / abs(math.log(-x))))
    y = float(rng.randint(-min(lim, 1 << 40), min(lim, 1 << 40)))
    emit("powf", [x, y], pow_ref(x, y))
for _ in range(150):  # subnormal results
    x = loguniform(-30, 30, signed=False)
    if x == 1.0:
        continue
    y = rng.uniform(-745.1, -708.4) / math.log(x)
    emit("powf", [x, y], pow_ref(x, y))
for _ in range(50):  # overflow boundary
    x = loguniform(-30, 30, signed=False)
    if x == 1.0:
        continue
    y = rng.uniform(709.0, 709.78) / math.log(x)
    emit("powf", [x, y], pow_ref(x, y))

# ---------------------------------------------------------------- powi
for n in (-7, -3, -2, 3, 5, 13):
    lo, hi = -1070.0 / abs(n), 1023.9 / abs(n)
    for _ in range(130):
        x = loguniform(lo, hi)
        emit(f"powi:{n}", [x], mp.power(f(x), n))
    for _ in range(20):  # the ends: overflow and underflow of the result
        e = rng.choice([hi - 0.3, lo, -1022.0 / abs(n)]) + rng.uniform(-0.2, 0.2)
        x = loguniform(e, e + 0.01)
        emit(f"powi:{n}", [x], mp.power(f(x), n))

# ---------------------------------------------------------------- rsqrt
for _ in range(500):
    x = anybits()
    emit("rsqrt", [x], 1 / mp.sqrt(f(x)))

path = os.path.join(os.path.dirname(__file__), "..", "keops-ir", "tests", "data", "math_f64_reference.txt")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as out:
    out.write("# generated by scripts/math_reference.py (mpmath, 256 bits); see there for the format\n")
    out.write("\n".join(lines) + "\n")
print(f"{len(lines)} lines written to {os.path.normpath(path)}")
