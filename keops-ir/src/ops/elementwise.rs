//! Element-wise operations: value, lowering and derivative of each.
//!
//! Special values follow KeOps 2.3 (which follows C): `Rsqrt(0) = 0`, `XLogX(0) = 0`,
//! `SinXDivX(0) = 1`, `Step(NaN) = 1`, `Sign(NaN) = 0`, `ReLU(NaN) = NaN`.

use super::Call;
use crate::builder::Builder;
use crate::error::Result;
use crate::graph::{NodeId, Param};
use crate::lower::builder::Lower;
use crate::lower::scalar::{Reg, SOp};
use crate::ops::Op;
use crate::real::Real;

fn p_int(p: &[Param], k: usize) -> i64 {
    p.get(k).map(Param::int).unwrap_or(0)
}

// ---------------------------------------------------------------- values

pub(super) fn add<R: Real>(_: &[Param], a: R, b: R) -> R {
    a + b
}
pub(super) fn sub<R: Real>(_: &[Param], a: R, b: R) -> R {
    a - b
}
pub(super) fn mul<R: Real>(_: &[Param], a: R, b: R) -> R {
    a * b
}
pub(super) fn div<R: Real>(_: &[Param], a: R, b: R) -> R {
    a / b
}
pub(super) fn neg<R: Real>(_: &[Param], a: R) -> R {
    -a
}
pub(super) fn inv<R: Real>(_: &[Param], a: R) -> R {
    R::one() / a
}
pub(super) fn square<R: Real>(_: &[Param], a: R) -> R {
    a * a
}
pub(super) fn sqrt<R: Real>(_: &[Param], a: R) -> R {
    a.sqrt()
}
pub(super) fn rsqrt<R: Real>(_: &[Param], a: R) -> R {
    if a == R::zero() {
        R::zero()
    } else {
        R::one() / a.sqrt()
    }
}
pub(super) fn pow<R: Real>(p: &[Param], a: R) -> R {
    a.powi(p_int(p, 0) as i32)
}
pub(super) fn powf<R: Real>(_: &[Param], a: R, b: R) -> R {
    a.powf(b)
}
pub(super) fn exp<R: Real>(_: &[Param], a: R) -> R {
    a.exp()
}
pub(super) fn log<R: Real>(_: &[Param], a: R) -> R {
    a.ln()
}
pub(super) fn xlogx<R: Real>(_: &[Param], a: R) -> R {
    if a == R::zero() {
        R::zero()
    } else {
        a * a.ln()
    }
}
pub(super) fn sin<R: Real>(_: &[Param], a: R) -> R {
    a.sin()
}
pub(super) fn cos<R: Real>(_: &[Param], a: R) -> R {
    a.cos()
}
pub(super) fn sinxdivx<R: Real>(_: &[Param], a: R) -> R {
    if a == R::zero() {
        R::one()
    } else {
        a.sin() / a
    }
}
pub(super) fn asin<R: Real>(_: &[Param], a: R) -> R {
    a.asin()
}
pub(super) fn acos<R: Real>(_: &[Param], a: R) -> R {
    a.acos()
}
pub(super) fn atan<R: Real>(_: &[Param], a: R) -> R {
    a.atan()
}
pub(super) fn atan2<R: Real>(_: &[Param], a: R, b: R) -> R {
    a.atan2(b)
}
pub(super) fn abs<R: Real>(_: &[Param], a: R) -> R {
    a.abs()
}
pub(super) fn relu<R: Real>(_: &[Param], a: R) -> R {
    if a < R::zero() { R::zero() } else { a }
}
pub(super) fn clamp<R: Real>(_: &[Param], x: R, a: R, b: R) -> R {
    if x < a {
        a
    } else if b < x {
        b
    } else {
        x
    }
}
pub(super) fn clampint<R: Real>(p: &[Param], x: R) -> R {
    clamp(p, x, R::of(p_int(p, 0) as f64), R::of(p_int(p, 1) as f64))
}
pub(super) fn modulo<R: Real>(_: &[Param], x: R, n: R, d: R) -> R {
    x - n * ((x - d) / n).floor()
}
pub(super) fn sign<R: Real>(_: &[Param], a: R) -> R {
    if R::zero() < a {
        R::one()
    } else if a < R::zero() {
        -R::one()
    } else {
        R::zero()
    }
}
pub(super) fn step<R: Real>(_: &[Param], a: R) -> R {
    if a < R::zero() { R::zero() } else { R::one() }
}
pub(super) fn floor<R: Real>(_: &[Param], a: R) -> R {
    a.floor()
}
pub(super) fn round<R: Real>(p: &[Param], a: R) -> R {
    let d = p_int(p, 0) as i32;
    if d == 0 {
        return a.round();
    }
    let scale = R::of(10f64.powi(d));
    (a * scale).round() / scale
}
pub(super) fn diffclampint<R: Real>(p: &[Param], x: R) -> R {
    let (a, b) = (R::of(p_int(p, 0) as f64), R::of(p_int(p, 1) as f64));
    if x < a || b < x { R::zero() } else { R::one() }
}
pub(super) fn ifelse<R: Real>(_: &[Param], c: R, a: R, b: R) -> R {
    if c >= R::zero() { a } else { b }
}
fn ind<R: Real>(p: bool) -> R {
    if p { R::one() } else { R::zero() }
}
pub(super) fn less_than<R: Real>(_: &[Param], a: R, b: R) -> R {
    ind(a < b)
}
pub(super) fn less_or_equal<R: Real>(_: &[Param], a: R, b: R) -> R {
    ind(a <= b)
}
pub(super) fn equal<R: Real>(_: &[Param], a: R, b: R) -> R {
    ind(a == b)
}
pub(super) fn not_equal<R: Real>(_: &[Param], a: R, b: R) -> R {
    ind(a != b)
}

