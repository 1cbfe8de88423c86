//! Exponential, logarithm and powers.

use super::coeffs::*;
use super::kit::Kit;
use crate::lower::scalar::Reg;

impl Kit<'_> {
    /// `exp(x)`.
    ///
    /// Clamping x to [-104, 89] (f32) or [-746, 710] (f64), beyond which the result is 0
    /// or inf anyway, keeps every later step finite; comparisons are false for NaN, so
    /// NaN passes through both selects (and then every step) unchanged.
    pub fn exp(&mut self, x: Reg) -> Reg {
        let (lo, hi) = self.pick((-104.0, 89.0), (-746.0, 710.0));
        let (lo, hi) = (self.c(lo), self.c(hi));
        let below = self.lt(x, lo);
        let x = self.sel(below, lo, x);
        let above = self.lt(hi, x);
        let x = self.sel(above, hi, x);
        self.exp_core(x, None)
    }

    /// `exp(x + tail)` for `x` in the clamped range, `|tail| <= ulp(x)`.
    ///
    /// Reduction: k = rint(x / ln2), r = x - k ln2 with |r| <= ln2/2 (+ slack). The
    /// first step r1 = x - k ln2_hi (one fma) is exact: both terms are multiples of
    /// ulp(ln2_hi)/2 or finer and the difference is below 1/2 (Sterbenz for |k| <= 1).
    /// The small rest c = tail - k ln2_lo is added by Fast2Sum, r + rl = r1 + c, and
    /// exp(r + rl) = 1 + (r + (rl + r^2 P(r))): only the last two additions round
    /// (about 0.75 ulp at most, plus the polynomial's 2^-28 or 2^-60).
    /// Scaling by 2^k in two factors 2^(k>>1) and 2^(k - (k>>1)), each a normal number,
    /// gives overflow to inf and gradual underflow with a single final rounding.
    pub fn exp_core(&mut self, x: Reg, tail: Option<Reg>) -> Reg {
        let log2e = self.cp(std::f32::consts::LOG2_E, std::f64::consts::LOG2_E);
        let t = self.mul(x, log2e);
        let k = self.rint(t);
        let nln2_hi = self.cp(-LN2_F32[0], -LN2_F64[0]);
        let nln2_lo = self.cp(-LN2_F32[1], -LN2_F64[1]);
        let r1 = self.fma(k, nln2_hi, x);
        let c = match tail {
            Some(t) => self.fma(k, nln2_lo, t),
            None => self.mul(k, nln2_lo),
        };
        // Fast2Sum: |r1| >= |c| but where r1 is so small that exp(r) = 1 + r anyway.
        let (r, rl) = self.fast_two_sum(r1, c);
        let r2 = self.mul(r, r);
        let p = self.poly(r, &EXP_F32, &EXP_F64);
        let qs = self.fma(r2, p, rl);
        let q = self.add(r, qs);
        let one = self.c(1.0);
        let e = self.add(one, q);
        let n = self.cvt_int(k);
        let n1 = self.shr(n, 1);
        let n2 = self.isub(n, n1);
        let s1 = self.pow2(n1);
        let s2 = self.pow2(n2);
        let e = self.mul(e, s1);
        self.mul(e, s2)
    }

    /// `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)) (bits of the scaled input: the
    /// result is meaningful for finite positive `x` only, subnormals included).
    ///
    /// Subnormals are first scaled by 2^25 (f32) or 2^54 (f64). Subtracting the bits of
    /// sqrt(1/2) before extracting the exponent moves the mantissa interval from [1, 2)
    /// to [sqrt(1/2), sqrt(2)), so that |log m| <= ln2/2.
    fn log_split(&mut self, x: Reg) -> (Reg, Reg) {
        let scale_bits: i64 = self.pick(25, 54);
        let tiny = self.c(self.min_normal());
        let sub = self.lt(x, tiny);
        let scale = self.c((scale_bits as f64).exp2());
        let xs = self.mul(x, scale);
        let xs = self.sel(sub, xs, x);
        let adj = self.int(-scale_bits);
        let zero = self.int(0);
        let adj = self.sel(sub, adj, zero);
        let sq = self.int(self.bits_of(std::f64::consts::FRAC_1_SQRT_2));
        let b = self.bits(xs);
        let ix = self.isub(b, sq);
        let e = self.shr(ix, self.mant());
        let e = self.iadd(e, adj);
        let mask = self.int((1i64 << self.mant()) - 1);
        let mb = self.iand(ix, mask);
        let mb = self.iadd(mb, sq);
        (self.float_of_bits(mb), e)
    }

    /// `log(x)`.
    ///
    /// x = m 2^e, f = m - 1 (exact), s = f/(2+f), log(m) = 2 atanh(s) = f - f^2/2 +
    /// s (f^2/2 + R(s^2)) (the fdlibm arrangement: the leading terms f and f^2/2 carry
    /// no division error), plus e ln2 with ln2 = hi + lo, the hi part by a final fma.
    /// Special values by selects: x = 0 gives -inf, x < 0 (and -inf) NaN, +inf and NaN
    /// themselves.
    pub fn log(&mut self, x: Reg) -> Reg {
        let (m, e) = self.log_split(x);
        let (one, two, half) = (self.c(1.0), self.c(2.0), self.c(0.5));
        let f = self.sub(m, one);
        let d = self.add(two, f);
        let s = self.div(f, d);
        let z = self.mul(s, s);
        let q = self.poly(z, &LOG_F32, &LOG_F64);
        let r = self.mul(z, q);
        let hf = self.mul(half, f);
        let hfsq = self.mul(hf, f);
        let dk = self.cvt_float(e);
        let ln2_hi = self.cp(LN2_F32[0], LN2_F64[0]);
        let ln2_lo = self.cp(LN2_F32[1], LN2_F64[1]);
        let klo = self.mul(dk, ln2_lo);
        let hr = self.add(hfsq, r);
        let t = self.fma(s, hr, klo);
        let t = self.sub(t, hfsq);
        let t = self.add(t, f);
        let res = self.fma(dk, ln2_hi, t);
        // Special values.
        let zero = self.c(0.0);
        let inf = self.c(f64::INFINITY);
        let pos = self.lt(zero, x);
        let fin = self.lt(x, inf);
        let ok = self.and(pos, fin);
        let is0 = self.eq(x, zero);
        let neg = self.lt(x, zero);
        let nan = self.c(f64::NAN);
        let minf = self.c(f64::NEG_INFINITY);
        let sp = self.sel(neg, nan, x);
        let sp = self.sel(is0, minf, sp);
        self.sel(ok, res, sp)
    }

    /// `log(x)` as a double word `hi + lo` with about twice the precision (relative
    /// error below 2^-64 in f64, 2^-38 in f32), for finite positive `x`: the logarithm
    /// of `pow`, whose result error is `y log(x)` times this.
    ///
    /// Same reduction as [`Kit::log`], with every rounding error carried: s = f/(2+f)
    /// as a double word (the divisor by Fast2Sum, the quotient corrected by its exact
    /// remainder), z = s^2 and T = (2/3) z + z^2 W(z) as double words, log(m) = 2s + s T,
    /// then e ln2 added by TwoSum.
    fn log_dw(&mut self, x: Reg) -> (Reg, Reg) {
        let (m, e) = self.log_split(x);
        let (one, two) = (self.c(1.0), self.c(2.0));
        let f = self.sub(m, one);
        // d = 2 + f exactly as dh + dl (|2| >= |f|).
        let (dh, dl) = self.fast_two_sum(two, f);
        // s = f / d: sh + sl, sl = (f - sh dh - sh dl) / dh.
        let sh = self.div(f, dh);
        let nsh = self.neg(sh);
        let rem = self.fma(nsh, dh, f);
        let rem = self.fma(nsh, dl, rem);
        let sl = self.div(rem, dh);
        // z = s^2 = zh + zl.
        let (zh, zl) = self.two_prod(sh, sh);
        let sh2 = self.add(sh, sh);
        let zl = self.fma(sh2, sl, zl);
        // T = z (2/3) + z^2 W(z).
        let c_hi = self.cp(TWO_THIRDS_F32[0], TWO_THIRDS_F64[0]);
        let c_lo = self.cp(TWO_THIRDS_F32[1], TWO_THIRDS_F64[1]);
        let (t1h, t1l) = self.two_prod(zh, c_hi);
        let t1l = self.fma(zh, c_lo, t1l);
        let t1l = self.fma(zl, c_hi, t1l);
        let w = self.poly(zh, &LOG_DW_F32, &LOG_DW_F64);
        let z2 = self.mul(zh, zh);
        let t2 = self.mul(z2, w);
        let (th, tl) = self.fast_two_sum(t1h, t2);
        let tl = self.add(tl, t1l);
        // log(m) = 2s + s T.
        let (ph, pl) = self.two_prod(sh, th);
        let pl = self.fma(sh, tl, pl);
        let pl = self.fma(sl, th, pl);
        let (lh, ll) = self.fast_two_sum(sh2, ph);
        let sl2 = self.add(sl, sl);
        let pl = self.add(pl, sl2);
        let ll = self.add(ll, pl);
        // + e ln2 (e ln2_hi exact as a double word by the fma).
        let ef = self.cvt_float(e);
        let ln2_hi = self.cp(LN2_F32[0], LN2_F64[0]);
        let ln2_lo = self.cp(LN2_F32[1], LN2_F64[1]);
        let (ah, al) = self.two_prod(ef, ln2_hi);
        let al = self.fma(ef, ln2_lo, al);
        let (sh, se) = self.two_sum(ah, lh);
        let lo = self.add(al, ll);
        let lo = self.add(se, lo);
        self.fast_two_sum(sh, lo)
    }

    /// `pow(x, y)`, with the special cases of C99 (Annex F.9.4.4).
    ///
    /// |x|^y = exp(y log|x|) with log|x| as a double word ([`Kit::log_dw`]), the product
    /// y log|x| as a double word (fma), and exp of a double word ([`Kit::exp_core`] with
    /// a tail). Then, by selects:
    /// - zero or infinite |x|, infinite y: +inf when y log|x| > 0, +0 when < 0, 1 for
    ///   |x| = 1 (pow(-1, ±inf) = 1);
    /// - NaN x or y: NaN;
    /// - negative x (sign bit, so -0 and -inf too) and odd integer y: the sign is
    ///   negated; finite negative x and non-integer y: NaN;
    /// - y = ±0 or x = 1: 1, even for a NaN other argument.
    pub fn powf(&mut self, x: Reg, y: Reg) -> Reg {
        let ax = self.abs(x);
        let (lh, ll) = self.log_dw(ax);
        let th = self.mul(y, lh);
        let nth = self.neg(th);
        let tl = self.fma(y, lh, nth);
        let tl = self.fma(y, ll, tl);
        // Clamp the exponent (the tail is dropped with it: it is NaN when th is inf).
        let (lo, hi) = self.pick((-104.0, 89.0), (-746.0, 710.0));
        let (lo, hi) = (self.c(lo), self.c(hi));
        let below = self.lt(th, lo);
        let above = self.lt(hi, th);
        let out = self.or(below, above);
        let thc = self.sel(below, lo, th);
        let thc = self.sel(above, hi, thc);
        let zero = self.c(0.0);
        let tlc = self.sel(out, zero, tl);
        let g = self.exp_core(thc, Some(tlc));
        // Integer and odd y (±inf count as even integers).
        let yt = self.trunc(y);
        let yint = self.eq(yt, y);
        let half = self.c(0.5);
        let yh = self.mul(y, half);
        let yht = self.trunc(yh);
        let yhalf_frac = self.ne(yht, yh);
        let yodd = self.and(yint, yhalf_frac);
        // Zero or infinite |x|, infinite y (non-NaN arguments).
        let inf = self.c(f64::INFINITY);
        let one = self.c(1.0);
        let ay = self.abs(y);
        let x0 = self.eq(ax, zero);
        let xinf = self.eq(ax, inf);
        let yinf = self.eq(ay, inf);
        let sp = self.or(x0, xinf);
        let sp = self.or(sp, yinf);
        let ypos = self.lt(zero, y);
        let yneg = self.lt(y, zero);
        let xbig = self.lt(one, ax);
        let xsmall = self.lt(ax, one);
        let up1 = self.and(ypos, xbig);
        let up2 = self.and(yneg, xsmall);
        let up = self.or(up1, up2);
        let ax1 = self.eq(ax, one);
        let spv = self.sel(ax1, one, zero);
        let spv = self.sel(up, inf, spv);
        let mag = self.sel(sp, spv, g);
        // NaN arguments (log_dw does not propagate NaN: it reads bits).
        let xo = self.eq(x, x);
        let yo = self.eq(y, y);
        let ord = self.and(xo, yo);
        let nan = self.c(f64::NAN);
        let mag = self.sel(ord, mag, nan);
        // Sign, and NaN for a finite negative base with a non-integer exponent.
        let xsign = self.signbit(x);
        let flip = self.and(xsign, yodd);
        let nmag = self.neg(mag);
        let res = self.sel(flip, nmag, mag);
        let ninf = self.c(f64::NEG_INFINITY);
        let xneg = self.lt(x, zero);
        let xfin = self.lt(ninf, x);
        let xnf = self.and(xneg, xfin);
        let ynint = self.not(yint);
        let bad = self.and(xnf, ynint);
        let res = self.sel(bad, nan, res);
        // pow(x, ±0) = pow(1, y) = 1.
        let y0 = self.eq(y, zero);
        let x1 = self.eq(x, one);
        let unit = self.or(y0, x1);
        self.sel(unit, one, res)
    }

    /// `x^n` for a constant integer `n` (C `pown`).
    ///
    /// Binary powering (square and multiply, unrolled from the bits of |n|) in
    /// double-word arithmetic: each step keeps the naive product `hi` and accumulates
    /// its exact rounding errors (fma) in `lo`, so the result `hi + lo` is rounded once.
    /// Negative n raises the double word 1/x = hi + lo (remainder by fma) to -n, so that
    /// x^n underflows or overflows only where the result does.
    ///
    /// Near underflow the `lo` parts would fall below the normal range and lose their
    /// precision: when |base|^|n| < 2^-90 (f32) or 2^-950 (f64), the base is scaled by
    /// 2^s (s = ceil(90/|n|) or ceil(950/|n|), exact) and the result scaled back by
    /// 2^(-s|n|), in two factors so that the last product rounds once (gradual
    /// underflow). This needs |n| <= 64 (f32) or 512 (f64), so that the scaled power
    /// cannot overflow; larger |n| go unscaled.
    ///
    /// When `hi` is 0 or inf the error terms can be NaN (0 * inf), and `hi + lo` loses
    /// the sign of a zero: the final select returns `hi` then, the correctly signed 0 or
    /// inf. x^0 = 1 (even for NaN), x^1 = x,
    /// x^-1 = 1/x and x^2 = x*x are single instructions.
    pub fn powi(&mut self, x: Reg, n: i32) -> Reg {
        match n {
            0 => return self.c(1.0),
            1 => return x,
            2 => return self.mul(x, x),
            -1 => {
                let one = self.c(1.0);
                return self.div(one, x);
            }
            _ => {}
        }
        let m = (n as i64).unsigned_abs();
        // Base: x, or 1/x as a double word.
        let (bh, bl) = if n > 0 {
            (x, None)
        } else {
            let one = self.c(1.0);
            let h = self.div(one, x);
            let nh = self.neg(h);
            let r = self.fma(nh, x, one);
            (h, Some(self.mul(r, h)))
        };
        // Scaling near underflow.
        let (t, max_m, max_b) = self.pick((90u64, 64u64, 126u64), (950, 512, 1022));
        let scaling = if m <= max_m {
            let s = t.div_ceil(m);
            let sm = s * m;
            let b = sm.min(max_b);
            let th = self.c((-(t as f64) / m as f64).exp2());
            let abh = self.abs(bh);
            let small = self.lt(abh, th);
            let up = self.c((s as f64).exp2());
            let sbh = self.mul(bh, up);
            let bh2 = self.sel(small, sbh, bh);
            let bl2 = bl.map(|bl| {
                let sbl = self.mul(bl, up);
                self.sel(small, sbl, bl)
            });
            let g1 = self.c((-((sm - b) as f64)).exp2());
            let g2 = self.c((-(b as f64)).exp2());
            Some((small, g1, g2, bh2, bl2))
        } else {
            None
        };
        let (bh, bl) = match scaling {
            Some((_, _, _, bh2, bl2)) => (bh2, bl2),
            None => (bh, bl),
        };
        let top = 63 - m.leading_zeros();
        let (mut h, mut l) = (bh, bl);
        for bit in (0..top).rev() {
            // Square: (h + l)^2 ~ h*h + (err(h*h) + 2 h l).
            let (ph, pl) = self.two_prod(h, h);
            let pl = match l {
                Some(l) => {
                    let h2 = self.add(h, h);
                    self.fma(h2, l, pl)
                }
                None => pl,
            };
            (h, l) = (ph, Some(pl));
            if (m >> bit) & 1 == 1 {
                // Multiply by the base: (h + l)(bh + bl) ~ h bh + (err + h bl + l bh).
                let (ph, pl) = self.two_prod(h, bh);
                let pl = match bl {
                    Some(bl) => self.fma(h, bl, pl),
                    None => pl,
                };
                let pl = match l {
                    Some(l) => self.fma(l, bh, pl),
                    None => pl,
                };
                (h, l) = (ph, Some(pl));
            }
        }
        let l = l.expect("|n| >= 2 squares at least once");
        let r = self.add(h, l);
        let bad = self.ne(r, r);
        let zero = self.c(0.0);
        let r0 = self.eq(r, zero);
        let bad = self.or(bad, r0);
        let r = self.sel(bad, h, r);
        match scaling {
            Some((small, g1, g2, _, _)) => {
                let r1 = self.mul(r, g1);
                let r2 = self.mul(r1, g2);
                self.sel(small, r2, r)
            }
            None => r,
        }
    }
}
