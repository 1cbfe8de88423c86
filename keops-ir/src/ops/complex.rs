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
use crate::lower::{Lower, Reg, SOp};
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
    Ok(cx.arg(0).scale(2))
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
    Ok(Dim::known(d as usize))
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

#[cfg(test)]
mod tests {
    use crate::eval::{Array, EvalOptions, SumScheme, apply_op};
    use crate::graph::{Cat, Param, VarSource};
    use crate::lower::{Lower, Ty, Val, lower_formula};
    use crate::ops::{DimCx, LowerArgs, Lowering, Op};
    use crate::{Dim, Program, Real};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const PI: f64 = std::f64::consts::PI;

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    /// Random coordinates of magnitude in [0.4, 1.4], either sign (away from the
    /// singularities of ComplexAbs and ComplexDivide).
    fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| rng.random_range(0.4..1.4) * if rng.random_bool(0.5) { 1.0 } else { -1.0 })
            .collect()
    }

    #[test]
    fn values_at_hand_computed_points() {
        let v = |op: Op, args: &[&[f64]], params: &[Param], d: usize| {
            apply_op::<f64>(op, args, params, d)
        };
        assert_eq!(v(Op::ComplexReal, &[&[1., 2., 3., 4.]], &[], 2), [1., 3.]);
        assert_eq!(v(Op::ComplexImag, &[&[1., 2., 3., 4.]], &[], 2), [2., 4.]);
        assert_eq!(v(Op::Real2Complex, &[&[1., 2.]], &[], 4), [1., 0., 2., 0.]);
        assert_eq!(v(Op::Imag2Complex, &[&[1., 2.]], &[], 4), [0., 1., 0., 2.]);
        assert_eq!(
            v(Op::Conj, &[&[1., 2., 3., -4.]], &[], 4),
            [1., -2., 3., 4.]
        );
        assert_eq!(
            v(Op::ComplexAdd, &[&[1., 2.], &[3., -1.]], &[], 2),
            [4., 1.]
        );
        assert_eq!(
            v(Op::ComplexAdd, &[&[1., 2., 3., 4.], &[10., 20.]], &[], 4),
            [11., 22., 13., 24.]
        );
        assert_eq!(
            v(Op::ComplexSubtract, &[&[1., 2.], &[3., -1.]], &[], 2),
            [-2., 3.]
        );
        assert_eq!(
            v(
                Op::ComplexSubtract,
                &[&[10., 20.], &[1., 2., 3., 4.]],
                &[],
                4
            ),
            [9., 18., 7., 16.]
        );
        // (1 + 2i)(3 - i) = 5 + 5i; i (1 + 2i) = -2 + i, i (3 + 4i) = -4 + 3i
        assert_eq!(
            v(Op::ComplexMult, &[&[1., 2.], &[3., -1.]], &[], 2),
            [5., 5.]
        );
        assert_eq!(
            v(Op::ComplexMult, &[&[0., 1.], &[1., 2., 3., 4.]], &[], 4),
            [-2., 1., -4., 3.]
        );
        // (5 + 5i) / (3 - i) = 1 + 2i; (1 + 2i) / 2i = 1 - i/2, (3 + 4i) / 2i = 2 - 3i/2
        assert_eq!(
            v(Op::ComplexDivide, &[&[5., 5.], &[3., -1.]], &[], 2),
            [1., 2.]
        );
        assert_eq!(
            v(Op::ComplexDivide, &[&[1., 2., 3., 4.], &[0., 2.]], &[], 4),
            [1., -0.5, 2., -1.5]
        );
        // (2 + 4i) / (1 + i, 2i): broadcast numerator
        assert_eq!(
            v(Op::ComplexDivide, &[&[2., 4.], &[1., 1., 0., 2.]], &[], 4),
            [3., 1., 2., -1.]
        );
        // e^(i pi) = -1, e^(ln 2 + i pi/2) = 2i
        assert!(close(
            &v(Op::ComplexExp, &[&[0., PI, 2f64.ln(), PI / 2.]], &[], 4),
            &[-1., 0., 0., 2.],
            1e-15
        ));
        assert!(close(
            &v(Op::ComplexExp1j, &[&[0., PI / 2., PI]], &[], 6),
            &[1., 0., 0., 1., -1., 0.],
            1e-15
        ));
        assert_eq!(v(Op::ComplexAbs, &[&[3., 4., 0., -2.]], &[], 2), [5., 2.]);
        assert_eq!(
            v(Op::ComplexSquareAbs, &[&[3., 4., 0., -2.]], &[], 2),
            [25., 4.]
        );
        assert_eq!(
            v(Op::ComplexSum, &[&[1., 2., 3., 4., 5., 6.]], &[], 2),
            [9., 12.]
        );
        assert_eq!(
            v(Op::ComplexSumT, &[&[1., 2.]], &[Param::Int(6)], 6),
            [1., 2., 1., 2., 1., 2.]
        );
        assert_eq!(
            v(Op::ComplexRealScal, &[&[2.], &[1., -3., 0.5, 4.]], &[], 4),
            [2., -6., 1., 8.]
        );
        assert_eq!(
            v(Op::ComplexRealScal, &[&[1., -3., 0.5, 4.], &[2.]], &[], 4),
            [2., -6., 1., 8.]
        );
    }

    #[test]
    fn angle_is_atan2_of_imag_and_real() {
        let p = Program::parse("z = Vi(6); Sum_Reduction(ComplexAngle(z), 0)").unwrap();
        let z = [-1., 1., 0., -2., 3., 0.];
        let opts = EvalOptions {
            n: Some(1),
            ..Default::default()
        };
        let out = p.evaluate(&[Array::new(&z, 1, 6)], &opts).unwrap();
        assert!(
            close(&out.values, &[3. * PI / 4., -PI / 2., 0.], 1e-15),
            "{:?}",
            out.values
        );
    }

    /// Dimension rule of `op` on known dimensions.
    fn out_dim(op: Op, dims: &[usize], params: &[Param]) -> Result<usize, String> {
        let dims: Vec<Dim> = dims.iter().map(|d| Dim::known(*d)).collect();
        let mut solver = crate::dim::DimSolver::new();
        let mut cx = DimCx {
            args: &dims,
            params,
            solver: &mut solver,
        };
        let d = (op.spec().prim().unwrap().dim)(&mut cx)?;
        Ok(d.as_known().unwrap())
    }

    /// The ops with argument dimensions, including every broadcast form.
    fn cases() -> Vec<(Op, Vec<usize>, Vec<Param>)> {
        use Op::*;
        let mut v = vec![
            (ComplexReal, vec![6], vec![]),
            (ComplexImag, vec![6], vec![]),
            (Real2Complex, vec![3], vec![]),
            (Imag2Complex, vec![3], vec![]),
            (Conj, vec![6], vec![]),
            (ComplexExp, vec![6], vec![]),
            (ComplexExp1j, vec![3], vec![]),
            (ComplexAbs, vec![6], vec![]),
            (ComplexSquareAbs, vec![6], vec![]),
            (ComplexSum, vec![6], vec![]),
            (ComplexSum, vec![2], vec![]),
            (ComplexSumT, vec![2], vec![Param::Int(6)]),
            (ComplexRealScal, vec![1, 6], vec![]),
            (ComplexRealScal, vec![6, 1], vec![]),
        ];
        for op in [ComplexAdd, ComplexSubtract, ComplexMult, ComplexDivide] {
            for dims in [vec![6, 6], vec![6, 2], vec![2, 6], vec![2, 2]] {
                v.push((op, dims, vec![]));
            }
        }
        v
    }

    fn check_lowering<R: Real>(rng: &mut StdRng) {
        for (op, dims, params) in cases() {
            let od = out_dim(op, &dims, &params).unwrap();
            let args: Vec<Vec<R>> = dims
                .iter()
                .map(|d| random(rng, *d).into_iter().map(R::of).collect())
                .collect();
            let refs: Vec<&[R]> = args.iter().map(|a| a.as_slice()).collect();
            let want = apply_op::<R>(op, &refs, &params, od);
            let mut l = Lower::new();
            let regs: Vec<Vec<_>> = dims
                .iter()
                .map(|d| (0..*d).map(|_| l.param(Ty::F)).collect())
                .collect();
            let Lowering::Vector(f) = op.spec().prim().unwrap().lower else {
                panic!("{op:?} is not a vector lowering")
            };
            let results = f(
                &mut l,
                &LowerArgs {
                    args: &regs,
                    params: &params,
                    out_dim: od,
                },
            );
            assert_eq!(results.len(), od, "{op:?} {dims:?}");
            let block = l.finish(regs.concat(), results);
            let inputs: Vec<Val<R>> = args.concat().into_iter().map(Val::F).collect();
            let got: Vec<R> = block.run(&inputs).into_iter().map(Val::f).collect();
            // Same operations in the same order: identical bits.
            let bits = |v: &[R]| v.iter().map(|x| x.f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&got),
                bits(&want),
                "{op:?} {dims:?} ({}): {got:?} vs {want:?}",
                R::NAME
            );
        }
    }

    #[test]
    fn lowering_matches_values() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..5 {
            check_lowering::<f64>(&mut rng);
            check_lowering::<f32>(&mut rng);
        }
    }

    #[test]
    fn lowered_kernel_matches_reference_evaluator() {
        let text = "x = Vi(4); y = Vj(4); w = Pm(2); s = Vj(1); \
                    Sum_Reduction(Concat(ComplexDivide(ComplexExp(ComplexMult(x, Conj(y))), ComplexAdd(ComplexRealScal(y, s), w)), \
                    Concat(ComplexAbs(ComplexSubtract(w, x)), ComplexSum(ComplexSumT(Real2Complex(s) - Imag2Complex(s), 6)))), 0)";
        let p = Program::parse(text).unwrap();
        let (m, n) = (3, 5);
        let mut rng = StdRng::seed_from_u64(3);
        let (x, y, w, s) = (
            random(&mut rng, 4 * m),
            random(&mut rng, 4 * n),
            random(&mut rng, 2),
            random(&mut rng, n),
        );
        let arrays = [
            Array::new(&x, m, 4),
            Array::new(&y, n, 4),
            Array::new(&w, 1, 2),
            Array::new(&s, n, 1),
        ];
        let opts = EvalOptions {
            sum: SumScheme::Direct,
            ..Default::default()
        };
        let want = p.evaluate(&arrays, &opts).unwrap();
        assert_eq!(want.vdim, 4 + 2 + 2);
        assert!(want.values.iter().all(|v| v.is_finite()));

        let p = p.instantiate(&[4, 4, 2, 1]).unwrap();
        let r = p.reductions().next().unwrap();
        let mut l = Lower::new();
        let (block, inputs) = lower_formula(&mut l, &p.graph, &[r.formula]).unwrap();
        let mut got = Vec::new();
        for i in 0..m {
            let mut acc = vec![0.0; want.vdim];
            for j in 0..n {
                let mut vals = Vec::new();
                for inp in &inputs {
                    let VarSource::Arg(k) = inp.source else {
                        panic!("unexpected input {inp:?}")
                    };
                    let row = match inp.cat {
                        Cat::I => i,
                        Cat::J => j,
                        _ => 0,
                    };
                    vals.extend(
                        arrays[k].data[row * inp.dim..(row + 1) * inp.dim]
                            .iter()
                            .map(|v| Val::F(*v)),
                    );
                }
                for (a, v) in acc.iter_mut().zip(block.run(&vals)) {
                    *a += v.f();
                }
            }
            got.extend(acc);
        }
        assert!(
            close(&got, &want.values, 1e-13),
            "{got:?} vs {:?}",
            want.values
        );
    }

    /// Evaluates a one-row formula of Vi variables (in declaration order).
    fn eval1(decls: &str, formula: &str, data: &[Vec<f64>]) -> Vec<f64> {
        let p = Program::parse(&format!("{decls} Sum_Reduction({formula}, 0)"))
            .unwrap_or_else(|e| panic!("{formula}: {e}"));
        let arrays: Vec<Array<'_, f64>> = data.iter().map(|d| Array::new(d, 1, d.len())).collect();
        let opts = EvalOptions {
            sum: SumScheme::Direct,
            n: Some(1),
            ..Default::default()
        };
        p.evaluate(&arrays, &opts)
            .unwrap_or_else(|e| panic!("{formula}: {e}"))
            .values
    }

    /// Checks `Grad(F, v, e)` for every variable `v` against central differences of
    /// `<e, F>` (the gradient of the real function of the real argument vectors).
    fn check_grad(formula: &str, vars: &[(&str, usize)], fdim: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut decls: String = vars
            .iter()
            .map(|(n, d)| format!("{n} = Vi({d}); "))
            .collect();
        decls.push_str(&format!("ee = Vi({fdim});"));
        let mut data: Vec<Vec<f64>> = vars.iter().map(|(_, d)| random(&mut rng, *d)).collect();
        data.push(random(&mut rng, fdim));
        let h = 1e-5;
        for (k, (name, dim)) in vars.iter().enumerate() {
            let grad = eval1(&decls, &format!("Grad({formula}, {name}, ee)"), &data);
            assert_eq!(grad.len(), *dim);
            let mut fd = Vec::new();
            for c in 0..*dim {
                let shifted = |delta: f64| {
                    let mut d = data.clone();
                    d[k][c] += delta;
                    eval1(&decls, &format!("({formula}) | ee"), &d)[0]
                };
                fd.push((shifted(h) - shifted(-h)) / (2.0 * h));
            }
            assert!(
                close(&grad, &fd, 1e-7),
                "d/d{name} {formula}: {grad:?} vs finite differences {fd:?}"
            );
        }
    }

    #[test]
    fn gradients_of_unary_operations() {
        check_grad("ComplexReal(x)", &[("x", 6)], 3, 1);
        check_grad("ComplexImag(x)", &[("x", 6)], 3, 2);
        check_grad("Real2Complex(r)", &[("r", 3)], 6, 3);
        check_grad("Imag2Complex(r)", &[("r", 3)], 6, 4);
        check_grad("Conj(x)", &[("x", 6)], 6, 5);
        check_grad("ComplexExp(x)", &[("x", 6)], 6, 6);
        check_grad("ComplexExp1j(r)", &[("r", 3)], 6, 7);
        check_grad("ComplexAbs(x)", &[("x", 6)], 3, 8);
        check_grad("ComplexSquareAbs(x)", &[("x", 6)], 3, 9);
        check_grad("ComplexAngle(x)", &[("x", 6)], 3, 10);
        check_grad("ComplexSum(x)", &[("x", 6)], 2, 11);
        check_grad("ComplexSumT(w, 6)", &[("w", 2)], 6, 12);
        check_grad("ComplexRealScal(s, x)", &[("s", 1), ("x", 6)], 6, 13);
        check_grad("ComplexRealScal(x, s)", &[("s", 1), ("x", 6)], 6, 14);
    }

    #[test]
    fn gradients_of_binary_operations_with_broadcasting() {
        for (k, op) in [
            "ComplexAdd",
            "ComplexSubtract",
            "ComplexMult",
            "ComplexDivide",
        ]
        .iter()
        .enumerate()
        {
            let seed = 100 * k as u64;
            check_grad(&format!("{op}(x, y)"), &[("x", 6), ("y", 6)], 6, seed);
            check_grad(&format!("{op}(x, w)"), &[("x", 6), ("w", 2)], 6, seed + 1);
            check_grad(&format!("{op}(w, x)"), &[("x", 6), ("w", 2)], 6, seed + 2);
            check_grad(&format!("{op}(w, z)"), &[("w", 2), ("z", 2)], 2, seed + 3);
            // The same variable on both sides.
            check_grad(&format!("{op}(x, ComplexExp(x))"), &[("x", 4)], 4, seed + 4);
        }
    }

    #[test]
    fn gradients_of_compositions_and_second_order() {
        check_grad(
            "ComplexDivide(ComplexExp(ComplexMult(x, Conj(y))), ComplexAdd(ComplexRealScal(s, y), w))",
            &[("x", 4), ("y", 4), ("w", 2), ("s", 1)],
            4,
            20,
        );
        check_grad(
            "ComplexAbs(ComplexSubtract(w, x)) * ComplexAngle(ComplexMult(x, x))",
            &[("x", 4), ("w", 2)],
            2,
            21,
        );
        check_grad(
            "ComplexSum(ComplexMult(ComplexExp1j(r), ComplexSumT(w, 6)))",
            &[("r", 3), ("w", 2)],
            2,
            22,
        );
        // Gradients of gradients: the rules applied to formulas made by the rules.
        check_grad(
            "Grad(ComplexMult(x, ComplexExp(y)), y, u)",
            &[("x", 4), ("y", 4), ("u", 4)],
            4,
            23,
        );
        check_grad(
            "Grad(ComplexDivide(x, w), w, u)",
            &[("x", 4), ("w", 2), ("u", 4)],
            2,
            24,
        );
        check_grad(
            "Grad(ComplexSquareAbs(ComplexDivide(w, x)), x, u)",
            &[("x", 4), ("w", 2), ("u", 2)],
            4,
            25,
        );
        check_grad(
            "Grad(ComplexAbs(ComplexSum(ComplexRealScal(x, s))), x, u)",
            &[("x", 4), ("s", 1), ("u", 1)],
            4,
            26,
        );
    }

    fn dim_error(text: &str) -> String {
        match Program::parse(text) {
            Ok(_) => panic!("{text}: accepted"),
            Err(e) => {
                assert_eq!(e.error.kind, crate::ErrorKind::Dimension, "{text}: {e}");
                e.error.message
            }
        }
    }

    fn output_dim(text: &str) -> usize {
        let p = Program::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        p.output_info().values.as_known().unwrap()
    }

    #[test]
    fn dimension_rules() {
        assert_eq!(
            output_dim("x = Vi(4); w = Vj(2); Sum_Reduction(ComplexMult(x, w), 0)"),
            4
        );
        assert_eq!(
            output_dim("x = Vi(4); w = Vj(2); Sum_Reduction(ComplexDivide(w, x), 0)"),
            4
        );
        assert_eq!(output_dim("x = Vi(6); Sum_Reduction(ComplexAbs(x), 0)"), 3);
        assert_eq!(output_dim("x = Vi(6); Sum_Reduction(ComplexSum(x), 0)"), 2);
        assert_eq!(
            output_dim("r = Vi(3); Sum_Reduction(ComplexExp1j(r), 0)"),
            6
        );
        assert_eq!(
            output_dim("w = Vi(2); Sum_Reduction(ComplexSumT(w, 8), 0)"),
            8
        );
        assert_eq!(
            output_dim("x = Vi(6); s = Vj(1); Sum_Reduction(ComplexRealScal(x, s), 0)"),
            6
        );
        assert_eq!(
            output_dim("x = Vi(6); s = Vj(1); Sum_Reduction(ComplexRealScal(s, x), 0)"),
            6
        );

        let m = dim_error("x = Vi(3); Sum_Reduction(ComplexReal(x), 0)");
        assert!(
            m.contains("ComplexReal") && m.contains("even dimension") && m.contains("found 3"),
            "{m}"
        );
        let m = dim_error("x = Vi(5); Sum_Reduction(Conj(x), 0)");
        assert!(m.contains("even dimension") && m.contains("found 5"), "{m}");
        let m = dim_error("x = Vi(4); y = Vj(6); Sum_Reduction(ComplexAdd(x, y), 0)");
        assert!(
            m.contains("4") && m.contains("6") && m.contains("one of them 2"),
            "{m}"
        );
        let m = dim_error("x = Vi(3); y = Vj(3); Sum_Reduction(ComplexMult(x, y), 0)");
        assert!(m.contains("first argument") && m.contains("found 3"), "{m}");
        let m = dim_error("x = Vi(4); Sum_Reduction(ComplexSumT(x, 4), 0)");
        assert!(m.contains("must have dimension 2"), "{m}");
        let m = dim_error("w = Vi(2); Sum_Reduction(ComplexSumT(w, 5), 0)");
        assert!(m.contains("found 5"), "{m}");
        let m = dim_error("x = Vi(4); y = Vj(6); Sum_Reduction(ComplexRealScal(x, y), 0)");
        assert!(m.contains("real scalar"), "{m}");
        let m = dim_error("x = Vi(3); s = Vj(1); Sum_Reduction(ComplexRealScal(s, x), 0)");
        assert!(m.contains("complex factor") && m.contains("found 3"), "{m}");
        let m = dim_error("x = Vi(7); Sum_Reduction(ComplexSum(x), 0)");
        assert!(m.contains("found 7"), "{m}");
    }

    #[test]
    fn symbolic_dimensions() {
        // Undeclared widths: halves are new symbols, evenness is checked at instantiation.
        let p = Program::parse("Sum_j(ComplexReal(x_i) * ComplexAbs(y_j))").unwrap();
        let q = p.instantiate(&[6, 6]).unwrap();
        assert_eq!(q.output_info().values.as_known(), Some(3));
        assert!(p.instantiate(&[5, 5]).is_err());
        assert!(p.instantiate(&[6, 4]).is_err());

        let p = Program::parse("Sum_j(Conj(x_i))").unwrap();
        assert_eq!(
            p.instantiate(&[4]).unwrap().output_info().values.as_known(),
            Some(4)
        );
        assert!(p.instantiate(&[3]).is_err());

        let p = Program::parse("Sum_j(ComplexReal(Real2Complex(x_i)))").unwrap();
        assert_eq!(
            p.instantiate(&[3]).unwrap().output_info().values.as_known(),
            Some(3)
        );

        // The adjoint of ComplexSum at a symbolic width, evaluated after instantiation.
        let p = Program::parse("Sum_j(Grad(ComplexSum(x_i), x_i, e))").unwrap();
        let (x, e) = ([0.5; 6], [2.0, -3.0]);
        let opts = EvalOptions {
            n: Some(1),
            ..Default::default()
        };
        let out = p
            .evaluate(&[Array::new(&x, 1, 6), Array::new(&e, 1, 2)], &opts)
            .unwrap();
        assert_eq!(out.values, [2., -3., 2., -3., 2., -3.]);
    }
}
