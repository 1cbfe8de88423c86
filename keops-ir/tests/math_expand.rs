//! `expand_block` and `expand_kernel` on real kernels: no non-primitive instruction
//! remains, register numbers never collide, and the expanded kernel computes what the
//! unexpanded one does (which the interpreter runs with Rust's std functions), within
//! the accuracy of the math library.

mod math_util;

use keops_ir::lower::math::{expand_block, expand_kernel, is_primitive};
use keops_ir::lower::{
    Block, Lower, LoweredKernel, Precision, Reg, SOp, SumMode, Ty, Val, lower_reduction,
};
use keops_ir::{Program, Real};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

fn blocks(k: &LoweredKernel) -> [&Block; 5] {
    [
        &k.formula,
        &k.hooks.init,
        &k.hooks.accumulate,
        &k.hooks.merge,
        &k.hooks.finalize,
    ]
}

fn kernel(text: &str, widths: &[usize]) -> LoweredKernel {
    let p = Program::parse(text).unwrap();
    let p = p.instantiate(widths).unwrap();
    let r = p.reductions().next().unwrap();
    lower_reduction(&p, r, SumMode::Plain).unwrap()
}

/// The structural properties of an expanded kernel.
fn check_structure(k: &LoweredKernel, e: &LoweredKernel) {
    assert_eq!(
        e.tys[..k.tys.len()],
        k.tys[..],
        "old registers keep their types"
    );
    let mut defined = HashSet::new();
    for (old, new) in blocks(k).into_iter().zip(blocks(e)) {
        assert_eq!(old.params, new.params, "parameters stay the same registers");
        assert_eq!(old.results.len(), new.results.len());
        let mut local: HashSet<Reg> = new.params.iter().copied().collect();
        for i in &new.insts {
            assert!(is_primitive(i.op), "{} is not primitive", i);
            assert!(
                i.args.iter().all(|a| local.contains(a)),
                "{i} reads an undefined register"
            );
            assert!(defined.insert(i.dst), "{} defined twice", i.dst);
            assert!((i.dst.0 as usize) < e.tys.len(), "{} has no type", i.dst);
            assert!(
                !new.params.contains(&i.dst),
                "{} overwrites a parameter",
                i.dst
            );
            local.insert(i.dst);
        }
        assert!(new.results.iter().all(|r| local.contains(r)));
        for (o, n) in old.results.iter().zip(&new.results) {
            assert_eq!(
                k.tys[o.0 as usize], e.tys[n.0 as usize],
                "result types agree"
            );
        }
    }
    assert!(
        blocks(k)
            .iter()
            .any(|b| b.insts.iter().any(|i| !is_primitive(i.op))),
        "the test kernel should use non-primitive instructions"
    );
}

/// Runs a kernel by the interpreter: `out[i] = finalize(fold_j accumulate(formula(x_i, y_j)))`
/// for kernels whose inputs are one i-variable and one j-variable (in that order).
fn run<R: Real>(k: &LoweredKernel, xs: &[Vec<R>], ys: &[Vec<R>]) -> Vec<Vec<R>> {
    let mut regs = Vec::new();
    xs.iter()
        .map(|x| {
            let mut acc = k.hooks.init.run_with(&mut regs, &[]);
            for (j, y) in ys.iter().enumerate() {
                let args: Vec<Val<R>> = x.iter().chain(y).map(|v| Val::F(*v)).collect();
                let vals = k.formula.run_with(&mut regs, &args);
                let mut a = acc.clone();
                a.extend(vals);
                // An unweighted LogSumExp takes the weight 1.
                while a.len() + 1 < k.hooks.accumulate.params.len() {
                    a.push(Val::F(R::one()));
                }
                a.push(Val::I(j as u64));
                acc = k.hooks.accumulate.run_with(&mut regs, &a);
            }
            k.hooks
                .finalize
                .run_with(&mut regs, &acc)
                .into_iter()
                .map(|v| v.f())
                .collect()
        })
        .collect()
}

fn random<R: Real>(rng: &mut StdRng, n: usize, d: usize) -> Vec<Vec<R>> {
    (0..n)
        .map(|_| (0..d).map(|_| R::of(rng.random_range(-3.0..3.0))).collect())
        .collect()
}

/// `|a - b| <= ulps * eps * scale` for every value.
fn close<R: Real>(a: &[Vec<R>], b: &[Vec<R>], ulps: f64, scale: f64, what: &str) {
    let eps = R::epsilon().f64();
    for (ra, rb) in a.iter().zip(b) {
        for (x, y) in ra.iter().zip(rb) {
            let (x, y) = (x.f64(), y.f64());
            assert!(
                (x - y).abs() <= ulps * eps * scale.max(x.abs()),
                "{what} ({}): {x} vs {y}",
                R::NAME
            );
        }
    }
}

const GAUSS_COS_LOG: &str =
    "x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)) * Cos(x_i) + Log(Abs(y_j) + 1))";

