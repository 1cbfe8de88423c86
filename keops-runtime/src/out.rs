//! Outputs into caller-provided buffers: the `eval_into` methods of generated kernels
//! write their result into anything implementing [`Out`] instead of returning a new
//! vector. Host buffers are filled row by row; a [`DeviceArray`] on the device the call
//! runs on is written in place by the kernel, with nothing copied back to the host.

use crate::error::{Holder, InputError, Result, Role, Shape};
use crate::gpu::resident::DeviceArray;
use crate::kernel::KeopsFloat;
use keops_ir::eval::Output;

/// A buffer of rows of width `D` that a kernel call writes its result into.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot receive a kernel output of width {D} and element type `{T}`",
    label = "expected mutable rows of {D} values of type `{T}`",
    note = "pass `&mut Vec<[T; {D}]>`, `&mut [[T; {D}]]` (as many rows as the output) or `&mut DeviceArray<T>`"
)]
pub trait Out<T, const D: usize> {
    /// Where the rows go, checked to have width `D`.
    fn dest(&mut self) -> Result<Dest<'_, T>>;
}

/// Where a call writes its output: rows in host memory (any strides), or a
/// [`DeviceArray`].
#[derive(Debug)]
pub struct Dest<'a, T> {
    target: Target<'a, T>,
    /// The kernel wrote the values in place (nothing is left to copy).
    written: bool,
}

#[derive(Debug)]
enum Target<'a, T> {
    Host {
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    },
    Device(&'a mut DeviceArray<T>),
}

impl<'a, T> Dest<'a, T> {
    /// Host rows: element `(r, c)` is `data[r * row_stride + c * col_stride]`; an error
    /// when `data` is too short for that.
    pub fn host(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        let last = if rows == 0 || cols == 0 {
            Some(0)
        } else {
            (rows - 1)
                .checked_mul(row_stride)
                .and_then(|a| (cols - 1).checked_mul(col_stride).map(|b| (a, b)))
                .and_then(|(a, b)| a.checked_add(b))
                .and_then(|l| l.checked_add(1))
        };
        match last {
            Some(need) if need <= data.len() => Ok(Dest {
                target: Target::Host {
                    data,
                    rows,
                    cols,
                    row_stride,
                    col_stride,
                },
                written: false,
            }),
            _ => Err(InputError::Length {
                holder: Holder::Rows,
                role: Role::Output,
                rows,
                cols,
                got: data.len(),
            }
            .into()),
        }
    }

    /// Row-major host rows (`data.len()` must be `rows * cols`).
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(InputError::Length {
                holder: Holder::Rows,
                role: Role::Output,
                rows,
                cols,
                got: data.len(),
            }
            .into());
        }
        Self::host(data, rows, cols, cols, 1)
    }

    /// A device array (its device copy is written in place when the call runs on its
    /// device).
    pub fn device(array: &'a mut DeviceArray<T>) -> Self {
        Dest {
            target: Target::Device(array),
            written: false,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        match &self.target {
            Target::Host { rows, .. } => *rows,
            Target::Device(a) => a.rows(),
        }
    }

    /// Width of each row.
    pub fn cols(&self) -> usize {
        match &self.target {
            Target::Host { cols, .. } => *cols,
            Target::Device(a) => a.cols(),
        }
    }

    /// Checks that the buffer has the shape of the call's output, before anything runs.
    pub fn expect(&self, rows: usize, cols: usize) -> Result<()> {
        if self.rows() != rows || self.cols() != cols {
            return Err(InputError::OutputShape {
                expected: Shape::new(rows, cols),
                got: Shape::new(self.rows(), self.cols()),
            }
            .into());
        }
        Ok(())
    }

    /// Where a device run can put the values itself: the device array, or the host rows
    /// when they are contiguous and row-major (downloaded into directly).
    pub(crate) fn direct(&mut self) -> Option<Direct<'_, T>> {
        match &mut self.target {
            Target::Device(a) => Some(Direct::Device(a)),
            Target::Host {
                data,
                rows,
                cols,
                row_stride,
                col_stride,
            } if (*col_stride == 1 || *cols <= 1) && (*row_stride == *cols || *rows <= 1) => {
                let n = *rows * *cols;
                Some(Direct::Host {
                    data: data.get_mut(..n)?,
                    rows: *rows,
                    cols: *cols,
                })
            }
            Target::Host { .. } => None,
        }
    }

    /// Records that a kernel wrote the values in place.
    pub(crate) fn set_written(&mut self) {
        self.written = true;
    }
}

