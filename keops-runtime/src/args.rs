//! Typed arguments and results of generated kernels.
//!
//! A kernel method takes each variable as `impl Arg<T, D>`: the width `D` is part of the
//! type for `&[[T; D]]` (so a width mismatch between variables that must agree is a
//! compile error), and checked at run time for flat slices ([`Flat`]) and dynamic
//! matrices.

use crate::error::{Axis, Holder, InputError, KeopsError, Result, Role};
use crate::kernel::KeopsFloat;
use crate::view::View;
use keops_ir::eval::Output;

/// An argument of width `D`: anything that can be viewed as rows of `D` values.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a kernel argument of width {D} and element type `{T}`",
    label = "expected rows of {D} values of type `{T}`",
    note = "pass `&Vec<[T; {D}]>`, `&[[T; {D}]]`, `Flat::new(&slice, rows)` or a `View`; every argument of one call has the same float type"
)]
pub trait Arg<T, const D: usize> {
    /// The rows, checked to have width `D`.
    fn view(&self) -> Result<View<'_, T>>;
}

impl<T: Copy, const D: usize> Arg<T, D> for &[[T; D]] {
    fn view(&self) -> Result<View<'_, T>> {
        View::row_major(self.as_flattened(), self.len(), D)
    }
}

impl<T: Copy, const D: usize> Arg<T, D> for &Vec<[T; D]> {
    fn view(&self) -> Result<View<'_, T>> {
        View::row_major(self.as_flattened(), self.len(), D)
    }
}

impl<T: Copy, const D: usize, const N: usize> Arg<T, D> for &[[T; D]; N] {
    fn view(&self) -> Result<View<'_, T>> {
        View::row_major(self.as_flattened(), N, D)
    }
}

/// A flat row-major slice with its row count: `Flat::new(&data, rows)`. Its width
/// (`data.len() / rows`) is checked against the kernel at run time.
#[derive(Copy, Clone, Debug)]
pub struct Flat<'a, T> {
    /// The values, row after row.
    pub data: &'a [T],
    /// The number of rows.
    pub rows: usize,
}

impl<'a, T> Flat<'a, T> {
    /// `rows` rows stored one after the other in `data`.
    pub fn new(data: &'a [T], rows: usize) -> Self {
        Flat { data, rows }
    }
}

impl<T: Copy, const D: usize> Arg<T, D> for Flat<'_, T> {
    fn view(&self) -> Result<View<'_, T>> {
        if self.rows.checked_mul(D) != Some(self.data.len()) {
            return Err(InputError::Length {
                holder: Holder::Rows,
                role: Role::Argument,
                rows: self.rows,
                cols: D,
                got: self.data.len(),
            }
            .into());
        }
        View::row_major(self.data, self.rows, D)
    }
}

impl<T: Copy, const D: usize> Arg<T, D> for View<'_, T> {
    fn view(&self) -> Result<View<'_, T>> {
        if self.cols() != D {
            return Err(InputError::Width {
                holder: Holder::Rows,
                role: Role::Argument,
                expected: D,
                got: self.cols(),
            }
            .into());
        }
        Ok(*self)
    }
}

/// The rows of the argument `name` (its [`Arg::view`]), an input error naming it
/// ([`InputError::Argument`]): how the kernels' methods read their arguments.
pub fn named_view<'a, T, const D: usize, A: Arg<T, D> + ?Sized>(
    name: &str,
    arg: &'a A,
) -> Result<View<'a, T>> {
    arg.view().map_err(|e| match e {
        KeopsError::Input(error) => InputError::Argument {
            argument: name.to_string(),
            error: Box::new(error),
        }
        .into(),
        other => other,
    })
}

