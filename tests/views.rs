//! `View`s keep their invariant: every constructor checks that the elements it describes
//! are inside its slice (fields are private: `tests/ui/view_fields_are_private.rs`), so
//! bad shapes, strides or ranges are a `KeopsError` when the view is made, and no view
//! reaches the kernels out of bounds, on any backend.

use keops::error::{Holder, Role};
use keops::{Backend, DeviceArray, Flat, InputError, KeopsError, Options, View, keops};
use proptest::prelude::*;

keops! { gauss(x_i: 2, y_j: 2, b_j: 1) = Sum_j(Exp(-SqDist(x_i, y_j)) * b_j) }

/// The input error of a result that must be one.
fn input_error<T: std::fmt::Debug>(r: Result<T, KeopsError>) -> InputError {
    match r {
        Err(KeopsError::Input(e)) => e,
        other => panic!("expected an input error, got {other:?}"),
    }
}

/// `gauss` computed from the rows of views, by their checked element accessor.
fn gauss_reference(x: &View<'_, f64>, y: &View<'_, f64>, b: &View<'_, f64>) -> Vec<[f64; 1]> {
    (0..x.rows())
        .map(|i| {
            let mut s = 0.0;
            for j in 0..y.rows() {
                let d2: f64 = (0..2)
                    .map(|c| (x.get(i, c).unwrap() - y.get(j, c).unwrap()).powi(2))
                    .sum();
                s += (-d2).exp() * b.get(j, 0).unwrap();
            }
            [s]
        })
        .collect()
}

fn close(got: &[[f64; 1]], want: &[[f64; 1]], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g[0] - w[0]).abs() <= 1e-12 * w[0].abs().max(1.0),
            "{what}: row {k}: got {}, want {}",
            g[0],
            w[0]
        );
    }
}

#[test]
fn bad_views_from_every_public_constructor_are_input_errors() {
    let d: Vec<f64> = (0..12).map(|k| k as f64).collect();
    let length = |holder, rows, cols, got| InputError::Length {
        holder,
        role: Role::Argument,
        rows,
        cols,
        got,
    };
    // Contiguous layouts: exactly rows * cols values.
    assert_eq!(
        input_error(View::row_major(&d[..5], 2, 3)),
        length(Holder::Rows, 2, 3, 5)
    );
    assert_eq!(
        input_error(View::row_major(&d[..7], 2, 3)),
        length(Holder::Rows, 2, 3, 7)
    );
    assert_eq!(
        input_error(View::col_major(&d[..5], 2, 3)),
        length(Holder::Matrix, 2, 3, 5)
    );
    assert_eq!(
        input_error(View::row_major(&d, usize::MAX, 2)),
        InputError::Overflow {
            rows: usize::MAX,
            cols: 2
        }
    );
    assert_eq!(
        input_error(View::col_major(&d, 3, usize::MAX)),
        InputError::Overflow {
            rows: 3,
            cols: usize::MAX
        }
    );
    // Flat slices: whole rows, at least one.
    assert_eq!(
        input_error(View::flat(&d[..5], 2)),
        InputError::NotWholeRows { values: 5, rows: 2 }
    );
    assert_eq!(
        input_error(View::flat(&d, 0)),
        InputError::NotWholeRows {
            values: 12,
            rows: 0
        }
    );
    // Any strides: the last element must be in the slice, without overflow.
    let strides = |rows, cols, row_stride, col_stride, values| InputError::Strides {
        rows,
        cols,
        row_stride,
        col_stride,
        values,
    };
    assert_eq!(
        input_error(View::with_strides(&d[..6], 2, 3, 4, 1)),
        strides(2, 3, 4, 1, 6)
    );
    assert_eq!(
        input_error(View::with_strides(&d, 3, 2, 1, 11)),
        strides(3, 2, 1, 11, 12)
    );
    assert_eq!(
        input_error(View::with_strides(&d, usize::MAX, 2, usize::MAX, 1)),
        strides(usize::MAX, 2, usize::MAX, 1, 12)
    );
    assert_eq!(
        input_error(View::with_strides(&d, 2, usize::MAX, 0, usize::MAX)),
        strides(2, usize::MAX, 0, usize::MAX, 12)
    );
    assert_eq!(
        input_error(View::<f64>::with_strides(&[], 1, 1, 0, 0)),
        strides(1, 1, 0, 0, 0)
    );
    // Ranges of rows: within the view's rows.
    let v = View::row_major(&d, 4, 3).unwrap();
    let range = |start, end| InputError::RowRange {
        start,
        end,
        rows: 4,
    };
    assert_eq!(input_error(v.rows_range(1..5)), range(1, 5));
    assert_eq!(input_error(v.rows_range(5..)), range(5, 4));
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 3..2;
    assert_eq!(input_error(v.rows_range(reversed)), range(3, 2));
    assert_eq!(
        input_error(v.rows_range(..=usize::MAX)),
        range(0, usize::MAX)
    );
    assert_eq!(
        input_error(v.rows_range((
            std::ops::Bound::Excluded(usize::MAX),
            std::ops::Bound::Unbounded
        ))),
        range(usize::MAX, 4)
    );
    // Kernel arguments and device arrays made from flat data.
    let y = vec![[0.0f64; 2]; 3];
    let b = vec![[1.0f64]; 3];
    let e = input_error(gauss.eval(Flat::new(&d[..5], 2), &y, &b));
    assert_eq!(e.argument(), Some("x"));
    assert_eq!(e.kind(), &length(Holder::Rows, 2, 2, 5));
    assert_eq!(
        input_error(DeviceArray::from_flat(Backend::Cpu, &d[..5], 2)),
        InputError::NotWholeRows { values: 5, rows: 2 }
    );
    // A view of another width than the kernel's.
    let e = input_error(gauss.eval(View::row_major(&d, 4, 3).unwrap(), &y, &b));
    assert_eq!(e.argument(), Some("x"));
    assert_eq!(
        e.kind(),
        &InputError::Width {
            holder: Holder::Rows,
            role: Role::Argument,
            expected: 2,
            got: 3
        }
    );
    // Every message says what was wrong.
    let e = KeopsError::from(strides(2, 3, 4, 1, 6));
    assert_eq!(
        e.to_string(),
        "bad input: a view of 2 rows of width 3 with strides (4, 1) reaches beyond its 6 values"
    );
    assert_eq!(
        KeopsError::from(range(1, 5)).to_string(),
        "bad input: rows 1..5 of a view of 4 rows"
    );
}