// ---------------------------------------------------------------- lowering

pub(super) fn l_add(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    l.add(a, b)
}
pub(super) fn l_sub(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    l.sub(a, b)
}
pub(super) fn l_mul(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    l.mul(a, b)
}
pub(super) fn l_div(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    l.div(a, b)
}
pub(super) fn l_neg(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.neg(a)
}
pub(super) fn l_inv(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Recip, a)
}
pub(super) fn l_square(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.mul(a, a)
}
pub(super) fn l_sqrt(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Sqrt, a)
}
pub(super) fn l_rsqrt(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    let zero = l.cst(0.0);
    let is0 = l.eq(a, zero);
    let r = l.f1(SOp::Rsqrt, a);
    l.select(is0, zero, r)
}
pub(super) fn l_pow(l: &mut Lower, p: &[Param], a: Reg) -> Reg {
    match p_int(p, 0) {
        1 => a,
        2 => l.mul(a, a),
        m => l.f1(SOp::PowI(m as i32), a),
    }
}
pub(super) fn l_powf(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    l.emit(SOp::Powf, &[a, b])
}
pub(super) fn l_exp(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Exp, a)
}
pub(super) fn l_log(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Log, a)
}
pub(super) fn l_xlogx(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    let zero = l.cst(0.0);
    let is0 = l.eq(a, zero);
    let lg = l.f1(SOp::Log, a);
    let v = l.mul(a, lg);
    l.select(is0, zero, v)
}
pub(super) fn l_sin(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Sin, a)
}
pub(super) fn l_cos(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Cos, a)
}
pub(super) fn l_sinxdivx(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    let (zero, one) = (l.cst(0.0), l.cst(1.0));
    let is0 = l.eq(a, zero);
    let s = l.f1(SOp::Sin, a);
    let v = l.div(s, a);
    l.select(is0, one, v)
}
pub(super) fn l_asin(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Asin, a)
}
pub(super) fn l_acos(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Acos, a)
}
pub(super) fn l_atan(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Atan, a)
}
pub(super) fn l_atan2(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    l.emit(SOp::Atan2, &[a, b])
}
pub(super) fn l_abs(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Abs, a)
}
pub(super) fn l_relu(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    let zero = l.cst(0.0);
    let neg = l.lt(a, zero);
    l.select(neg, zero, a)
}
pub(super) fn l_clamp(l: &mut Lower, _: &[Param], x: Reg, a: Reg, b: Reg) -> Reg {
    let below = l.lt(x, a);
    let above = l.lt(b, x);
    let hi = l.select(above, b, x);
    l.select(below, a, hi)
}
pub(super) fn l_clampint(l: &mut Lower, p: &[Param], x: Reg) -> Reg {
    let a = l.cst(p_int(p, 0) as f64);
    let b = l.cst(p_int(p, 1) as f64);
    l_clamp(l, p, x, a, b)
}
pub(super) fn l_mod(l: &mut Lower, _: &[Param], x: Reg, n: Reg, d: Reg) -> Reg {
    let t = l.sub(x, d);
    let q = l.div(t, n);
    let f = l.f1(SOp::Floor, q);
    let m = l.mul(n, f);
    l.sub(x, m)
}
pub(super) fn l_sign(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    let (zero, one, minus) = (l.cst(0.0), l.cst(1.0), l.cst(-1.0));
    let pos = l.lt(zero, a);
    let neg = l.lt(a, zero);
    let n = l.select(neg, minus, zero);
    l.select(pos, one, n)
}
pub(super) fn l_step(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    let zero = l.cst(0.0);
    let neg = l.lt(a, zero);
    let nonneg = l.not(neg);
    l.indicator(nonneg)
}
pub(super) fn l_floor(l: &mut Lower, _: &[Param], a: Reg) -> Reg {
    l.f1(SOp::Floor, a)
}
pub(super) fn l_round(l: &mut Lower, p: &[Param], a: Reg) -> Reg {
    let d = p_int(p, 0) as i32;
    if d == 0 {
        return l.f1(SOp::Round, a);
    }
    let scale = l.cst(10f64.powi(d));
    let x = l.mul(a, scale);
    let r = l.f1(SOp::Round, x);
    l.div(r, scale)
}
pub(super) fn l_diffclampint(l: &mut Lower, p: &[Param], x: Reg) -> Reg {
    let a = l.cst(p_int(p, 0) as f64);
    let b = l.cst(p_int(p, 1) as f64);
    let below = l.lt(x, a);
    let above = l.lt(b, x);
    let out = l.or(below, above);
    let inside = l.not(out);
    l.indicator(inside)
}
pub(super) fn l_ifelse(l: &mut Lower, _: &[Param], c: Reg, a: Reg, b: Reg) -> Reg {
    let zero = l.cst(0.0);
    let nonneg = l.le(zero, c);
    l.select(nonneg, a, b)
}
pub(super) fn l_less_than(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    let p = l.lt(a, b);
    l.indicator(p)
}
pub(super) fn l_less_or_equal(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    let p = l.le(a, b);
    l.indicator(p)
}
pub(super) fn l_equal(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    let p = l.eq(a, b);
    l.indicator(p)
}
pub(super) fn l_not_equal(l: &mut Lower, _: &[Param], a: Reg, b: Reg) -> Reg {
    let p = l.emit(SOp::Ne, &[a, b]);
    l.indicator(p)
}