/// Row counts M (of i-variables) and N (of j-variables) from the arguments' views, each
/// given with its indexing (0: i, 1: j, 2: parameter, 3: both i and j), and the call's
/// options `m` and `n` ([`Options::m`](crate::Options::m), [`Options::n`](crate::Options::n)).
///
/// An argument's rows must equal the option of its index when it is given
/// ([`InputError::OptionRowCount`]), and those of the arguments before it indexed the same
/// way ([`InputError::RowCount`]). An index that neither an argument nor an option sizes has
/// one row, as in KeOps (pykeops' `get_sizes`: a formula with no `Vj` variable sums one
/// term).
pub fn sizes<T>(
    views: &[(&str, u8, &View<'_, T>)],
    m: Option<usize>,
    n: Option<usize>,
) -> Result<(usize, usize)> {
    // Each index's rows, and whether the options gave them.
    let (mut m, mut n) = (m.map(|r| (r, true)), n.map(|r| (r, true)));
    for (name, cat, v) in views {
        let rows = v.rows();
        let axes: &[Axis] = match cat {
            0 => &[Axis::I],
            1 => &[Axis::J],
            3 => &[Axis::I, Axis::J],
            _ => {
                if rows != 1 {
                    return Err(InputError::ParameterRows {
                        argument: name.to_string(),
                        got: rows,
                    }
                    .into());
                }
                &[]
            }
        };
        for &axis in axes {
            let slot = match axis {
                Axis::I => &mut m,
                Axis::J => &mut n,
            };
            match *slot {
                Some((option, true)) if option != rows => {
                    return Err(InputError::OptionRowCount {
                        argument: name.to_string(),
                        axis,
                        option,
                        got: rows,
                    }
                    .into());
                }
                Some((expected, false)) if expected != rows => {
                    return Err(InputError::RowCount {
                        argument: name.to_string(),
                        axis,
                        expected,
                        got: rows,
                    }
                    .into());
                }
                Some(_) => {}
                None => *slot = Some((rows, false)),
            }
        }
    }
    Ok((m.map_or(1, |s| s.0), n.map_or(1, |s| s.0)))
}

/// The values of an output as rows of `D`.
pub fn value_rows<T: Copy + Default, const D: usize>(o: &Output<T>) -> Vec<[T; D]> {
    o.values
        .chunks_exact(D.max(1))
        .map(|c| std::array::from_fn(|k| if D == 0 { T::default() } else { c[k] }))
        .collect()
}

/// The values of an output as rows of `K` groups of `D` (KMin results).
pub fn value_groups<T: Copy + Default, const K: usize, const D: usize>(
    o: &Output<T>,
) -> Vec<[[T; D]; K]> {
    o.values
        .chunks_exact((K * D).max(1))
        .map(|c| std::array::from_fn(|k| std::array::from_fn(|d| c[k * D + d])))
        .collect()
}

/// The indices of an output as rows of `D` (`usize::MAX` where nothing was selected).
pub fn index_rows<T, const D: usize>(o: &Output<T>) -> Vec<[usize; D]> {
    o.indices
        .chunks_exact(D.max(1))
        .map(|c| std::array::from_fn(|k| to_index(c[k])))
        .collect()
}

/// The indices of an output as rows of `K` groups of `D`.
pub fn index_groups<T, const K: usize, const D: usize>(o: &Output<T>) -> Vec<[[usize; D]; K]> {
    o.indices
        .chunks_exact((K * D).max(1))
        .map(|c| std::array::from_fn(|k| std::array::from_fn(|d| to_index(c[k * D + d]))))
        .collect()
}

/// A selected index as returned to the caller (`usize::MAX` where nothing was selected).
pub(crate) fn to_index(i: u64) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// A view of an intermediate result.
pub fn buffer_view<T: Copy>(o: &Output<T>) -> Result<View<'_, T>> {
    View::row_major(&o.values, o.rows, o.vdim)
}

/// Sum of the rows of an output (gradients with respect to parameters).
pub fn sum_rows<T: KeopsFloat>(o: &Output<T>) -> Output<T> {
    let mut v = vec![T::zero(); o.vdim];
    for row in o.values.chunks_exact(o.vdim.max(1)) {
        for (a, x) in v.iter_mut().zip(row) {
            *a = *a + *x;
        }
    }
    Output {
        rows: 1,
        vdim: o.vdim,
        values: v,
        idim: 0,
        indices: vec![],
    }
}

/// Element-wise sum of two outputs of the same shape.
pub fn add<T: KeopsFloat>(a: &Output<T>, b: &Output<T>) -> Output<T> {
    Output {
        values: a
            .values
            .iter()
            .zip(&b.values)
            .map(|(x, y)| *x + *y)
            .collect(),
        ..a.clone()
    }
}

/// A constant output.
pub fn fill<T: KeopsFloat>(rows: usize, vdim: usize, value: f64) -> Output<T> {
    Output {
        rows,
        vdim,
        values: vec![T::of(value); rows * vdim],
        idim: 0,
        indices: vec![],
    }
}

/// nalgebra matrices as arguments: `N x D` (one point per row, `OMatrix<T, Dyn, Const<D>>`,
/// nalgebra's column-major storage read with strides), `D x N` (one point per column,
/// `OMatrix<T, Const<D>, Dyn>`, e.g. `Matrix3xX`), and `DMatrix<T>` (`N x D`, width
/// checked at run time).
#[cfg(feature = "nalgebra")]
mod nalgebra_args {
    use super::Arg;
    use crate::error::{Holder, InputError, Result, Role};
    use crate::view::View;
    use nalgebra::{Const, DMatrix, Dyn, OMatrix, Scalar};

    impl<T: Scalar + Copy, const D: usize> Arg<T, D> for &OMatrix<T, Dyn, Const<D>> {
        fn view(&self) -> Result<View<'_, T>> {
            View::col_major(self.as_slice(), self.nrows(), D)
        }
    }

    impl<T: Scalar + Copy, const D: usize> Arg<T, D> for &OMatrix<T, Const<D>, Dyn> {
        fn view(&self) -> Result<View<'_, T>> {
            // Column-major D x N: point p is the contiguous column p.
            View::row_major(self.as_slice(), self.ncols(), D)
        }
    }

    impl<T: Scalar + Copy, const D: usize> Arg<T, D> for &DMatrix<T> {
        fn view(&self) -> Result<View<'_, T>> {
            if self.ncols() != D {
                return Err(InputError::Width {
                    holder: Holder::Matrix,
                    role: Role::Argument,
                    expected: D,
                    got: self.ncols(),
                }
                .into());
            }
            View::col_major(self.as_slice(), self.nrows(), D)
        }
    }
}

