//! B-spline bases and soft dynamic time warping.
//!
//! - `BSpline(knots, x, order)`: the `K - order - 1` B-spline basis functions of the given
//!   order over the `K` knots, at the scalar `x` (Cox-de Boor recursion, as KeOps 2.3: at
//!   order 0 the indicator of `t[j] <= x < t[j+1]`, and `0 / 0 := 0` where knots coincide).
//! - `SoftDTW_SqDist(x, y, gamma)`: soft-DTW between the sequences of scalars `x` (length
//!   n) and `y` (length m) with the cost `(x_i - y_j)^2` and the soft minimum of temperature
//!   `gamma`: `r[0][0] = d(0, 0)`, the first row and column are cumulative sums, and
//!   `r[i][j] = d(i, j) + softmin(r[i-1][j-1], r[i-1][j], r[i][j-1])`, the soft minimum
//!   computed in the stable form `min - gamma log(sum_k exp((min - r_k) / gamma))`.
//! - `GradSoftDTW_SqDist(x, y, gamma)`: the gradient of `SoftDTW_SqDist` with respect to
//!   `x` then `y` (dimension n + m), by the backward recursion of Cuturi and Blondel.
//!
//! Every loop is fully unrolled when lowered: the sequences are short.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::{Dim, DimConstraint};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::NodeId;
use crate::lower::builder::Lower;
use crate::lower::scalar::{Reg, SOp};
use crate::ops::Op;
use crate::real::Real;

// ---------------------------------------------------------------- dimensions

pub(super) fn dim_bspline(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let order = usize::try_from(cx.int(0))
        .map_err(|_| format!("the order must be non-negative, found {}", cx.int(0)))?;
    if order > crate::limits::MAX_WIDTH {
        // More knots than any width holds.
        cx.solver.note_past_limit();
        return Err(format!(
            "the order {order} is past the limit {}",
            crate::limits::MAX_WIDTH
        ));
    }
    let need = order + 2;
    cx.scalar(1, "the point x where the B-splines are evaluated")?;
    let k = cx.arg(0);
    cx.require(DimConstraint::AtLeast(k.clone(), need), |_| {
        format!("B-splines of order {order} need at least {need} knots, found {k}")
    })?;
    if let Some(n) = k.as_known() {
        let work = super::node_work(Op::BSpline, &[n, 1], cx.params, n - order - 1);
        cx.work(work, || {
            format!("the recursion of order {order} over {n} knots")
        })?;
    }
    Ok(k.sub(&Dim::known(order + 1)))
}

fn dim_sequences(cx: &mut DimCx<'_>) -> DimResult<()> {
    cx.scalar(2, "the temperature gamma")
}

/// The `n x m` table of the dynamic programming, checked against
/// [`crate::limits::MAX_WORK`] when both lengths are known (at instantiation otherwise).
fn dim_table(cx: &mut DimCx<'_>, op: Op) -> DimResult<()> {
    let (x, y) = (cx.arg(0), cx.arg(1));
    if let (Some(n), Some(m)) = (x.as_known(), y.as_known()) {
        let work = super::node_work(op, &[n, m, 1], &[], 1);
        cx.work(work, || {
            format!("the table of sequences of lengths {n} and {m}")
        })?;
    }
    Ok(())
}

pub(super) fn dim_softdtw(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    dim_sequences(cx)?;
    dim_table(cx, Op::SoftDTW_SqDist)?;
    Ok(Dim::one())
}

pub(super) fn dim_grad_softdtw(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    dim_sequences(cx)?;
    dim_table(cx, Op::GradSoftDTW_SqDist)?;
    let (x, y) = (cx.arg(0), cx.arg(1));
    cx.width(x.checked_add(&y).unwrap_or_else(Dim::overflowed))
}

// ---------------------------------------------------------------- B-splines

/// `(x - lo) / (hi - lo)` when `lo < hi`, else 0.
fn ratio<R: Real>(x: R, lo: R, hi: R) -> R {
    if lo < hi {
        (x - lo) / (hi - lo)
    } else {
        R::zero()
    }
}

pub(super) fn bspline<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (t, x) = (a.args[0], a.args[1][0]);
    let order = a.int(0).max(0) as usize;
    let nb = t.len().saturating_sub(1);
    if nb < order + 1 || out.len() > nb {
        out.fill(R::nan());
        return;
    }
    // Order 0: indicators of the knot intervals, then the recursion in place:
    // B[i, k] = w(i, k) B[i, k-1] + (1 - w(i+1, k)) B[i+1, k-1], w(i, k) = (x - t_i) / (t_{i+k} - t_i).
    let mut b: Vec<R> = (0..nb)
        .map(|j| {
            if t[j] <= x && x < t[j + 1] {
                R::one()
            } else {
                R::zero()
            }
        })
        .collect();
    for k in 1..=order {
        for i in 0..nb - k {
            let w1 = ratio(x, t[i], t[i + k]);
            let w2 = ratio(x, t[i + 1], t[i + 1 + k]);
            b[i] = w1 * b[i] + (R::one() - w2) * b[i + 1];
        }
    }
    let n = out.len();
    out.copy_from_slice(&b[..n]);
}

