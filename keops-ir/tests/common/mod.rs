//! Helpers of the per-operation tests: one-row programs, the reference evaluator, the
//! lowered form, finite differences, random inputs and number comparisons.
//!
//! Every program built here declares its variables as i-variables (`x = Vi(3)`) holding
//! one row, and reduces its formula with `Sum_Reduction(F, 0)` over a single j (N = 1
//! is given in the options): the output is then exactly F at the given point.

#![allow(dead_code)]

use keops_ir::eval::{Array, EvalOptions};
use keops_ir::graph::VarSource;
use keops_ir::lower::{SumMode, Val, lower_reduction};
use keops_ir::program::Step;
use keops_ir::{Program, Real};
use rand::Rng;
use rand::rngs::StdRng;
use std::fmt::Write as _;

/// The text `x = Vi(3); y = Vi(1); Sum_Reduction(F, 0)`.
pub fn program_text(formula: &str, dims: &[(&str, usize)]) -> String {
    let mut text = String::new();
    for (name, dim) in dims {
        write!(text, "{name} = Vi({dim}); ").unwrap();
    }
    write!(text, "Sum_Reduction({formula}, 0)").unwrap();
    text
}

/// The text `x = Vi(3); y = Vj(2); ...; Sum_Reduction(F, 0)`, the variables alternately
/// indexed by i and j (the GPU tests: staged j-variables and i-variables in registers).
pub fn ij_program_text(formula: &str, dims: &[(&str, usize)]) -> String {
    let mut text = String::new();
    for (k, (name, dim)) in dims.iter().enumerate() {
        let cat = if k % 2 == 0 { "Vi" } else { "Vj" };
        write!(text, "{name} = {cat}({dim}); ").unwrap();
    }
    write!(text, "Sum_Reduction({formula}, 0)").unwrap();
    text
}

/// Parses and checks `Sum_Reduction(formula, 0)` with the variables declared as `Vi`.
pub fn program(formula: &str, dims: &[(&str, usize)]) -> Result<Program, String> {
    let text = program_text(formula, dims);
    Program::parse(&text).map_err(|e| format!("`{text}` does not compile:\n{e}"))
}

/// Options of the evaluator: N = 1 (every variable is indexed by i).
pub fn opts() -> EvalOptions {
    EvalOptions {
        n: Some(1),
        ..EvalOptions::default()
    }
}

/// Evaluates a program on one row per argument.
pub fn eval<R: Real>(p: &Program, args: &[Vec<R>]) -> Result<Vec<R>, String> {
    let arrays: Vec<Array<'_, R>> = args.iter().map(|a| Array::new(a, 1, a.len())).collect();
    p.evaluate(&arrays, &opts())
        .map(|o| o.values)
        .map_err(|e| format!("evaluation failed: {e}"))
}

/// Evaluates a program through its lowered form: the formula block of the reduction that
/// computes the output, run by the scalar interpreter. `Ok(None)` when the output is not
/// computed by a reduction (a zero gradient is a `Fill` step).
pub fn lowered<R: Real>(p: &Program, args: &[Vec<R>]) -> Result<Option<Vec<R>>, String> {
    let widths: Vec<usize> = args.iter().map(Vec::len).collect();
    let p = p
        .instantiate(&widths)
        .map_err(|e| format!("instantiate failed: {e}"))?;
    let Some(r) = p.steps.iter().find_map(|s| match s {
        Step::Reduce(r) if r.out == p.output => Some(r),
        _ => None,
    }) else {
        return Ok(None);
    };
    let k = lower_reduction(&p, r, SumMode::Plain).map_err(|e| format!("lowering failed: {e}"))?;
    let mut params = Vec::new();
    for input in &k.inputs {
        let VarSource::Arg(a) = input.source else {
            return Err(format!(
                "the kernel reads {:?}, not an argument",
                input.source
            ));
        };
        params.extend(args[a][..input.dim].iter().map(|x| Val::F(*x)));
    }
    let out = k.formula.run(&params);
    out[..k.fdim]
        .iter()
        .enumerate()
        .map(|(c, v)| match v {
            Val::F(x) => Ok(*x),
            other => Err(format!(
                "output {c} of the formula block is not a float: {other:?}"
            )),
        })
        .collect::<Result<Vec<R>, String>>()
        .map(Some)
}

/// `a` and `b` agree: both NaN, equal (infinities included), or within `abs + rel * max(|a|, |b|)`.
pub fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= abs + rel * a.abs().max(b.abs())
}

/// Element-wise [`close`], with equal lengths.
pub fn all_close(a: &[f64], b: &[f64], rel: f64, abs: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y, rel, abs))
}

