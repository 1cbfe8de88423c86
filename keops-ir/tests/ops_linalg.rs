//! The linear algebra operations (`MatVecMult`, `VecMatMult`, `TensorProd`, `TensorDot`,
//! `Kron`): values by hand and against reference loops, dimension rules and errors,
//! lowering and gradients.

mod ops_util;

use keops_ir::Program;
use keops_ir::eval::{Array, EvalOptions};
use ops_util::{Rng, check_grad, check_lowering, error_of, eval1};

/// Row-major flat index of a multi-index.
fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (i, d)| acc * d + i)
}

/// Multi-index of a row-major flat index.
fn unravel(mut flat: usize, shape: &[usize], idx: &mut [usize]) {
    for (i, d) in idx.iter_mut().zip(shape).rev() {
        *i = flat % d;
        flat /= d;
    }
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
}

#[test]
fn matvec_vecmat_tensorprod_by_hand() {
    // A = [[1, 2, 3], [4, 5, 6]], v = (1, -1, 2)
    let a = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let al = "A = Vi(6); v = Vi(3); w = Vi(2);";
    let ins = vec![a.clone(), vec![1.0, -1.0, 2.0], vec![2.0, -1.0]];
    assert_eq!(eval1(al, "MatVecMult(A, v)", &ins), vec![5.0, 11.0]);
    // w A = 2 (1, 2, 3) - (4, 5, 6)
    assert_eq!(eval1(al, "VecMatMult(w, A)", &ins), vec![-2.0, -1.0, 0.0]);
    assert_eq!(
        eval1(al, "TensorProd(w, v)", &ins),
        vec![2.0, -2.0, 4.0, -1.0, 1.0, -2.0]
    );
    // A read as 3 x 2 by a vector of dimension 2: [[1, 2], [3, 4], [5, 6]] (2, -1)
    assert_eq!(eval1(al, "MatVecMult(A, w)", &ins), vec![0.0, 2.0, 4.0]);
}

#[test]
fn matvec_dimension_errors() {
    let m = error_of("A = Vi(7); v = Vi(2); Sum_Reduction(MatVecMult(A, v), 0)");
    assert!(
        m.contains("the matrix has dimension 7, not a multiple of the vector's dimension 2"),
        "{m}"
    );
    let m = error_of("A = Vi(7); v = Vi(2); Sum_Reduction(VecMatMult(v, A), 0)");
    assert!(
        m.contains("VecMatMult") && m.contains("not a multiple"),
        "{m}"
    );
}

#[test]
fn symbolic_dimensions_are_inferred() {
    // v_j declared, A_i not: A has 2 n coordinates, n fixed by the width given.
    let p = Program::parse("A_i; v_j: 2; Sum_j(MatVecMult(A_i, v_j))").unwrap();
    assert_eq!(
        (p.arg_position("A"), p.arg_position("v")),
        (Some(0), Some(1))
    );
    let q = p.instantiate(&[6, 2]).unwrap();
    assert_eq!(q.output_info().values.as_known(), Some(3));
    assert!(p.instantiate(&[7, 2]).is_err());
    // TensorDot fixes the widths of its arguments.
    let p = Program::parse("Sum_j(TensorDot(a_i, b_j, (2, 3), (3, 2), (1,), (0,)))").unwrap();
    assert_eq!(p.args[0].dim.as_known(), Some(6));
    assert_eq!(p.args[1].dim.as_known(), Some(6));
    assert_eq!(p.output_info().values.as_known(), Some(4));
    // Kron too.
    let p = Program::parse("Sum_j(Kron(a_i, b_j, (2, 2), (1, 3)))").unwrap();
    assert_eq!(p.args[0].dim.as_known(), Some(4));
    assert_eq!(p.args[1].dim.as_known(), Some(3));
    assert_eq!(p.output_info().values.as_known(), Some(12));
    // TensorProd: the product of the widths, and its gradients.
    let p = Program::parse("Sum_j(TensorProd(a_i, b_j))").unwrap();
    let q = p.instantiate(&[2, 3]).unwrap();
    assert_eq!(q.output_info().values.as_known(), Some(6));
    for pos in 0..2 {
        let g = p.grad(pos, "e").unwrap();
        let x = [1.0, 2.0];
        let y = [3.0, 4.0, 5.0];
        let e = [1.0, 0.0, 0.0, 0.0, 0.0, 2.0];
        let arrays = [
            Array::new(&x[..], 1, 2),
            Array::new(&y[..], 1, 3),
            Array::new(&e[..], 1, 6),
        ];
        let out = g.evaluate(&arrays, &EvalOptions::default()).unwrap();
        // <e, x (x) y> = x0 y0 + 2 x1 y2
        let want = if pos == 0 {
            vec![3.0, 10.0]
        } else {
            vec![1.0, 0.0, 4.0]
        };
        assert_eq!(out.values, want, "gradient {pos}");
    }
}

