//! Calculus operations: rewritten symbolically into primitive formulas when built.

use crate::builder::Builder;
use crate::diff;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{NodeId, Param};
use crate::ops::Op;

pub(super) fn x_grad(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let v = diff::wrt(b, a[1], Op::Grad)?;
    diff::grad(b, a[0], v, a[2])
}

pub(super) fn x_diff(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let v = diff::wrt(b, a[1], Op::Diff)?;
    diff::diff(b, a[0], v, a[2])
}

pub(super) fn x_laplacian(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let v = diff::wrt(b, a[1], Op::Laplacian)?;
    let df = b.dim(a[0]);
    if b.dims.unify(&df, &crate::dim::Dim::one()).is_err() {
        return Err(Error::new(
            ErrorKind::Dimension,
            format!("Laplacian: the formula must be a scalar, found dimension {df}"),
        )
        .help(
            "take the Laplacian of each coordinate separately, e.g. Laplacian(Elem(f, 0), x_i)",
        ));
    }
    let one = b.cst(1.0);
    let g = diff::grad(b, a[0], v, one)?;
    diff::trace_jacobian(b, g, v, "Laplacian")
}

pub(super) fn x_divergence(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let v = diff::wrt(b, a[1], Op::Divergence)?;
    let (df, dv) = (b.dim(a[0]), b.graph.var(v).dim.clone());
    b.dims.unify(&df, &dv).map_err(|m| {
        Error::new(
            ErrorKind::Dimension,
            format!(
                "Divergence: the formula has dimension {} and the variable {}; they must be equal",
                m.left, m.right
            ),
        )
    })?;
    diff::trace_jacobian(b, a[0], v, "Divergence")
}

pub(super) fn x_trace(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let v = diff::wrt(b, a[1], Op::TraceOperator)?;
    diff::trace_jacobian(b, a[0], v, "TraceOperator")
}

pub(super) fn x_gradmatrix(b: &mut Builder<'_>, a: &[NodeId], _: &[Param]) -> Result<NodeId> {
    let v = diff::wrt(b, a[1], Op::GradMatrix)?;
    let n = b.known_dim(a[0], "GradMatrix")?;
    let mut rows: Option<NodeId> = None;
    for k in 0..n {
        let one = b.cst(1.0);
        let basis = b.elemt(one, n, k)?;
        let g = diff::grad(b, a[0], v, basis)?;
        rows = Some(match rows {
            None => g,
            Some(r) => b.concat(r, g)?,
        });
    }
    rows.ok_or_else(|| {
        Error::new(
            ErrorKind::Dimension,
            "GradMatrix of a formula of dimension 0",
        )
    })
}