/// Converts to f32 vectors.
pub fn to_f32(args: &[Vec<f64>]) -> Vec<Vec<f32>> {
    args.iter()
        .map(|a| a.iter().map(|x| *x as f32).collect())
        .collect()
}

/// Converts to f64.
pub fn to_f64<R: Real>(v: &[R]) -> Vec<f64> {
    v.iter().map(|x| x.f64()).collect()
}

/// Where random inputs are drawn.
#[derive(Copy, Clone, Debug)]
pub enum Dom {
    /// Uniform in `[lo, hi)`.
    U(f64, f64),
    /// A random sign times a uniform value in `[lo, hi)` (away from 0).
    Away(f64, f64),
}

impl Dom {
    /// One random value.
    pub fn sample(self, rng: &mut StdRng) -> f64 {
        match self {
            Dom::U(lo, hi) => rng.random_range(lo..hi),
            Dom::Away(lo, hi) => {
                let m = rng.random_range(lo..hi);
                if rng.random_bool(0.5) { m } else { -m }
            }
        }
    }
}

/// Random values for variables of the given dimensions and domains, redrawn until
/// `valid` accepts them.
pub fn sample(
    vars: &[(usize, Dom)],
    valid: fn(&[Vec<f64>]) -> bool,
    rng: &mut StdRng,
) -> Result<Vec<Vec<f64>>, String> {
    for _ in 0..100_000 {
        let x: Vec<Vec<f64>> = vars
            .iter()
            .map(|(d, dom)| (0..*d).map(|_| dom.sample(rng)).collect())
            .collect();
        if valid(&x) {
            return Ok(x);
        }
    }
    Err("no valid random input found: the validity condition is too strict".into())
}

/// Accepts everything.
pub fn always(_: &[Vec<f64>]) -> bool {
    true
}

/// Coordinate `k` of a possibly broadcast (dimension 1) vector.
pub fn at(v: &[f64], k: usize) -> f64 {
    if v.len() == 1 { v[0] } else { v[k] }
}

/// `x` is at least `m` away from every point of `t + Z` (the kinks of Floor, Mod, ...).
pub fn frac_away(x: f64, t: f64, m: f64) -> bool {
    let f = (x - t).rem_euclid(1.0);
    f > m && f < 1.0 - m
}

/// Step of the central differences.
pub const H: f64 = 1e-5;

/// `<(F(x + h u_k) - F(x - h u_k)) / 2h, e>`: the finite-difference derivative of
/// `<F, e>` with respect to coordinate `k` of argument `var`.
pub fn central_difference(
    p: &Program,
    x: &[Vec<f64>],
    var: usize,
    k: usize,
    e: &[f64],
) -> Result<f64, String> {
    let mut plus = x.to_vec();
    plus[var][k] += H;
    let mut minus = x.to_vec();
    minus[var][k] -= H;
    let (fp, fm) = (eval(p, &plus)?, eval(p, &minus)?);
    Ok(fp
        .iter()
        .zip(&fm)
        .zip(e)
        .map(|((a, b), w)| (a - b) / (2.0 * H) * w)
        .sum())
}

/// The finite-difference Jacobian of a formula program at `x` with respect to argument
/// `var`, row-major: entry `[k * d(v) + l]` is `d F_k / d v_l`.
pub fn fd_jacobian(p: &Program, x: &[Vec<f64>], var: usize) -> Result<Vec<f64>, String> {
    let dv = x[var].len();
    let mut cols = Vec::new();
    for l in 0..dv {
        let mut plus = x.to_vec();
        plus[var][l] += H;
        let mut minus = x.to_vec();
        minus[var][l] -= H;
        let (fp, fm) = (eval(p, &plus)?, eval(p, &minus)?);
        cols.push(
            fp.iter()
                .zip(&fm)
                .map(|(a, b)| (a - b) / (2.0 * H))
                .collect::<Vec<f64>>(),
        );
    }
    let df = cols.first().map(Vec::len).unwrap_or(0);
    Ok((0..df)
        .flat_map(|k| cols.iter().map(move |c| c[k]))
        .collect())
}

/// Runs `f`, turning a panic into an error message (so that one panicking case does
/// not hide the results of the others).
pub fn no_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!(
                "PANIC: {}",
                msg.unwrap_or_else(|| "(no message)".into())
            ))
        }
    }
}

/// Fails with every failure listed, or passes when there is none.
pub fn report(what: &str, failures: &[String]) {
    if !failures.is_empty() {
        panic!(
            "{what}: {} failure(s):\n  - {}",
            failures.len(),
            failures.join("\n  - ")
        );
    }
}
