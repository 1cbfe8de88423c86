//! # keops: kernel operations on symbolic matrices, for Rust
//!
//! Reductions `a_i = Reduction_j F(p, x_i, y_j)` over M x N matrices given by a formula,
//! computed without storing the matrix, with symbolic differentiation. See the README.
//!
//! ```
//! use keops::keops;
//! // a Gaussian kernel product, compiled at build time
//! let k = keops!(x_i: 3; y_j: 3; b_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j));
//! let x = vec![[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0]];
//! let y = vec![[0.0f32, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]];
//! let b = vec![[1.0f32], [1.0], [1.0]];
//! let a = k.eval(&x, &y, &b).unwrap();
//! assert!((a[0][0] - (1.0 + (-4.0f32).exp() + (-9.0f32).exp())).abs() < 1e-6);
//! ```

#[allow(unused_extern_crates)] // lets generated code name `::keops` inside this crate too
extern crate self as keops;

pub use keops_ir as ir;
pub use keops_ir::{Error, ErrorKind, FormulaError, Program, ReductionKind};
pub use keops_macros::keops;
pub use keops_runtime::cpu::CpuOptions as Options;
pub use keops_runtime::{Arg, Flat, KeopsError, KeopsFloat, View};

#[doc(hidden)]
pub mod __private {
    pub use keops_runtime as runtime;
}
