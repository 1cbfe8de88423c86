//! Read-only 2D views of argument arrays: rows of a fixed width, any strides.
//!
//! A [`View`]'s fields are private and every constructor checks them, so that a view
//! always describes elements inside its slice: the drivers check the shapes of the views
//! they are given against each other, then read them through this module's element and
//! row accessors only, and a view that reaches beyond its data is an [`InputError`] when
//! it is made, never an out-of-bounds read in a kernel.

use crate::error::{Holder, InputError, InputGroup, KeopsError, Result, Role};
use crate::gpu::memory::Resident;
use std::ops::{Bound, RangeBounds};

/// A matrix of `rows` x `cols` elements of a slice: element `(r, c)` is
/// `data[r * row_stride + c * col_stride]`. Row-major arrays have `row_stride = cols,
/// col_stride = 1`; nalgebra's column-major matrices have `row_stride = 1, col_stride =
/// rows`.
///
/// Views are made by checked constructors ([`View::row_major`], [`View::col_major`],
/// [`View::flat`], [`View::with_strides`], [`View::empty`], and
/// [`DeviceArray::view`](crate::DeviceArray::view), which carries the array's device
/// copy), narrowed by [`View::rows_range`], and read through accessors: every element
/// `(r, c)` with `r < rows` and `c < cols` is inside `data`, whatever the constructor was
/// given (what does not fit is an error).
///
/// ```
/// use keops_runtime::{InputError, KeopsError, View};
///
/// // Rows 0, 2 and 4 of a 5 x 2 row-major array.
/// let data = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
/// let even = View::with_strides(&data, 3, 2, 4, 1)?;
/// assert_eq!(even.to_row_major("a test")?, vec![0.0, 1.0, 4.0, 5.0, 8.0, 9.0]);
/// assert_eq!(even.rows_range(1..)?.get(0, 1), Some(5.0));
/// // A fourth row would start at value 12.
/// let e = View::with_strides(&data, 4, 2, 4, 1).unwrap_err();
/// assert!(matches!(e, KeopsError::Input(InputError::Strides { .. })), "{e}");
/// # Ok::<(), KeopsError>(())
/// ```
#[derive(Copy, Clone, Debug)]
pub struct View<'a, T> {
    /// The elements (at least those the shape and strides reach).
    data: &'a [T],
    /// Number of rows (points).
    rows: usize,
    /// Number of columns (the width of each point).
    cols: usize,
    /// Distance between consecutive rows.
    row_stride: usize,
    /// Distance between consecutive columns.
    col_stride: usize,
    /// The device copy of these rows, when they come from a
    /// [`DeviceArray`](crate::gpu::DeviceArray): GPU calls on its device read it in place
    /// when the view shows the whole array.
    resident: Option<&'a Resident>,
}

/// The number of values a `rows x cols` view with these strides reaches (one past its
/// last element; 0 when it has no element), `None` when that overflows `usize`.
fn extent(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)?
        .checked_add(1)
}

impl<'a, T> View<'a, T> {
    /// A view of no rows and no columns (what kernels pass for inputs they do not read).
    pub const fn empty() -> Self {
        View {
            data: &[],
            rows: 0,
            cols: 0,
            row_stride: 0,
            col_stride: 1,
            resident: None,
        }
    }

    /// A view of `rows` rows of width `cols` of `data` with any strides (in elements):
    /// element `(r, c)` is `data[r * row_stride + c * col_stride]`. An error
    /// ([`InputError::Strides`]) when the last element is beyond `data`. Strides may make
    /// elements overlap (a row stride of 0 repeats one row).
    pub fn with_strides(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        match extent(rows, cols, row_stride, col_stride) {
            Some(need) if need <= data.len() => Ok(View {
                data,
                rows,
                cols,
                row_stride,
                col_stride,
                resident: None,
            }),
            _ => Err(InputError::Strides {
                rows,
                cols,
                row_stride,
                col_stride,
                values: data.len(),
            }
            .into()),
        }
    }

