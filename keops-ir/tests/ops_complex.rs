//! The complex operations (interleaved real and imaginary parts): values at hand-computed
//! points, the lowering against the values bit for bit, gradients against finite
//! differences (with broadcasting, second order), dimension rules and symbolic widths.

use keops_ir::dim::DimSolver;
use keops_ir::eval::{Array, EvalOptions, SumScheme, apply_op};
use keops_ir::graph::{Cat, Param, VarSource};
use keops_ir::lower::{Lower, Ty, Val, lower_formula};
use keops_ir::ops::{DimCx, LowerArgs, Lowering, Op};
use keops_ir::{Dim, ErrorKind, Program, Real};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PI: f64 = std::f64::consts::PI;

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

/// Random coordinates of magnitude in [0.4, 1.4], either sign (away from the
/// singularities of ComplexAbs and ComplexDivide).
fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| rng.random_range(0.4..1.4) * if rng.random_bool(0.5) { 1.0 } else { -1.0 })
        .collect()
}

#[test]
fn values_at_hand_computed_points() {
    let v =
        |op: Op, args: &[&[f64]], params: &[Param], d: usize| apply_op::<f64>(op, args, params, d);
    assert_eq!(v(Op::ComplexReal, &[&[1., 2., 3., 4.]], &[], 2), [1., 3.]);
    assert_eq!(v(Op::ComplexImag, &[&[1., 2., 3., 4.]], &[], 2), [2., 4.]);
    assert_eq!(v(Op::Real2Complex, &[&[1., 2.]], &[], 4), [1., 0., 2., 0.]);
    assert_eq!(v(Op::Imag2Complex, &[&[1., 2.]], &[], 4), [0., 1., 0., 2.]);
    assert_eq!(
        v(Op::Conj, &[&[1., 2., 3., -4.]], &[], 4),
        [1., -2., 3., 4.]
    );
    assert_eq!(
        v(Op::ComplexAdd, &[&[1., 2.], &[3., -1.]], &[], 2),
        [4., 1.]
    );
    assert_eq!(
        v(Op::ComplexAdd, &[&[1., 2., 3., 4.], &[10., 20.]], &[], 4),
        [11., 22., 13., 24.]
    );
    assert_eq!(
        v(Op::ComplexSubtract, &[&[1., 2.], &[3., -1.]], &[], 2),
        [-2., 3.]
    );
    assert_eq!(
        v(
            Op::ComplexSubtract,
            &[&[10., 20.], &[1., 2., 3., 4.]],
            &[],
            4
        ),
        [9., 18., 7., 16.]
    );
    // (1 + 2i)(3 - i) = 5 + 5i; i (1 + 2i) = -2 + i, i (3 + 4i) = -4 + 3i
    assert_eq!(
        v(Op::ComplexMult, &[&[1., 2.], &[3., -1.]], &[], 2),
        [5., 5.]
    );
    assert_eq!(
        v(Op::ComplexMult, &[&[0., 1.], &[1., 2., 3., 4.]], &[], 4),
        [-2., 1., -4., 3.]
    );
    // (5 + 5i) / (3 - i) = 1 + 2i; (1 + 2i) / 2i = 1 - i/2, (3 + 4i) / 2i = 2 - 3i/2
    assert_eq!(
        v(Op::ComplexDivide, &[&[5., 5.], &[3., -1.]], &[], 2),
        [1., 2.]
    );
    assert_eq!(
        v(Op::ComplexDivide, &[&[1., 2., 3., 4.], &[0., 2.]], &[], 4),
        [1., -0.5, 2., -1.5]
    );
    // (2 + 4i) / (1 + i, 2i): broadcast numerator
    assert_eq!(
        v(Op::ComplexDivide, &[&[2., 4.], &[1., 1., 0., 2.]], &[], 4),
        [3., 1., 2., -1.]
    );
    // e^(i pi) = -1, e^(ln 2 + i pi/2) = 2i
    assert!(close(
        &v(Op::ComplexExp, &[&[0., PI, 2f64.ln(), PI / 2.]], &[], 4),
        &[-1., 0., 0., 2.],
        1e-15
    ));
    assert!(close(
        &v(Op::ComplexExp1j, &[&[0., PI / 2., PI]], &[], 6),
        &[1., 0., 0., 1., -1., 0.],
        1e-15
    ));
    assert_eq!(v(Op::ComplexAbs, &[&[3., 4., 0., -2.]], &[], 2), [5., 2.]);
    assert_eq!(
        v(Op::ComplexSquareAbs, &[&[3., 4., 0., -2.]], &[], 2),
        [25., 4.]
    );
    assert_eq!(
        v(Op::ComplexSum, &[&[1., 2., 3., 4., 5., 6.]], &[], 2),
        [9., 12.]
    );
    assert_eq!(
        v(Op::ComplexSumT, &[&[1., 2.]], &[Param::Int(6)], 6),
        [1., 2., 1., 2., 1., 2.]
    );
    assert_eq!(
        v(Op::ComplexRealScal, &[&[2.], &[1., -3., 0.5, 4.]], &[], 4),
        [2., -6., 1., 8.]
    );
    assert_eq!(
        v(Op::ComplexRealScal, &[&[1., -3., 0.5, 4.], &[2.]], &[], 4),
        [2., -6., 1., 8.]
    );
}

