//! Complex numbers, stored as interleaved pairs: a complex vector of `n` numbers is the
//! real vector `[re0, im0, re1, im1, ...]` of dimension `2n`.
//!
//! Binary operations (`ComplexAdd`, `ComplexSubtract`, `ComplexMult`, `ComplexDivide`)
//! take two complex vectors of the same dimension, or one of them a single complex
//! number (dimension 2) broadcast to the other's. Derivatives follow KeOps 2.3: the
//! cotangent of a holomorphic operation is `e * conj(F')`, which is exactly the gradient
//! of the real function `<e, F(args)>` with respect to the real argument vectors.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::{Dim, DimConstraint};
use crate::error::Result;
use crate::graph::{NodeId, Param};
use crate::lower::builder::Lower;
use crate::lower::scalar::{Reg, SOp};
use crate::ops::Op;
use crate::real::Real;

// ---------------------------------------------------------------- dimensions

/// What every complex argument must satisfy, as an error message.
fn odd_message(role: &str, d: &Dim) -> String {
    format!("{role} must have an even dimension (interleaved real and imaginary parts), found {d}")
}

/// Requires argument `k` to have an even dimension (deferred while symbolic); returns it.
fn even(cx: &mut DimCx<'_>, k: usize, role: &str) -> DimResult<Dim> {
    let d = cx.arg(k);
    cx.require(DimConstraint::MultipleOf(d.clone(), Dim::known(2)), |_| {
        odd_message(role, &d)
    })?;
    Ok(cx.arg(k))
}

/// `2n -> n` (ComplexReal, ComplexImag, ComplexAbs, ComplexSquareAbs). A symbolic width
/// `D` becomes `2 s` for a fresh symbol `s`, which is the result.
pub(super) fn dim_half(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let d = cx.arg(0);
    if let Some(n) = d.as_known() {
        return if n % 2 == 0 {
            Ok(Dim::known(n / 2))
        } else {
            Err(odd_message("the argument", &d))
        };
    }
    // Already of the form 2 * X for a symbol X (e.g. the result of Real2Complex).
    if let Some(h) = d.syms().into_iter().map(Dim::sym).find(|h| h.scale(2) == d) {
        return Ok(h);
    }
    let s = Dim::sym(cx.solver.fresh());
    cx.solver
        .unify(&s.scale(2), &d)
        .map_err(|_| odd_message("the argument", &d))?;
    Ok(cx.solver.resolve(&s))
}

/// `n -> 2n` (Real2Complex, Imag2Complex, ComplexExp1j).
pub(super) fn dim_double(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let d = cx.arg(0).scale(2);
    cx.width(d)
}

/// `2n -> 2n` (Conj, ComplexExp).
pub(super) fn dim_even(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    even(cx, 0, "the argument")
}

/// Both arguments complex, of equal dimensions or one of them 2 (broadcast).
pub(super) fn dim_broadcast2(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    even(cx, 0, "the first argument")?;
    even(cx, 1, "the second argument")?;
    cx.broadcast_unit(&[0, 1], 2)
}

/// `2n -> 2` (ComplexSum).
pub(super) fn dim_two(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    even(cx, 0, "the argument")?;
    Ok(Dim::known(2))
}

/// `2 -> d` (ComplexSumT(f, d)), `d` even.
pub(super) fn dim_sumt(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    cx.expect(0, &Dim::known(2), "the argument (a single complex number)")?;
    let d = cx.int(0);
    if d < 2 || d % 2 != 0 {
        return Err(format!(
            "the dimension must be even and at least 2 (a whole number of complex numbers), found {d}"
        ));
    }
    cx.width(Dim::known(usize::try_from(d).unwrap_or(usize::MAX)))
}

/// Which argument of ComplexRealScal is the complex vector (the other is the real
/// scalar). As in KeOps the arguments may come in either order; when neither dimension
/// tells, the first argument is the scalar, as in the signature.
fn realscal_complex_arg(cx: &DimCx<'_>) -> DimResult<usize> {
    let (d0, d1) = (cx.arg(0), cx.arg(1));
    Ok(if d0.is(1) {
        1
    } else if d1.is(1) {
        0
    } else if d0.is_known() && d1.is_known() {
        return Err(format!(
            "one argument must be a real scalar (dimension 1) and the other a complex vector (even dimension), found dimensions {d0} and {d1}"
        ));
    } else if d0.is_known() {
        0
    } else {
        1
    })
}

