//! Read-only 2D views of argument arrays: rows of a fixed width, any strides.

use crate::error::{KeopsError, Result};
use crate::gpu::Resident;

/// A matrix of `rows` x `cols` elements; element `(r, c)` is `data[r * row_stride + c * col_stride]`.
/// Row-major arrays have `row_stride = cols, col_stride = 1`; nalgebra's column-major
/// matrices have `row_stride = 1, col_stride = rows`.
#[derive(Copy, Clone, Debug)]
pub struct View<'a, T> {
    /// The elements.
    pub data: &'a [T],
    /// Number of rows (points).
    pub rows: usize,
    /// Number of columns (the width of each point).
    pub cols: usize,
    /// Distance between consecutive rows.
    pub row_stride: usize,
    /// Distance between consecutive columns.
    pub col_stride: usize,
    /// The device copy of these rows, when they come from a
    /// [`DeviceArray`](crate::gpu::DeviceArray): GPU calls on its device read it in place.
    pub resident: Option<&'a Resident>,
}

impl<'a, T: Copy> View<'a, T> {
    /// A row-major view, checking that `data` holds exactly `rows * cols` elements.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        let need = rows.checked_mul(cols).ok_or_else(|| {
            KeopsError::input(format!("{rows} rows of {cols} values overflow usize"))
        })?;
        if data.len() != need {
            return Err(KeopsError::input(format!(
                "a row-major array of {rows} rows of width {cols} needs {need} values, found {}",
                data.len()
            )));
        }
        Ok(View {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
            resident: None,
        })
    }

    /// A column-major view (nalgebra's layout) of `rows` x `cols`.
    pub fn col_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        let need = rows.checked_mul(cols).ok_or_else(|| {
            KeopsError::input(format!("{rows} rows of {cols} values overflow usize"))
        })?;
        if data.len() != need {
            return Err(KeopsError::input(format!(
                "a column-major array of {rows} x {cols} needs {need} values, found {}",
                data.len()
            )));
        }
        Ok(View {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
            resident: None,
        })
    }

    /// A flat row-major slice whose width is `data.len() / rows`.
    pub fn flat(data: &'a [T], rows: usize) -> Result<Self> {
        if rows == 0 {
            return Err(KeopsError::input(
                "an array with 0 rows has no width; pass at least one row",
            ));
        }
        if !data.len().is_multiple_of(rows) {
            return Err(KeopsError::input(format!(
                "a flat array of {} values cannot be split into {rows} rows of equal width",
                data.len()
            )));
        }
        View::row_major(data, rows, data.len() / rows)
    }

    /// Element `(r, c)`.
    #[inline]
    pub fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.row_stride + c * self.col_stride]
    }

    /// Copies row `r` into `out` (of length `cols`).
    #[inline]
    pub fn copy_row(&self, r: usize, out: &mut [T]) {
        if self.col_stride == 1 {
            let start = r * self.row_stride;
            out.copy_from_slice(&self.data[start..start + self.cols]);
        } else {
            for (c, o) in out.iter_mut().enumerate() {
                *o = self.at(r, c);
            }
        }
    }
}