#[test]
fn angle_is_atan2_of_imag_and_real() {
    let p = Program::parse("z = Vi(6); Sum_Reduction(ComplexAngle(z), 0)").unwrap();
    let z = [-1., 1., 0., -2., 3., 0.];
    let opts = EvalOptions {
        n: Some(1),
        ..Default::default()
    };
    let out = p.evaluate(&[Array::new(&z, 1, 6)], &opts).unwrap();
    assert!(
        close(&out.values, &[3. * PI / 4., -PI / 2., 0.], 1e-15),
        "{:?}",
        out.values
    );
}

/// Dimension rule of `op` on known dimensions.
fn out_dim(op: Op, dims: &[usize], params: &[Param]) -> Result<usize, String> {
    let dims: Vec<Dim> = dims.iter().map(|d| Dim::known(*d)).collect();
    let mut solver = DimSolver::new();
    let mut cx = DimCx {
        args: &dims,
        params,
        solver: &mut solver,
    };
    let d = (op.spec().prim().unwrap().dim)(&mut cx)?;
    Ok(d.as_known().unwrap())
}

/// The ops with argument dimensions, including every broadcast form.
fn cases() -> Vec<(Op, Vec<usize>, Vec<Param>)> {
    use Op::*;
    let mut v = vec![
        (ComplexReal, vec![6], vec![]),
        (ComplexImag, vec![6], vec![]),
        (Real2Complex, vec![3], vec![]),
        (Imag2Complex, vec![3], vec![]),
        (Conj, vec![6], vec![]),
        (ComplexExp, vec![6], vec![]),
        (ComplexExp1j, vec![3], vec![]),
        (ComplexAbs, vec![6], vec![]),
        (ComplexSquareAbs, vec![6], vec![]),
        (ComplexSum, vec![6], vec![]),
        (ComplexSum, vec![2], vec![]),
        (ComplexSumT, vec![2], vec![Param::Int(6)]),
        (ComplexRealScal, vec![1, 6], vec![]),
        (ComplexRealScal, vec![6, 1], vec![]),
    ];
    for op in [ComplexAdd, ComplexSubtract, ComplexMult, ComplexDivide] {
        for dims in [vec![6, 6], vec![6, 2], vec![2, 6], vec![2, 2]] {
            v.push((op, dims, vec![]));
        }
    }
    v
}

fn check_lowering<R: Real>(rng: &mut StdRng) {
    for (op, dims, params) in cases() {
        let od = out_dim(op, &dims, &params).unwrap();
        let args: Vec<Vec<R>> = dims
            .iter()
            .map(|d| random(rng, *d).into_iter().map(R::of).collect())
            .collect();
        let refs: Vec<&[R]> = args.iter().map(|a| a.as_slice()).collect();
        let want = apply_op::<R>(op, &refs, &params, od);
        let mut l = Lower::new();
        let regs: Vec<Vec<_>> = dims
            .iter()
            .map(|d| (0..*d).map(|_| l.param(Ty::F)).collect())
            .collect();
        let Lowering::Vector(f) = op.spec().prim().unwrap().lower else {
            panic!("{op:?} is not a vector lowering")
        };
        let results = f(
            &mut l,
            &LowerArgs {
                args: &regs,
                params: &params,
                out_dim: od,
            },
        );
        assert_eq!(results.len(), od, "{op:?} {dims:?}");
        let block = l.finish(regs.concat(), results);
        let inputs: Vec<Val<R>> = args.concat().into_iter().map(Val::F).collect();
        let got: Vec<R> = block.run(&inputs).into_iter().map(Val::f).collect();
        // Same operations in the same order: identical bits.
        let bits = |v: &[R]| v.iter().map(|x| x.f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&got),
            bits(&want),
            "{op:?} {dims:?} ({}): {got:?} vs {want:?}",
            R::NAME
        );
    }
}

