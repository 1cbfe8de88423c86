//! Bad input gets a `KeopsError` (or documented behaviour), never a panic or a wrong answer.

use keops::error::{Axis, Holder, Role};
use keops::{Flat, InputError, KeopsError, keops};

keops! { gauss(x_i: 3, y_j: 3, b_j: 1) = Sum_j(Exp(-SqDist(x_i, y_j)) * b_j) }
keops! { knn(x_i: 2, y_j: 2) = ArgKMin_j(SqDist(x_i, y_j), 4) }
keops! { lse(x_i: 1, y_j: 1) = LogSumExp_j(x_i * y_j) }
keops! { nearest(x_i: 1, y_j: 1) = Min_ArgMin_j(SqDist(x_i, y_j)) }

/// The input error of a call that must fail with one, and its message.
fn input_error<T: std::fmt::Debug>(r: Result<T, KeopsError>) -> (InputError, String) {
    match r {
        Err(KeopsError::Input(e)) => {
            let m = e.to_string();
            (e, m)
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn flat_slices_must_hold_whole_rows() {
    let x = vec![0.0f32; 7];
    let y = vec![[0.0f32; 3]; 2];
    let b = vec![[1.0f32]; 2];
    let (e, m) = input_error(gauss.eval(Flat::new(&x, 2), &y, &b));
    assert!(m.contains("7 values") && m.contains("width 3"), "{m}");
    assert_eq!(
        e,
        InputError::Argument {
            argument: "x".into(),
            error: Box::new(InputError::Length {
                holder: Holder::Rows,
                role: Role::Argument,
                rows: 2,
                cols: 3,
                got: 7
            }),
        }
    );
    let x = vec![0.0f32; 6];
    assert_eq!(gauss.eval(Flat::new(&x, 2), &y, &b).unwrap().len(), 2);
}

#[test]
fn row_counts_of_one_index_must_agree() {
    let x = vec![[0.0f32; 3]; 4];
    let y = vec![[0.0f32; 3]; 5];
    let b = vec![[1.0f32]; 6];
    let (e, m) = input_error(gauss.eval(&x, &y, &b));
    assert!(m.contains("6 rows") && m.contains('5'), "{m}");
    assert_eq!(
        e,
        InputError::RowCount {
            argument: "b".into(),
            axis: Axis::J,
            expected: 5,
            got: 6
        }
    );
}

#[test]
fn empty_inputs_have_documented_results() {
    // M = 0: no output rows.
    let x: Vec<[f32; 3]> = vec![];
    let y = vec![[0.0f32; 3]; 5];
    let b = vec![[1.0f32]; 5];
    assert!(gauss.eval(&x, &y, &b).unwrap().is_empty());
    // N = 0: each row reduces an empty set: 0 for Sum, -inf for LogSumExp, +inf and
    // usize::MAX for Min_ArgMin.
    let x = vec![[1.0f32; 3]; 2];
    let y: Vec<[f32; 3]> = vec![];
    let b: Vec<[f32; 1]> = vec![];
    assert_eq!(gauss.eval(&x, &y, &b).unwrap(), vec![[0.0]; 2]);
    let x1 = vec![[1.0f64]; 3];
    let y1: Vec<[f64; 1]> = vec![];
    assert_eq!(lse.eval(&x1, &y1).unwrap(), vec![[f64::NEG_INFINITY]; 3]);
    let (v, i) = nearest.eval(&x1, &y1).unwrap();
    assert_eq!(v, vec![[f64::INFINITY]; 3]);
    assert_eq!(i, vec![[usize::MAX]; 3]);
}

#[test]
fn k_beyond_n_pads_with_infinity_and_usize_max() {
    let x = vec![[0.0f32, 0.0]];
    let y = vec![[1.0f32, 0.0], [0.0, 3.0]];
    let idx = knn.eval(&x, &y).unwrap();
    assert_eq!(idx, vec![[0, 1, usize::MAX, usize::MAX]]);
}

#[test]
fn nan_entries_never_win_and_propagate_through_sums() {
    let x = vec![[0.0f64]];
    let y = vec![[f64::NAN], [2.0], [1.0]];
    let (v, i) = nearest.eval(&x, &y).unwrap();
    assert_eq!((v[0][0], i[0][0]), (1.0, 2));
    let s = lse.eval(&x, &y).unwrap();
    assert!(s[0][0].is_nan(), "a NaN term makes LogSumExp NaN");
    let x = vec![[0.0f32; 3]];
    let y = vec![[f32::NAN; 3]];
    let b = vec![[1.0f32]];
    assert!(gauss.eval(&x, &y, &b).unwrap()[0][0].is_nan());
}

#[test]
fn parameters_must_have_one_row() {
    keops! { scaled(x_i: 1, y_j: 1, s: 1) = Sum_j(s * x_i * y_j) }
    let x = vec![[1.0f32]];
    let y = vec![[1.0f32]];
    let s = vec![[1.0f32], [2.0]];
    let (e, m) = input_error(scaled.eval(&x, &y, &s));
    assert!(m.contains("parameter"), "{m}");
    assert_eq!(
        e,
        InputError::ParameterRows {
            argument: "s".into(),
            got: 2
        }
    );
}

#[test]
fn gradient_cotangent_rows_are_checked() {
    let x = vec![[0.0f32; 3]; 3];
    let y = vec![[0.0f32; 3]; 4];
    let b = vec![[1.0f32]; 4];
    let e = vec![[1.0f32]; 2];
    let (e, m) = input_error(gauss.grad_x(&x, &y, &b, &e));
    assert!(m.contains("rows"), "{m}");
    assert!(
        matches!(
            e,
            InputError::RowCount {
                axis: Axis::I,
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{e:?}"
    );
}
