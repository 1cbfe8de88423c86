//! Generated code does not take the caller's items for its own: types named like the
//! CPU kernels' lane count (`L`) or like the width parameters of generic kernels (`D0`,
//! `D1`) may be in scope where `keops!` is called (the generated code writes these const
//! generic arguments in braces, `{ L }`, which a bare name would not resolve to).

#![allow(dead_code)]

use keops::keops;

type L = [f32; 4];
type D0 = u8;
type D1 = u8;
type N = u8;
type K = u8;
type D = u8;
type T = u8;

#[test]
fn kernels_compile_and_run_beside_types_named_like_their_parameters() {
    let gauss = keops!(x_i: 3; y_j: 3; b_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j));
    let generic = keops!(x_i; y_j; Sum_j(SqDist(x_i, y_j)));
    let knn = keops!(x_i: 3; y_j: 3; KMin_ArgKMin_j(SqDist(x_i, y_j), 2));
    let x = vec![[0.0f32; 3], [1.0, 0.0, 0.0]];
    let y = vec![[0.0f32; 3], [0.0, 2.0, 0.0]];
    let b = vec![[1.0f32], [2.0]];
    let g = gauss.eval(&x, &y, &b).unwrap();
    let want = [
        1.0 + 2.0 * (-4.0f32).exp(),
        (-1.0f32).exp() + 2.0 * (-5.0f32).exp(),
    ];
    for (got, want) in g.iter().zip(want) {
        assert!((got[0] - want).abs() < 1e-6, "{got:?} vs {want}");
    }
    assert_eq!(generic.eval(&x, &y).unwrap(), vec![[4.0f32], [6.0]]);
    let (d, i) = knn.eval(&x, &y).unwrap();
    assert_eq!(d, vec![[0.0f32, 4.0], [1.0, 5.0]]);
    assert_eq!(i, vec![[0usize, 1], [0, 1]]);
    let e = vec![[1.0f32], [1.0]];
    let gx = generic.grad_x(&x, &y, &e).unwrap();
    // d/dx sum_j |x - y_j|^2 = 2 sum_j (x - y_j)
    assert_eq!(gx, vec![[0.0f32, -4.0, 0.0], [4.0, -4.0, 0.0]]);
}