#[test]
fn lowering_matches_values() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..5 {
        check_lowering::<f64>(&mut rng);
        check_lowering::<f32>(&mut rng);
    }
}

#[test]
fn lowered_kernel_matches_reference_evaluator() {
    let text = "x = Vi(4); y = Vj(4); w = Pm(2); s = Vj(1); \
                Sum_Reduction(Concat(ComplexDivide(ComplexExp(ComplexMult(x, Conj(y))), ComplexAdd(ComplexRealScal(y, s), w)), \
                Concat(ComplexAbs(ComplexSubtract(w, x)), ComplexSum(ComplexSumT(Real2Complex(s) - Imag2Complex(s), 6)))), 0)";
    let p = Program::parse(text).unwrap();
    let (m, n) = (3, 5);
    let mut rng = StdRng::seed_from_u64(3);
    let (x, y, w, s) = (
        random(&mut rng, 4 * m),
        random(&mut rng, 4 * n),
        random(&mut rng, 2),
        random(&mut rng, n),
    );
    let arrays = [
        Array::new(&x, m, 4),
        Array::new(&y, n, 4),
        Array::new(&w, 1, 2),
        Array::new(&s, n, 1),
    ];
    let opts = EvalOptions {
        sum: SumScheme::Direct,
        ..Default::default()
    };
    let want = p.evaluate(&arrays, &opts).unwrap();
    assert_eq!(want.vdim, 4 + 2 + 2);
    assert!(want.values.iter().all(|v| v.is_finite()));

    let p = p.instantiate(&[4, 4, 2, 1]).unwrap();
    let r = p.reductions().next().unwrap();
    let mut l = Lower::new();
    let (block, inputs) = lower_formula(&mut l, &p.graph, &[r.formula]).unwrap();
    let mut got = Vec::new();
    for i in 0..m {
        let mut acc = vec![0.0; want.vdim];
        for j in 0..n {
            let mut vals = Vec::new();
            for inp in &inputs {
                let VarSource::Arg(k) = inp.source else {
                    panic!("unexpected input {inp:?}")
                };
                let row = match inp.cat {
                    Cat::I => i,
                    Cat::J => j,
                    _ => 0,
                };
                vals.extend(
                    arrays[k].data[row * inp.dim..(row + 1) * inp.dim]
                        .iter()
                        .map(|v| Val::F(*v)),
                );
            }
            for (a, v) in acc.iter_mut().zip(block.run(&vals)) {
                *a += v.f();
            }
        }
        got.extend(acc);
    }
    assert!(
        close(&got, &want.values, 1e-13),
        "{got:?} vs {:?}",
        want.values
    );
}

/// Evaluates a one-row formula of Vi variables (in declaration order).
fn eval1(decls: &str, formula: &str, data: &[Vec<f64>]) -> Vec<f64> {
    let p = Program::parse(&format!("{decls} Sum_Reduction({formula}, 0)"))
        .unwrap_or_else(|e| panic!("{formula}: {e}"));
    let arrays: Vec<Array<'_, f64>> = data.iter().map(|d| Array::new(d, 1, d.len())).collect();
    let opts = EvalOptions {
        sum: SumScheme::Direct,
        n: Some(1),
        ..Default::default()
    };
    p.evaluate(&arrays, &opts)
        .unwrap_or_else(|e| panic!("{formula}: {e}"))
        .values
}

/// Checks `Grad(F, v, e)` for every variable `v` against central differences of
/// `<e, F>` (the gradient of the real function of the real argument vectors).
fn check_grad(formula: &str, vars: &[(&str, usize)], fdim: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut decls: String = vars
        .iter()
        .map(|(n, d)| format!("{n} = Vi({d}); "))
        .collect();
    decls.push_str(&format!("ee = Vi({fdim});"));
    let mut data: Vec<Vec<f64>> = vars.iter().map(|(_, d)| random(&mut rng, *d)).collect();
    data.push(random(&mut rng, fdim));
    let h = 1e-5;
    for (k, (name, dim)) in vars.iter().enumerate() {
        let grad = eval1(&decls, &format!("Grad({formula}, {name}, ee)"), &data);
        assert_eq!(grad.len(), *dim);
        let mut fd = Vec::new();
        for c in 0..*dim {
            let shifted = |delta: f64| {
                let mut d = data.clone();
                d[k][c] += delta;
                eval1(&decls, &format!("({formula}) | ee"), &d)[0]
            };
            fd.push((shifted(h) - shifted(-h)) / (2.0 * h));
        }
        assert!(
            close(&grad, &fd, 1e-7),
            "d/d{name} {formula}: {grad:?} vs finite differences {fd:?}"
        );
    }
}