/// A real scalar and a complex vector, in either order -> the complex vector's dimension.
pub(super) fn dim_realscal(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let c = realscal_complex_arg(cx)?;
    cx.scalar(1 - c, "the real factor")?;
    even(cx, c, "the complex factor")
}

// ---------------------------------------------------------------- values

/// Complex number `k` of `v` (values or registers); a single complex number
/// (dimension 2) is broadcast.
fn at<R: Copy>(v: &[R], k: usize) -> (R, R) {
    if v.len() == 2 {
        (v[0], v[1])
    } else {
        (v[2 * k], v[2 * k + 1])
    }
}

/// Fills `out` pair by pair from the pairs of the first argument.
fn map1<R: Real>(a: &VecArgs<'_, R>, out: &mut [R], f: impl Fn((R, R)) -> (R, R)) {
    for (k, o) in out.chunks_exact_mut(2).enumerate() {
        (o[0], o[1]) = f(at(a.args[0], k));
    }
}

/// Fills `out` pair by pair from the pairs of two (possibly broadcast) arguments.
fn map2<R: Real>(a: &VecArgs<'_, R>, out: &mut [R], f: impl Fn((R, R), (R, R)) -> (R, R)) {
    for (k, o) in out.chunks_exact_mut(2).enumerate() {
        (o[0], o[1]) = f(at(a.args[0], k), at(a.args[1], k));
    }
}

pub(super) fn real<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = a.args[0][2 * k];
    }
}
pub(super) fn imag<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = a.args[0][2 * k + 1];
    }
}
pub(super) fn real2complex<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (o, x) in out.chunks_exact_mut(2).zip(a.args[0]) {
        (o[0], o[1]) = (*x, R::zero());
    }
}
pub(super) fn imag2complex<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (o, x) in out.chunks_exact_mut(2).zip(a.args[0]) {
        (o[0], o[1]) = (R::zero(), *x);
    }
}
pub(super) fn conj<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map1(a, out, |(re, im)| (re, -im));
}
pub(super) fn add<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map2(a, out, |(a, b), (c, d)| (a + c, b + d));
}
pub(super) fn sub<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map2(a, out, |(a, b), (c, d)| (a - c, b - d));
}
/// `(a + ib)(c + id) = (ac - bd) + i(ad + bc)`
pub(super) fn mul<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map2(a, out, |(a, b), (c, d)| (a * c - b * d, a * d + b * c));
}
/// `(a + ib) / (c + id) = ((ac + bd) + i(bc - ad)) / (c^2 + d^2)`
pub(super) fn div<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map2(a, out, |(a, b), (c, d)| {
        let den = c * c + d * d;
        ((a * c + b * d) / den, (b * c - a * d) / den)
    });
}
/// `e^re (cos im + i sin im)`
pub(super) fn exp<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map1(a, out, |(re, im)| {
        let r = re.exp();
        (r * im.cos(), r * im.sin())
    });
}
/// `e^(i f) = cos f + i sin f` for a real vector `f`.
pub(super) fn exp1j<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (o, x) in out.chunks_exact_mut(2).zip(a.args[0]) {
        (o[0], o[1]) = (x.cos(), x.sin());
    }
}
pub(super) fn abs<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (k, o) in out.iter_mut().enumerate() {
        let (re, im) = at(a.args[0], k);
        *o = (re * re + im * im).sqrt();
    }
}
pub(super) fn square_abs<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    for (k, o) in out.iter_mut().enumerate() {
        let (re, im) = at(a.args[0], k);
        *o = re * re + im * im;
    }
}
/// Sum of the complex numbers, left to right from the first (as the lowering).
pub(super) fn sum<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let f = a.args[0];
    let (mut re, mut im) = (f[0], f[1]);
    for k in 1..f.len() / 2 {
        re = re + f[2 * k];
        im = im + f[2 * k + 1];
    }
    (out[0], out[1]) = (re, im);
}
pub(super) fn sumt<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    map1(a, out, |z| z);
}
/// The real scalar (either argument) times every coordinate of the complex vector.
pub(super) fn realscal<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (s, z) = if a.args[0].len() == 1 {
        (a.args[0][0], a.args[1])
    } else {
        (a.args[1][0], a.args[0])
    };
    for (o, x) in out.iter_mut().zip(z) {
        *o = s * *x;
    }
}

// ---------------------------------------------------------------- lowering

