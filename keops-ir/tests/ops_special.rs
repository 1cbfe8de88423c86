//! The special operations (`BSpline`, `SoftDTW_SqDist`, `GradSoftDTW_SqDist`): values by
//! hand and against textbook definitions, lowering, gradients and errors.

mod ops_util;

use ops_util::{Rng, check_grad, check_lowering, error_of, eval1};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn bspline_by_hand() {
    let al = "t = Vi(4); x = Vi(1);";
    let knots = vec![0.0, 1.0, 2.0, 3.0];
    // Order 0: indicators of [0, 1), [1, 2), [2, 3), half-open.
    assert_eq!(
        eval1(al, "BSpline(t, x, 0)", &[knots.clone(), vec![1.0]]),
        vec![0.0, 1.0, 0.0]
    );
    assert_eq!(
        eval1(al, "BSpline(t, x, 0)", &[knots.clone(), vec![0.5]]),
        vec![1.0, 0.0, 0.0]
    );
    assert_eq!(
        eval1(al, "BSpline(t, x, 0)", &[knots.clone(), vec![3.0]]),
        vec![0.0, 0.0, 0.0]
    );
    // Order 1: hat functions centred on 1 and 2.
    assert_eq!(
        eval1(al, "BSpline(t, x, 1)", &[knots.clone(), vec![1.5]]),
        vec![0.5, 0.5]
    );
    assert_eq!(
        eval1(al, "BSpline(t, x, 1)", &[knots.clone(), vec![0.25]]),
        vec![0.25, 0.0]
    );
    // Order 2, knots 0..5 at 2.5: (1 - u)^2 / 2, (-2u^2 + 2u + 1) / 2, u^2 / 2 with u = 0.5.
    let al5 = "t = Vi(6); x = Vi(1);";
    let k5 = vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    assert_eq!(
        eval1(al5, "BSpline(t, x, 2)", &[k5.clone(), vec![2.5]]),
        vec![0.125, 0.75, 0.125]
    );
    // Repeated knots (0/0 := 0): the linear Bernstein basis.
    let got = eval1(
        al,
        "BSpline(t, x, 1)",
        &[vec![0.0, 0.0, 1.0, 1.0], vec![0.25]],
    );
    assert_eq!(got, vec![0.75, 0.25]);
    // Quadratic Bernstein basis on knots (0, 0, 0, 1, 1, 1) at 0.5: (1/4, 1/2, 1/4).
    let got = eval1(
        al5,
        "BSpline(t, x, 2)",
        &[vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0], vec![0.5]],
    );
    assert_eq!(got, vec![0.25, 0.5, 0.25]);
}

#[test]
fn bspline_partition_of_unity() {
    let al = "t = Vi(9); x = Vi(1);";
    let knots: Vec<f64> = (0..9).map(|k| k as f64 * 0.5 - 1.0).collect();
    for order in 0..=3usize {
        let f = format!("BSpline(t, x, {order})");
        // Inside [t_order, t_{K-order-1}) the basis sums to 1.
        let (lo, hi) = (knots[order], knots[8 - order]);
        for s in 0..20 {
            let x = lo + (hi - lo) * (s as f64 + 0.3) / 20.0;
            let b = eval1(al, &f, &[knots.clone(), vec![x]]);
            assert_eq!(b.len(), 8 - order);
            assert!(b.iter().all(|v| *v >= 0.0), "{f} at {x}: {b:?}");
            assert!(close(b.iter().sum(), 1.0, 1e-14), "{f} at {x}: {b:?}");
        }
        // Outside the knots everything is 0.
        assert!(
            eval1(al, &f, &[knots.clone(), vec![5.0]])
                .iter()
                .all(|v| *v == 0.0)
        );
        assert!(
            eval1(al, &f, &[knots.clone(), vec![-1.5]])
                .iter()
                .all(|v| *v == 0.0)
        );
        let mut rng = Rng::new(order as u64 + 10);
        let mut t: Vec<f64> = rng.vec(9);
        t.sort_by(f64::total_cmp);
        t[4] = t[3]; // a double knot
        for x in [t[1], t[4], 0.5 * (t[5] + t[6]), rng.next(), 2.0] {
            check_lowering(al, &f, &[t.clone(), vec![x]]);
        }
    }
}