fn l_ratio(l: &mut Lower, x: Reg, lo: Reg, hi: Reg) -> Reg {
    let ok = l.lt(lo, hi);
    let num = l.sub(x, lo);
    let den = l.sub(hi, lo);
    let q = l.div(num, den);
    let zero = l.cst(0.0);
    l.select(ok, q, zero)
}

pub(super) fn l_bspline(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (t, x) = (&a.args[0], a.args[1][0]);
    let order = a.int(0).max(0) as usize;
    let nb = t.len().saturating_sub(1);
    if nb < order + 1 || a.out_dim > nb {
        return vec![l.cst(f64::NAN); a.out_dim];
    }
    let mut b: Vec<Reg> = (0..nb)
        .map(|j| {
            let ge = l.le(t[j], x);
            let lt = l.lt(x, t[j + 1]);
            let inside = l.and(ge, lt);
            l.indicator(inside)
        })
        .collect();
    let one = l.cst(1.0);
    for k in 1..=order {
        for i in 0..nb - k {
            let w1 = l_ratio(l, x, t[i], t[i + k]);
            let w2 = l_ratio(l, x, t[i + 1], t[i + 1 + k]);
            let left = l.mul(w1, b[i]);
            let c = l.sub(one, w2);
            let right = l.mul(c, b[i + 1]);
            b[i] = l.add(left, right);
        }
    }
    b.truncate(a.out_dim);
    b
}

// ---------------------------------------------------------------- soft-DTW

/// The smaller of two values (`a` when they compare equal or either is NaN).
fn min2<R: Real>(a: R, b: R) -> R {
    if b < a { b } else { a }
}

/// The matrix `r` of the forward recursion (row-major, `r[i * m + j]`).
fn softdtw_forward<R: Real>(x: &[R], y: &[R], g: R) -> Vec<R> {
    let (n, m) = (x.len(), y.len());
    let mut r = vec![R::zero(); n * m];
    for i in 0..n {
        for j in 0..m {
            let d = x[i] - y[j];
            let d2 = d * d;
            r[i * m + j] = match (i, j) {
                (0, 0) => d2,
                (_, 0) => d2 + r[(i - 1) * m],
                (0, _) => d2 + r[j - 1],
                _ => {
                    let (diag, up, left) =
                        (r[(i - 1) * m + j - 1], r[(i - 1) * m + j], r[i * m + j - 1]);
                    let mn = min2(min2(diag, left), up);
                    let s =
                        ((mn - diag) / g).exp() + ((mn - up) / g).exp() + ((mn - left) / g).exp();
                    d2 + (mn - g * s.ln())
                }
            };
        }
    }
    r
}

pub(super) fn softdtw<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (x, y, g) = (a.args[0], a.args[1], a.args[2][0]);
    out[0] = softdtw_forward(x, y, g).last().copied().unwrap_or(R::nan());
}

/// The weight of cell `(i, j)` in the cotangent of its predecessor `(pi, pj)`:
/// `d r[i][j] / d r[pi][pj]`, which is exactly 1 on the first row and column (cumulative
/// sums) and `exp((r[i][j] - d(i, j) - r[pi][pj]) / gamma)` inside.
fn softdtw_weight<R: Real>(
    x: &[R],
    y: &[R],
    g: R,
    r: &[R],
    (i, j): (usize, usize),
    (pi, pj): (usize, usize),
) -> Option<R> {
    let m = y.len();
    if i == 0 || j == 0 {
        return None;
    }
    let d = x[i] - y[j];
    Some(((r[i * m + j] - r[pi * m + pj] - d * d) / g).exp())
}

pub(super) fn grad_softdtw<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (x, y, g) = (a.args[0], a.args[1], a.args[2][0]);
    let (n, m) = (x.len(), y.len());
    if n == 0 || m == 0 || out.len() != n + m {
        out.fill(R::nan());
        return;
    }
    let r = softdtw_forward(x, y, g);
    // e[i][j] = d r[n-1][m-1] / d r[i][j], from the last cell backwards: the sum over the
    // successors (i+1, j), (i, j+1), (i+1, j+1) of their weight times their cotangent.
    let mut e = vec![R::zero(); n * m];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            if i == n - 1 && j == m - 1 {
                e[i * m + j] = R::one();
                continue;
            }
            let mut acc: Option<R> = None;
            for (si, sj) in [(i + 1, j), (i, j + 1), (i + 1, j + 1)] {
                if si >= n || sj >= m {
                    continue;
                }
                let es = e[si * m + sj];
                let term = match softdtw_weight(x, y, g, &r, (si, sj), (i, j)) {
                    None => es,
                    Some(w) => w * es,
                };
                acc = Some(match acc {
                    None => term,
                    Some(s) => s + term,
                });
            }
            e[i * m + j] = acc.unwrap_or(R::zero());
        }
    }
    // d/dx_i = sum_j 2 (x_i - y_j) e[i][j], d/dy_j = -sum_i 2 (x_i - y_j) e[i][j].
    let two = R::of(2.0);
    let term = |i: usize, j: usize| two * (x[i] - y[j]) * e[i * m + j];
    for (i, o) in out[..n].iter_mut().enumerate() {
        *o = (1..m).fold(term(i, 0), |s, j| s + term(i, j));
    }
    for (j, o) in out[n..].iter_mut().enumerate() {
        *o = -(1..n).fold(term(0, j), |s, i| s + term(i, j));
    }
}