/// The formula block, expanded and not, on random inputs: each output value is
/// e cos(x) + log(|y| + 1) with e = exp(-|x - y|^2), three functions within 2 ulp each
/// (and std's within 1), so the values agree within a few ulps of |e cos x| + |log|.
fn formula_agrees<R: Real>(k: &LoweredKernel, e: &LoweredKernel) {
    let mut rng = StdRng::seed_from_u64(3);
    let (mut r1, mut r2) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let x: Vec<R> = random(&mut rng, 1, 3).remove(0);
        let y: Vec<R> = random(&mut rng, 1, 3).remove(0);
        let args: Vec<Val<R>> = x.iter().chain(&y).map(|v| Val::F(*v)).collect();
        let a = k.formula.run_with(&mut r1, &args);
        let b = e.formula.run_with(&mut r2, &args);
        let d2: f64 = x
            .iter()
            .zip(&y)
            .map(|(p, q)| (p.f64() - q.f64()).powi(2))
            .sum();
        for c in 0..3 {
            let term1 = (-d2).exp() * x[c].f64().cos();
            let term2 = (y[c].f64().abs() + 1.0).ln();
            let scale = term1.abs() + term2.abs();
            let (va, vb) = (a[c].f().f64(), b[c].f().f64());
            assert!(
                (va - vb).abs() <= 6.0 * R::epsilon().f64() * scale,
                "component {c} at x = {x:?}, y = {y:?}: {va} vs {vb} ({})",
                R::NAME
            );
        }
    }
}

#[test]
fn expand_kernel_gauss_cos_log() {
    let k = kernel(GAUSS_COS_LOG, &[3, 3]);
    for p in [Precision::F32, Precision::F64] {
        let e = expand_kernel(&k, p);
        check_structure(&k, &e);
        assert_eq!((e.fdim, e.gdim, e.kind), (k.fdim, k.gdim, k.kind));
        assert_eq!(e.inputs, k.inputs);
    }
    formula_agrees::<f32>(&k, &expand_kernel(&k, Precision::F32));
    formula_agrees::<f64>(&k, &expand_kernel(&k, Precision::F64));
    // The whole kernel (a sum over 50 j of values within [-1, 3]).
    let mut rng = StdRng::seed_from_u64(4);
    let (xs, ys) = (
        random::<f32>(&mut rng, 20, 3),
        random::<f32>(&mut rng, 50, 3),
    );
    let e = expand_kernel(&k, Precision::F32);
    close(
        &run(&k, &xs, &ys),
        &run(&e, &xs, &ys),
        400.0,
        100.0,
        "Sum_j",
    );
    let (xs, ys) = (
        random::<f64>(&mut rng, 20, 3),
        random::<f64>(&mut rng, 50, 3),
    );
    let e = expand_kernel(&k, Precision::F64);
    close(
        &run(&k, &xs, &ys),
        &run(&e, &xs, &ys),
        400.0,
        100.0,
        "Sum_j",
    );
}

/// LogSumExp uses Exp in its accumulate hook and Log in its finalize hook.
#[test]
fn expand_kernel_logsumexp_hooks() {
    let k = kernel(
        "x_i: 2; y_j: 2; LogSumExp_j(Sin(x_i | y_j) - SqDist(x_i, y_j))",
        &[2, 2],
    );
    assert!(k.hooks.accumulate.insts.iter().any(|i| i.op == SOp::Exp));
    assert!(k.hooks.finalize.insts.iter().any(|i| i.op == SOp::Log));
    let mut rng = StdRng::seed_from_u64(5);
    let e = expand_kernel(&k, Precision::F32);
    check_structure(&k, &e);
    let (xs, ys) = (
        random::<f32>(&mut rng, 20, 2),
        random::<f32>(&mut rng, 40, 2),
    );
    close(
        &run(&k, &xs, &ys),
        &run(&e, &xs, &ys),
        64.0,
        1.0,
        "LogSumExp_j",
    );
    let e = expand_kernel(&k, Precision::F64);
    check_structure(&k, &e);
    let (xs, ys) = (
        random::<f64>(&mut rng, 20, 2),
        random::<f64>(&mut rng, 40, 2),
    );
    close(
        &run(&k, &xs, &ys),
        &run(&e, &xs, &ys),
        64.0,
        1.0,
        "LogSumExp_j",
    );
}

/// Results that are parameters, identity expansions, primitive instructions shared.
#[test]
fn expand_block_keeps_params_and_results() {
    let mut l = Lower::new();
    let x = l.param(Ty::F);
    let y = l.param(Ty::F);
    let a = l.emit(SOp::PowI(1), &[x]);
    let s = l.add(a, y);
    let c = l.f1(SOp::Cos, s);
    let d = l.f1(SOp::Sin, s);
    let b = l.finish(vec![x, y], vec![a, y, c, d, s]);
    let mut l2 = Lower::with_types(l.tys.clone());
    let e = expand_block(&mut l2, &b, Precision::F64);
    assert_eq!(e.params, vec![x, y]);
    assert_eq!(e.results[0], x, "PowI(1) is the identity");
    assert_eq!(e.results[1], y);
    assert!(e.insts.iter().all(|i| is_primitive(i.op)));
    // sin and cos of the same register share their reduction and polynomials.
    let (_, cos_only) = math_util::one_op(SOp::Cos, 1, Precision::F64);
    assert!(e.len() < cos_only.len() + 20, "{} instructions", e.len());
    for (xv, yv) in [(0.3, 1.2), (-2.0, 7.5), (100.0, -3.0)] {
        let got = e.run::<f64>(&[Val::F(xv), Val::F(yv)]);
        let want = b.run::<f64>(&[Val::F(xv), Val::F(yv)]);
        assert_eq!(got[0], want[0]);
        assert_eq!(got[1], want[1]);
        assert_eq!(got[4], want[4]);
        for k in [2, 3] {
            assert!(
                (got[k].f() - want[k].f()).abs() <= 4e-16,
                "{:?} vs {:?}",
                got[k],
                want[k]
            );
        }
    }
}
