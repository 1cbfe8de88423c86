//! Indexing: coordinates, slices, concatenation, one-hot vectors, and their adjoints.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::{Dim, DimConstraint};
use crate::error::Result;
use crate::graph::{NodeId, Param};
use crate::lower::builder::Lower;
use crate::lower::scalar::Reg;
use crate::ops::Op;
use crate::real::Real;

fn nonneg(v: i64, what: &str) -> DimResult<usize> {
    usize::try_from(v).map_err(|_| format!("{what} must be non-negative, found {v}"))
}

// ---------------------------------------------------------------- dimensions

pub(super) fn dim_elem(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let m = nonneg(cx.int(0), "the index")?;
    let d = cx.arg(0);
    cx.require(DimConstraint::AtLeast(d.clone(), m + 1), |_| {
        match d.as_known() {
            Some(n) if n > 0 => format!("index {m} is out of range for a vector of dimension {n} (valid indices are 0 to {})", n - 1),
            _ => format!("index {m} is out of range for a vector of dimension {d}"),
        }
    })?;
    Ok(Dim::one())
}

pub(super) fn dim_elemt(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    cx.scalar(0, "the argument of ElemT")?;
    let (n, m) = (
        nonneg(cx.int(0), "the dimension")?,
        nonneg(cx.int(1), "the index")?,
    );
    if m >= n {
        return Err(format!("index {m} is out of range for the dimension {n}"));
    }
    cx.width(Dim::known(n))
}

pub(super) fn dim_extract(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let (start, len) = (
        nonneg(cx.int(0), "the start")?,
        nonneg(cx.int(1), "the length")?,
    );
    if len == 0 {
        return Err("the length must be at least 1".into());
    }
    let out = cx.width(Dim::known(len))?;
    let d = cx.arg(0);
    cx.require(DimConstraint::AtLeast(d.clone(), start + len), |_| {
        format!(
            "coordinates {start}..{} are out of range for a vector of dimension {d}",
            start + len
        )
    })?;
    Ok(out)
}

pub(super) fn dim_extractt(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let (start, total) = (
        nonneg(cx.int(0), "the start")?,
        nonneg(cx.int(1), "the dimension")?,
    );
    if total == 0 {
        // A vector of width 0 is no width: the text form could not even write its zero.
        return Err("the dimension must be at least 1".into());
    }
    let out = cx.width(Dim::known(total))?;
    let d = cx.arg(0);
    let room = total
        .checked_sub(start)
        .ok_or_else(|| format!("the start {start} is beyond the dimension {total}"))?;
    cx.require(DimConstraint::AtMost(d.clone(), room), |_| {
        format!("a vector of dimension {d} placed at {start} does not fit in dimension {total}")
    })?;
    Ok(out)
}

pub(super) fn dim_concat(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let (f, g) = (cx.arg(0), cx.arg(1));
    cx.width(f.checked_add(&g).unwrap_or_else(Dim::overflowed))
}

pub(super) fn dim_onehot(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    cx.scalar(0, "the argument of OneHot")?;
    let n = nonneg(cx.int(0), "the dimension")?;
    if n == 0 {
        return Err("the dimension must be at least 1".into());
    }
    cx.width(Dim::known(n))
}

pub(super) fn dim_sumt(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    cx.scalar(0, "the argument of SumT")?;
    let n = nonneg(cx.int(0), "the dimension")?;
    if n == 0 {
        return Err("the dimension must be at least 1".into());
    }
    cx.width(Dim::known(n))
}

// ---------------------------------------------------------------- values

pub(super) fn elem<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out[0] = a.args[0][a.int(0) as usize];
}
pub(super) fn elemt<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::zero());
    out[a.int(1) as usize] = a.args[0][0];
}
pub(super) fn extract<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let s = a.int(0) as usize;
    out.copy_from_slice(&a.args[0][s..s + out.len()]);
}
pub(super) fn extractt<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let s = a.int(0) as usize;
    out.fill(R::zero());
    out[s..s + a.args[0].len()].copy_from_slice(a.args[0]);
}
pub(super) fn concat<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let n = a.args[0].len();
    out[..n].copy_from_slice(a.args[0]);
    out[n..].copy_from_slice(a.args[1]);
}
/// 1 at the coordinate `floor(f + 0.5)` (KeOps rounds this way), when it is in range.
pub(super) fn onehot<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let pos = (a.args[0][0] + R::of(0.5)).floor();
    for (k, o) in out.iter_mut().enumerate() {
        *o = if pos == R::of(k as f64) {
            R::one()
        } else {
            R::zero()
        };
    }
}
pub(super) fn sumt<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(a.args[0][0]);
}

// ---------------------------------------------------------------- lowering

pub(super) fn l_elem(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![a.args[0][a.int(0) as usize]]
}
pub(super) fn l_elemt(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let zero = l.cst(0.0);
    let m = a.int(1) as usize;
    (0..a.out_dim)
        .map(|k| if k == m { a.args[0][0] } else { zero })
        .collect()
}
pub(super) fn l_extract(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let s = a.int(0) as usize;
    a.args[0][s..s + a.out_dim].to_vec()
}
pub(super) fn l_extractt(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let zero = l.cst(0.0);
    let s = a.int(0) as usize;
    let n = a.args[0].len();
    (0..a.out_dim)
        .map(|k| {
            if k >= s && k < s + n {
                a.args[0][k - s]
            } else {
                zero
            }
        })
        .collect()
}
pub(super) fn l_concat(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    a.args[0].iter().chain(&a.args[1]).copied().collect()
}
pub(super) fn l_onehot(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let half = l.cst(0.5);
    let t = l.add(a.args[0][0], half);
    let pos = l.f1(crate::lower::scalar::SOp::Floor, t);
    (0..a.out_dim)
        .map(|k| {
            let kr = l.cst(k as f64);
            let p = l.eq(pos, kr);
            l.indicator(p)
        })
        .collect()
}
pub(super) fn l_sumt(_: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![a.args[0][0]; a.out_dim]
}

// ---------------------------------------------------------------- derivatives

pub(super) fn d_elem(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let n = b.known_dim(c.args[0], "the gradient of Elem")?;
    b.elemt(e, n, c.int(0) as usize)
}
pub(super) fn d_elemt(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.elem(e, c.int(1) as usize)
}
pub(super) fn d_extract(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let n = b.known_dim(c.args[0], "the gradient of Extract")?;
    b.extractt(e, c.int(0) as usize, n)
}
pub(super) fn d_extractt(b: &mut Builder<'_>, c: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    let n = b.known_dim(c.args[0], "the gradient of ExtractT")?;
    b.extract(e, c.int(0) as usize, n)
}
pub(super) fn d_concat(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let da = b.known_dim(c.args[0], "the gradient of Concat")?;
    let db = b.known_dim(c.args[1], "the gradient of Concat")?;
    if k == 0 {
        b.extract(e, 0, da)
    } else {
        b.extract(e, da, db)
    }
}
pub(super) fn d_sumt(b: &mut Builder<'_>, _: &Call, e: NodeId, _: usize) -> Result<NodeId> {
    b.op(Op::Sum, &[e], Vec::<Param>::new())
}