#[test]
fn views_read_only_what_their_shape_says() {
    let d: Vec<f64> = (0..12).map(|k| k as f64).collect();
    // Rows 0, 2 and 4 of a 6 x 2 array; 3 x 2 column-major; one row repeated.
    let v = View::with_strides(&d, 3, 2, 4, 1).unwrap();
    assert_eq!(
        (v.rows(), v.cols(), v.row_stride(), v.col_stride()),
        (3, 2, 4, 1)
    );
    assert_eq!(
        v.to_row_major("a test").unwrap(),
        [0.0, 1.0, 4.0, 5.0, 8.0, 9.0]
    );
    assert_eq!(
        (v.get(2, 1), v.get(3, 0), v.get(0, 2)),
        (Some(9.0), None, None)
    );
    let part = v.rows_range(1..).unwrap();
    assert_eq!(part.to_row_major("a test").unwrap(), [4.0, 5.0, 8.0, 9.0]);
    assert_eq!(part.data(), &d[4..10]);
    assert!(v.rows_range(3..).unwrap().data().is_empty());
    let repeated = View::with_strides(&d[2..4], 5, 2, 0, 1).unwrap();
    assert_eq!(
        repeated.to_row_major("a test").unwrap(),
        [2.0, 3.0].repeat(5)
    );
    // An empty view: no rows, no columns, no data.
    let e = View::<f64>::empty();
    assert_eq!((e.rows(), e.cols(), e.data().len()), (0, 0, 0));
    assert!(e.resident().is_none());
    // Views of no element need no data, whatever their strides.
    assert!(View::<f64>::with_strides(&[], 0, 3, usize::MAX, usize::MAX).is_ok());
    assert!(View::<f64>::with_strides(&[], 7, 0, usize::MAX, 1).is_ok());
}

#[test]
fn strided_and_narrowed_views_on_every_backend() {
    let mut backends = vec![Backend::Cpu, Backend::Emulated];
    if keops::gpu_available() {
        backends.push(Backend::Gpu(0));
    }
    let data: Vec<f64> = (0..40).map(|k| ((k as f64) * 0.37).sin()).collect();
    // x: rows 0, 3, 6, ... of a row-major array of width 3 (its first two columns).
    let x = View::with_strides(&data, 9, 2, 3, 1).unwrap();
    // y: column-major 7 x 2; b: one value repeated (row stride 0).
    let y = View::col_major(&data[20..34], 7, 2).unwrap();
    let b = View::with_strides(&data[5..6], 7, 1, 0, 1).unwrap();
    let want = gauss_reference(&x, &y, &b);
    for &backend in &backends {
        let opts = Options::on(backend);
        let what = format!("{backend:?}");
        close(&gauss.eval_with(&opts, x, y, b).unwrap(), &want, &what);
        // Some rows of each.
        let (x2, y2, b2) = (
            x.rows_range(2..7).unwrap(),
            y.rows_range(..=3).unwrap(),
            b.rows_range(3..).unwrap(),
        );
        close(
            &gauss.eval_with(&opts, x2, y2, b2).unwrap(),
            &gauss_reference(&x2, &y2, &b2),
            &format!("ranges on {what}"),
        );
        // Some rows of a device array (read from its host copy).
        let dev = DeviceArray::from_view(backend, y).unwrap();
        let part = dev.view().rows_range(1..5).unwrap();
        let b4 = b.rows_range(..4).unwrap();
        close(
            &gauss.eval_with(&opts, x, part, b4).unwrap(),
            &gauss_reference(&x, &y.rows_range(1..5).unwrap(), &b4),
            &format!("rows of a device array on {what}"),
        );
        // An empty view: no output rows, or no terms.
        assert!(
            gauss
                .eval_with(&opts, View::empty(), y, b)
                .unwrap_err()
                .to_string()
                .contains("width 0")
        );
        let none = x.rows_range(0..0).unwrap();
        assert!(gauss.eval_with(&opts, none, y, b).unwrap().is_empty());
        let (y0, b0) = (y.rows_range(7..).unwrap(), b.rows_range(7..).unwrap());
        assert_eq!(
            gauss.eval_with(&opts, x, y0, b0).unwrap(),
            vec![[0.0]; 9],
            "N = 0 on {what}"
        );
    }
}

