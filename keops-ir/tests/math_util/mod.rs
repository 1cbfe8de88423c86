//! Shared helpers of the math library tests: expanded one-instruction blocks, ulp
//! errors in f32 and f64, and the f64 reference data of `scripts/math_reference.py`.

#![allow(dead_code)]

use keops_ir::Real;
use keops_ir::lower::math::{expand_block, is_primitive};
use keops_ir::lower::{Block, Lower, Precision, SOp, Ty, Val};

/// Divides the number of test points in debug builds (`cargo test` without `--release`
/// runs the same tests on 1/64 of the points).
pub const THIN: u64 = if cfg!(debug_assertions) { 64 } else { 1 };

/// The precision of `R`.
pub fn precision<R: Real>() -> Precision {
    if R::BITS == 32 {
        Precision::F32
    } else {
        Precision::F64
    }
}

/// `op` applied to `arity` parameters, as a block, and that block expanded into
/// primitive instructions for precision `p`.
pub fn one_op(op: SOp, arity: usize, p: Precision) -> (Block, Block) {
    let mut l = Lower::new();
    let xs: Vec<_> = (0..arity).map(|_| l.param(Ty::F)).collect();
    let r = l.emit(op, &xs);
    let b = l.finish(xs, vec![r]);
    let mut l = Lower::with_types(l.tys);
    let e = expand_block(&mut l, &b, p);
    assert!(
        e.insts.iter().all(|i| is_primitive(i.op)),
        "{op:?} expanded into non-primitive instructions"
    );
    (b, e)
}

/// An expanded operation and its register file, for repeated evaluation.
pub struct Expanded<R: Real> {
    /// The expanded block.
    pub block: Block,
    regs: Vec<Val<R>>,
}

impl<R: Real> Expanded<R> {
    /// `op` on `arity` arguments, expanded for `R`.
    pub fn new(op: SOp, arity: usize) -> Self {
        Expanded {
            block: one_op(op, arity, precision::<R>()).1,
            regs: Vec::new(),
        }
    }
    /// The value at `x`.
    pub fn f1(&mut self, x: R) -> R {
        self.block.run_with(&mut self.regs, &[Val::F(x)])[0].f()
    }
    /// The value at `(x, y)`.
    pub fn f2(&mut self, x: R, y: R) -> R {
        self.block.run_with(&mut self.regs, &[Val::F(x), Val::F(y)])[0].f()
    }
}

/// `2^n` as an f64 (exact), for -1074 <= n <= 1023.
pub fn pow2(n: i32) -> f64 {
    if n >= -1022 {
        f64::from_bits(((n + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (n + 1074))
    }
}

/// `x * 2^n`, exact unless the result over- or underflows.
pub fn ldexp(mut x: f64, mut n: i32) -> f64 {
    while n > 1000 {
        x *= pow2(1000);
        n -= 1000;
    }
    while n < -1000 {
        x *= pow2(-1000);
        n += 1000;
    }
    x * pow2(n)
}

/// The binary exponent of a nonzero finite f64 (subnormals included).
pub fn exponent(a: f64) -> i32 {
    let a = a.abs();
    if a < f64::MIN_POSITIVE {
        exponent(a * pow2(600)) - 600
    } else {
        ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023
    }
}

/// Error of the f32 `got` in f32 ulps of the exact value `want` (given as an f64, whose
/// own error is far below an f32 ulp): |got - want| / ulp, the ulp of want's binade
/// (2^-149 below the normal range). An infinite `got` counts as ±2^128 unless `want`
/// rounds to that infinity; NaN must match NaN.
pub fn err32(got: f32, want: f64) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if (want as f32).is_infinite() && got == want as f32 {
        return 0.0;
    }
    if want.is_infinite() {
        return f64::INFINITY;
    }
    let g = if got.is_infinite() {
        got.signum() as f64 * pow2(128)
    } else {
        got as f64
    };
    let ulp = if want.abs() < f32::MIN_POSITIVE as f64 {
        pow2(-149)
    } else {
        pow2(exponent(want) - 23)
    };
    (g - want).abs() / ulp
}

/// An exact value `(hi + lo) 2^e`, |hi| in [1, 2), known to about 106 bits.
#[derive(Copy, Clone, Debug)]
pub struct Exact {
    /// Binary exponent.
    pub e: i32,
    /// Leading part, in [1, 2) or (-2, -1].
    pub hi: f64,
    /// Rounding error of `hi`.
    pub lo: f64,
}

impl Exact {
    /// The value rounded to f64 (approximately: for display).
    pub fn approx(&self) -> f64 {
        ldexp(self.hi + self.lo, self.e)
    }
}

/// Error of the f64 `got` in ulps of `want`'s binade (2^-1074 below the normal range).
/// An infinite `got` counts as ±2^1024 unless `want` rounds to that infinity.
pub fn err64(got: f64, want: &Exact) -> f64 {
    if got.is_nan() {
        return f64::INFINITY;
    }
    let overflows =
        want.e >= 1024 || (want.e == 1023 && want.hi.abs() + want.lo.abs() >= 2.0 - pow2(-53));
    if got.is_infinite() && overflows && got.signum() == want.hi.signum() {
        return 0.0;
    }
    // got / 2^e, compared with hi + lo.
    let g = if got.is_infinite() {
        got.signum() * ldexp(1.0, 1024 - want.e)
    } else {
        ldexp(got, -want.e)
    };
    let d = ((g - want.hi) - want.lo).abs();
    // ulp of the binade: 2^(max(e, -1022) - 52); d is in units of 2^e.
    d * ldexp(1.0, want.e - want.e.max(-1022) + 52)
}

/// One line of the f64 reference data: function, inputs, exact value.
#[derive(Clone, Debug)]
pub struct RefLine {
    /// `exp`, ..., `powi:<n>`.
    pub func: String,
    /// Inputs (one or two).
    pub args: Vec<f64>,
    /// Exact value.
    pub want: Exact,
}

/// The reference data (`tests/data/math_f64_reference.txt`).
pub fn reference() -> Vec<RefLine> {
    let text = include_str!("../data/math_f64_reference.txt");
    let hex = |s: &str| f64::from_bits(u64::from_str_radix(s, 16).expect("hex bits"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let n = w.len();
            RefLine {
                func: w[0].to_string(),
                args: w[1..n - 3].iter().map(|s| hex(s)).collect(),
                want: Exact {
                    e: w[n - 3].parse().expect("exponent"),
                    hi: hex(w[n - 2]),
                    lo: hex(w[n - 1]),
                },
            }
        })
        .collect()
}

/// Same bits, or both NaN.
pub fn same<R: Real>(a: R, b: R) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits_i64() == b.to_bits_i64()
}
