//! Work in progress: every entry reports that it is not implemented yet.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{NodeId, Param};
use crate::lower::{Lower, Reg};
use crate::real::Real;

pub(super) fn dim_matvec(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_vecmat(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_tensorprod(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_tensordot(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn matvec<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_matvec(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn vecmat<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_vecmat(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn tensorprod<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_tensorprod(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn tensordot<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_tensordot(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn d_matvec(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_vecmat(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_tensorprod(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_tensordot(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn x_kron(_: &mut Builder<'_>, _: &[NodeId], _: &[Param]) -> Result<NodeId> {
    Err(Error::new(ErrorKind::Dimension, "not implemented yet"))
}
