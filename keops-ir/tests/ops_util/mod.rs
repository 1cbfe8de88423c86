//! Helpers of the tests of the linear algebra and special operations (`ops_linalg.rs`,
//! `ops_special.rs`): one-row programs of `Vi` variables through the reference evaluator
//! and through the lowered formula block, finite differences of gradients, and error
//! messages.

use keops_ir::eval::{Array, EvalOptions};
use keops_ir::graph::VarSource;
use keops_ir::lower::{Lower, Val, lower_formula};
use keops_ir::{Program, Real};

/// A deterministic pseudo-random sequence in [-1, 1).
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

/// `aliases` declares every variable as `Vi`; evaluates `Sum_Reduction(formula, 0)`
/// for one row i and one j, i.e. the formula itself, with the reference evaluator.
pub fn eval1<R: Real>(aliases: &str, formula: &str, inputs: &[Vec<R>]) -> Vec<R> {
    let text = format!("{aliases} Sum_Reduction({formula}, 0)");
    let p = Program::parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let arrays: Vec<Array<'_, R>> = inputs.iter().map(|v| Array::new(v, 1, v.len())).collect();
    let opts = EvalOptions {
        n: Some(1),
        ..EvalOptions::default()
    };
    p.evaluate(&arrays, &opts)
        .unwrap_or_else(|e| panic!("{text}: {e:?}"))
        .values
}

/// Like [`eval1`], running the lowered formula block instead.
pub fn lower1<R: Real>(aliases: &str, formula: &str, inputs: &[Vec<R>]) -> Vec<R> {
    let text = format!("{aliases} Sum_Reduction({formula}, 0)");
    let p = Program::parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    let widths: Vec<usize> = inputs.iter().map(Vec::len).collect();
    let p = p.instantiate(&widths).unwrap();
    let r = p.reductions().next().unwrap();
    let mut l = Lower::new();
    let (block, ins) = lower_formula(&mut l, &p.graph, &[r.formula]).unwrap();
    let mut args = Vec::new();
    for k in &ins {
        let VarSource::Arg(pos) = k.source else {
            panic!("unexpected input {k:?}")
        };
        args.extend(inputs[pos].iter().map(|x| Val::F(*x)));
    }
    block.run(&args).into_iter().map(|v| v.f()).collect()
}

/// The lowered block gives exactly the reference values, in f64 and f32.
pub fn check_lowering(aliases: &str, formula: &str, inputs: &[Vec<f64>]) {
    let want = eval1(aliases, formula, inputs);
    let got = lower1(aliases, formula, inputs);
    assert_eq!(got.len(), want.len(), "{formula}");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g == w || (g.is_nan() && w.is_nan()),
            "{formula}: lowered {got:?}, reference {want:?}"
        );
    }
    let inputs32: Vec<Vec<f32>> = inputs
        .iter()
        .map(|v| v.iter().map(|x| *x as f32).collect())
        .collect();
    let want = eval1(aliases, formula, &inputs32);
    let got = lower1(aliases, formula, &inputs32);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g == w || (g.is_nan() && w.is_nan()),
            "{formula} (f32): lowered {got:?}, reference {want:?}"
        );
    }
}

/// `Grad(formula, var, e)` against central finite differences of `<formula, e>`,
/// `var` being the input at position `pos`.
pub fn check_grad(
    aliases: &str,
    formula: &str,
    var: &str,
    pos: usize,
    inputs: &[Vec<f64>],
    tol: f64,
) {
    let value = eval1(aliases, formula, inputs);
    let e = Rng::new(99).vec(value.len());
    let grad_aliases = format!("{aliases} cot = Vi({});", value.len());
    let mut grad_inputs = inputs.to_vec();
    grad_inputs.push(e.clone());
    let grad_formula = format!("Grad({formula}, {var}, cot)");
    let grad = eval1(&grad_aliases, &grad_formula, &grad_inputs);
    assert_eq!(grad.len(), inputs[pos].len());
    let h = 1e-6;
    for (c, g) in grad.iter().enumerate() {
        let mut plus = inputs.to_vec();
        plus[pos][c] += h;
        let mut minus = inputs.to_vec();
        minus[pos][c] -= h;
        let fp: f64 = eval1(aliases, formula, &plus)
            .iter()
            .zip(&e)
            .map(|(a, b)| a * b)
            .sum();
        let fm: f64 = eval1(aliases, formula, &minus)
            .iter()
            .zip(&e)
            .map(|(a, b)| a * b)
            .sum();
        let fd = (fp - fm) / (2.0 * h);
        assert!(
            (g - fd).abs() <= tol * (1.0 + fd.abs()),
            "{grad_formula}: coordinate {c}: {g} vs finite difference {fd}"
        );
    }
    // The gradient formula lowers to the same values.
    check_lowering(&grad_aliases, &grad_formula, &grad_inputs);
}

/// The error message of a formula that must not check.
pub fn error_of(text: &str) -> String {
    match Program::parse(text) {
        Ok(_) => panic!("{text} was accepted"),
        Err(e) => format!("{e:?}"),
    }
}
