//! Trigonometric functions and their inverses.

use super::coeffs::*;
use super::kit::Kit;
use crate::lower::scalar::Reg;

impl Kit<'_> {
    /// `x = k pi/2 + (rh + rl)`: the reduced argument as a double word and the quadrant
    /// `k` as an integer.
    ///
    /// k = rint(x 2/pi); pi/2 = c1 + c2 + c3 (three floats, about 3 times the
    /// precision). r1 = x - k c1 is exact (one fma: both terms are multiples of
    /// ulp(c1)/2 or finer and the difference is small) while k < 2^24 (f32) or 2^53;
    /// k c2 is split exactly (fma) and subtracted by TwoSum; k c3 only feeds the low
    /// part. The reduced argument thus carries about twice the precision, which keeps
    /// sin and cos within bound even for the f32 closest to multiples of pi/2.
    ///
    /// The limit is the quadrant: x 2/pi is rounded before rint, so |r| grows past pi/4
    /// with |x|; the polynomials cover |r| <= 0.9, which holds for |x| < 2^20 in f32 and
    /// 2^48 in f64 (measured correct to 2^50; see docs/math-accuracy.md). Beyond, the result
    /// degrades into garbage, and any |rh| > 1 is replaced by 0, so that sin and cos stay
    /// finite and within [-1, 1] for every finite x. Infinite x gives NaN (the fma
    /// computes inf - inf), which the guard lets through.
    fn trig_reduce(&mut self, x: Reg) -> (Reg, Reg, Reg) {
        let two_over_pi = self.cp(std::f32::consts::FRAC_2_PI, std::f64::consts::FRAC_2_PI);
        let t = self.mul(x, two_over_pi);
        let k = self.rint(t);
        let nc1 = self.cp(-PIO2_F32[0], -PIO2_F64[0]);
        let nc2 = self.cp(-PIO2_F32[1], -PIO2_F64[1]);
        let nc3 = self.cp(-PIO2_F32[2], -PIO2_F64[2]);
        let r1 = self.fma(k, nc1, x);
        let (p, pe) = self.two_prod(k, nc2);
        let (h, err) = self.two_sum(r1, p);
        let lo = self.add(err, pe);
        let lo = self.fma(k, nc3, lo);
        let (rh, rl) = self.fast_two_sum(h, lo);
        // Guard for the huge arguments where the reduction is meaningless.
        let one = self.c(1.0);
        let zero = self.c(0.0);
        let arh = self.abs(rh);
        let big = self.lt(one, arh);
        let rh = self.sel(big, zero, rh);
        let rl = self.sel(big, zero, rl);
        let n = self.cvt_int(k);
        (rh, rl, n)
    }

    /// sin(rh + rl) for |rh| <= 0.9: rh + (rh^3 S(rh^2) + rl (1 - rh^2/2)).
    fn sin_poly(&mut self, rh: Reg, rl: Reg) -> Reg {
        let z = self.mul(rh, rh);
        let s = self.poly(z, &SIN_F32, &SIN_F64);
        let mhalf = self.c(-0.5);
        let hz = self.mul(mhalf, z);
        let corr = self.fma(hz, rl, rl);
        let rz = self.mul(rh, z);
        let tail = self.fma(rz, s, corr);
        self.add(rh, tail)
    }

    /// cos(rh + rl) for |rh| <= 0.9: w = 1 - z/2 rounded, then its exact rounding error
    /// ((1 - w) - z/2, both steps exact by Sterbenz) is added back with the small terms
    /// z^2 C(z) - rh rl (fdlibm's arrangement).
    fn cos_poly(&mut self, rh: Reg, rl: Reg) -> Reg {
        let z = self.mul(rh, rh);
        let c = self.poly(z, &COS_F32, &COS_F64);
        let (one, half) = (self.c(1.0), self.c(0.5));
        let hz = self.mul(half, z);
        let w = self.sub(one, hz);
        let z2 = self.mul(z, z);
        let hl = self.mul(rh, rl);
        let nhl = self.neg(hl);
        let tail = self.fma(z2, c, nhl);
        let ow = self.sub(one, w);
        let err = self.sub(ow, hz);
        let tail = self.add(err, tail);
        self.add(w, tail)
    }

    /// The value of quadrant `q`: sin(r), cos(r), -sin(r), -cos(r) for q mod 4 = 0..3.
    fn quadrant(&mut self, q: Reg, s: Reg, c: Reg) -> Reg {
        let (one, two, zero) = (self.int(1), self.int(2), self.int(0));
        let odd = self.iand(q, one);
        let even = self.ieq(odd, zero);
        let v = self.sel(even, s, c);
        let hi = self.iand(q, two);
        let keep = self.ieq(hi, zero);
        let nv = self.neg(v);
        self.sel(keep, v, nv)
    }

    /// `sin(x)`: reduction to |r| <= pi/4 ([`Kit::trig_reduce`]), both polynomials,
    /// the quadrant's by selects. sin(±0) = ±0 by a select (the reduction's
    /// `x - 0 * c1` would give +0 for -0); sin(±inf) = NaN.
    pub fn sin(&mut self, x: Reg) -> Reg {
        let (rh, rl, n) = self.trig_reduce(x);
        let s = self.sin_poly(rh, rl);
        let c = self.cos_poly(rh, rl);
        let v = self.quadrant(n, s, c);
        let zero = self.c(0.0);
        let is0 = self.eq(x, zero);
        self.sel(is0, x, v)
    }

    /// `cos(x)`: as [`Kit::sin`], one quadrant further (cos x = sin(x + pi/2)).
    /// Shares every instruction but the last few with `sin` of the same register.
    pub fn cos(&mut self, x: Reg) -> Reg {
        let (rh, rl, n) = self.trig_reduce(x);
        let s = self.sin_poly(rh, rl);
        let c = self.cos_poly(rh, rl);
        let one = self.int(1);
        let q = self.iadd(n, one);
        self.quadrant(q, s, c)
    }

    /// The common part of asin and acos: `(u, tail, small)` with asin(u) = u + tail
    /// to about twice the precision, where
    /// - `small` (|x| <= 1/2): u = `x_or_abs` (x or |x|), t = x^2;
    /// - otherwise: u = sqrt(t), t = (1 - |x|)/2 (exact), so that asin|x| = pi/2 - 2
    ///   asin(u); the rounding error of the square root, (t - u^2)/(2u) (exact
    ///   remainder by fma), goes into the tail.
    ///
    /// Both cases evaluate one polynomial A on t <= 1/4: tail = u t A(t) (+ sqrt
    /// error). |x| > 1 makes t negative and the square root NaN, as must asin and acos.
    fn asin_parts(&mut self, x: Reg, x_or_abs: Reg) -> (Reg, Reg, Reg) {
        let ax = self.abs(x);
        let (half, one) = (self.c(0.5), self.c(1.0));
        let small = self.le(ax, half);
        let d = self.sub(one, ax);
        let tb = self.mul(d, half);
        let xx = self.mul(x, x);
        let t = self.sel(small, xx, tb);
        let s = self.sqrt(tb);
        // Square root error; the tiny addend avoids 0/0 at t = 0 (|x| = 1), and is
        // absorbed otherwise (t >= 2^-25 or 2^-54 when not 0).
        let ns = self.neg(s);
        let rem = self.fma(ns, s, tb);
        let s2 = self.add(s, s);
        let tiny = self.c(self.min_normal());
        let den = self.add(s2, tiny);
        let sl = self.div(rem, den);
        let zero = self.c(0.0);
        let sl = self.sel(small, zero, sl);
        let u = self.sel(small, x_or_abs, s);
        let a = self.poly(t, &ASIN_F32, &ASIN_F64);
        let ut = self.mul(u, t);
        let tail = self.fma(ut, a, sl);
        (u, tail, small)
    }

    /// `off + f (u + tail)` with `off = oh + ol` and `f` in {±1, ±2}: Fast2Sum of the
    /// leading parts (|oh| >= |f u|, or oh = 0), the small terms added to its error.
    fn offset_sum(&mut self, oh: Reg, ol: Reg, f: Reg, u: Reg, tail: Reg) -> Reg {
        let fu = self.mul(f, u);
        let (h, e) = self.fast_two_sum(oh, fu);
        let small = self.fma(f, tail, ol);
        let small = self.add(e, small);
        self.add(h, small)
    }

    /// `asin(x)` = sign(x) asin|x|: asin|x| = u + tail for |x| <= 1/2, else
    /// pi/2 - 2 (u + tail) (see [`Kit::asin_parts`]). The sign is copied bitwise, so
    /// asin(-0) = -0. NaN and |x| > 1 give NaN.
    pub fn asin(&mut self, x: Reg) -> Reg {
        let ax = self.abs(x);
        let (u, tail, small) = self.asin_parts(x, ax);
        let zero = self.c(0.0);
        let pio2h = self.cp(PIO2_F32[0], PIO2_F64[0]);
        let pio2l = self.cp(PIO2_F32[1], PIO2_F64[1]);
        let oh = self.sel(small, zero, pio2h);
        let ol = self.sel(small, zero, pio2l);
        let (one, mtwo) = (self.c(1.0), self.c(-2.0));
        let f = self.sel(small, one, mtwo);
        let v = self.offset_sum(oh, ol, f, u, tail);
        self.copysign_pos(v, x)
    }

    /// `acos(x)`: pi/2 - asin(x) for |x| <= 1/2 (u = x signed), 2 asin(u) for
    /// x > 1/2, pi - 2 asin(u) for x < -1/2. NaN and |x| > 1 give NaN.
    pub fn acos(&mut self, x: Reg) -> Reg {
        let (u, tail, small) = self.asin_parts(x, x);
        let zero = self.c(0.0);
        let neg = self.lt(x, zero);
        let pio2h = self.cp(PIO2_F32[0], PIO2_F64[0]);
        let pio2l = self.cp(PIO2_F32[1], PIO2_F64[1]);
        let pih = self.cp(PI_F32[0], PI_F64[0]);
        let pil = self.cp(PI_F32[1], PI_F64[1]);
        let bh = self.sel(neg, pih, zero);
        let bl = self.sel(neg, pil, zero);
        let oh = self.sel(small, pio2h, bh);
        let ol = self.sel(small, pio2l, bl);
        let (mone, two, mtwo) = (self.c(-1.0), self.c(2.0), self.c(-2.0));
        let fb = self.sel(neg, mtwo, two);
        let f = self.sel(small, mone, fb);
        self.offset_sum(oh, ol, f, u, tail)
    }

    /// The angle of the point (b, a) for a, b >= 0 (a, b not both 0 nor both inf, no
    /// NaN needed: NaN propagates), or its supplement pi - angle when `flip`.
    ///
    /// Three regions, one polynomial on |u| <= 1/2:
    /// - a <= b/2: u = a/b, angle = atan(u);
    /// - b/2 < a <= 2b: u = (a - b)/(a + b) (a - b exact by Sterbenz; a + b as a double
    ///   word by TwoSum), angle = pi/4 + atan(u) with |u| <= 1/3;
    /// - a > 2b: u = -b/a, angle = pi/2 + atan(u).
    ///
    /// The quotient is a double word (exact remainder by fma), atan(u + ul) = u + (ul
    /// (1 - u^2) + u^3 T(u^2)), and the offset (0, pi/4, pi/2; pi, 3pi/4, pi/2 for the
    /// supplement, with u negated) is added by Fast2Sum with its low part. Given `b`,
    /// both are first scaled by a power of 2 bringing the larger into [2, 4), so that the
    /// remainder cannot underflow (it would be inexact, and divided by a small b, far
    /// larger than an ulp of a subnormal result) and a + b cannot overflow. `b = None`
    /// means b = 1 (atan), where no scaling is needed and a + 1 is split by Fast2Sum.
    fn atan_core(&mut self, a: Reg, b: Option<Reg>, flip: Option<Reg>) -> Reg {
        let (half, one, two) = (self.c(0.5), self.c(1.0), self.c(2.0));
        let (a, r1, r3, n2, d2, d2l, n_r3, d_r1) = match b {
            None => {
                let r1 = self.le(a, half);
                let r3 = self.lt(two, a);
                let n2 = self.sub(a, one);
                // a in [1/2, 2]: 1 + a by Fast2Sum (exact when a = 2).
                let (d2, d2l) = self.fast_two_sum(one, a);
                let mone = self.c(-1.0);
                (a, r1, r3, n2, d2, d2l, mone, one)
            }
            Some(b) => {
                // Scale both by a power of 2 bringing max(a, b) into [2, 4) (subnormals
                // are scaled as the smallest normals, by 2^bias): the quotient's remainder
                // stays exact (no underflow) and a + b cannot overflow. The exponent field
                // e of max(a, b) (1 for subnormals) gives the scale's field 2 bias + 1 - e.
                let ab = self.lt(a, b);
                let mx = self.sel(ab, b, a);
                let mb = self.bits(mx);
                let e = self.shr(mb, self.mant());
                let ione = self.int(1);
                let sub = self.ilt(e, ione);
                let e = self.sel(sub, ione, e);
                let field = self.int(2 * self.bias() + 1);
                let ie = self.isub(field, e);
                let ib = self.shl(ie, self.mant());
                let inv = self.float_of_bits(ib);
                let a = self.mul(a, inv);
                let b = self.mul(b, inv);
                let a2 = self.add(a, a);
                let r1 = self.le(a2, b);
                let b2 = self.add(b, b);
                let r3 = self.lt(b2, a);
                let n2 = self.sub(a, b);
                let (d2, d2l) = self.two_sum(a, b);
                let nb = self.neg(b);
                (a, r1, r3, n2, d2, d2l, nb, b)
            }
        };
        let zero = self.c(0.0);
        let n = self.sel(r3, n_r3, n2);
        let n = self.sel(r1, a, n);
        let d = self.sel(r3, a, d2);
        let d = self.sel(r1, d_r1, d);
        let dl = self.sel(r3, zero, d2l);
        let dl = self.sel(r1, zero, dl);
        let n = match flip {
            Some(f) => {
                let nn = self.neg(n);
                self.sel(f, nn, n)
            }
            None => n,
        };
        // u + ul = n / (d + dl).
        let u = self.div(n, d);
        let nu = self.neg(u);
        let rem = self.fma(nu, d, n);
        let rem = self.fma(nu, dl, rem);
        let ul = self.div(rem, d);
        // atan(u + ul) - u.
        let z = self.mul(u, u);
        let t = self.poly(z, &ATAN_F32, &ATAN_F64);
        let nz = self.neg(z);
        let corr = self.fma(nz, ul, ul);
        let uz = self.mul(u, z);
        let tail = self.fma(uz, t, corr);
        // Offsets.
        let pio4h = self.cp(PIO4_F32[0], PIO4_F64[0]);
        let pio4l = self.cp(PIO4_F32[1], PIO4_F64[1]);
        let pio2h = self.cp(PIO2_F32[0], PIO2_F64[0]);
        let pio2l = self.cp(PIO2_F32[1], PIO2_F64[1]);
        let (o1h, o1l, o2h, o2l) = match flip {
            Some(f) => {
                let pih = self.cp(PI_F32[0], PI_F64[0]);
                let pil = self.cp(PI_F32[1], PI_F64[1]);
                let p3h = self.cp(PI3O4_F32[0], PI3O4_F64[0]);
                let p3l = self.cp(PI3O4_F32[1], PI3O4_F64[1]);
                (
                    self.sel(f, pih, zero),
                    self.sel(f, pil, zero),
                    self.sel(f, p3h, pio4h),
                    self.sel(f, p3l, pio4l),
                )
            }
            None => (zero, zero, pio4h, pio4l),
        };
        let oh = self.sel(r3, pio2h, o2h);
        let oh = self.sel(r1, o1h, oh);
        let ol = self.sel(r3, pio2l, o2l);
        let ol = self.sel(r1, o1l, ol);
        let (h, e) = self.fast_two_sum(oh, u);
        let lo = self.add(tail, ol);
        let lo = self.add(e, lo);
        self.add(h, lo)
    }

    /// `atan(x)` = sign(x) atan|x| ([`Kit::atan_core`] with b = 1). |x| is first capped
    /// at 2^30 (f32) or 2^60 (f64), where atan already rounds to pi/2, so that
    /// atan(±inf) = ±pi/2 without inf/inf. The sign is copied bitwise (atan(-0) = -0).
    pub fn atan(&mut self, x: Reg) -> Reg {
        let ax = self.abs(x);
        let cap = self.c(self.pick(30f64, 60f64).exp2());
        let over = self.lt(cap, ax);
        let a = self.sel(over, cap, ax);
        let v = self.atan_core(a, None, None);
        self.copysign_pos(v, x)
    }

    /// `atan2(y, x)`, the angle of the point (x, y), with the special cases of C99
    /// (Annex F.9.1.4).
    ///
    /// On a = |y|, b = |x|: infinite a or b are mapped to (1, 0), (0, 1) or (1, 1) (the
    /// limits: pi/2, 0, pi/4), and b is set to 1 when a = 0 (so atan2(±0, ±0) needs no
    /// 0/0); then [`Kit::atan_core`], supplemented when the sign bit of x is set (so
    /// x = -0 gives pi), and negated when the sign bit of y is set (so y = -0 gives -0
    /// or -pi).
    pub fn atan2(&mut self, y: Reg, x: Reg) -> Reg {
        let a = self.abs(y);
        let b = self.abs(x);
        let (zero, one) = (self.c(0.0), self.c(1.0));
        let inf = self.c(f64::INFINITY);
        let ainf = self.eq(a, inf);
        let binf = self.eq(b, inf);
        // The finite one of an infinite pair goes to 0 as a * 0 (NaN stays NaN).
        let a0 = self.mul(a, zero);
        let a1 = self.sel(binf, a0, a);
        let a1 = self.sel(ainf, one, a1);
        let b0 = self.mul(b, zero);
        let b1 = self.sel(ainf, b0, b);
        let b1 = self.sel(binf, one, b1);
        let az = self.eq(a1, zero);
        let b1 = self.sel(az, one, b1);
        let xneg = self.signbit(x);
        let v = self.atan_core(a1, Some(b1), Some(xneg));
        let yneg = self.signbit(y);
        let nv = self.neg(v);
        self.sel(yneg, nv, v)
    }
}