/// Output registers pair by pair from the pairs of the first argument.
fn lmap1(
    l: &mut Lower,
    a: &LowerArgs<'_>,
    f: impl Fn(&mut Lower, (Reg, Reg)) -> (Reg, Reg),
) -> Vec<Reg> {
    (0..a.out_dim / 2)
        .flat_map(|k| {
            let (re, im) = f(l, at(&a.args[0], k));
            [re, im]
        })
        .collect()
}

/// Output registers pair by pair from the pairs of two (possibly broadcast) arguments.
fn lmap2(
    l: &mut Lower,
    a: &LowerArgs<'_>,
    f: impl Fn(&mut Lower, (Reg, Reg), (Reg, Reg)) -> (Reg, Reg),
) -> Vec<Reg> {
    (0..a.out_dim / 2)
        .flat_map(|k| {
            let (re, im) = f(l, at(&a.args[0], k), at(&a.args[1], k));
            [re, im]
        })
        .collect()
}

pub(super) fn l_real(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    (0..a.out_dim).map(|k| a.args[0][2 * k]).collect()
}
pub(super) fn l_imag(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    (0..a.out_dim).map(|k| a.args[0][2 * k + 1]).collect()
}
pub(super) fn l_real2complex(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let zero = l.cst(0.0);
    a.args[0].iter().flat_map(|x| [*x, zero]).collect()
}
pub(super) fn l_imag2complex(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let zero = l.cst(0.0);
    a.args[0].iter().flat_map(|x| [zero, *x]).collect()
}
pub(super) fn l_conj(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    lmap1(l, a, |l, (re, im)| (re, l.neg(im)))
}
pub(super) fn l_add(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    lmap2(l, a, |l, (a, b), (c, d)| (l.add(a, c), l.add(b, d)))
}
pub(super) fn l_sub(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    lmap2(l, a, |l, (a, b), (c, d)| (l.sub(a, c), l.sub(b, d)))
}
pub(super) fn l_mul(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    lmap2(l, a, |l, (a, b), (c, d)| {
        let (ac, bd) = (l.mul(a, c), l.mul(b, d));
        let (ad, bc) = (l.mul(a, d), l.mul(b, c));
        (l.sub(ac, bd), l.add(ad, bc))
    })
}
pub(super) fn l_div(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    lmap2(l, a, |l, (a, b), (c, d)| {
        let (cc, dd) = (l.mul(c, c), l.mul(d, d));
        let den = l.add(cc, dd);
        let (ac, bd) = (l.mul(a, c), l.mul(b, d));
        let re = l.add(ac, bd);
        let (bc, ad) = (l.mul(b, c), l.mul(a, d));
        let im = l.sub(bc, ad);
        (l.div(re, den), l.div(im, den))
    })
}
pub(super) fn l_exp(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    lmap1(l, a, |l, (re, im)| {
        let r = l.f1(SOp::Exp, re);
        let (c, s) = (l.f1(SOp::Cos, im), l.f1(SOp::Sin, im));
        (l.mul(r, c), l.mul(r, s))
    })
}
pub(super) fn l_exp1j(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    a.args[0]
        .iter()
        .flat_map(|x| [l.f1(SOp::Cos, *x), l.f1(SOp::Sin, *x)])
        .collect()
}
fn l_square_abs_at(l: &mut Lower, (re, im): (Reg, Reg)) -> Reg {
    let (rr, ii) = (l.mul(re, re), l.mul(im, im));
    l.add(rr, ii)
}
pub(super) fn l_abs(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    (0..a.out_dim)
        .map(|k| {
            let s = l_square_abs_at(l, at(&a.args[0], k));
            l.f1(SOp::Sqrt, s)
        })
        .collect()
}
pub(super) fn l_square_abs(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    (0..a.out_dim)
        .map(|k| l_square_abs_at(l, at(&a.args[0], k)))
        .collect()
}
pub(super) fn l_sum(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let f = &a.args[0];
    let re: Vec<Reg> = f.iter().step_by(2).copied().collect();
    let im: Vec<Reg> = f.iter().skip(1).step_by(2).copied().collect();
    vec![l.sum(&re), l.sum(&im)]
}
pub(super) fn l_sumt(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    (0..a.out_dim).map(|k| a.args[0][k % 2]).collect()
}
pub(super) fn l_realscal(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (s, z) = if a.args[0].len() == 1 {
        (a.args[0][0], &a.args[1])
    } else {
        (a.args[1][0], &a.args[0])
    };
    z.iter().map(|x| l.mul(s, *x)).collect()
}

