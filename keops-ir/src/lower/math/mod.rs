//! The math library, written once as expansions into primitive scalar instructions.
//!
//! Backends implement only the *primitive* instructions ([`is_primitive`]): IEEE
//! arithmetic, comparisons, selects, fma, rounding to integers, square root and the
//! integer/bit operations. Every other scalar function (exp, log, sin, cos, asin, acos,
//! atan, atan2, pow, pown, round, rsqrt, recip) is expanded here into a branch-free
//! sequence of primitive instructions, with separate polynomials and constants for f32
//! and f64 (see `coeffs.rs`, derived by `scripts/math_coeffs.py`). The CPU emitter (Rust
//! source, vectorized by LLVM) and the PTX emitter therefore run the same algorithms, and
//! the interpreter ([`Block::run`]) measures their accuracy (`keops-ir/tests/math_*.rs`,
//! `docs/math-accuracy.md`): at most 2 ulp against the correctly rounded result, with
//! the special values of the C library.
//!
//! Branch-free means: both sides of every case are computed and a select keeps one;
//! comparisons are false on NaN, which the selects use to let NaN through. No loops, no
//! tables. Where accuracy needs more than the working precision, the expansions use
//! double-word arithmetic (a value as an unevaluated sum `hi + lo`) built on the fused
//! multiply-add (exact products) and TwoSum (exact sums).
//!
//! [`expand_kernel`] rewrites every block of a lowered kernel; [`expand_block`] one block.

mod coeffs;
mod explog;
mod kit;
mod trig;

use crate::lower::builder::{Block, Lower};
use crate::lower::form::{LoweredKernel, Precision};
use crate::lower::scalar::{Reg, SOp};
use kit::Kit;
use std::collections::HashMap;

/// True for the instructions that backends implement directly: constants, `+ - * /`
/// (IEEE, correctly rounded), negation, |x|, floor, trunc, rint (ties to even), sqrt
/// (correctly rounded), fma, comparisons, predicate operations, select, and all integer
/// operations and conversions (bits, from_bits, cvt_int, cvt_float).
///
/// False for Exp, Log, Sin, Cos, Asin, Acos, Atan, Atan2, Powf, PowI, Round, Rsqrt and
/// Recip, which [`expand_block`] replaces.
pub fn is_primitive(op: SOp) -> bool {
    use SOp::*;
    match op {
        Const(_) | IdxConst(_) | Add | Sub | Mul | Div | Neg | Abs | Floor | Trunc | RoundEven
        | Sqrt | Fma | Lt | Le | Eq | Ne | IdxLt | IdxEq | And | Or | Not | Select
        | IntConst(_) | Bits | FromBits | CvtInt | CvtFloat | IAdd | ISub | IAnd | IOr
        | IShl(_) | IShr(_) | ILt | IEq | Ex2Approx | Lg2Approx | SinApprox | CosApprox
        | RsqrtApprox | RcpApprox => true,
        Exp | Log | Sin | Cos | Asin | Acos | Atan | Atan2 | Powf | PowI(_) | Round | Rsqrt
        | Recip => false,
    }
}

/// `exp(x)`: reduction by multiples of ln 2, minimax polynomial on |r| <= ln2/2, scaling
/// by 2^k in two steps (overflow to inf, gradual underflow). exp(-inf) = 0,
/// exp(+inf) = inf, NaN gives NaN.
pub fn exp(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).exp(x)
}

/// `log(x)` (natural): x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) from
/// s = (m-1)/(m+1) by a minimax polynomial in s^2. Subnormals are scaled first.
/// log(±0) = -inf, log(x < 0) = NaN, log(+inf) = inf, NaN gives NaN.
pub fn log(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).log(x)
}

/// `sin(x)`: Cody-Waite reduction by pi/2 in double-word arithmetic, minimax sine and
/// cosine polynomials on |r| <= pi/4, quadrant by selects. Within 2 ulp (measured:
/// below 0.8) for |x| < 2^20 in f32 and 2^48 in f64 (see `docs/math-accuracy.md`);
/// beyond, finite and within [-1, 1] but not accurate. sin(±0) = ±0, sin(±inf) = NaN.
pub fn sin(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).sin(x)
}

/// `cos(x)`: as [`sin`] (same reduction and polynomials, shared by CSE when both are
/// taken of the same register). cos(±inf) = NaN.
pub fn cos(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).cos(x)
}

/// `asin(x)`: a minimax polynomial for |x| <= 1/2, and pi/2 - 2 asin(sqrt((1-|x|)/2))
/// above (the square root's error carried). asin(±0) = ±0, |x| > 1 gives NaN.
pub fn asin(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).asin(x)
}

/// `acos(x)`: pi/2 - asin(x) for |x| <= 1/2, 2 asin(sqrt((1-x)/2)) above,
/// pi - 2 asin(sqrt((1+x)/2)) below -1/2. |x| > 1 gives NaN.
pub fn acos(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).acos(x)
}

/// `atan(x)`: reduction to |u| <= 1/2 by atan x = pi/4 + atan((x-1)/(x+1)) and
/// atan x = pi/2 - atan(1/x), with the quotient as a double word, then a minimax
/// polynomial. atan(±0) = ±0, atan(±inf) = ±pi/2.
pub fn atan(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).atan(x)
}

/// `atan2(y, x)`: the angle of the point (x, y) in [-pi, pi], by the reduction of
/// [`atan`] applied to |y| and |x| directly (no rounded y/x), with the signed zeros and
/// infinities of C99 Annex F (atan2(±0, -0) = ±pi, atan2(±inf, -inf) = ±3pi/4, ...).
pub fn atan2(l: &mut Lower, y: Reg, x: Reg, p: Precision) -> Reg {
    Kit::new(l, p).atan2(y, x)
}

