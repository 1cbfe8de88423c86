//! nalgebra and ndarray arrays as kernel arguments (features `nalgebra`, `ndarray`).
#![cfg(all(feature = "nalgebra", feature = "ndarray"))]

use keops::error::{Holder, Role};
use keops::{InputError, KeopsError, keops};

keops! { conv(x_i: 3, y_j: 3, b_j: 1) = Sum_j(Exp(-SqDist(x_i, y_j)) * b_j) }

fn points(n: usize, seed: f64) -> Vec<[f64; 3]> {
    (0..n)
        .map(|k| {
            [
                ((k as f64 + seed) * 0.7).sin(),
                ((k as f64) * 1.3 + seed).cos(),
                (k as f64 * 0.11 - seed).sin(),
            ]
        })
        .collect()
}

#[test]
fn nalgebra_matrices_give_the_same_result_as_arrays() {
    let (x, y) = (points(7, 0.3), points(9, 1.1));
    let b: Vec<[f64; 1]> = (0..9).map(|k| [k as f64 - 4.0]).collect();
    let want = conv.eval(&x, &y, &b).unwrap();
    // N x 3, one point per row (column-major storage).
    let xm =
        nalgebra::OMatrix::<f64, nalgebra::Dyn, nalgebra::Const<3>>::from_fn(7, |r, c| x[r][c]);
    // 3 x N, one point per column.
    let ym = nalgebra::Matrix3xX::<f64>::from_fn(9, |r, c| y[c][r]);
    let bm = nalgebra::DMatrix::<f64>::from_fn(9, 1, |r, _| b[r][0]);
    assert_eq!(conv.eval(&xm, &ym, &bm).unwrap(), want);
    // A dynamic matrix of the wrong width is an error.
    let bad = nalgebra::DMatrix::<f64>::zeros(9, 2);
    match conv.eval(&xm, &ym, &bad) {
        Err(KeopsError::Input(e)) => {
            assert_eq!(e.argument(), Some("b"));
            assert_eq!(
                e.kind(),
                &InputError::Width {
                    holder: Holder::Matrix,
                    role: Role::Argument,
                    expected: 1,
                    got: 2
                }
            );
            assert_eq!(
                e.to_string(),
                "`b`: a matrix with 2 columns where the kernel needs 1 (one point per row)"
            );
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn ndarray_arrays_in_any_contiguous_order() {
    let (x, y) = (points(5, 0.7), points(6, 2.0));
    let b: Vec<[f64; 1]> = (0..6).map(|k| [1.0 + k as f64]).collect();
    let want = conv.eval(&x, &y, &b).unwrap();
    let xa = ndarray::Array2::from_shape_fn((5, 3), |(r, c)| x[r][c]);
    // Fortran order: the transpose of a C-order 3 x 6 array.
    let yt = ndarray::Array2::from_shape_fn((3, 6), |(c, r)| y[r][c]);
    let ya = yt.t();
    let ba = ndarray::Array2::from_shape_fn((6, 1), |(r, _)| b[r][0]);
    assert_eq!(conv.eval(&xa, ya, &ba).unwrap(), want);
    // Non-contiguous views are refused with a hint.
    let big = ndarray::Array2::from_shape_fn((10, 3), |(r, c)| (r * 3 + c) as f64);
    let every_other = big.slice(ndarray::s![..;2, ..]);
    match conv.eval(every_other, ya, &ba) {
        Err(KeopsError::Input(e)) => {
            let m = e.to_string();
            assert!(m.contains("contiguous"), "{m}");
            assert_eq!(
                e,
                InputError::Argument {
                    argument: "x".into(),
                    error: Box::new(InputError::NotContiguous {
                        role: Role::Argument
                    }),
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn matrices_and_arrays_as_output_buffers() {
    let (x, y) = (points(7, 0.4), points(9, 1.7));
    let b: Vec<[f64; 1]> = (0..9).map(|k| [0.5 * k as f64 - 2.0]).collect();
    let cot: Vec<[f64; 1]> = (0..7).map(|k| [1.0 - 0.3 * k as f64]).collect();
    let want = conv.grad_x(&x, &y, &b, &cot).unwrap();
    let at = |r: usize, c: usize| want[r][c];
    // N x 3 (column-major storage: written with strides), 3 x N, and N x 3 dynamic.
    let mut nx3 =
        nalgebra::OMatrix::<f64, nalgebra::Dyn, nalgebra::Const<3>>::from_element(7, f64::NAN);
    conv.grad_x_into(&mut nx3, &x, &y, &b, &cot).unwrap();
    assert_eq!(
        nx3,
        nalgebra::OMatrix::<f64, nalgebra::Dyn, nalgebra::Const<3>>::from_fn(7, at)
    );
    let mut t3xn = nalgebra::Matrix3xX::<f64>::from_element(7, f64::NAN);
    conv.grad_x_into(&mut t3xn, &x, &y, &b, &cot).unwrap();
    assert_eq!(t3xn, nalgebra::Matrix3xX::from_fn(7, |c, r| at(r, c)));
    let mut dynamic = nalgebra::DMatrix::<f64>::from_element(7, 3, f64::NAN);
    conv.grad_x_into(&mut dynamic, &x, &y, &b, &cot).unwrap();
    assert_eq!(dynamic, nalgebra::DMatrix::from_fn(7, 3, at));
    let mut wrong = nalgebra::DMatrix::<f64>::zeros(7, 2);
    match conv.grad_x_into(&mut wrong, &x, &y, &b, &cot) {
        Err(KeopsError::Input(e)) => {
            let m = e.to_string();
            assert!(m.contains("2 columns"), "{m}");
            assert_eq!(
                e,
                InputError::Width {
                    holder: Holder::Matrix,
                    role: Role::Output,
                    expected: 3,
                    got: 2
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // ndarray: C order, and a Fortran-order view.
    let mut c_order = ndarray::Array2::from_elem((7, 3), f64::NAN);
    conv.grad_x_into(&mut c_order, &x, &y, &b, &cot).unwrap();
    assert_eq!(
        c_order,
        ndarray::Array2::from_shape_fn((7, 3), |(r, c)| at(r, c))
    );
    let mut f_store = ndarray::Array2::from_elem((3, 7), f64::NAN);
    conv.grad_x_into(f_store.view_mut().reversed_axes(), &x, &y, &b, &cot)
        .unwrap();
    assert_eq!(
        f_store,
        ndarray::Array2::from_shape_fn((3, 7), |(c, r)| at(r, c))
    );
}
