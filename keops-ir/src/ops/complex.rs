//! Work in progress: every entry reports that it is not implemented yet.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{NodeId, Param};
use crate::lower::{Lower, Reg};
use crate::real::Real;

pub(super) fn dim_half(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_double(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_even(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_broadcast2(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_two(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_sumt(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn dim_realscal(_: &mut DimCx<'_>) -> DimResult<Dim> {
    Err("not implemented yet".into())
}
pub(super) fn real<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_real(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn imag<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_imag(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn real2complex<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_real2complex(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn imag2complex<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_imag2complex(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn conj<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_conj(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn add<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_add(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn sub<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_sub(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn mul<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_mul(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn div<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_div(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn exp<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_exp(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn exp1j<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_exp1j(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn abs<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_abs(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn square_abs<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_square_abs(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn sum<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_sum(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn sumt<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_sumt(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn realscal<R: Real>(_: &VecArgs<'_, R>, out: &mut [R]) {
    out.fill(R::nan())
}
pub(super) fn l_realscal(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    vec![l.cst(f64::NAN); a.out_dim]
}
pub(super) fn d_real(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_imag(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_real2complex(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_imag2complex(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_conj(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_add(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_sub(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_mul(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_div(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_exp(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_exp1j(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_abs(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_square_abs(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_sum(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_sumt(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn d_realscal(_: &mut Builder<'_>, _: &Call, _: NodeId, _: usize) -> Result<NodeId> {
    Err(Error::new(
        ErrorKind::Differentiation,
        "not implemented yet",
    ))
}
pub(super) fn x_angle(_: &mut Builder<'_>, _: &[NodeId], _: &[Param]) -> Result<NodeId> {
    Err(Error::new(ErrorKind::Dimension, "not implemented yet"))
}