fn l_min2(l: &mut Lower, a: Reg, b: Reg) -> Reg {
    let smaller = l.lt(b, a);
    l.select(smaller, b, a)
}

/// Registers of `x_i - y_j` and its square.
fn l_diff(l: &mut Lower, x: &[Reg], y: &[Reg], i: usize, j: usize) -> (Reg, Reg) {
    let d = l.sub(x[i], y[j]);
    (d, l.mul(d, d))
}

fn l_softdtw_forward(l: &mut Lower, x: &[Reg], y: &[Reg], g: Reg) -> Vec<Reg> {
    let (n, m) = (x.len(), y.len());
    let mut r: Vec<Reg> = Vec::with_capacity(n * m);
    for i in 0..n {
        for j in 0..m {
            let (_, d2) = l_diff(l, x, y, i, j);
            let v = match (i, j) {
                (0, 0) => d2,
                (_, 0) => l.add(d2, r[(i - 1) * m]),
                (0, _) => l.add(d2, r[j - 1]),
                _ => {
                    let (diag, up, left) =
                        (r[(i - 1) * m + j - 1], r[(i - 1) * m + j], r[i * m + j - 1]);
                    let mn = l_min2(l, diag, left);
                    let mn = l_min2(l, mn, up);
                    let mut terms = Vec::with_capacity(3);
                    for v in [diag, up, left] {
                        let t = l.sub(mn, v);
                        let t = l.div(t, g);
                        terms.push(l.f1(SOp::Exp, t));
                    }
                    let s = l.sum(&terms);
                    let lg = l.f1(SOp::Log, s);
                    let gl = l.mul(g, lg);
                    let soft = l.sub(mn, gl);
                    l.add(d2, soft)
                }
            };
            r.push(v);
        }
    }
    r
}

pub(super) fn l_softdtw(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (x, y, g) = (&a.args[0], &a.args[1], a.args[2][0]);
    let r = l_softdtw_forward(l, x, y, g);
    match r.last() {
        Some(v) => vec![*v],
        None => vec![l.cst(f64::NAN)],
    }
}

pub(super) fn l_grad_softdtw(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (x, y, g) = (&a.args[0], &a.args[1], a.args[2][0]);
    let (n, m) = (x.len(), y.len());
    if n == 0 || m == 0 || a.out_dim != n + m {
        return vec![l.cst(f64::NAN); a.out_dim];
    }
    let r = l_softdtw_forward(l, x, y, g);
    let one = l.cst(1.0);
    let mut e: Vec<Reg> = vec![one; n * m];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            if i == n - 1 && j == m - 1 {
                continue;
            }
            let mut terms = Vec::with_capacity(3);
            for (si, sj) in [(i + 1, j), (i, j + 1), (i + 1, j + 1)] {
                if si >= n || sj >= m {
                    continue;
                }
                let es = e[si * m + sj];
                terms.push(if si == 0 || sj == 0 {
                    es
                } else {
                    let (_, d2) = l_diff(l, x, y, si, sj);
                    let t = l.sub(r[si * m + sj], r[i * m + j]);
                    let t = l.sub(t, d2);
                    let t = l.div(t, g);
                    let w = l.f1(SOp::Exp, t);
                    l.mul(w, es)
                });
            }
            e[i * m + j] = l.sum(&terms);
        }
    }
    let two = l.cst(2.0);
    let term = |l: &mut Lower, i: usize, j: usize| {
        let (d, _) = l_diff(l, x, y, i, j);
        let t = l.mul(two, d);
        l.mul(t, e[i * m + j])
    };
    let mut out = Vec::with_capacity(n + m);
    for i in 0..n {
        let ts: Vec<Reg> = (0..m).map(|j| term(l, i, j)).collect();
        out.push(l.sum(&ts));
    }
    for j in 0..m {
        let ts: Vec<Reg> = (0..n).map(|i| term(l, i, j)).collect();
        let s = l.sum(&ts);
        out.push(l.neg(s));
    }
    out
}

pub(super) fn d_softdtw(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    if k == 2 {
        return Err(Error::new(
            ErrorKind::Differentiation,
            "SoftDTW_SqDist: the gradient with respect to gamma is not implemented (KeOps 2.3 lacks it too)",
        )
        .help("make gamma a constant or a parameter that is not differentiated"));
    }
    let (x, y) = (c.args[0], c.args[1]);
    let n = b.known_dim(x, "the gradient of SoftDTW_SqDist")?;
    let m = b.known_dim(y, "the gradient of SoftDTW_SqDist")?;
    let grad = b.op(Op::GradSoftDTW_SqDist, &c.args, vec![])?;
    let scaled = b.mul(grad, e)?;
    if k == 0 {
        b.extract(scaled, 0, n)
    } else {
        b.extract(scaled, n, m)
    }
}
