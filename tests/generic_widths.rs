//! Kernels whose widths are left to the caller: const generics inferred from the arguments.

use keops::ir::eval::{Array, EvalOptions, Output};
use keops::{Backend, Options};
use keops::{Program, keops};

fn rows<const D: usize>(n: usize, seed: u64) -> Vec<[f64; D]> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            std::array::from_fn(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
        })
        .collect()
}

fn flat<const D: usize>(v: &[[f64; D]]) -> Vec<f64> {
    v.iter().flatten().copied().collect()
}

/// The reference evaluator's output of `formula` for row-major arguments (values, rows,
/// width).
fn reference(formula: &str, args: &[(&[f64], usize, usize)]) -> Output<f64> {
    let arrays: Vec<Array<'_, f64>> = args.iter().map(|(v, r, c)| Array::new(v, *r, *c)).collect();
    Program::parse(formula)
        .unwrap()
        .evaluate(&arrays, &EvalOptions::default())
        .unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn gaussian_with_undeclared_widths() {
    // Generic widths: the GPU kernels are generated at first use (emulated here).
    for backend in [Backend::Cpu, Backend::Emulated] {
        let opts = &Options::on(backend);
        let k = keops!(Sum_j(Exp(-SqDist(x_i, y_j)) * b_j));
        let (x, y, b) = (rows::<3>(30, 1), rows::<3>(41, 2), rows::<2>(41, 3));
        let got = k.eval_with(opts, &x, &y, &b).unwrap();
        let (fx, fy, fb) = (flat(&x), flat(&y), flat(&b));
        let want = reference(k.formula(), &[(&fx, 30, 3), (&fy, 41, 3), (&fb, 41, 2)]);
        close(
            &got.iter().flatten().copied().collect::<Vec<_>>(),
            &want.values,
            1e-12,
        );
        // The same kernel at other widths.
        let (x1, y1, b1) = (rows::<1>(7, 4), rows::<1>(9, 5), rows::<4>(9, 6));
        let got = k.eval_with(opts, &x1, &y1, &b1).unwrap();
        assert_eq!(got.len(), 7);
        assert_eq!(got[0].len(), 4);
    }
}

#[test]
fn generic_reductions_and_gradients() {
    // Generic widths: the GPU kernels are generated at first use (emulated here).
    for backend in [Backend::Cpu, Backend::Emulated] {
        let opts = &Options::on(backend);
        let k = keops!(LogSumExp_j(-SqDist(x_i, y_j) + Sum(w_j)));
        let (x, y, w) = (rows::<5>(11, 7), rows::<5>(13, 8), rows::<3>(13, 9));
        let got = k.eval_with(opts, &x, &y, &w).unwrap();
        let p = Program::parse(k.formula()).unwrap();
        let (fx, fy, fw) = (flat(&x), flat(&y), flat(&w));
        let args = [
            Array::new(&fx, 11, 5),
            Array::new(&fy, 13, 5),
            Array::new(&fw, 13, 3),
        ];
        let want = p.evaluate(&args, &EvalOptions::default()).unwrap();
        close(
            &got.iter().flatten().copied().collect::<Vec<_>>(),
            &want.values,
            1e-12,
        );
        let e = rows::<1>(11, 10);
        let gx = k.grad_x_with(opts, &x, &y, &w, &e).unwrap();
        let fe = flat(&e);
        let g = p.grad(0, "e").unwrap();
        let mut gargs = args.to_vec();
        gargs.push(Array::new(&fe, 11, 1));
        let want = g.evaluate(&gargs, &EvalOptions::default()).unwrap();
        close(
            &gx.iter().flatten().copied().collect::<Vec<_>>(),
            &want.values,
            1e-11,
        );
    }
}

#[test]
fn generic_kmin_and_weighted_softmax() {
    // Generic widths: the GPU kernels are generated at first use (emulated here).
    for backend in [Backend::Cpu, Backend::Emulated] {
        let opts = &Options::on(backend);
        let k = keops!(KMin_ArgKMin_j(x_i - y_j, 3));
        let (x, y) = (rows::<2>(9, 11), rows::<2>(14, 12));
        let (v, i) = k.eval_with(opts, &x, &y).unwrap();
        let (fx, fy) = (flat(&x), flat(&y));
        let want = reference(k.formula(), &[(&fx, 9, 2), (&fy, 14, 2)]);
        close(
            &v.iter().flatten().flatten().copied().collect::<Vec<_>>(),
            &want.values,
            1e-12,
        );
        assert_eq!(
            i.iter()
                .flatten()
                .flatten()
                .map(|x| *x as u64)
                .collect::<Vec<_>>(),
            want.indices
        );

        let s = keops!(SumSoftMaxWeight_j((q_i | k_j), v_j));
        let (q, kk, vv) = (rows::<4>(6, 13), rows::<4>(10, 14), rows::<3>(10, 15));
        let got = s.eval_with(opts, &q, &kk, &vv).unwrap();
        let (fq, fk, fv) = (flat(&q), flat(&kk), flat(&vv));
        let want = reference(s.formula(), &[(&fq, 6, 4), (&fk, 10, 4), (&fv, 10, 3)]);
        close(
            &got.iter().flatten().copied().collect::<Vec<_>>(),
            &want.values,
            1e-12,
        );
    }
}