/// A destination a device run writes the values into itself.
pub(crate) enum Direct<'d, T> {
    /// The kernel writes the device array's copy.
    Device(&'d mut DeviceArray<T>),
    /// The values are downloaded into these row-major host rows.
    Host {
        /// `rows * cols` values.
        data: &'d mut [T],
        /// Rows.
        rows: usize,
        /// Values per row.
        cols: usize,
    },
}

/// Writes a call's output into `dest` (nothing when a kernel already wrote it in place):
/// host rows are copied, a device array is written with [`DeviceArray::write`].
pub fn write_output<T: KeopsFloat>(o: &Output<T>, dest: Dest<'_, T>) -> Result<()> {
    if dest.written {
        return Ok(());
    }
    dest.expect(o.rows, o.vdim)?;
    if Some(o.values.len()) != o.rows.checked_mul(o.vdim) {
        return Err(crate::error::KeopsError::internal(format!(
            "an output of {} rows of width {} holds {} values",
            o.rows,
            o.vdim,
            o.values.len()
        )));
    }
    match dest.target {
        Target::Host {
            data,
            cols,
            row_stride,
            col_stride,
            ..
        } => {
            if cols > 0 {
                for (r, row) in o.values.chunks_exact(cols).enumerate() {
                    for (c, x) in row.iter().enumerate() {
                        data[r * row_stride + c * col_stride] = *x;
                    }
                }
            }
            Ok(())
        }
        Target::Device(a) => a.write(&o.values),
    }
}

/// A buffer of rows of `D` indices that a kernel call writes the selected indices into
/// (`usize::MAX` where nothing was selected, as `eval` returns them).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot receive rows of {D} indices",
    label = "expected mutable rows of {D} `usize`",
    note = "pass `&mut Vec<[usize; {D}]>` or `&mut [[usize; {D}]]` (as many rows as the output)"
)]
pub trait OutIndices<const D: usize> {
    /// The rows, row-major.
    fn rows_mut(&mut self) -> &mut [[usize; D]];
}

impl<const D: usize> OutIndices<D> for &mut [[usize; D]] {
    fn rows_mut(&mut self) -> &mut [[usize; D]] {
        self
    }
}

impl<const D: usize> OutIndices<D> for &mut Vec<[usize; D]> {
    fn rows_mut(&mut self) -> &mut [[usize; D]] {
        self
    }
}

impl<const D: usize, const N: usize> OutIndices<D> for &mut [[usize; D]; N] {
    fn rows_mut(&mut self) -> &mut [[usize; D]] {
        &mut self[..]
    }
}

/// Writes a call's selected indices into `dest`.
pub fn write_indices<T, const D: usize>(o: &Output<T>, mut dest: impl OutIndices<D>) -> Result<()> {
    let rows = dest.rows_mut();
    if rows.len() != o.rows || o.idim != D {
        return Err(InputError::IndexShape {
            expected: Shape::new(o.rows, o.idim),
            got: Shape::new(rows.len(), D),
        }
        .into());
    }
    for (row, src) in rows.iter_mut().zip(o.indices.chunks_exact(D.max(1))) {
        for (d, s) in row.iter_mut().zip(src) {
            *d = crate::args::to_index(*s);
        }
    }
    Ok(())
}

impl<T, const D: usize> Out<T, D> for &mut [[T; D]] {
    fn dest(&mut self) -> Result<Dest<'_, T>> {
        let rows = self.len();
        Dest::row_major(self.as_flattened_mut(), rows, D)
    }
}

impl<T, const D: usize> Out<T, D> for &mut Vec<[T; D]> {
    fn dest(&mut self) -> Result<Dest<'_, T>> {
        let rows = self.len();
        Dest::row_major(self.as_flattened_mut(), rows, D)
    }
}

impl<T, const D: usize, const N: usize> Out<T, D> for &mut [[T; D]; N] {
    fn dest(&mut self) -> Result<Dest<'_, T>> {
        Dest::row_major(self.as_flattened_mut(), N, D)
    }
}

impl<T, const D: usize> Out<T, D> for &mut DeviceArray<T> {
    fn dest(&mut self) -> Result<Dest<'_, T>> {
        if self.cols() != D {
            return Err(InputError::Width {
                holder: Holder::DeviceArray,
                role: Role::Output,
                expected: D,
                got: self.cols(),
            }
            .into());
        }
        Ok(Dest::device(self))
    }
}

/// nalgebra matrices as outputs: `N x D` (`OMatrix<T, Dyn, Const<D>>`, one point per row),
/// `D x N` (`OMatrix<T, Const<D>, Dyn>`, one point per column) and `DMatrix<T>` (`N x D`,
/// width checked at run time), of as many points as the output.
#[cfg(feature = "nalgebra")]
mod nalgebra_out {
    use super::{Dest, Out};
    use crate::error::{Holder, InputError, Result, Role};
    use nalgebra::{Const, DMatrix, Dyn, OMatrix, Scalar};