#[test]
fn gradients_of_unary_operations() {
    check_grad("ComplexReal(x)", &[("x", 6)], 3, 1);
    check_grad("ComplexImag(x)", &[("x", 6)], 3, 2);
    check_grad("Real2Complex(r)", &[("r", 3)], 6, 3);
    check_grad("Imag2Complex(r)", &[("r", 3)], 6, 4);
    check_grad("Conj(x)", &[("x", 6)], 6, 5);
    check_grad("ComplexExp(x)", &[("x", 6)], 6, 6);
    check_grad("ComplexExp1j(r)", &[("r", 3)], 6, 7);
    check_grad("ComplexAbs(x)", &[("x", 6)], 3, 8);
    check_grad("ComplexSquareAbs(x)", &[("x", 6)], 3, 9);
    check_grad("ComplexAngle(x)", &[("x", 6)], 3, 10);
    check_grad("ComplexSum(x)", &[("x", 6)], 2, 11);
    check_grad("ComplexSumT(w, 6)", &[("w", 2)], 6, 12);
    check_grad("ComplexRealScal(s, x)", &[("s", 1), ("x", 6)], 6, 13);
    check_grad("ComplexRealScal(x, s)", &[("s", 1), ("x", 6)], 6, 14);
}

#[test]
fn gradients_of_binary_operations_with_broadcasting() {
    for (k, op) in [
        "ComplexAdd",
        "ComplexSubtract",
        "ComplexMult",
        "ComplexDivide",
    ]
    .iter()
    .enumerate()
    {
        let seed = 100 * k as u64;
        check_grad(&format!("{op}(x, y)"), &[("x", 6), ("y", 6)], 6, seed);
        check_grad(&format!("{op}(x, w)"), &[("x", 6), ("w", 2)], 6, seed + 1);
        check_grad(&format!("{op}(w, x)"), &[("x", 6), ("w", 2)], 6, seed + 2);
        check_grad(&format!("{op}(w, z)"), &[("w", 2), ("z", 2)], 2, seed + 3);
        // The same variable on both sides.
        check_grad(&format!("{op}(x, ComplexExp(x))"), &[("x", 4)], 4, seed + 4);
    }
}

#[test]
fn gradients_of_compositions_and_second_order() {
    check_grad(
        "ComplexDivide(ComplexExp(ComplexMult(x, Conj(y))), ComplexAdd(ComplexRealScal(s, y), w))",
        &[("x", 4), ("y", 4), ("w", 2), ("s", 1)],
        4,
        20,
    );
    check_grad(
        "ComplexAbs(ComplexSubtract(w, x)) * ComplexAngle(ComplexMult(x, x))",
        &[("x", 4), ("w", 2)],
        2,
        21,
    );
    check_grad(
        "ComplexSum(ComplexMult(ComplexExp1j(r), ComplexSumT(w, 6)))",
        &[("r", 3), ("w", 2)],
        2,
        22,
    );
    // Gradients of gradients: the rules applied to formulas made by the rules.
    check_grad(
        "Grad(ComplexMult(x, ComplexExp(y)), y, u)",
        &[("x", 4), ("y", 4), ("u", 4)],
        4,
        23,
    );
    check_grad(
        "Grad(ComplexDivide(x, w), w, u)",
        &[("x", 4), ("w", 2), ("u", 4)],
        2,
        24,
    );
    check_grad(
        "Grad(ComplexSquareAbs(ComplexDivide(w, x)), x, u)",
        &[("x", 4), ("w", 2), ("u", 2)],
        4,
        25,
    );
    check_grad(
        "Grad(ComplexAbs(ComplexSum(ComplexRealScal(x, s))), x, u)",
        &[("x", 4), ("s", 1), ("u", 1)],
        4,
        26,
    );
}

fn dim_error(text: &str) -> String {
    match Program::parse(text) {
        Ok(_) => panic!("{text}: accepted"),
        Err(e) => {
            assert_eq!(e.error.kind, ErrorKind::Dimension, "{text}: {e}");
            e.error.message
        }
    }
}

fn output_dim(text: &str) -> usize {
    let p = Program::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    p.output_info().values.as_known().unwrap()
}

