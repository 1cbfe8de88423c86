//! Reductions of one vector inside a formula, norms, distances and weighted norms.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{NodeId, Param};
use crate::lower::builder::Lower;
use crate::lower::scalar::{Reg, SOp};
use crate::ops::Op;
use crate::real::Real;

// ---------------------------------------------------------------- dimensions

pub(super) fn dim_one(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Ok(Dim::one())
}

pub(super) fn dim_same(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    Ok(cx.arg(0))
}

pub(super) fn dim_pair(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let (a, b) = (cx.arg(0), cx.arg(1));
    cx.unify(&a, &b, "both arguments must have the same dimension")?;
    Ok(Dim::one())
}

// ---------------------------------------------------------------- values

pub(super) fn sum<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = a.args[0].iter().fold(R::zero(), |s, x| s + *x);
}

/// Position of the largest (or smallest) coordinate, first one on ties; a NaN in first
/// position stays, later NaNs never win (C semantics of `if (x > m) m = x`).
fn arg_extreme<R: Real>(v: &[R], larger: bool) -> usize {
    let mut best = 0;
    for k in 1..v.len() {
        let better = if larger {
            v[k] > v[best]
        } else {
            v[k] < v[best]
        };
        if better {
            best = k;
        }
    }
    best
}

pub(super) fn max<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = a.args[0][arg_extreme(a.args[0], true)];
}
pub(super) fn min<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = a.args[0][arg_extreme(a.args[0], false)];
}
pub(super) fn argmax<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = R::of(arg_extreme(a.args[0], true) as f64);
}
pub(super) fn max_mask<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    one_hot(out, arg_extreme(a.args[0], true));
}
pub(super) fn min_mask<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    one_hot(out, arg_extreme(a.args[0], false));
}
fn one_hot<R: Real>(out: &mut [R], at: usize) {
    for (k, o) in out.iter_mut().enumerate() {
        *o = if k == at { R::one() } else { R::zero() };
    }
}
pub(super) fn argmin<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = R::of(arg_extreme(a.args[0], false) as f64);
}
fn dot<R: Real>(a: &[R], b: &[R]) -> R {
    a.iter().zip(b).fold(R::zero(), |s, (x, y)| s + *x * *y)
}
pub(super) fn sqnorm2<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = dot(a.args[0], a.args[0]);
}
pub(super) fn norm2<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = dot(a.args[0], a.args[0]).sqrt();
}
pub(super) fn normalize<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let n2 = dot(a.args[0], a.args[0]);
    let r = if n2 == R::zero() {
        R::zero()
    } else {
        R::one() / n2.sqrt()
    };
    for (o, x) in out.iter_mut().zip(a.args[0]) {
        *o = *x * r;
    }
}
pub(super) fn sqdist<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = a.args[0]
        .iter()
        .zip(a.args[1])
        .fold(R::zero(), |s, (x, y)| s + (*x - *y) * (*x - *y));
}
pub(super) fn scalprod<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = dot(a.args[0], a.args[1]);
}

// ---------------------------------------------------------------- lowering

pub(super) fn l_sum(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.sum(&a.args[0])]
}

fn l_extreme(l: &mut Lower, v: &[Reg], larger: bool) -> (Reg, Reg) {
    let mut best = v[0];
    let mut pos = l.cst(0.0);
    for (k, x) in v.iter().enumerate().skip(1) {
        let better = if larger {
            l.lt(best, *x)
        } else {
            l.lt(*x, best)
        };
        best = l.select(better, *x, best);
        let kr = l.cst(k as f64);
        pos = l.select(better, kr, pos);
    }
    (best, pos)
}

pub(super) fn l_max(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l_extreme(l, &a.args[0], true).0]
}
pub(super) fn l_min(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l_extreme(l, &a.args[0], false).0]
}
pub(super) fn l_argmax(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l_extreme(l, &a.args[0], true).1]
}
fn l_mask(l: &mut Lower, v: &[Reg], larger: bool) -> Vec<Reg> {
    let pos = l_extreme(l, v, larger).1;
    (0..v.len())
        .map(|k| {
            let kr = l.cst(k as f64);
            let p = l.eq(pos, kr);
            l.indicator(p)
        })
        .collect()
}
pub(super) fn l_max_mask(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    l_mask(l, &a.args[0], true)
}
pub(super) fn l_min_mask(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    l_mask(l, &a.args[0], false)
}
pub(super) fn l_argmin(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l_extreme(l, &a.args[0], false).1]
}
pub(super) fn l_sqnorm2(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.dot(&a.args[0], &a.args[0])]
}
pub(super) fn l_norm2(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let n2 = l.dot(&a.args[0], &a.args[0]);
    vec![l.f1(SOp::Sqrt, n2)]
}
pub(super) fn l_normalize(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let n2 = l.dot(&a.args[0], &a.args[0]);
    let zero = l.cst(0.0);
    let is0 = l.eq(n2, zero);
    let r = l.f1(SOp::Rsqrt, n2);
    let r = l.select(is0, zero, r);
    a.args[0].iter().map(|x| l.mul(*x, r)).collect()
}
pub(super) fn l_sqdist(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let d: Vec<Reg> = a.args[0]
        .iter()
        .zip(&a.args[1])
        .map(|(x, y)| l.sub(*x, *y))
        .collect();
    vec![l.dot(&d, &d)]
}
pub(super) fn l_scalprod(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.dot(&a.args[0], &a.args[1])]
}