    impl<T: Scalar, const D: usize> Out<T, D> for &mut OMatrix<T, Dyn, Const<D>> {
        fn dest(&mut self) -> Result<Dest<'_, T>> {
            let rows = self.nrows();
            Dest::host(self.as_mut_slice(), rows, D, 1, rows)
        }
    }

    impl<T: Scalar, const D: usize> Out<T, D> for &mut OMatrix<T, Const<D>, Dyn> {
        fn dest(&mut self) -> Result<Dest<'_, T>> {
            let rows = self.ncols();
            Dest::row_major(self.as_mut_slice(), rows, D)
        }
    }

    impl<T: Scalar, const D: usize> Out<T, D> for &mut DMatrix<T> {
        fn dest(&mut self) -> Result<Dest<'_, T>> {
            if self.ncols() != D {
                return Err(InputError::Width {
                    holder: Holder::Matrix,
                    role: Role::Output,
                    expected: D,
                    got: self.ncols(),
                }
                .into());
            }
            let rows = self.nrows();
            Dest::host(self.as_mut_slice(), rows, D, 1, rows)
        }
    }
}

/// ndarray arrays as outputs (`&mut Array2<T>`, `ArrayViewMut2<T>`): one point per row, any
/// memory order with non-negative strides.
#[cfg(feature = "ndarray")]
mod ndarray_out {
    use super::{Dest, Out};
    use crate::args::ndarray_args::strides;
    use crate::error::{Holder, InputError, Result, Role};
    use ndarray::{Array2, ArrayBase, ArrayViewMut2, DataMut, Ix2};

    fn dest2<T, S: DataMut<Elem = T>, const D: usize>(
        a: &mut ArrayBase<S, Ix2>,
    ) -> Result<Dest<'_, T>> {
        let (rows, cols) = a.dim();
        if cols != D {
            return Err(InputError::Width {
                holder: Holder::Array,
                role: Role::Output,
                expected: D,
                got: cols,
            }
            .into());
        }
        let role = Role::Output;
        let (rs, cs) =
            strides(rows, cols, a.strides()).ok_or(InputError::NegativeStrides { role })?;
        let data = a
            .as_slice_memory_order_mut()
            .ok_or(InputError::NotContiguous { role })?;
        Dest::host(data, rows, cols, rs, cs)
    }

    impl<T, const D: usize> Out<T, D> for &mut Array2<T> {
        fn dest(&mut self) -> Result<Dest<'_, T>> {
            dest2::<T, _, D>(*self)
        }
    }

    impl<T, const D: usize> Out<T, D> for ArrayViewMut2<'_, T> {
        fn dest(&mut self) -> Result<Dest<'_, T>> {
            dest2::<T, _, D>(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::KeopsError;

    fn output(rows: usize, vdim: usize) -> Output<f64> {
        Output {
            rows,
            vdim,
            values: (0..rows * vdim).map(|k| k as f64).collect(),
            idim: 0,
            indices: vec![],
        }
    }

    #[test]
    fn host_rows_any_strides() {
        let o = output(2, 3);
        let mut rows = vec![[0.0; 3]; 2];
        write_output(&o, (&mut rows).dest().unwrap()).unwrap();
        assert_eq!(rows, vec![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
        // Column-major 2 x 3.
        let mut cm = [0.0; 6];
        write_output(&o, Dest::host(&mut cm, 2, 3, 1, 2).unwrap()).unwrap();
        assert_eq!(cm, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn shapes_are_checked() {
        let o = output(2, 3);
        let mut short = vec![[0.0; 3]; 1];
        let e = write_output(&o, (&mut short).dest().unwrap()).unwrap_err();
        assert!(e.to_string().contains("1 rows of width 3"), "{e}");
        assert!(
            matches!(
                e,
                KeopsError::Input(InputError::OutputShape { expected, got })
                    if expected == Shape::new(2, 3) && got == Shape::new(1, 3)
            ),
            "{e:?}"
        );
        let mut data = [0.0; 5];
        let too_short = |e: KeopsError| {
            matches!(
                e,
                KeopsError::Input(InputError::Length {
                    role: Role::Output,
                    rows: 2,
                    cols: 3,
                    got: 5,
                    ..
                })
            )
        };
        assert!(too_short(Dest::host(&mut data, 2, 3, 1, 2).unwrap_err()));
        assert!(too_short(Dest::row_major(&mut data, 2, 3).unwrap_err()));
        let mut empty: [f64; 0] = [];
        assert!(Dest::host(&mut empty, 0, 3, 3, 1).is_ok());
    }
}
