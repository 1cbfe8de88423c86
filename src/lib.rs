//! # keops: kernel operations on symbolic matrices, for Rust
//!
//! Reductions `a_i = Reduction_j F(p, x_i, y_j)` over M x N matrices given by a formula,
//! computed without storing the matrix, with symbolic differentiation. Formulas are
//! compiled at build time by the [`keops!`] macro into typed, vectorized, parallel CPU
//! kernels; [`Program`] parses, differentiates and evaluates formulas at run time.
//!
//! ## The `keops!` macro
//!
//! As an item, naming a kernel type with its argument order (widths optional):
//!
//! ```
//! use keops::keops;
//!
//! keops! {
//!     /// Gaussian kernel product.
//!     pub gaussian(x_i: 3, y_j: 3, b_j: 1, g: 1) = Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)
//! }
//!
//! let x = vec![[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0]];
//! let y = vec![[0.0f32, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]];
//! let b = vec![[1.0f32], [1.0], [1.0]];
//! let a = gaussian.eval(&x, &y, &b, &[[1.0]])?;
//! assert!((a[0][0] - (1.0 + (-4.0f32).exp() + (-9.0f32).exp())).abs() < 1e-6);
//! // the gradient of <e, a> with respect to x, from the symbolic derivative
//! let e = vec![[1.0f32], [1.0]];
//! let dx: Vec<[f32; 3]> = gaussian.grad_x(&x, &y, &b, &[[1.0]], &e)?;
//! assert_eq!(dx.len(), 2);
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! As an expression, arguments in order of first appearance. Widths left undeclared become
//! const generics inferred from the arguments (and must agree where the formula says so):
//!
//! ```
//! use keops::keops;
//!
//! let knn = keops!(ArgKMin_j(SqDist(x_i, y_j), 2));
//! let x = vec![[0.0f64, 0.0]];
//! let y = vec![[3.0f64, 0.0], [1.0, 0.0], [0.0, 2.0]];
//! assert_eq!(knn.eval(&x, &y)?, vec![[1, 2]]);
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! The KeOps string syntax with aliases is accepted as tokens or as one string literal:
//!
//! ```
//! use keops::keops;
//!
//! let k = keops!("x = Vi(1); y = Vj(1); Sum_Reduction(Exp(x * y), 0)");
//! let s = k.eval(&vec![[1.0f32]], &vec![[0.0f32], [1.0]])?;
//! assert!((s[0][0] - (1.0 + 1f32.exp())).abs() < 1e-6);
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! ## Backends and device arrays
//!
//! Calls run on the GPU when an NVIDIA driver and a device are present, on the CPU
//! otherwise ([`Backend::Auto`]); [`Options`] choose per call, [`set_default_backend`] or
//! `KEOPS_BACKEND` globally, and [`last_backend`] tells where the last call ran. Inputs
//! that many calls read can stay on the device: a [`DeviceArray`] is uploaded once and read
//! in place by every GPU call (and through its host copy elsewhere).
//!
//! ```
//! use keops::{keops, Backend, DeviceArray, Options};
//!
//! let k = keops!(x_i: 2; y_j: 2; Sum_j(Exp(-SqDist(x_i, y_j))));
//! let y = vec![[0.0f32, 0.0], [1.0, 0.0]];
//! // On GPU 0 when there is one (`Backend::Emulated` here otherwise, to show the transfers).
//! let backend = if keops::gpu_available() { Backend::Gpu(0) } else { Backend::Emulated };
//! let y_dev = DeviceArray::from_rows(backend, &y)?;
//! for step in 0..3 {
//!     let s = step as f32 * 0.1;
//!     let a = k.eval_with(&Options::on(backend), &vec![[s, 0.0]], &y_dev)?;
//!     assert!((a[0][0] - ((-s * s).exp() + (-(1.0 - s) * (1.0 - s)).exp())).abs() < 1e-5);
//!     // Only x (8 bytes) went to the device; y was read in place.
//!     assert_eq!(keops::last_transfers().uploaded, 8);
//! }
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! Results can go into buffers the caller owns: `eval_into` (and `grad_x_into`, ...) writes
//! values into anything implementing [`Out`] (`&mut Vec<[T; D]>`, `&mut [[T; D]]`, nalgebra
//! and ndarray matrices, `&mut DeviceArray<T>`) and selected indices into [`OutIndices`]
//! (`&mut Vec<[usize; K]>`, ...). A [`DeviceArray`] on the device the call runs
//! on is written in place by the kernel and nothing is copied back: it can be the input of
//! the next call at no transfer; its host copy is fetched when asked for
//! ([`DeviceArray::host`], [`DeviceArray::to_rows`]) or when a call elsewhere reads it.
//!
//! ```
//! use keops::{keops, Backend, DeviceArray, Options};
//!
//! let k = keops!(x_i: 1; y_j: 1; b_j: 1; Sum_j(Exp(-Square(x_i - y_j)) * b_j));
//! let x = vec![[0.0f64], [1.0], [2.0]];
//! let backend = if keops::gpu_available() { Backend::Gpu(0) } else { Backend::Emulated };
//! let opts = Options::on(backend);
//! // Into a host buffer.
//! let mut a = vec![[0.0f64]; 3];
//! k.eval_into_with(&opts, &mut a, &x, &x, &vec![[1.0], [1.0], [1.0]])?;
//! // Into a device array, then that array as the weights of the next call.
//! let mut v = DeviceArray::from_rows(backend, &a)?;
//! k.eval_into_with(&opts, &mut v, &x, &x, &a)?;
//! assert_eq!(keops::last_transfers().downloaded, 0);
//! let w = k.eval_with(&opts, &x, &x, &v)?;
//! assert_eq!(w, k.eval_with(&opts, &x, &x, &k.eval(&x, &x, &a)?)?);
//! assert_eq!(v.to_rows::<1>()?, k.eval(&x, &x, &a)?);
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! ## Errors
//!
//! Calls return a [`KeopsError`], never panic on bad input: [`KeopsError::Input`] holds an
//! [`InputError`] that says what was expected and what was found (the types it uses are
//! in [`error`]), for example which argument has a row count that disagrees:
//!
//! ```
//! use keops::{error::Axis, keops, InputError, KeopsError};
//!
//! let k = keops!(x_i: 1; y_j: 1; b_j: 1; Sum_j(x_i * y_j * b_j));
//! let e = k.eval(&vec![[1.0f32]], &vec![[1.0f32]; 3], &vec![[1.0f32]; 2]).unwrap_err();
//! match e {
//!     KeopsError::Input(InputError::RowCount { argument, axis: Axis::J, expected, got }) => {
//!         assert_eq!((argument.as_str(), expected, got), ("b", 3, 2))
//!     }
//!     other => panic!("{other}"),
//! }
//! ```
//!
//! ## Arguments as views
//!
//! Rows with other layouts are passed as a [`View`]: made by checked constructors
//! ([`View::row_major`], [`View::col_major`], [`View::flat`], [`View::with_strides`] for
//! any strides), narrowed to some rows by [`View::rows_range`], read through accessors. A
//! shape, strides or range that reach beyond the data are an error when the view is made
//! ([`InputError::Strides`], [`InputError::RowRange`], ...), so kernels never read out of
//! bounds.
//!
//! ```
//! use keops::{keops, View};
//!
//! let k = keops!(x_i: 2; y_j: 2; Sum_j(SqDist(x_i, y_j)));
//! // Points of width 3, of which x is the first two coordinates of every other point.
//! let points = [0.0f64, 0.0, 9.0, 5.0, 5.0, 9.0, 1.0, 0.0, 9.0];
//! let x = View::with_strides(&points, 2, 2, 6, 1)?;
//! let y = View::row_major(&[0.0f64, 1.0], 1, 2)?;
//! assert_eq!(k.eval(x, y)?, vec![[1.0], [1.0 + 1.0]]);
//! assert_eq!(k.eval(x.rows_range(1..)?, y)?, vec![[2.0]]);
//! assert!(View::with_strides(&points, 3, 2, 6, 1).is_err()); // a third row is beyond
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! ## Row counts without variables
//!
//! The numbers of rows M (of i) and N (of j) come from the arguments. A kernel with no
//! argument indexed by j (or by i) takes N = 1 (M = 1), as KeOps does, unless
//! [`Options::n`] ([`Options::m`]) says otherwise; given with arguments of that index,
//! the option must agree with their rows ([`InputError::OptionRowCount`] names both).
//!
//! ```
//! use keops::{keops, Options};
//!
//! let k = keops!(x_i: 1; Sum_j(Exp(-SqNorm2(x_i))));
//! let x = vec![[0.0f64], [1.0]];
//! let a = k.eval(&x)?; // one term
//! assert!((a[0][0] - 1.0).abs() < 1e-12 && (a[1][0] - (-1.0f64).exp()).abs() < 1e-12);
//! let five = Options { n: Some(5), ..Options::default() };
//! let a = k.eval_with(&five, &x)?; // five equal terms
//! assert!((a[0][0] - 5.0).abs() < 1e-12 && (a[1][0] - 5.0 * (-1.0f64).exp()).abs() < 1e-12);
//! let bad = Options { m: Some(3), ..Options::default() };
//! assert!(k.eval_with(&bad, &x).unwrap_err().to_string().contains("M = 3"));
//! # Ok::<(), keops::KeopsError>(())
//! ```
//!
//! ## At run time
//!
//! ```
//! use keops::Program;
//! use keops::ir::eval::{Array, EvalOptions};
//!
//! let p: Program = "Sum_j(Exp(-SqDist(x_i, y_j)))".parse()?;
//! let grad = p.grad(0, "e")?; // the gradient program of <e, output> with respect to x
//! let (x, y, e) = ([0.0, 1.0], [0.5], [1.0, 1.0]);
//! let out = grad.evaluate(&[Array::new(&x, 2, 1), Array::new(&y, 1, 1), Array::new(&e, 2, 1)], &EvalOptions::default())?;
//! assert!((out.values[0] - 2.0 * 0.5 * (-0.25f64).exp()).abs() < 1e-12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[allow(unused_extern_crates)] // lets generated code name `::keops` inside this crate too
extern crate self as keops;

pub use keops_ir as ir;
pub use keops_ir::{Error, ErrorKind, FormulaError, Program, ReductionKind};
pub use keops_macros::keops;
pub use keops_runtime::cpu::CpuOptions;
pub use keops_runtime::error;
pub use keops_runtime::gpu::driver::{
    GpuError, available as gpu_available, device_count as gpu_device_count,
    device_name as gpu_device_name,
};
pub use keops_runtime::{
    Arg, Backend, Dest, DeviceArray, Flat, InputError, KeopsError, KeopsFloat, Options, Out,
    OutIndices, Transfers, View, default_backend, last_backend, last_transfers,
    set_default_backend,
};

#[doc(hidden)]
pub mod __private {
    pub use keops_runtime as runtime;
}
