//! Work in progress: every entry reports that it is not implemented yet.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::NodeId;
use crate::lower::{Lower, Reg};
use crate::real::Real;

pub(super) fn dim_bspline(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_softdtw(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_grad_softdtw(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn bspline<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_bspline(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn softdtw<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_softdtw(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn grad_softdtw<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_grad_softdtw(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn d_softdtw(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