#[test]
fn linear_products_lower_like_their_values() {
    let mut rng = Rng::new(1);
    let ins = vec![rng.vec(6), rng.vec(2), rng.vec(3)];
    let al = "A = Vi(6); v = Vi(2); w = Vi(3);";
    for f in [
        "MatVecMult(A, v)",
        "MatVecMult(A, w)",
        "VecMatMult(v, A)",
        "VecMatMult(w, A)",
        "TensorProd(v, w)",
        "TensorProd(A, v)",
    ] {
        check_lowering(al, f, &ins);
    }
    // The parse-level example of the brief.
    let x = rng.vec(6);
    let v = rng.vec(2);
    let p = Program::parse("x = Vi(6); v = Vj(2); Sum_Reduction(MatVecMult(x, v), 0)").unwrap();
    let out = p
        .evaluate(
            &[Array::new(&x, 1, 6), Array::new(&v, 1, 2)],
            &EvalOptions::default(),
        )
        .unwrap();
    let want: Vec<f64> = (0..3)
        .map(|i| x[2 * i] * v[0] + x[2 * i + 1] * v[1])
        .collect();
    assert!(close(&out.values, &want), "{:?} vs {want:?}", out.values);
}

#[test]
fn linear_products_gradients() {
    let mut rng = Rng::new(2);
    let ins = vec![rng.vec(6), rng.vec(2), rng.vec(3)];
    let al = "A = Vi(6); v = Vi(2); w = Vi(3);";
    check_grad(al, "MatVecMult(A, v)", "A", 0, &ins, 1e-7);
    check_grad(al, "MatVecMult(A, v)", "v", 1, &ins, 1e-7);
    check_grad(al, "VecMatMult(w, A)", "A", 0, &ins, 1e-7);
    check_grad(al, "VecMatMult(w, A)", "w", 2, &ins, 1e-7);
    check_grad(al, "TensorProd(v, w)", "v", 1, &ins, 1e-7);
    check_grad(al, "TensorProd(v, w)", "w", 2, &ins, 1e-7);
    // Nonlinear use: both arguments are the same variable.
    check_grad(al, "Exp(TensorProd(w, w) * 0.5)", "w", 2, &ins, 1e-6);
    check_grad(al, "MatVecMult(TensorProd(w, v), v)", "v", 1, &ins, 1e-6);
}

/// numpy's tensordot followed by keopscore's permutation, by brute force over all
/// pairs of coordinates of f and g.
fn tensordot_reference(
    f: &[f64],
    g: &[f64],
    dimsf: &[usize],
    dimsg: &[usize],
    contf: &[usize],
    contg: &[usize],
    perm: Option<&[usize]>,
) -> Vec<f64> {
    let keepf: Vec<usize> = (0..dimsf.len()).filter(|a| !contf.contains(a)).collect();
    let keepg: Vec<usize> = (0..dimsg.len()).filter(|a| !contg.contains(a)).collect();
    let keep_dims: Vec<usize> = keepf
        .iter()
        .map(|a| dimsf[*a])
        .chain(keepg.iter().map(|a| dimsg[*a]))
        .collect();
    let ident: Vec<usize> = (0..keep_dims.len()).collect();
    let perm = perm.unwrap_or(&ident);
    let mut out_shape = vec![0; keep_dims.len()];
    for (k, d) in keep_dims.iter().enumerate() {
        out_shape[perm[k]] = *d;
    }
    let mut out = vec![0.0; out_shape.iter().product()];
    let (mut fi, mut gi) = (vec![0; dimsf.len()], vec![0; dimsg.len()]);
    for (a, fa) in f.iter().enumerate() {
        unravel(a, dimsf, &mut fi);
        for (b, gb) in g.iter().enumerate() {
            unravel(b, dimsg, &mut gi);
            if contf.iter().zip(contg).any(|(x, y)| fi[*x] != gi[*y]) {
                continue;
            }
            let keep: Vec<usize> = keepf
                .iter()
                .map(|x| fi[*x])
                .chain(keepg.iter().map(|y| gi[*y]))
                .collect();
            let mut oi = vec![0; keep.len()];
            for (k, v) in keep.iter().enumerate() {
                oi[perm[k]] = *v;
            }
            out[ravel(&oi, &out_shape)] += fa * gb;
        }
    }
    out
}

