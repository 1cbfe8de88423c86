//! Helpers shared by the reduction, error and gradient test suites.
#![allow(dead_code)]

use keops_ir::Program;
use keops_ir::eval::{Array, EvalOptions, Output};
use keops_ir::real::Real;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A deterministic random generator.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// `n` uniform values in `[lo, hi)`.
pub fn uniform(r: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// `n` small integers in `[lo, hi]`, as floats (to provoke ties).
pub fn small_ints(r: &mut StdRng, n: usize, lo: i32, hi: i32) -> Vec<f64> {
    (0..n).map(|_| f64::from(r.random_range(lo..=hi))).collect()
}

/// A named input: `rows` rows of `dim` values.
#[derive(Clone, Debug)]
pub struct Input<R> {
    /// Argument name (base name for concise variables: `x` for `x_i`).
    pub name: String,
    /// Rows.
    pub rows: usize,
    /// Values per row.
    pub dim: usize,
    /// Data, row-major.
    pub data: Vec<R>,
}

/// A named input.
pub fn input<R: Real>(name: &str, rows: usize, dim: usize, data: &[f64]) -> Input<R> {
    assert_eq!(
        data.len(),
        rows * dim,
        "input `{name}`: {} values for {rows} x {dim}",
        data.len()
    );
    Input {
        name: name.to_string(),
        rows,
        dim,
        data: data.iter().map(|x| R::of(*x)).collect(),
    }
}

/// The arguments of `p`, in its argument order, looked up by name in `inputs`.
pub fn args_for<'a, R: Real>(p: &Program, inputs: &'a [Input<R>]) -> Vec<Array<'a, R>> {
    p.args
        .iter()
        .map(|a| {
            let name = a
                .name
                .as_deref()
                .expect("every argument of these tests is named");
            let inp = inputs
                .iter()
                .find(|i| i.name == name)
                .unwrap_or_else(|| panic!("no input named `{name}` (arguments: {:?})", p.args));
            Array::new(&inp.data, inp.rows, inp.dim)
        })
        .collect()
}

/// Evaluates `p` on named inputs with the given options.
pub fn eval_with<R: Real>(p: &Program, inputs: &[Input<R>], opts: &EvalOptions) -> Output<R> {
    p.evaluate(&args_for(p, inputs), opts)
        .unwrap_or_else(|e| panic!("evaluation of {p} failed: {e}"))
}

/// Evaluates `p` on named inputs with the default options.
pub fn eval<R: Real>(p: &Program, inputs: &[Input<R>]) -> Output<R> {
    eval_with(p, inputs, &EvalOptions::default())
}

/// Parses a formula, panicking with the rendered error.
pub fn parse(text: &str) -> Program {
    Program::parse(text).unwrap_or_else(|e| panic!("`{text}` should parse:\n{e}"))
}

/// Whether two floats agree: both NaN, equal (infinities included), or within
/// `rtol * max(|a|, |b|) + atol`.
pub fn close(a: f64, b: f64, rtol: f64, atol: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= rtol * a.abs().max(b.abs()) + atol
}

/// Asserts two float slices agree (see [`close`]).
#[track_caller]
pub fn assert_close<R: Real>(what: &str, got: &[R], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} instead of {}",
        got.len(),
        want.len()
    );
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            close(g.f64(), *w, rtol, atol),
            "{what}: entry {k} is {g}, expected {w}\n got:  {got:?}\n want: {want:?}"
        );
    }
}

/// Whether two floats are the same value: bitwise equal up to NaN payloads and the sign
/// of zero.
pub fn same<R: Real>(a: R, b: R) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}