// ---------------------------------------------------------------- derivatives

fn zero_like(b: &mut Builder<'_>, e: NodeId) -> Result<NodeId> {
    let d = b.dim(e);
    Ok(b.zero(d))
}

pub(super) fn d_add(_: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    Ok(e)
}
pub(super) fn d_sub(b: &mut Builder<'_>, _: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    if k == 0 { Ok(e) } else { b.neg(e) }
}
pub(super) fn d_mul(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    b.mul(e, c.args[1 - k])
}
pub(super) fn d_div(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let den = c.args[1];
    if k == 0 {
        b.div(e, den)
    } else {
        // d(a/b)/db = -(a/b)/b
        let t = b.mul(e, c.node)?;
        let q = b.div(t, den)?;
        b.neg(q)
    }
}
pub(super) fn d_neg(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.neg(e)
}
pub(super) fn d_inv(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let sq = b.f1(Op::Square, c.node)?;
    let t = b.mul(e, sq)?;
    b.neg(t)
}
pub(super) fn d_square(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let t = b.mul(e, c.args[0])?;
    b.scale(2.0, t)
}
pub(super) fn d_sqrt(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let two_root = b.scale(2.0, c.node)?;
    b.div(e, two_root)
}
pub(super) fn d_rsqrt(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    // d(f^-1/2) = -1/2 f^-3/2 = -1/2 Rsqrt(f)^3 (0 where Rsqrt is, as in KeOps)
    let cube = b.op(Op::Pow, &[c.node], vec![Param::Int(3)])?;
    let t = b.mul(e, cube)?;
    b.scale(-0.5, t)
}
pub(super) fn d_pow(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let m = c.int(0);
    if m == 0 {
        return zero_like(b, e);
    }
    let lower = b.op(Op::Pow, &[c.args[0]], vec![Param::Int(m - 1)])?;
    let t = b.mul(e, lower)?;
    b.scale(m as f64, t)
}
pub(super) fn d_powf(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (f, g) = (c.args[0], c.args[1]);
    if k == 0 {
        // g f^(g-1)
        let one = b.cst(1.0);
        let gm1 = b.sub(g, one)?;
        let p = b.f2(Op::Powf, f, gm1)?;
        let t = b.mul(g, p)?;
        b.mul(e, t)
    } else {
        let lf = b.f1(Op::Log, f)?;
        let t = b.mul(c.node, lf)?;
        b.mul(e, t)
    }
}
pub(super) fn d_exp(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.mul(e, c.node)
}
pub(super) fn d_log(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.div(e, c.args[0])
}
pub(super) fn d_xlogx(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let lf = b.f1(Op::Log, c.args[0])?;
    let one = b.cst(1.0);
    let t = b.add(lf, one)?;
    b.mul(e, t)
}
pub(super) fn d_sin(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let t = b.f1(Op::Cos, c.args[0])?;
    b.mul(e, t)
}
pub(super) fn d_cos(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let t = b.f1(Op::Sin, c.args[0])?;
    let p = b.mul(e, t)?;
    b.neg(p)
}
pub(super) fn d_sinxdivx(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    // (cos f - sin f / f) / f, as in KeOps (undefined at exactly 0).
    let f = c.args[0];
    let cf = b.f1(Op::Cos, f)?;
    let num = b.sub(cf, c.node)?;
    let t = b.div(num, f)?;
    b.mul(e, t)
}
fn one_minus_square(b: &mut Builder<'_>, f: NodeId) -> Result<NodeId> {
    let one = b.cst(1.0);
    let sq = b.f1(Op::Square, f)?;
    b.sub(one, sq)
}
pub(super) fn d_asin(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let t = one_minus_square(b, c.args[0])?;
    let r = b.f1(Op::Rsqrt, t)?;
    b.mul(e, r)
}
pub(super) fn d_acos(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let t = d_asin(b, c, e, k)?;
    b.neg(t)
}
pub(super) fn d_atan(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let one = b.cst(1.0);
    let sq = b.f1(Op::Square, c.args[0])?;
    let den = b.add(one, sq)?;
    b.div(e, den)
}
pub(super) fn d_atan2(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (f, g) = (c.args[0], c.args[1]);
    let f2 = b.f1(Op::Square, f)?;
    let g2 = b.f1(Op::Square, g)?;
    let den = b.add(f2, g2)?;
    if k == 0 {
        let t = b.mul(e, g)?;
        b.div(t, den)
    } else {
        let t = b.mul(e, f)?;
        let q = b.div(t, den)?;
        b.neg(q)
    }
}
pub(super) fn d_abs(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let s = b.f1(Op::Sign, c.args[0])?;
    b.mul(e, s)
}
pub(super) fn d_relu(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let s = b.f1(Op::Step, c.args[0])?;
    b.mul(e, s)
}
pub(super) fn d_clamp(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (x, lo, hi) = (c.args[0], c.args[1], c.args[2]);
    let mask = match k {
        // inside [lo, hi]: x >= lo and x <= hi
        0 => {
            let a = b.sub(x, lo)?;
            let sa = b.f1(Op::Step, a)?;
            let h = b.sub(hi, x)?;
            let sh = b.f1(Op::Step, h)?;
            b.mul(sa, sh)?
        }
        1 => b.f2(Op::LessThan, x, lo)?,
        _ => {
            // x > hi, and not below lo (the lower bound wins, as in the value)
            let above = b.f2(Op::LessThan, hi, x)?;
            let a = b.sub(x, lo)?;
            let not_below = b.f1(Op::Step, a)?;
            b.mul(above, not_below)?
        }
    };
    b.mul(e, mask)
}
pub(super) fn d_clampint(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let m = b.op(Op::DiffClampInt, &[c.args[0]], c.params.clone())?;
    b.mul(e, m)
}
pub(super) fn d_mod(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (x, n, d) = (c.args[0], c.args[1], c.args[2]);
    match k {
        0 => Ok(e),
        1 => {
            let t = b.sub(x, d)?;
            let q = b.div(t, n)?;
            let fl = b.f1(Op::Floor, q)?;
            let p = b.mul(e, fl)?;
            b.neg(p)
        }
        _ => zero_like(b, e),
    }
}
pub(super) fn d_ifelse(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    // The cotangent goes to the branch the value took (b when the condition is NaN).
    let cond = c.args[0];
    let zero = b.zero(crate::dim::Dim::one());
    match k {
        0 => zero_like(b, e),
        1 => b.op(Op::IfElse, &[cond, e, zero], vec![]),
        _ => b.op(Op::IfElse, &[cond, zero, e], vec![]),
    }
}