/// A view described by a random shape, strides, length and range, which may or may not be
/// valid.
#[derive(Clone, Debug)]
struct ViewCase {
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
    range: (usize, usize),
}

/// Views of mostly `width` columns (the kernel's), sometimes another.
fn view_case(max_rows: usize, width: usize) -> impl Strategy<Value = ViewCase> {
    (
        prop_oneof![2 => Just(DATA), 1 => 0..DATA],
        0..max_rows,
        prop_oneof![4 => Just(width), 1 => 0..4usize],
        0..9usize,
        0..6usize,
        (0..max_rows + 2, 0..max_rows + 2),
    )
        .prop_map(
            |(len, rows, cols, row_stride, col_stride, range)| ViewCase {
                len,
                rows,
                cols,
                row_stride,
                col_stride,
                range,
            },
        )
}

/// Views for x, y and b, whose b has mostly y's rows (and range).
fn call_case(max_rows: usize) -> impl Strategy<Value = (ViewCase, ViewCase, ViewCase)> {
    (
        view_case(max_rows, 2),
        view_case(max_rows, 2),
        view_case(max_rows, 1),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(x, y, mut b, same)| {
            if same {
                (b.rows, b.range) = (y.rows, y.range);
            }
            (x, y, b)
        })
}

/// The length of the data views are made of.
const DATA: usize = 48;

impl ViewCase {
    /// Whether `with_strides` must accept the case.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.len
    }

    /// The view, checked against `fits`, then narrowed to the case's range when it is one.
    fn view<'a>(&self, data: &'a [f64]) -> Option<View<'a, f64>> {
        let v = View::with_strides(
            &data[..self.len],
            self.rows,
            self.cols,
            self.row_stride,
            self.col_stride,
        );
        match v {
            Ok(v) => {
                assert!(self.fits(), "{self:?} accepted");
                let (a, b) = self.range;
                match v.rows_range(a..b) {
                    Ok(part) => {
                        assert!(a <= b && b <= self.rows, "{self:?}: range accepted");
                        Some(part)
                    }
                    Err(e) => {
                        assert!(!(a <= b && b <= self.rows), "{self:?}: range refused: {e}");
                        assert!(matches!(e, KeopsError::Input(InputError::RowRange { .. })));
                        Some(v)
                    }
                }
            }
            Err(e) => {
                assert!(!self.fits(), "{self:?} refused: {e}");
                assert!(
                    matches!(e, KeopsError::Input(InputError::Strides { .. })),
                    "{e}"
                );
                None
            }
        }
    }
}

/// A call with random views as x, y and b: an input error that names a bad argument, or
/// the reference's result.
fn check_call(backend: Backend, x: &ViewCase, y: &ViewCase, b: &ViewCase) {
    let data: Vec<f64> = (0..DATA).map(|k| ((k as f64) * 0.61).cos()).collect();
    let (Some(xv), Some(yv), Some(bv)) = (x.view(&data), y.view(&data), b.view(&data)) else {
        return;
    };
    let got = gauss.eval_with(&Options::on(backend), xv, yv, bv);
    let width_ok = xv.cols() == 2 && yv.cols() == 2 && bv.cols() == 1;
    if width_ok && yv.rows() == bv.rows() {
        let got = got.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        close(
            &got,
            &gauss_reference(&xv, &yv, &bv),
            &format!("{backend:?}: {x:?} {y:?} {b:?}"),
        );
    } else {
        match got {
            Err(KeopsError::Input(e)) => assert!(e.argument().is_some(), "{e}"),
            other => panic!("{backend:?}: expected an input error, got {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random shapes, strides and ranges on the CPU: each view is refused or reads exactly
    /// its elements, and a call is an input error or the right result, never a panic.
    #[test]
    fn random_views_are_an_error_or_the_right_result_on_the_cpu(
        (x, y, b) in call_case(12),
    ) {
        check_call(Backend::Cpu, &x, &y, &b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The same on the emulated GPU (and the GPU when there is one), with fewer cases.
    #[test]
    fn random_views_are_an_error_or_the_right_result_on_the_gpu_path(
        (x, y, b) in call_case(6),
    ) {
        check_call(Backend::Emulated, &x, &y, &b);
        if keops::gpu_available() {
            check_call(Backend::Gpu(0), &x, &y, &b);
        }
    }
}
