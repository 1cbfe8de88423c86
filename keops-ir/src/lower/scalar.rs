//! The scalar instruction set of the lowered form, declared once in one table.
//!
//! Every formula operation lowers to these. The CPU emitter (Rust source) and the PTX
//! emitter map each instruction one to one; [`SOp::eval`] is their shared semantics,
//! used by the lowered-form interpreter in tests.

use crate::real::Real;
use std::fmt;

/// Type of a register.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A float of the kernel's precision (f32 or f64).
    F,
    /// An index (u64): j, i, arg-reduction results.
    Idx,
    /// A predicate (bool).
    Pred,
    /// A signed integer as wide as the float (i32 for f32, i64 for f64), for the bit
    /// manipulations of the math library.
    Int,
}

/// A scalar register. Registers are numbered per kernel; each is assigned once (SSA).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reg(pub u32);

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// A scalar operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SOp {
    /// A float constant (f64 bits; rounded to the kernel precision).
    Const(u64),
    /// An index constant.
    IdxConst(u64),
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `-a`
    Neg,
    /// `|a|`
    Abs,
    /// Largest integer not above `a`.
    Floor,
    /// Nearest integer, halves away from zero (C `round`).
    Round,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(a)`.
    Rsqrt,
    /// `1 / a`.
    Recip,
    /// Exponential.
    Exp,
    /// Natural logarithm.
    Log,
    /// Sine.
    Sin,
    /// Cosine.
    Cos,
    /// Arc sine.
    Asin,
    /// Arc cosine.
    Acos,
    /// Arc tangent.
    Atan,
    /// `atan2(a, b)`: angle of the point (b, a).
    Atan2,
    /// `a` to the real power `b` (C `pow`).
    Powf,
    /// `a` to an integer power (C `pown`).
    PowI(i32),
    /// `a < b` (false when either is NaN).
    Lt,
    /// `a <= b`.
    Le,
    /// `a == b`.
    Eq,
    /// `a != b` (true when either is NaN).
    Ne,
    /// Index `a < b`.
    IdxLt,
    /// Index `a == b`.
    IdxEq,
    /// Predicate and.
    And,
    /// Predicate or.
    Or,
    /// Predicate not.
    Not,
    /// `p ? a : b`, for floats, indices or integers.
    Select,
    /// `a * b + c` with one rounding.
    Fma,
    /// Rounds toward zero.
    Trunc,
    /// Rounds to the nearest integer, ties to even.
    RoundEven,
    /// An integer constant (wrapped to the float's width).
    IntConst(i64),
    /// The bits of a float, as an integer.
    Bits,
    /// The float with the given bits.
    FromBits,
    /// Float to integer, rounding toward zero, saturating; NaN gives 0.
    CvtInt,
    /// Integer to float, rounding to nearest.
    CvtFloat,
    /// Integer `a + b` (wrapping).
    IAdd,
    /// Integer `a - b` (wrapping).
    ISub,
    /// Bitwise and.
    IAnd,
    /// Bitwise or.
    IOr,
    /// Shift left.
    IShl(u8),
    /// Arithmetic shift right.
    IShr(u8),
    /// Integer `a < b`.
    ILt,
    /// Integer `a == b`.
    IEq,
    /// `2^a`, the GPU's approximate instruction (`ex2.approx.f32`: relative error at most
    /// 2^-22); emitted by the GPU generator's `fast_math` mode only.
    Ex2Approx,
    /// `log2(a)`, approximate (`lg2.approx.f32`: absolute error at most 2^-22.6 for `a` in
    /// [0.5, 2], relative 2^-22 elsewhere); `fast_math` only.
    Lg2Approx,
    /// `sin(a)`, approximate (`sin.approx.f32`: absolute error at most 2^-20.9 for |a| <= pi,
    /// growing outside); `fast_math` only.
    SinApprox,
    /// `cos(a)`, approximate (`cos.approx.f32`, as `SinApprox`); `fast_math` only.
    CosApprox,
    /// `1 / sqrt(a)`, approximate (`rsqrt.approx.f32`: relative error at most 2^-22.9);
    /// `fast_math` only.
    RsqrtApprox,
    /// `1 / a`, approximate (`rcp.approx.f32`: relative error at most 2^-23); `fast_math`
    /// only.
    RcpApprox,
}

/// A value of a register in the interpreter.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Val<R> {
    /// Float.
    F(R),
    /// Index.
    I(u64),
    /// Predicate.
    P(bool),
    /// Integer (of the float's width, sign-extended).
    N(i64),
}

impl<R: Real> Val<R> {
    /// The float (NaN for other kinds, which the type checker excludes).
    pub fn f(self) -> R {
        match self {
            Val::F(x) => x,
            _ => R::nan(),
        }
    }
    /// The index.
    pub fn i(self) -> u64 {
        match self {
            Val::I(x) => x,
            _ => u64::MAX,
        }
    }
    /// The predicate.
    pub fn p(self) -> bool {
        matches!(self, Val::P(true))
    }
    /// The integer.
    pub fn n(self) -> i64 {
        match self {
            Val::N(x) => x,
            _ => 0,
        }
    }
}

/// Static description of a scalar operation.
pub struct SOpSpec {
    /// Name in the lowered form's text.
    pub name: &'static str,
    /// Argument types.
    pub args: &'static [Ty],
    /// Result type (`None`: same as the second argument, for `Select`).
    pub result: Option<Ty>,
}

const F1: &[Ty] = &[Ty::F];
const F2: &[Ty] = &[Ty::F, Ty::F];
const I2: &[Ty] = &[Ty::Int, Ty::Int];

impl SOp {
    /// The table row of this operation.
    pub fn spec(self) -> SOpSpec {
        use SOp::*;
        let (name, args, result): (&'static str, &'static [Ty], Option<Ty>) = match self {
            Const(_) => ("const", &[], Some(Ty::F)),
            IdxConst(_) => ("idx", &[], Some(Ty::Idx)),
            Add => ("add", F2, Some(Ty::F)),
            Sub => ("sub", F2, Some(Ty::F)),
            Mul => ("mul", F2, Some(Ty::F)),
            Div => ("div", F2, Some(Ty::F)),
            Neg => ("neg", F1, Some(Ty::F)),
            Abs => ("abs", F1, Some(Ty::F)),
            Floor => ("floor", F1, Some(Ty::F)),
            Round => ("round", F1, Some(Ty::F)),
            Sqrt => ("sqrt", F1, Some(Ty::F)),
            Rsqrt => ("rsqrt", F1, Some(Ty::F)),
            Recip => ("recip", F1, Some(Ty::F)),
            Exp => ("exp", F1, Some(Ty::F)),
            Log => ("log", F1, Some(Ty::F)),
            Sin => ("sin", F1, Some(Ty::F)),
            Cos => ("cos", F1, Some(Ty::F)),
            Asin => ("asin", F1, Some(Ty::F)),
            Acos => ("acos", F1, Some(Ty::F)),
            Atan => ("atan", F1, Some(Ty::F)),
            Atan2 => ("atan2", F2, Some(Ty::F)),
            Powf => ("powf", F2, Some(Ty::F)),
            PowI(_) => ("powi", F1, Some(Ty::F)),
            Lt => ("lt", F2, Some(Ty::Pred)),
            Le => ("le", F2, Some(Ty::Pred)),
            Eq => ("eq", F2, Some(Ty::Pred)),
            Ne => ("ne", F2, Some(Ty::Pred)),
            IdxLt => ("idx_lt", &[Ty::Idx, Ty::Idx], Some(Ty::Pred)),
            IdxEq => ("idx_eq", &[Ty::Idx, Ty::Idx], Some(Ty::Pred)),
            And => ("and", &[Ty::Pred, Ty::Pred], Some(Ty::Pred)),
            Or => ("or", &[Ty::Pred, Ty::Pred], Some(Ty::Pred)),
            Not => ("not", &[Ty::Pred], Some(Ty::Pred)),
            Select => ("select", &[Ty::Pred, Ty::F, Ty::F], None),
            Fma => ("fma", &[Ty::F, Ty::F, Ty::F], Some(Ty::F)),
            Trunc => ("trunc", F1, Some(Ty::F)),
            RoundEven => ("rint", F1, Some(Ty::F)),
            IntConst(_) => ("int", &[], Some(Ty::Int)),
            Bits => ("bits", F1, Some(Ty::Int)),
            FromBits => ("from_bits", &[Ty::Int], Some(Ty::F)),
            CvtInt => ("cvt_int", F1, Some(Ty::Int)),
            CvtFloat => ("cvt_float", &[Ty::Int], Some(Ty::F)),
            IAdd => ("iadd", I2, Some(Ty::Int)),
            ISub => ("isub", I2, Some(Ty::Int)),
            IAnd => ("iand", I2, Some(Ty::Int)),
            IOr => ("ior", I2, Some(Ty::Int)),
            IShl(_) => ("ishl", &[Ty::Int], Some(Ty::Int)),
            IShr(_) => ("ishr", &[Ty::Int], Some(Ty::Int)),
            ILt => ("ilt", I2, Some(Ty::Pred)),
            IEq => ("ieq", I2, Some(Ty::Pred)),
            Ex2Approx => ("ex2_approx", F1, Some(Ty::F)),
            Lg2Approx => ("lg2_approx", F1, Some(Ty::F)),
            SinApprox => ("sin_approx", F1, Some(Ty::F)),
            CosApprox => ("cos_approx", F1, Some(Ty::F)),
            RsqrtApprox => ("rsqrt_approx", F1, Some(Ty::F)),
            RcpApprox => ("rcp_approx", F1, Some(Ty::F)),
        };
        SOpSpec { name, args, result }
    }

    /// Semantics, in the precision `R`: the reference every backend must match.
    pub fn eval<R: Real>(self, a: &[Val<R>]) -> Val<R> {
        use SOp::*;
        let f = |k: usize| a[k].f();
        match self {
            Const(b) => Val::F(R::of(f64::from_bits(b))),
            IdxConst(i) => Val::I(i),
            Add => Val::F(f(0) + f(1)),
            Sub => Val::F(f(0) - f(1)),
            Mul => Val::F(f(0) * f(1)),
            Div => Val::F(f(0) / f(1)),
            Neg => Val::F(-f(0)),
            Abs => Val::F(f(0).abs()),
            Floor => Val::F(f(0).floor()),
            Round => Val::F(f(0).round()),
            Sqrt => Val::F(f(0).sqrt()),
            Rsqrt => Val::F(R::one() / f(0).sqrt()),
            Recip => Val::F(R::one() / f(0)),
            Exp => Val::F(f(0).exp()),
            Log => Val::F(f(0).ln()),
            Sin => Val::F(f(0).sin()),
            Cos => Val::F(f(0).cos()),
            Asin => Val::F(f(0).asin()),
            Acos => Val::F(f(0).acos()),
            Atan => Val::F(f(0).atan()),
            Atan2 => Val::F(f(0).atan2(f(1))),
            Powf => Val::F(f(0).powf(f(1))),
            PowI(n) => Val::F(f(0).powi(n)),
            Lt => Val::P(f(0) < f(1)),
            Le => Val::P(f(0) <= f(1)),
            Eq => Val::P(f(0) == f(1)),
            Ne => Val::P(f(0) != f(1)),
            IdxLt => Val::P(a[0].i() < a[1].i()),
            IdxEq => Val::P(a[0].i() == a[1].i()),
            And => Val::P(a[0].p() && a[1].p()),
            Or => Val::P(a[0].p() || a[1].p()),
            Not => Val::P(!a[0].p()),
            Select => {
                if a[0].p() {
                    a[1]
                } else {
                    a[2]
                }
            }
            Fma => Val::F(f(0).mul_add(f(1), f(2))),
            Trunc => Val::F(f(0).trunc()),
            RoundEven => Val::F(f(0).round_even()),
            IntConst(i) => Val::N(R::wrap(i)),
            Bits => Val::N(f(0).to_bits_i64()),
            FromBits => Val::F(R::from_bits_i64(a[0].n())),
            CvtInt => Val::N(f(0).to_int_sat()),
            CvtFloat => Val::F(R::of(a[0].n() as f64)),
            IAdd => Val::N(R::wrap(a[0].n().wrapping_add(a[1].n()))),
            ISub => Val::N(R::wrap(a[0].n().wrapping_sub(a[1].n()))),
            IAnd => Val::N(a[0].n() & a[1].n()),
            IOr => Val::N(a[0].n() | a[1].n()),
            IShl(k) => Val::N(R::wrap(a[0].n().wrapping_shl(k as u32))),
            IShr(k) => Val::N(a[0].n() >> k),
            ILt => Val::P(a[0].n() < a[1].n()),
            IEq => Val::P(a[0].n() == a[1].n()),
            // The approximate instructions (`.ftz`: f32 subnormal inputs and results
            // flushed to zero), as their exact values rounded: within the hardware's error
            // bounds of what a GPU computes.
            Ex2Approx => Val::F(R::of(ftz(ftz(f(0).f64()).exp2()))),
            Lg2Approx => Val::F(R::of(ftz(ftz(f(0).f64()).log2()))),
            SinApprox => Val::F(R::of(ftz(ftz(f(0).f64()).sin()))),
            CosApprox => Val::F(R::of(ftz(ftz(f(0).f64()).cos()))),
            RsqrtApprox => Val::F(R::of(ftz(1.0 / ftz(f(0).f64()).sqrt()))),
            RcpApprox => Val::F(R::of(ftz(1.0 / ftz(f(0).f64())))),
        }
    }
}

/// One instruction: `dst = op(args)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    /// Destination register.
    pub dst: Reg,
    /// Operation.
    pub op: SOp,
    /// Argument registers.
    pub args: Vec<Reg>,
}

impl fmt::Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.dst, self.op.spec().name)?;
        match self.op {
            SOp::Const(b) => write!(f, " {:?}", f64::from_bits(b))?,
            SOp::IdxConst(i) => write!(f, " {i}")?,
            SOp::PowI(n) => write!(f, "[{n}]")?,
            SOp::IntConst(i) => write!(f, " {i}")?,
            SOp::IShl(k) | SOp::IShr(k) => write!(f, "[{k}]")?,
            _ => {}
        }
        for (k, a) in self.args.iter().enumerate() {
            write!(f, "{}{a}", if k == 0 { " " } else { ", " })?;
        }
        Ok(())
    }
}

/// `x` with f32 subnormals flushed to a zero of the same sign (the `.ftz` of PTX).
fn ftz(x: f64) -> f64 {
    if x != 0.0 && x.abs() < f32::MIN_POSITIVE as f64 {
        0.0f64.copysign(x)
    } else {
        x
    }
}