#[test]
fn dimension_rules() {
    assert_eq!(
        output_dim("x = Vi(4); w = Vj(2); Sum_Reduction(ComplexMult(x, w), 0)"),
        4
    );
    assert_eq!(
        output_dim("x = Vi(4); w = Vj(2); Sum_Reduction(ComplexDivide(w, x), 0)"),
        4
    );
    assert_eq!(output_dim("x = Vi(6); Sum_Reduction(ComplexAbs(x), 0)"), 3);
    assert_eq!(output_dim("x = Vi(6); Sum_Reduction(ComplexSum(x), 0)"), 2);
    assert_eq!(
        output_dim("r = Vi(3); Sum_Reduction(ComplexExp1j(r), 0)"),
        6
    );
    assert_eq!(
        output_dim("w = Vi(2); Sum_Reduction(ComplexSumT(w, 8), 0)"),
        8
    );
    assert_eq!(
        output_dim("x = Vi(6); s = Vj(1); Sum_Reduction(ComplexRealScal(x, s), 0)"),
        6
    );
    assert_eq!(
        output_dim("x = Vi(6); s = Vj(1); Sum_Reduction(ComplexRealScal(s, x), 0)"),
        6
    );

    let m = dim_error("x = Vi(3); Sum_Reduction(ComplexReal(x), 0)");
    assert!(
        m.contains("ComplexReal") && m.contains("even dimension") && m.contains("found 3"),
        "{m}"
    );
    let m = dim_error("x = Vi(5); Sum_Reduction(Conj(x), 0)");
    assert!(m.contains("even dimension") && m.contains("found 5"), "{m}");
    let m = dim_error("x = Vi(4); y = Vj(6); Sum_Reduction(ComplexAdd(x, y), 0)");
    assert!(
        m.contains("4") && m.contains("6") && m.contains("one of them 2"),
        "{m}"
    );
    let m = dim_error("x = Vi(3); y = Vj(3); Sum_Reduction(ComplexMult(x, y), 0)");
    assert!(m.contains("first argument") && m.contains("found 3"), "{m}");
    let m = dim_error("x = Vi(4); Sum_Reduction(ComplexSumT(x, 4), 0)");
    assert!(m.contains("must have dimension 2"), "{m}");
    let m = dim_error("w = Vi(2); Sum_Reduction(ComplexSumT(w, 5), 0)");
    assert!(m.contains("found 5"), "{m}");
    let m = dim_error("x = Vi(4); y = Vj(6); Sum_Reduction(ComplexRealScal(x, y), 0)");
    assert!(m.contains("real scalar"), "{m}");
    let m = dim_error("x = Vi(3); s = Vj(1); Sum_Reduction(ComplexRealScal(s, x), 0)");
    assert!(m.contains("complex factor") && m.contains("found 3"), "{m}");
    let m = dim_error("x = Vi(7); Sum_Reduction(ComplexSum(x), 0)");
    assert!(m.contains("found 7"), "{m}");
}

#[test]
fn symbolic_dimensions() {
    // Undeclared widths: halves are new symbols, evenness is checked at instantiation.
    let p = Program::parse("Sum_j(ComplexReal(x_i) * ComplexAbs(y_j))").unwrap();
    let q = p.instantiate(&[6, 6]).unwrap();
    assert_eq!(q.output_info().values.as_known(), Some(3));
    assert!(p.instantiate(&[5, 5]).is_err());
    assert!(p.instantiate(&[6, 4]).is_err());

    let p = Program::parse("Sum_j(Conj(x_i))").unwrap();
    assert_eq!(
        p.instantiate(&[4]).unwrap().output_info().values.as_known(),
        Some(4)
    );
    assert!(p.instantiate(&[3]).is_err());

    let p = Program::parse("Sum_j(ComplexReal(Real2Complex(x_i)))").unwrap();
    assert_eq!(
        p.instantiate(&[3]).unwrap().output_info().values.as_known(),
        Some(3)
    );

    // The adjoint of ComplexSum at a symbolic width, evaluated after instantiation.
    let p = Program::parse("Sum_j(Grad(ComplexSum(x_i), x_i, e))").unwrap();
    let (x, e) = ([0.5; 6], [2.0, -3.0]);
    let opts = EvalOptions {
        n: Some(1),
        ..Default::default()
    };
    let out = p
        .evaluate(&[Array::new(&x, 1, 6), Array::new(&e, 1, 2)], &opts)
        .unwrap();
    assert_eq!(out.values, [2., -3., 2., -3., 2., -3.]);
}
