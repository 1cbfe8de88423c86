//! # keops: kernel operations on symbolic matrices, for Rust
//!
//! Reductions `a_i = Reduction_j F(p, x_i, y_j)` over M x N matrices given by a formula,
//! computed without storing the matrix, with symbolic differentiation. See the README.
//!
//! This crate re-exports the parts: the formula compiler ([`ir`]).

pub use keops_ir as ir;
pub use keops_ir::{Error, ErrorKind, FormulaError, Program, ReductionKind};