#[test]
fn tensordot_by_hand() {
    // [[1, 2, 3], [4, 5, 6]] @ [[7, 8], [9, 10], [11, 12]]
    let al = "a = Vi(6); b = Vi(6);";
    let ins = vec![
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
    ];
    assert_eq!(
        eval1(al, "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,))", &ins),
        vec![58.0, 64.0, 139.0, 154.0]
    );
    assert_eq!(
        eval1(
            al,
            "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (1, 0))",
            &ins
        ),
        vec![58.0, 139.0, 64.0, 154.0]
    );
    // Contracting both axes: the Frobenius product with b read as 2 x 3.
    assert_eq!(
        eval1(al, "TensorDot(a, b, (2, 3), (2, 3), (0, 1), (0, 1))", &ins),
        vec![217.0]
    );
    // a (2 x 3) (x) c (4), kept axes (2, 3, 4) moved to positions (1, 2, 0):
    // out[l, i, j] = a[i, j] c[l], of shape (4, 2, 3).
    let al = "a = Vi(6); c = Vi(4);";
    let c = vec![1.0, 10.0, 100.0, 1000.0];
    let ins = vec![ins[0].clone(), c.clone()];
    let got = eval1(al, "TensorDot(a, c, (2, 3), (4,), (), (), (1, 2, 0))", &ins);
    let want: Vec<f64> = c
        .iter()
        .flat_map(|cl| ins[0].iter().map(move |x| x * cl))
        .collect();
    assert_eq!(got, want);
}

/// Shapes, contracted axes and permutation of a TensorDot.
type Case<'a> = (
    &'a [usize],
    &'a [usize],
    &'a [usize],
    &'a [usize],
    Option<&'a [usize]>,
);

#[test]
fn tensordot_matches_the_reference_loop() {
    let mut rng = Rng::new(3);
    let cases: &[Case<'_>] = &[
        (&[2, 3], &[3, 2], &[1], &[0], None),
        (&[2, 3], &[3, 2], &[1], &[0], Some(&[1, 0])),
        (&[2, 3, 4], &[4, 3], &[1, 2], &[1, 0], None),
        (&[2, 3, 4], &[4, 2, 5], &[2], &[0], Some(&[2, 0, 3, 1])),
        (&[2, 3, 4], &[4, 2, 5], &[0, 2], &[1, 0], Some(&[1, 0])),
        (&[3, 2], &[2, 4], &[], &[], Some(&[3, 1, 0, 2])),
        (&[2, 3], &[2, 3], &[1, 0], &[1, 0], None),
        (&[5], &[5], &[0], &[0], None),
        (&[], &[3, 2], &[], &[], None),
        (&[2], &[], &[], &[], None),
    ];
    for (dimsf, dimsg, contf, contg, perm) in cases {
        let (nf, ng) = (
            dimsf.iter().product::<usize>(),
            dimsg.iter().product::<usize>(),
        );
        let ins = vec![rng.vec(nf), rng.vec(ng)];
        let al = format!("f = Vi({nf}); g = Vi({ng});");
        let list = |v: &[usize]| {
            format!(
                "({})",
                v.iter().map(|x| format!("{x},")).collect::<String>()
            )
        };
        let mut formula = format!(
            "TensorDot(f, g, {}, {}, {}, {}",
            list(dimsf),
            list(dimsg),
            list(contf),
            list(contg)
        );
        if let Some(p) = perm {
            formula.push_str(&format!(", {}", list(p)));
        }
        formula.push(')');
        let want = tensordot_reference(&ins[0], &ins[1], dimsf, dimsg, contf, contg, *perm);
        let got = eval1(&al, &formula, &ins);
        assert!(close(&got, &want), "{formula}: {got:?} vs {want:?}");
        check_lowering(&al, &formula, &ins);
        check_grad(&al, &formula, "f", 0, &ins, 1e-7);
        check_grad(&al, &formula, "g", 1, &ins, 1e-7);
    }
}