/// `pow(x, y)` (C `pow`): exp(y log|x|) in double-word arithmetic, with the special
/// cases of C99: pow(x, ±0) = 1 and pow(1, y) = 1 even for NaN, pow(-1, ±inf) = 1, a
/// negative base keeps its sign with an odd integer exponent and gives NaN with a
/// non-integer one, pow(±0, y < 0) = ±inf or +inf, pow(±inf, y), pow(x, ±inf).
pub fn powf(l: &mut Lower, x: Reg, y: Reg, p: Precision) -> Reg {
    Kit::new(l, p).powf(x, y)
}

/// `x^n` for a constant integer `n` (C `pown`): binary powering in double-word
/// arithmetic (one final rounding); negative `n` powers the double word 1/x.
/// x^0 = 1 even for NaN.
pub fn powi(l: &mut Lower, x: Reg, n: i32, p: Precision) -> Reg {
    Kit::new(l, p).powi(x, n)
}

/// `round(x)`: the nearest integer, halves away from zero (C `round`).
///
/// t = trunc(x), d = x - t (exact), result t + trunc(2d) (2d in (-2, 2), so trunc(2d)
/// is ±1 exactly when |d| >= 1/2). Integers (±0, large values, ±inf) are returned as
/// they are, which keeps -0 and avoids inf - inf; NaN gives NaN.
pub fn round(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    let mut k = Kit::new(l, p);
    let t = k.trunc(x);
    let int = k.eq(t, x);
    let d = k.sub(x, t);
    let d2 = k.add(d, d);
    let s = k.trunc(d2);
    let r = k.add(t, s);
    k.sel(int, x, r)
}

/// `1 / sqrt(x)` as a correctly rounded square root then a correctly rounded division
/// (within 1 ulp): rsqrt(+0) = +inf, rsqrt(-0) = -inf, rsqrt(x < 0) = NaN,
/// rsqrt(+inf) = 0.
pub fn rsqrt(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    let mut k = Kit::new(l, p);
    let s = k.sqrt(x);
    let one = k.c(1.0);
    k.div(one, s)
}

/// `1 / x`, one correctly rounded division.
pub fn recip(l: &mut Lower, x: Reg, p: Precision) -> Reg {
    let mut k = Kit::new(l, p);
    let one = k.c(1.0);
    k.div(one, x)
}

/// Emits `op(args)`: the instruction itself when primitive, its expansion otherwise.
pub fn expand_op(l: &mut Lower, op: SOp, args: &[Reg], p: Precision) -> Reg {
    match op {
        SOp::Exp => exp(l, args[0], p),
        SOp::Log => log(l, args[0], p),
        SOp::Sin => sin(l, args[0], p),
        SOp::Cos => cos(l, args[0], p),
        SOp::Asin => asin(l, args[0], p),
        SOp::Acos => acos(l, args[0], p),
        SOp::Atan => atan(l, args[0], p),
        SOp::Atan2 => atan2(l, args[0], args[1], p),
        SOp::Powf => powf(l, args[0], args[1], p),
        SOp::PowI(n) => powi(l, args[0], n, p),
        SOp::Round => round(l, args[0], p),
        SOp::Rsqrt => rsqrt(l, args[0], p),
        SOp::Recip => recip(l, args[0], p),
        _ => l.emit(op, args),
    }
}

/// Rewrites a block into primitive instructions only, emitted through `l` (which must
/// have no open block: the result is closed with [`Lower::finish`]).
///
/// Primitive instructions are copied (renumbered: `l` allocates every destination
/// afresh, and shares identical instructions); non-primitive ones are replaced by their
/// expansion. The parameters stay the same registers, the results are the registers now
/// holding the same values (a parameter where the expansion is the identity, as
/// `PowI(1)`). Registers read but defined neither by the block nor as its parameters
/// are left as they are.
pub fn expand_block(l: &mut Lower, b: &Block, p: Precision) -> Block {
    expand_block_with(l, b, p, |_, _, _| None)
}

/// [`expand_block`], where `substitute` may emit an instruction's replacement itself
/// (`Some(register holding the value)`) before the library is tried: the GPU's
/// approximate math of `fast_math` kernels.
pub fn expand_block_with(
    l: &mut Lower,
    b: &Block,
    p: Precision,
    mut substitute: impl FnMut(&mut Lower, SOp, &[Reg]) -> Option<Reg>,
) -> Block {
    let mut map: HashMap<Reg, Reg> = HashMap::new();
    for inst in &b.insts {
        let args: Vec<Reg> = inst
            .args
            .iter()
            .map(|r| map.get(r).copied().unwrap_or(*r))
            .collect();
        let r = match substitute(l, inst.op, &args) {
            Some(r) => r,
            None => expand_op(l, inst.op, &args, p),
        };
        map.insert(inst.dst, r);
    }
    let results = b
        .results
        .iter()
        .map(|r| map.get(r).copied().unwrap_or(*r))
        .collect();
    l.finish(b.params.clone(), results)
}

/// Expands every block of a kernel (the formula and the four hooks) for precision `p`,
/// through one [`Lower`] continuing the kernel's register numbering (new registers never
/// collide with old ones, and `tys` covers them all).
pub fn expand_kernel(k: &LoweredKernel, p: Precision) -> LoweredKernel {
    let mut l = Lower::with_types(k.tys.clone());
    let formula = expand_block(&mut l, &k.formula, p);
    let hooks = k.hooks.map_blocks(|b| expand_block(&mut l, b, p));
    LoweredKernel {
        tys: l.tys,
        formula,
        hooks,
        ..k.clone()
    }
}