// ---------------------------------------------------------------- derivatives

pub(super) fn d_sum(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let d = b.dim(c.args[0]);
    b.broadcast_to(e, &d)
}

fn d_extreme(b: &mut Builder<'_>, c: &Call, e: NodeId, mask_op: Op) -> Result<NodeId> {
    // The subgradient of the first extreme coordinate, as ArgMax/ArgMin pick it.
    let mask = b.f1(mask_op, c.args[0])?;
    b.mul(e, mask)
}
pub(super) fn d_max(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    d_extreme(b, c, e, Op::MaxMask)
}
pub(super) fn d_min(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    d_extreme(b, c, e, Op::MinMask)
}
pub(super) fn d_sqnorm2(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let t = b.mul(e, c.args[0])?;
    b.scale(2.0, t)
}
pub(super) fn d_norm2(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let n = b.f1(Op::Normalize, c.args[0])?;
    b.mul(e, n)
}
pub(super) fn d_normalize(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    // J^T e = (e - n <n, e>) / |f|, n = f / |f|
    let f = c.args[0];
    let n = c.node;
    let ne = b.dot(n, e)?;
    let proj = b.mul(ne, n)?;
    let t = b.sub(e, proj)?;
    let sq = b.f1(Op::SqNorm2, f)?;
    let r = b.f1(Op::Rsqrt, sq)?;
    b.mul(r, t)
}
pub(super) fn d_sqdist(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (f, g) = (c.args[0], c.args[1]);
    let diff = if k == 0 { b.sub(f, g)? } else { b.sub(g, f)? };
    let t = b.mul(e, diff)?;
    b.scale(2.0, t)
}
pub(super) fn d_scalprod(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    b.mul(e, c.args[1 - k])
}

// ---------------------------------------------------------------- sugar

fn weight_error(b: &Builder<'_>, s: NodeId, f: NodeId) -> Error {
    Error::new(
        ErrorKind::Dimension,
        format!(
            "WeightedSqNorm: the weight has dimension {} and the vector {}; the weight must have dimension 1 (isotropic), {} (diagonal) or its square (full matrix)",
            b.dim(s),
            b.dim(f),
            b.dim(f)
        ),
    )
    .help("declare the dimensions of the weight and the vector")
}

pub(super) fn x_weighted_sqnorm(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let (s, f) = (a[0], a[1]);
    let (ds, df) = (b.dim(s), b.dim(f));
    let op = if ds.is(1) {
        Op::SqNormIso
    } else if ds == df {
        Op::SqNormDiag
    } else if ds == df.mul(&df) {
        Op::SymSqNorm
    } else {
        match (ds.as_known(), df.as_known()) {
            (Some(s), Some(f)) if f.checked_mul(f) == Some(s) => Op::SymSqNorm,
            (Some(_), Some(_)) | (_, _) => return Err(weight_error(b, s, f)),
        }
    };
    b.op(op, &[s, f], vec![])
}

pub(super) fn x_weighted_sqdist(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let d = b.sub(a[1], a[2])?;
    b.op(Op::WeightedSqNorm, &[a[0], d], vec![])
}

pub(super) fn x_sqnorm_iso(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let ds = b.dim(a[0]);
    if b.dims.unify(&ds, &Dim::one()).is_err() {
        return Err(Error::new(
            ErrorKind::Dimension,
            format!("SqNormIso: the weight must be a scalar, found dimension {ds}"),
        ));
    }
    let n = b.f1(Op::SqNorm2, a[1])?;
    b.mul(a[0], n)
}

pub(super) fn x_sqnorm_diag(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let (ds, df) = (b.dim(a[0]), b.dim(a[1]));
    b.dims.unify(&ds, &df).map_err(|m| {
        Error::new(
            ErrorKind::Dimension,
            format!(
                "SqNormDiag: the weight must have the dimension of the vector: {} vs {}",
                m.left, m.right
            ),
        )
    })?;
    let sq = b.f1(Op::Square, a[1])?;
    let w = b.mul(a[0], sq)?;
    b.sum(w)
}

pub(super) fn x_sym_sqnorm(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let (ds, df) = (b.dim(a[0]), b.dim(a[1]));
    let want = df.mul(&df);
    b.dims.unify(&ds, &want).map_err(|m| {
        Error::new(ErrorKind::Dimension, format!("SymSqNorm: the weight must have dimension {} (the square of the vector's), found {}", m.right, m.left))
    })?;
    let sf = b.f2(Op::MatVecMult, a[0], a[1])?;
    b.dot(a[1], sf)
}