#[test]
fn bspline_errors() {
    let m = error_of("t = Vi(4); x = Vi(1); Sum_Reduction(BSpline(t, x, 3), 0)");
    assert!(m.contains("at least 5 knots, found 4"), "{m}");
    let m = error_of("t = Vi(4); x = Vi(2); Sum_Reduction(BSpline(t, x, 1), 0)");
    assert!(m.contains("must be a scalar"), "{m}");
    let m = error_of("t = Vi(4); x = Vi(1); Sum_Reduction(BSpline(t, x, -1), 0)");
    assert!(m.contains("non-negative"), "{m}");
    let m =
        error_of("t = Vi(4); x = Vi(1); e = Vi(2); Sum_Reduction(Grad(BSpline(t, x, 1), x, e), 0)");
    assert!(m.contains("cannot differentiate BSpline"), "{m}");
    // Undeclared knots: the output dimension follows.
    let p = keops_ir::Program::parse("Sum_j(BSpline(t_i, x_j, 2))").unwrap();
    let q = p.instantiate(&[7, 1]).unwrap();
    assert_eq!(q.output_info().values.as_known(), Some(4));
    assert!(p.instantiate(&[3, 1]).is_err());
}

/// Hard DTW with squared differences, by the textbook recursion.
fn dtw(x: &[f64], y: &[f64]) -> f64 {
    let (n, m) = (x.len(), y.len());
    let mut r = vec![vec![f64::INFINITY; m + 1]; n + 1];
    r[0][0] = 0.0;
    for i in 1..=n {
        for j in 1..=m {
            let d = (x[i - 1] - y[j - 1]).powi(2);
            r[i][j] = d + r[i - 1][j - 1].min(r[i - 1][j]).min(r[i][j - 1]);
        }
    }
    r[n][m]
}

#[test]
fn softdtw_by_hand() {
    let al = "x = Vi(2); y = Vi(2); g = Vi(1);";
    let (x, y, g): (Vec<f64>, Vec<f64>, f64) = (vec![0.0, 1.0], vec![0.5, 2.0], 0.7);
    let got = eval1(
        al,
        "SoftDTW_SqDist(x, y, g)",
        &[x.clone(), y.clone(), vec![g]],
    );
    let d = |i: usize, j: usize| (x[i] - y[j]) * (x[i] - y[j]);
    let (r00, r10, r01) = (d(0, 0), d(0, 0) + d(1, 0), d(0, 0) + d(0, 1));
    let softmin = -g * ((-r00 / g).exp() + (-r10 / g).exp() + (-r01 / g).exp()).ln();
    assert!(close(got[0], d(1, 1) + softmin, 1e-14), "{got:?}");
    // One sequence of length 1: a plain sum of squares, whatever gamma.
    let al = "x = Vi(3); y = Vi(1); g = Vi(1);";
    let got = eval1(
        al,
        "SoftDTW_SqDist(x, y, g)",
        &[vec![1.0, 2.0, 4.0], vec![1.0], vec![0.3]],
    );
    assert_eq!(got, vec![10.0]);
}

#[test]
fn softdtw_tends_to_dtw() {
    let mut rng = Rng::new(5);
    let (x, y) = (rng.vec(5), rng.vec(4));
    let al = "x = Vi(5); y = Vi(4); g = Vi(1);";
    let hard = dtw(&x, &y);
    let mut prev = f64::NEG_INFINITY;
    for g in [1.0, 0.1, 0.01, 1e-3, 1e-4] {
        let s = eval1(
            al,
            "SoftDTW_SqDist(x, y, g)",
            &[x.clone(), y.clone(), vec![g]],
        )[0];
        // The soft minimum is below the minimum, and increases to it as gamma decreases.
        assert!(
            s <= hard + 1e-12 && s >= prev - 1e-12,
            "gamma {g}: {s} vs DTW {hard}"
        );
        prev = s;
    }
    assert!(close(prev, hard, 1e-3), "{prev} vs {hard}");
}

