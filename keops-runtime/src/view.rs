//! Read-only 2D views of argument arrays: rows of a fixed width, any strides.

use crate::error::{Holder, InputError, InputGroup, KeopsError, Result, Role};
use crate::gpu::memory::Resident;

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
        if rows
            .checked_mul(cols)
            .ok_or(InputError::Overflow { rows, cols })?
            != data.len()
        {
            return Err(InputError::Length {
                holder: Holder::Rows,
                role: Role::Argument,
                rows,
                cols,
                got: data.len(),
            }
            .into());
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
        if rows
            .checked_mul(cols)
            .ok_or(InputError::Overflow { rows, cols })?
            != data.len()
        {
            return Err(InputError::Length {
                holder: Holder::Matrix,
                role: Role::Argument,
                rows,
                cols,
                got: data.len(),
            }
            .into());
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
        if rows == 0 || !data.len().is_multiple_of(rows) {
            return Err(InputError::NotWholeRows {
                values: data.len(),
                rows,
            }
            .into());
        }
        View::row_major(data, rows, data.len() / rows)
    }

    /// The rows, copied one after the other (`what` names the copy in the error when
    /// memory for it cannot be had).
    pub fn to_row_major(&self, what: &str) -> Result<Vec<T>> {
        let len = self.value_count()?;
        let mut out = Vec::new();
        if len == 0 {
            return Ok(out);
        }
        out.try_reserve_exact(len)
            .map_err(|_| KeopsError::OutOfMemory(format!("{len} values for {what}")))?;
        out.resize(len, self.data[0]);
        for (r, row) in out.chunks_exact_mut(self.cols).enumerate() {
            self.copy_row(r, row);
        }
        Ok(out)
    }

    /// The number of values, `rows * cols` (an error when it overflows).
    pub(crate) fn value_count(&self) -> Result<usize> {
        let (rows, cols) = (self.rows, self.cols);
        Ok(rows
            .checked_mul(cols)
            .ok_or(InputError::Overflow { rows, cols })?)
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

/// Checks the views of one group of a driver's inputs against the kernel's widths and,
/// when given, their index's rows (1 for parameters).
pub(crate) fn check_views<T>(
    group: InputGroup,
    views: &[View<'_, T>],
    widths: &[usize],
    rows: Option<usize>,
) -> Result<(), InputError> {
    if views.len() != widths.len() {
        return Err(InputError::InputCount {
            group,
            expected: widths.len(),
            got: views.len(),
        });
    }
    for (index, (v, &w)) in views.iter().zip(widths).enumerate() {
        if v.cols != w {
            return Err(InputError::InputWidth {
                group,
                index,
                expected: w,
                got: v.cols,
            });
        }
        if let Some(rows) = rows.filter(|r| *r != v.rows) {
            return Err(InputError::InputRows {
                group,
                index,
                expected: rows,
                got: v.rows,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::View;

    #[test]
    fn row_major_copies_of_strided_and_empty_views() {
        // 2 x 3, column-major: rows (1, 3, 5) and (2, 4, 6).
        let v = View::col_major(&[1, 2, 3, 4, 5, 6], 2, 3).unwrap();
        assert_eq!(v.to_row_major("a test").unwrap(), vec![1, 3, 5, 2, 4, 6]);
        let v = View::row_major(&[1, 2, 3, 4], 2, 2).unwrap();
        assert_eq!(v.to_row_major("a test").unwrap(), vec![1, 2, 3, 4]);
        let empty: [i32; 0] = [];
        assert!(
            View::row_major(&empty, 0, 3)
                .unwrap()
                .to_row_major("a test")
                .unwrap()
                .is_empty()
        );
        assert!(
            View::row_major(&empty, 4, 0)
                .unwrap()
                .to_row_major("a test")
                .unwrap()
                .is_empty()
        );
    }
}
