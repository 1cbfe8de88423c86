//! Emission helpers of the math library: short names for the primitive instructions,
//! the float formats' parameters, and error-free transformations (double-word
//! arithmetic built on the fused multiply-add).

use crate::lower::builder::Lower;
use crate::lower::form::Precision;
use crate::lower::scalar::{Reg, SOp};

/// A builder for one expansion: the instruction emitter and the kernel's precision.
pub(super) struct Kit<'a> {
    pub l: &'a mut Lower,
    pub p: Precision,
}

impl<'a> Kit<'a> {
    pub fn new(l: &'a mut Lower, p: Precision) -> Self {
        Kit { l, p }
    }

    /// True in f64.
    pub fn wide(&self) -> bool {
        self.p == Precision::F64
    }

    /// The f32 or the f64 value, as the precision asks.
    pub fn pick<T>(&self, f32v: T, f64v: T) -> T {
        if self.wide() { f64v } else { f32v }
    }

    // ------------------------------------------------------------ float format

    /// Explicit mantissa bits: 23 or 52.
    pub fn mant(&self) -> u8 {
        self.pick(23, 52)
    }
    /// Exponent bias: 127 or 1023.
    pub fn bias(&self) -> i64 {
        self.pick(127, 1023)
    }
    /// The sign bit, as an integer of the float's width.
    pub fn sign_mask(&self) -> i64 {
        self.pick(i32::MIN as i64, i64::MIN)
    }
    /// The smallest positive normal number.
    pub fn min_normal(&self) -> f64 {
        self.pick(f32::MIN_POSITIVE as f64, f64::MIN_POSITIVE)
    }
    /// The bits of `v` rounded to the precision, as an integer of the float's width.
    pub fn bits_of(&self, v: f64) -> i64 {
        self.pick((v as f32).to_bits() as i32 as i64, v.to_bits() as i64)
    }

    // ------------------------------------------------------------ constants

    /// A float constant (`v` must be exact in the precision, or meant to be rounded).
    pub fn c(&mut self, v: f64) -> Reg {
        self.l.cst(v)
    }
    /// The f32 or the f64 constant, as the precision asks.
    pub fn cp(&mut self, f32v: f32, f64v: f64) -> Reg {
        let v = self.pick(f32v as f64, f64v);
        self.l.cst(v)
    }
    /// An integer constant of the float's width.
    pub fn int(&mut self, i: i64) -> Reg {
        self.l.emit(SOp::IntConst(i), &[])
    }

    // ------------------------------------------------------------ float ops

    pub fn add(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.add(a, b)
    }
    pub fn sub(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.sub(a, b)
    }
    pub fn mul(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.mul(a, b)
    }
    pub fn div(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.div(a, b)
    }
    pub fn neg(&mut self, a: Reg) -> Reg {
        self.l.neg(a)
    }
    pub fn abs(&mut self, a: Reg) -> Reg {
        self.l.f1(SOp::Abs, a)
    }
    pub fn sqrt(&mut self, a: Reg) -> Reg {
        self.l.f1(SOp::Sqrt, a)
    }
    pub fn trunc(&mut self, a: Reg) -> Reg {
        self.l.f1(SOp::Trunc, a)
    }
    /// Nearest integer, ties to even.
    pub fn rint(&mut self, a: Reg) -> Reg {
        self.l.f1(SOp::RoundEven, a)
    }
    /// `a * b + c` with one rounding.
    pub fn fma(&mut self, a: Reg, b: Reg, c: Reg) -> Reg {
        self.l.emit(SOp::Fma, &[a, b, c])
    }

    // ------------------------------------------------------------ predicates