    /// A row-major view, checking that `data` holds exactly `rows * cols` elements.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::exact(data, rows, cols, Holder::Rows)?;
        Self::with_strides(data, rows, cols, cols, 1)
    }

    /// A column-major view (nalgebra's layout) of `rows` x `cols`, checking that `data`
    /// holds exactly `rows * cols` elements.
    pub fn col_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::exact(data, rows, cols, Holder::Matrix)?;
        Self::with_strides(data, rows, cols, 1, rows)
    }

    /// Checks that `data` holds `rows * cols` values.
    fn exact(data: &[T], rows: usize, cols: usize, holder: Holder) -> Result<()> {
        if rows
            .checked_mul(cols)
            .ok_or(InputError::Overflow { rows, cols })?
            != data.len()
        {
            return Err(InputError::Length {
                holder,
                role: Role::Argument,
                rows,
                cols,
                got: data.len(),
            }
            .into());
        }
        Ok(())
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

    /// The rows `range` of this view (`1..3`, `..n`, ...), with its strides and its device
    /// copy (which calls read in place only when the range is all the rows); an error
    /// ([`InputError::RowRange`]) when the range is not within `0..rows`.
    pub fn rows_range(&self, range: impl RangeBounds<usize>) -> Result<Self> {
        let start = match range.start_bound() {
            Bound::Included(&s) => Some(s),
            Bound::Excluded(&s) => s.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.checked_add(1),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => Some(self.rows),
        };
        let (start, end) = match (start, end) {
            (Some(s), Some(e)) if s <= e && e <= self.rows => (s, e),
            (s, e) => {
                return Err(InputError::RowRange {
                    start: s.unwrap_or(usize::MAX),
                    end: e.unwrap_or(usize::MAX),
                    rows: self.rows,
                }
                .into());
            }
        };
        let rows = end - start;
        // Within the view's own extent: no arithmetic below overflows.
        let data = match extent(rows, self.cols, self.row_stride, self.col_stride) {
            Some(0) | None => &self.data[..0],
            Some(len) => {
                let first = start * self.row_stride;
                &self.data[first..first + len]
            }
        };
        Ok(View {
            data,
            rows,
            ..*self
        })
    }

    /// The slice the view reads (at least the values its shape and strides reach).
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Number of rows (points).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (the width of each point).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance between consecutive rows, in elements.
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Distance between consecutive columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// The device copy the view carries (a view of a
    /// [`DeviceArray`](crate::gpu::DeviceArray), or of some of its rows).
    pub fn resident(&self) -> Option<&'a Resident> {
        self.resident
    }

    /// The view with the device copy `resident` (a [`DeviceArray`](crate::DeviceArray)'s
    /// view of its host rows).
    pub(crate) fn with_resident(self, resident: Option<&'a Resident>) -> Self {
        View { resident, ..self }
    }

    /// The number of values, `rows * cols` (an error when it overflows).
    pub(crate) fn value_count(&self) -> Result<usize> {
        let (rows, cols) = (self.rows, self.cols);
        Ok(rows
            .checked_mul(cols)
            .ok_or(InputError::Overflow { rows, cols })?)
    }
}

impl<'a, T: Copy> View<'a, T> {
    /// Element `(r, c)`, `None` when `r >= rows` or `c >= cols`.
    pub fn get(&self, r: usize, c: usize) -> Option<T> {
        (r < self.rows && c < self.cols).then(|| self.at(r, c))
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

    /// Element `(r, c)`, which must be in the view (`r < rows`, `c < cols`: the drivers
    /// check their views' shapes first); the constructors' checks make it a read inside
    /// `data`.
    #[inline]
    pub(crate) fn at(&self, r: usize, c: usize) -> T {
        assert!(
            r < self.rows && c < self.cols,
            "internal: element ({r}, {c}) of a view of {} x {}",
            self.rows,
            self.cols
        );
        self.data[r * self.row_stride + c * self.col_stride]
    }

    /// Copies row `r` (which must be in the view) into `out` (of length `cols`).
    #[inline]
    pub(crate) fn copy_row(&self, r: usize, out: &mut [T]) {
        assert!(
            r < self.rows && out.len() == self.cols,
            "internal: row {r} of a view of {} x {} into {} values",
            self.rows,
            self.cols,
            out.len()
        );
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

/// Checks that input `index` of `group` holds `rows` rows of width `cols`.
pub(crate) fn check_shape<T>(
    v: &View<'_, T>,
    group: InputGroup,
    index: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    if v.cols != cols {
        let (expected, got) = (cols, v.cols);
        return Err(InputError::InputWidth {
            group,
            index,
            expected,
            got,
        }
        .into());
    }
    if v.rows != rows {
        let (expected, got) = (rows, v.rows);
        return Err(InputError::InputRows {
            group,
            index,
            expected,
            got,
        }
        .into());
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