#[test]
fn softdtw_lowers_like_its_value() {
    let mut rng = Rng::new(6);
    for (n, m) in [(1, 1), (1, 3), (3, 1), (2, 2), (4, 3), (5, 6)] {
        let al = format!("x = Vi({n}); y = Vi({m}); g = Vi(1);");
        let ins = vec![rng.vec(n), rng.vec(m), vec![0.05 + rng.next().abs()]];
        check_lowering(&al, "SoftDTW_SqDist(x, y, g)", &ins);
        check_lowering(&al, "GradSoftDTW_SqDist(x, y, g)", &ins);
        // Both in one formula share the forward pass.
        check_lowering(
            &al,
            "Concat(GradSoftDTW_SqDist(x, y, g), SoftDTW_SqDist(x, y, g))",
            &ins,
        );
    }
}

#[test]
fn softdtw_gradients() {
    let mut rng = Rng::new(7);
    for (n, m, g) in [
        (1, 1, 0.5),
        (2, 3, 0.5),
        (4, 3, 0.1),
        (5, 5, 1.0),
        (3, 6, 0.02),
    ] {
        let al = format!("x = Vi({n}); y = Vi({m}); g = Vi(1);");
        let ins = vec![rng.vec(n), rng.vec(m), vec![g]];
        check_grad(&al, "SoftDTW_SqDist(x, y, g)", "x", 0, &ins, 1e-6);
        check_grad(&al, "SoftDTW_SqDist(x, y, g)", "y", 1, &ins, 1e-6);
        // Through a nonlinear outer function and with x used twice.
        check_grad(
            &al,
            "Exp(-SoftDTW_SqDist(x, y + Sum(x), g))",
            "x",
            0,
            &ins,
            1e-6,
        );
    }
    // GradSoftDTW equals the gradient of the hard DTW when gamma is small and the
    // optimal path is unique.
    let (x, y) = (vec![0.0, 1.0, 3.0], vec![0.2, 2.9]);
    let al = "x = Vi(3); y = Vi(2); g = Vi(1);";
    let got = eval1(
        al,
        "GradSoftDTW_SqDist(x, y, g)",
        &[x.clone(), y.clone(), vec![1e-4]],
    );
    // Best path (0,0), (1,0), (2,1): d/dx = 2 (x - y) along it.
    let want = [
        2.0 * (0.0 - 0.2),
        2.0 * (1.0 - 0.2),
        2.0 * (3.0 - 2.9),
        -2.0 * (0.0 - 0.2) - 2.0 * (1.0 - 0.2),
        -2.0 * (3.0 - 2.9),
    ];
    for (a, b) in got.iter().zip(&want) {
        assert!(close(*a, *b, 1e-6), "{got:?} vs {want:?}");
    }
}

#[test]
fn softdtw_errors() {
    let m = error_of("x = Vi(3); y = Vi(2); g = Vi(2); Sum_Reduction(SoftDTW_SqDist(x, y, g), 0)");
    assert!(m.contains("gamma must be a scalar"), "{m}");
    let m = error_of(
        "x = Vi(3); y = Vi(2); g = Vi(1); e = Vi(1); Sum_Reduction(Grad(SoftDTW_SqDist(x, y, g), g, e), 0)",
    );
    assert!(
        m.contains("with respect to gamma is not implemented"),
        "{m}"
    );
    let m = error_of(
        "x = Vi(3); y = Vi(2); g = Vi(1); e = Vi(5); Sum_Reduction(Grad(GradSoftDTW_SqDist(x, y, g), x, e), 0)",
    );
    assert!(m.contains("second derivatives of SoftDTW_SqDist"), "{m}");
}