    pub fn lt(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.lt(a, b)
    }
    pub fn le(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.le(a, b)
    }
    pub fn eq(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.eq(a, b)
    }
    pub fn ne(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::Ne, &[a, b])
    }
    pub fn and(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.and(a, b)
    }
    pub fn or(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.or(a, b)
    }
    pub fn not(&mut self, a: Reg) -> Reg {
        self.l.not(a)
    }
    /// `p ? a : b` (floats or integers).
    pub fn sel(&mut self, p: Reg, a: Reg, b: Reg) -> Reg {
        self.l.select(p, a, b)
    }

    // ------------------------------------------------------------ integer ops

    pub fn bits(&mut self, a: Reg) -> Reg {
        self.l.emit(SOp::Bits, &[a])
    }
    pub fn float_of_bits(&mut self, a: Reg) -> Reg {
        self.l.emit(SOp::FromBits, &[a])
    }
    pub fn cvt_int(&mut self, a: Reg) -> Reg {
        self.l.emit(SOp::CvtInt, &[a])
    }
    pub fn cvt_float(&mut self, a: Reg) -> Reg {
        self.l.emit(SOp::CvtFloat, &[a])
    }
    pub fn iadd(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::IAdd, &[a, b])
    }
    pub fn isub(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::ISub, &[a, b])
    }
    pub fn iand(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::IAnd, &[a, b])
    }
    pub fn ior(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::IOr, &[a, b])
    }
    pub fn shl(&mut self, a: Reg, k: u8) -> Reg {
        self.l.emit(SOp::IShl(k), &[a])
    }
    pub fn shr(&mut self, a: Reg, k: u8) -> Reg {
        self.l.emit(SOp::IShr(k), &[a])
    }
    pub fn ilt(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::ILt, &[a, b])
    }
    pub fn ieq(&mut self, a: Reg, b: Reg) -> Reg {
        self.l.emit(SOp::IEq, &[a, b])
    }

    // ------------------------------------------------------------ compound

    /// The sign bit of `x` is set (true for -0, -inf and negative NaNs too).
    pub fn signbit(&mut self, x: Reg) -> Reg {
        let b = self.bits(x);
        let zero = self.int(0);
        self.ilt(b, zero)
    }

    /// `|mag|` with the sign of `s` (for `mag` whose sign bit is clear).
    pub fn copysign_pos(&mut self, mag: Reg, s: Reg) -> Reg {
        let mask = self.int(self.sign_mask());
        let sb = self.bits(s);
        let sign = self.iand(sb, mask);
        let mb = self.bits(mag);
        let r = self.ior(mb, sign);
        self.float_of_bits(r)
    }

    /// `2^n` for an integer register `n` in the normal exponent range.
    pub fn pow2(&mut self, n: Reg) -> Reg {
        let bias = self.int(self.bias());
        let e = self.iadd(n, bias);
        let b = self.shl(e, self.mant());
        self.float_of_bits(b)
    }

    /// `c[0] + z (c[1] + z (c[2] + ...))`, by Horner's rule with fused multiply-adds.
    pub fn horner(&mut self, z: Reg, c: &[f64]) -> Reg {
        let (last, rest) = c.split_last().expect("a polynomial has coefficients");
        let mut acc = self.c(*last);
        for k in rest.iter().rev() {
            let ck = self.c(*k);
            acc = self.fma(acc, z, ck);
        }
        acc
    }

    /// The polynomial of the precision: `c32` (f32 coefficients) or `c64`.
    pub fn poly(&mut self, z: Reg, c32: &[f32], c64: &[f64]) -> Reg {
        if self.wide() {
            self.horner(z, c64)
        } else {
            let c: Vec<f64> = c32.iter().map(|v| *v as f64).collect();
            self.horner(z, &c)
        }
    }

    // ------------------------------------------------------------ double-word

    /// `a * b = p + e` exactly (`p` the rounded product), barring underflow.
    pub fn two_prod(&mut self, a: Reg, b: Reg) -> (Reg, Reg) {
        let p = self.mul(a, b);
        let np = self.neg(p);
        let e = self.fma(a, b, np);
        (p, e)
    }

    /// `a + b = s + e` exactly, when `|a| >= |b|` (or `a` is 0): Dekker's Fast2Sum.
    pub fn fast_two_sum(&mut self, a: Reg, b: Reg) -> (Reg, Reg) {
        let s = self.add(a, b);
        let t = self.sub(a, s);
        let e = self.add(t, b);
        (s, e)
    }

    /// `a + b = s + e` exactly, whatever the magnitudes: Knuth's TwoSum.
    pub fn two_sum(&mut self, a: Reg, b: Reg) -> (Reg, Reg) {
        let s = self.add(a, b);
        let bb = self.sub(s, a);
        let ab = self.sub(s, bb);
        let da = self.sub(a, ab);
        let db = self.sub(b, bb);
        let e = self.add(da, db);
        (s, e)
    }
}