/// ndarray arrays as arguments (`ArrayView2<T>`, `&Array2<T>`): one point per row, any
/// contiguous memory order; the width is checked at run time.
#[cfg(feature = "ndarray")]
pub(crate) mod ndarray_args {
    use super::Arg;
    use crate::error::{Holder, InputError, Result, Role};
    use crate::view::View;
    use ndarray::{Array2, ArrayBase, ArrayView2, Data, Ix2};

    fn view2<T: Copy, S: Data<Elem = T>, const D: usize>(
        a: &ArrayBase<S, Ix2>,
    ) -> Result<View<'_, T>> {
        let (rows, cols) = a.dim();
        if cols != D {
            return Err(InputError::Width {
                holder: Holder::Array,
                role: Role::Argument,
                expected: D,
                got: cols,
            }
            .into());
        }
        let role = Role::Argument;
        let (row_stride, col_stride) =
            strides(rows, cols, a.strides()).ok_or(InputError::NegativeStrides { role })?;
        let data = a
            .as_slice_memory_order()
            .ok_or(InputError::NotContiguous { role })?;
        View::with_strides(data, rows, cols, row_stride, col_stride)
    }

    /// Row and column strides, in elements, of a `rows x cols` array with ndarray strides
    /// `s` (those of a length-1 axis do not matter: they are made row-major); `None` when
    /// a stride that matters is negative.
    pub(crate) fn strides(rows: usize, cols: usize, s: &[isize]) -> Option<(usize, usize)> {
        if (rows > 1 && s[0] < 0) || (cols > 1 && s[1] < 0) {
            return None;
        }
        Some((
            if rows > 1 { s[0].unsigned_abs() } else { cols },
            if cols > 1 { s[1].unsigned_abs() } else { 1 },
        ))
    }

    impl<'a, T: Copy, const D: usize> Arg<T, D> for ArrayView2<'a, T> {
        fn view(&self) -> Result<View<'_, T>> {
            view2::<T, _, D>(self)
        }
    }

    impl<T: Copy, const D: usize> Arg<T, D> for &Array2<T> {
        fn view(&self) -> Result<View<'_, T>> {
            view2::<T, _, D>(*self)
        }
    }
}