// ---------------------------------------------------------------- derivatives

/// A cotangent `g` computed at the node's dimension, reduced to argument `k`: summed
/// with ComplexSum when that argument is a single complex number broadcast to the node.
fn unbroadcast2(b: &mut Builder<'_>, c: &Call, k: usize, g: NodeId) -> Result<NodeId> {
    if b.dim(c.args[k]).is(2) && !b.dim(g).is(2) {
        b.f1(Op::ComplexSum, g)
    } else {
        Ok(g)
    }
}

/// `ComplexMult(a, Conj(z))`
fn mul_conj(b: &mut Builder<'_>, a: NodeId, z: NodeId) -> Result<NodeId> {
    let cz = b.f1(Op::Conj, z)?;
    b.f2(Op::ComplexMult, a, cz)
}

pub(super) fn d_real(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.f1(Op::Real2Complex, e)
}
pub(super) fn d_imag(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.f1(Op::Imag2Complex, e)
}
pub(super) fn d_real2complex(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.f1(Op::ComplexReal, e)
}
pub(super) fn d_imag2complex(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.f1(Op::ComplexImag, e)
}
pub(super) fn d_conj(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.f1(Op::Conj, e)
}
pub(super) fn d_add(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    unbroadcast2(b, c, k, e)
}
pub(super) fn d_sub(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let g = unbroadcast2(b, c, k, e)?;
    if k == 0 { Ok(g) } else { b.neg(g) }
}
/// `e * conj(other)`
pub(super) fn d_mul(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let g = mul_conj(b, e, c.args[1 - k])?;
    unbroadcast2(b, c, k, g)
}
/// With `t = e / conj(g)`: `t` for `f`, `-t * conj(f / g)` for `g`.
pub(super) fn d_div(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let cg = b.f1(Op::Conj, c.args[1])?;
    let t = b.f2(Op::ComplexDivide, e, cg)?;
    if k == 0 {
        return unbroadcast2(b, c, 0, t);
    }
    let g = mul_conj(b, t, c.node)?;
    let g = unbroadcast2(b, c, 1, g)?;
    b.neg(g)
}
/// `e * conj(exp(f))`
pub(super) fn d_exp(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    mul_conj(b, e, c.node)
}
/// `Im(e * conj(exp(i f)))` = `-Re(e) sin f + Im(e) cos f`
pub(super) fn d_exp1j(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let g = mul_conj(b, e, c.node)?;
    b.f1(Op::ComplexImag, g)
}
/// `(e / |f|) f`, coordinate by coordinate.
pub(super) fn d_abs(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let w = b.div(e, c.node)?;
    let w = b.f1(Op::Real2Complex, w)?;
    b.f2(Op::ComplexMult, w, c.args[0])
}
/// `2 e f`, coordinate by coordinate.
pub(super) fn d_square_abs(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let w = b.f1(Op::Real2Complex, e)?;
    let g = b.f2(Op::ComplexMult, w, c.args[0])?;
    b.scale(2.0, g)
}
/// `e` repeated to the dimension of the argument (ComplexSumT; for a symbolic width,
/// `e` broadcast by ComplexAdd against a zero vector).
pub(super) fn d_sum(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let d = b.dim(c.args[0]);
    match d.as_known() {
        Some(n) => b.op(Op::ComplexSumT, &[e], vec![Param::Int(n as i64)]),
        None => {
            let z = b.zero(d);
            b.f2(Op::ComplexAdd, z, e)
        }
    }
}
pub(super) fn d_sumt(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.f1(Op::ComplexSum, e)
}
/// For the scalar `s`: `<e, z>`; for the complex vector `z`: `s e`.
pub(super) fn d_realscal(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let s = if b.dim(c.args[0]).is(1) { 0 } else { 1 };
    if k == s {
        b.dot(e, c.args[1 - s])
    } else {
        b.f2(Op::ComplexRealScal, c.args[s], e)
    }
}

// ---------------------------------------------------------------- sugar

/// `ComplexAngle(f) = Atan2(ComplexImag(f), ComplexReal(f))`
pub(super) fn x_angle(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let im = b.f1(Op::ComplexImag, a[0])?;
    let re = b.f1(Op::ComplexReal, a[0])?;
    b.f2(Op::Atan2, im, re)
}