#[test]
fn tensordot_errors() {
    let al = "a = Vi(6); b = Vi(6);";
    let cases = [
        (
            "TensorDot(a, b, (2, 2), (3, 2), (1,), (1,))",
            "the first tensor (shape (2, 2)) must have dimension 4, found 6",
        ),
        (
            "TensorDot(a, b, (2, 3), (3, 2), (1,), (1,))",
            "has size 3 but is contracted with axis 1",
        ),
        (
            "TensorDot(a, b, (2, 3), (3, 2), (2,), (0,))",
            "names the axis 2",
        ),
        ("TensorDot(a, b, (2, 3), (3, 2), (1, 1), (0, 0))", "twice"),
        (
            "TensorDot(a, b, (2, 3), (3, 2), (1,), (0, 1))",
            "different lengths",
        ),
        (
            "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (0, 0))",
            "permutation",
        ),
        (
            "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (0, 1, 2))",
            "permutation",
        ),
        (
            "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (-1, 0))",
            "permutation",
        ),
        ("TensorDot(a, b, (6, 0), (3, 2), (1,), (0,))", "at least 1"),
        ("TensorDot(a, b, (2, 3), (3, -2), (1,), (0,))", "at least 1"),
        ("Kron(a, b, (2, 3), (6,))", "same number of axes"),
        (
            "Kron(a, b, (2, 2), (3, 2))",
            "must have dimension 4, found 6",
        ),
    ];
    for (f, want) in cases {
        let m = error_of(&format!("{al} Sum_Reduction({f}, 0)"));
        assert!(m.contains(want), "{f}: {m}");
    }
}

#[test]
fn kron_is_numpy_kron() {
    // np.kron([[1, 2], [3, 4]], [[0, 5], [6, 7]])
    let al = "a = Vi(4); b = Vi(4);";
    let ins = vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 5.0, 6.0, 7.0]];
    let want = vec![
        0.0, 5.0, 0.0, 10.0, //
        6.0, 7.0, 12.0, 14.0, //
        0.0, 15.0, 0.0, 20.0, //
        18.0, 21.0, 24.0, 28.0,
    ];
    assert_eq!(eval1(al, "Kron(a, b, (2, 2), (2, 2))", &ins), want);
    // Vectors: np.kron([1, 2], [1, 10, 100]).
    let al = "a = Vi(2); b = Vi(3);";
    let ins = vec![vec![1.0, 2.0], vec![1.0, 10.0, 100.0]];
    assert_eq!(
        eval1(al, "Kron(a, b, (2,), (3,))", &ins),
        vec![1.0, 10.0, 100.0, 2.0, 20.0, 200.0]
    );
    // Rank 3 against the definition kron[i0 D0 + j0, i1 D1 + j1, i2 D2 + j2] = a[i] b[j].
    let mut rng = Rng::new(4);
    let (da, db) = ([2usize, 1, 3], [3usize, 2, 2]);
    let ins = vec![rng.vec(6), rng.vec(12)];
    let al = "a = Vi(6); b = Vi(12);";
    let got = eval1(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", &ins);
    let shape: Vec<usize> = da.iter().zip(&db).map(|(x, y)| x * y).collect();
    let mut want = vec![0.0; 72];
    let (mut ia, mut ib) = ([0; 3], [0; 3]);
    for (p, x) in ins[0].iter().enumerate() {
        unravel(p, &da, &mut ia);
        for (q, y) in ins[1].iter().enumerate() {
            unravel(q, &db, &mut ib);
            let o: Vec<usize> = (0..3).map(|k| ia[k] * db[k] + ib[k]).collect();
            want[ravel(&o, &shape)] = x * y;
        }
    }
    assert_eq!(got, want);
    check_lowering(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", &ins);
    check_grad(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", "a", 0, &ins, 1e-7);
    check_grad(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", "b", 1, &ins, 1e-7);
}
