//! Per-operation tests of the formula compiler: for every operation of the table
//! ([`Op::ALL`]),
//!
//! - `values::<Op>`: values at hand-checked points (special values and broadcasting
//!   included), through parsing, checking and the reference evaluator;
//! - `lowering::<Op>`: the lowered form (scalar instructions) gives the evaluator's values,
//!   in f64 and f32, for the same points and for the gradients;
//! - `constants::<Op>`: the same points with constant arguments (constant folding and
//!   the simplifier's rules keep the values);
//! - `gradient::<Op>`: the symbolic gradient against central finite differences at random
//!   points (with respect to every argument, through broadcasting), an exactly zero
//!   gradient for piecewise-constant operations, a `Differentiation` error for the
//!   operations that have no derivative.
//!
//! Then cross-cutting tests: broadcasting of every element-wise operation, the sugar
//! operations against hand-written formulas, and a completeness test that fails when an
//! operation of the table has no test case.
//!
//! Expected values were computed by hand or with Python's `math` module (the Python
//! expression is in the comment when the number is not obvious).

// Expected values are written as Python printed them, not as `std::f64::consts`.
#![allow(clippy::approx_constant)]

mod common;
mod op_cases;

use common::Dom::U;
use common::*;
use keops_ir::eval::apply_op;
use keops_ir::ops::{Deriv, Eval, OpKind};
use keops_ir::{ErrorKind, Op};
use op_cases::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

/// Relative tolerance of hand-checked values (a few ulps: expressions are evaluated in
/// another order than in Python).
const VALUE_REL: f64 = 1e-13;
/// Absolute tolerance of hand-checked values (for results that are 0 up to rounding).
const VALUE_ABS: f64 = 1e-15;

fn check_case_value(c: &Case) -> Result<(), String> {
    let p = program(c.formula, &c.dims())?;
    let got = eval(&p, &c.args())?;
    if !all_close(&got, &c.expected, VALUE_REL, VALUE_ABS) {
        return Err(format!("expected {:?}, got {:?}", c.expected, got));
    }
    Ok(())
}

fn check_values(op: Op) {
    let cases: Vec<Case> = value_cases().into_iter().filter(|c| c.op == op).collect();
    assert!(!cases.is_empty(), "{op:?} has no value case");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            no_panic(|| check_case_value(c))
                .err()
                .map(|e| format!("{} at {:?}: {e}", c.formula, c.vars))
        })
        .collect();
    report(&format!("values of {op:?}"), &failures);
}

/// Calculus operations: their variable of differentiation (the first variable of the
/// cases) stays a variable in [`check_constants`].
const CALCULUS: &[Op] = &[
    Op::Grad,
    Op::Diff,
    Op::Laplacian,
    Op::Divergence,
    Op::GradMatrix,
    Op::TraceOperator,
];

/// The hand-checked points again, with the variables replaced by constants (float
/// literals, `Concat`s of them for vectors): the simplifier folds operations on constants
/// and rewrites zeros and ones when it builds the formula, and must keep the values.
/// Points with NaN, infinite or -0 inputs or results (no literal) are left out.
fn check_constants(op: Op) {
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in value_cases()
        .iter()
        .filter(|c| c.op == op && c.expected.iter().all(|x| x.is_finite()))
    {
        let keep = usize::from(CALCULUS.contains(&op));
        let Some(formula) = c.vars[keep..]
            .iter()
            .try_fold(c.formula.to_string(), |f, (name, v)| {
                Some(replace_ident(&f, name, &literal_vector(v)?))
            })
        else {
            continue;
        };
        checked += 1;
        let r = no_panic(|| {
            let p = program(&formula, &c.dims())?;
            let got = eval(&p, &c.args())?;
            if all_close(&got, &c.expected, VALUE_REL, VALUE_ABS) {
                Ok(())
            } else {
                Err(format!("expected {:?}, got {got:?}", c.expected))
            }
        });
        if let Err(e) = r {
            failures.push(format!("{formula}: {e}"));
        }
    }
    report(&format!("constant arguments of {op:?}"), &failures);
    assert!(
        checked > 0,
        "{op:?} has no value case with finite inputs and results"
    );
}

/// `Concat(c0, Concat(c1, ...))` of float literals, or `None` when a value has no
/// literal (NaN, infinities, -0).
fn literal_vector(v: &[f64]) -> Option<String> {
    if v.iter()
        .any(|x| !x.is_finite() || (*x == 0.0 && x.is_sign_negative()))
    {
        return None;
    }
    let lit = |x: f64| format!("({x:?})");
    let mut it = v.iter().rev();
    let mut s = lit(*it.next()?);
    for x in it {
        s = format!("Concat({}, {s})", lit(*x));
    }
    Some(s)
}

/// Replaces the identifier `name` in `formula` (whole words only).
fn replace_ident(formula: &str, name: &str, by: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    for ch in formula.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            word.push(ch);
            continue;
        }
        out.push_str(if word == name { by } else { &word });
        word.clear();
        out.push(ch);
    }
    out.pop();
    out
}

/// Random points per finite-difference case.
const FD_TRIALS: usize = 50;
/// Tolerance of the finite differences (h = 1e-5: truncation ~1e-10 f''', rounding ~1e-11).
const FD_TOL: f64 = 1e-6;

fn seed(op: Op, formula: &str) -> u64 {
    formula.bytes().fold(op as u64 * 1_000_003, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    })
}

/// Symbolic gradient w.r.t. every variable against central differences of `<F, e>`.
fn check_fd(c: &GradCase) -> Result<(), String> {
    let p = program(c.formula, &c.dims())?;
    let dout = p
        .output_info()
        .values
        .as_known()
        .ok_or("symbolic output dimension")?;
    let grads = (0..c.vars.len())
        .map(|pos| {
            p.grad(pos, "cot")
                .map_err(|e| format!("gradient w.r.t. `{}` failed: {e}", c.vars[pos].0))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut rng = StdRng::seed_from_u64(seed(c.op, c.formula));
    for _ in 0..FD_TRIALS {
        let x = sample(&c.doms(), c.valid, &mut rng)?;
        let e: Vec<f64> = (0..dout).map(|_| rng.random_range(-1.0..1.0)).collect();
        for (pos, g) in grads.iter().enumerate() {
            let mut args = x.clone();
            args.push(e.clone());
            let got = eval(g, &args)?;
            for k in 0..x[pos].len() {
                let fd = central_difference(&p, &x, pos, k, &e)?;
                if !close(got[k], fd, FD_TOL, FD_TOL) {
                    return Err(format!(
                        "d/d{}[{k}]: symbolic {} vs finite differences {fd}, at {x:?} with cotangent {e:?} (whole gradient {got:?})",
                        c.vars[pos].0, got[k]
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The gradient w.r.t. every variable is exactly zero.
fn check_zero(c: &GradCase) -> Result<(), String> {
    let p = program(c.formula, &c.dims())?;
    let dout = p
        .output_info()
        .values
        .as_known()
        .ok_or("symbolic output dimension")?;
    let mut rng = StdRng::seed_from_u64(seed(c.op, c.formula));
    for (pos, (name, _, _)) in c.vars.iter().enumerate() {
        let g = p
            .grad(pos, "cot")
            .map_err(|e| format!("gradient w.r.t. `{name}` failed: {e}"))?;
        for _ in 0..10 {
            let mut args = sample(&c.doms(), c.valid, &mut rng)?;
            args.push((0..dout).map(|_| rng.random_range(-1.0..1.0)).collect());
            let got = eval(&g, &args)?;
            if got.iter().any(|v| *v != 0.0) {
                return Err(format!(
                    "d/d{name} should be exactly 0, got {got:?} at {args:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Differentiating is a `Differentiation` error (not a panic, not a wrong result).
fn check_undefined(c: &GradCase) -> Result<(), String> {
    let p = program(c.formula, &c.dims())?;
    for (pos, (name, _, _)) in c.vars.iter().enumerate() {
        match p.grad(pos, "cot") {
            Err(e) if e.kind == ErrorKind::Differentiation => {}
            Err(e) => {
                return Err(format!(
                    "d/d{name}: expected a Differentiation error, got {:?}: {e}",
                    e.kind
                ));
            }
            Ok(_) => {
                return Err(format!(
                    "d/d{name}: expected a Differentiation error, the gradient was built"
                ));
            }
        }
    }
    Ok(())
}

fn check_gradient(op: Op) {
    let cases: Vec<GradCase> = grad_cases().into_iter().filter(|c| c.op == op).collect();
    assert!(!cases.is_empty(), "{op:?} has no gradient case");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let r = no_panic(|| match c.kind {
                GradKind::Fd => check_fd(c),
                GradKind::Zero => check_zero(c),
                GradKind::Undefined => check_undefined(c),
            });
            r.err()
                .map(|e| format!("[{:?}] {}: {e}", c.kind, c.formula))
        })
        .collect();
    report(&format!("gradient of {op:?}"), &failures);
}

// =====================================================================================
// Lowering
// =====================================================================================

/// Lowered f64 values agree with the evaluator to 1e-12 (relative).
const LOWER_REL_F64: f64 = 1e-12;
/// Lowered f32 values agree with the f32 evaluator to a few ulps.
const LOWER_REL_F32: f64 = 1e-6;

/// The lowered form of `p` gives the evaluator's values at `args`, in f64 and in f32.
/// `Ok(false)` when the output is not a reduction (a zero gradient).
fn compare_lowering(p: &keops_ir::Program, args: &[Vec<f64>]) -> Result<bool, String> {
    let want = eval(p, args)?;
    let Some(got) = lowered(p, args)? else {
        return Ok(false);
    };
    if !all_close(&got, &want, LOWER_REL_F64, 1e-300) {
        return Err(format!(
            "f64: lowered {got:?}, evaluator {want:?} at {args:?}"
        ));
    }
    let args32 = to_f32(args);
    let want32 = to_f64(&eval(p, &args32)?);
    let got32 = to_f64(&lowered(p, &args32)?.ok_or("f32: no reduction")?);
    if !all_close(&got32, &want32, LOWER_REL_F32, 1e-30) {
        return Err(format!(
            "f32: lowered {got32:?}, evaluator {want32:?} at {args32:?}"
        ));
    }
    Ok(true)
}

fn check_lowering(op: Op) {
    let mut failures = Vec::new();
    let mut compared = 0;
    // the hand-checked points
    for c in value_cases().iter().filter(|c| c.op == op) {
        match no_panic(|| {
            program(c.formula, &c.dims()).and_then(|p| compare_lowering(&p, &c.args()))
        }) {
            Ok(true) => compared += 1,
            Ok(false) => failures.push(format!(
                "{}: the output is not computed by a reduction",
                c.formula
            )),
            Err(e) => failures.push(format!("{}: {e}", c.formula)),
        }
    }
    // the gradient cases: forward formulas and gradient formulas at random points
    for c in grad_cases()
        .iter()
        .filter(|c| c.op == op && c.kind != GradKind::Undefined)
    {
        let r = no_panic(|| {
            let p = program(c.formula, &c.dims())?;
            let dout = p
                .output_info()
                .values
                .as_known()
                .ok_or("symbolic output dimension")?;
            let mut rng = StdRng::seed_from_u64(seed(c.op, c.formula) ^ 0x5eed);
            let mut n = 0;
            for _ in 0..3 {
                let x = sample(&c.doms(), c.valid, &mut rng)?;
                n += usize::from(compare_lowering(&p, &x)?);
                let mut with_e = x.clone();
                with_e.push((0..dout).map(|_| rng.random_range(-1.0..1.0)).collect());
                for pos in 0..c.vars.len() {
                    let g = p.grad(pos, "cot").map_err(|e| format!("gradient: {e}"))?;
                    n += usize::from(
                        compare_lowering(&g, &with_e)
                            .map_err(|e| format!("gradient w.r.t. `{}`: {e}", c.vars[pos].0))?,
                    );
                }
            }
            Ok(n)
        });
        match r {
            Ok(n) => compared += n,
            Err(e) => failures.push(format!("{}: {e}", c.formula)),
        }
    }
    report(&format!("lowering of {op:?}"), &failures);
    assert!(compared > 0, "{op:?}: nothing was lowered");
}

// =====================================================================================
// One test per operation and check
// =====================================================================================

macro_rules! per_op_tests {
    ($($op:ident),* $(,)?) => {
        /// The operations with generated tests (checked against `Op::ALL`).
        const PER_OP: &[Op] = &[$(Op::$op),*];

        /// Hand-checked values.
        #[allow(non_snake_case)]
        mod values {
            $( #[test] fn $op() { super::check_values(super::Op::$op) } )*
        }
        /// Lowered form against the evaluator.
        #[allow(non_snake_case)]
        mod lowering {
            $( #[test] fn $op() { super::check_lowering(super::Op::$op) } )*
        }
        /// Hand-checked values with constant arguments.
        #[allow(non_snake_case)]
        mod constants {
            $( #[test] fn $op() { super::check_constants(super::Op::$op) } )*
        }
        /// Symbolic gradients.
        #[allow(non_snake_case)]
        mod gradient {
            $( #[test] fn $op() { super::check_gradient(super::Op::$op) } )*
        }
    };
}

per_op_tests! {
    Add, Subtract, Mult, Divide, Minus, Inv,
    Square, Sqrt, Rsqrt, Pow, Powf,
    Exp, Log, XLogX,
    Sin, Cos, SinXDivX, Asin, Acos, Atan, Atan2,
    Abs, ReLU, Clamp, ClampInt, Mod,
    Sign, Step, Floor, Round, DiffClampInt,
    IfElse, LessThan, LessOrEqual, Equal, NotEqual,
    Sum, Max, Min, ArgMax, ArgMin, MaxMask, MinMask,
    SqNorm2, Norm2, Normalize, SqDist, Scalprod,
    WeightedSqNorm, WeightedSqDist, SqNormIso, SqNormDiag, SymSqNorm,
    Elem, ElemT, Extract, ExtractT, Concat, OneHot, SumT,
    MatVecMult, VecMatMult, TensorProd, TensorDot, Kron,
    ComplexReal, ComplexImag, Real2Complex, Imag2Complex, Conj,
    ComplexAdd, ComplexSubtract, ComplexMult, ComplexDivide,
    ComplexExp, ComplexExp1j, ComplexAbs, ComplexSquareAbs, ComplexAngle,
    ComplexSum, ComplexSumT, ComplexRealScal,
    Grad, Diff, Laplacian, Divergence, GradMatrix, TraceOperator,
    BSpline, SoftDTW_SqDist, GradSoftDTW_SqDist,
}

// =====================================================================================
// Completeness
// =====================================================================================

/// Element-wise operations with two or three arguments (broadcasting applies).
fn elementwise_multi_arg(op: Op) -> bool {
    op.spec()
        .prim()
        .is_some_and(|p| matches!(p.eval, Eval::Binary(_) | Eval::Ternary(_)))
}

/// Complex operations broadcasting a single complex number.
const COMPLEX_BROADCASTING: &[Op] = &[
    Op::ComplexAdd,
    Op::ComplexSubtract,
    Op::ComplexMult,
    Op::ComplexDivide,
];

#[test]
fn every_operation_is_covered() {
    let values = value_cases();
    let grads = grad_cases();
    let mut missing = Vec::new();
    let per_op: BTreeSet<Op> = PER_OP.iter().copied().collect();
    for &op in Op::ALL {
        let name = op.name();
        if !per_op.contains(&op) {
            missing.push(format!("{name}: not in per_op_tests!"));
        }
        let vcases: Vec<&Case> = values.iter().filter(|c| c.op == op).collect();
        if vcases.is_empty() {
            missing.push(format!("{name}: no value case"));
        }
        if !vcases.iter().any(|c| c.formula.contains(name)) {
            missing.push(format!("{name}: no value case calls it by name"));
        }
        let gcases: Vec<&GradCase> = grads.iter().filter(|c| c.op == op).collect();
        let has = |k: GradKind| gcases.iter().any(|c| c.kind == k);
        let deriv = match &op.spec().kind {
            OpKind::Prim(p) => Some(p.deriv),
            OpKind::Expand(_) => None,
        };
        match deriv {
            Some(Deriv::Zero) if !has(GradKind::Zero) => {
                missing.push(format!("{name}: zero derivative, no Zero gradient case"))
            }
            Some(Deriv::Undefined(_)) if !has(GradKind::Undefined) => missing.push(format!(
                "{name}: undefined derivative, no Undefined gradient case"
            )),
            Some(Deriv::Rule(_)) | None if !has(GradKind::Fd) => {
                missing.push(format!("{name}: differentiable, no finite-difference case"))
            }
            _ => {}
        }
        if has(GradKind::Zero) && !matches!(deriv, Some(Deriv::Zero)) {
            missing.push(format!(
                "{name}: a Zero gradient case, but the table does not declare Deriv::Zero"
            ));
        }
        if has(GradKind::Undefined) && !matches!(deriv, Some(Deriv::Undefined(_))) {
            missing.push(format!("{name}: an Undefined gradient case, but the table does not declare Deriv::Undefined"));
        }
        if elementwise_multi_arg(op) {
            if vcases.iter().filter(|c| c.broadcasts(1)).count() < 2 {
                missing.push(format!(
                    "{name}: element-wise, fewer than two broadcasting value cases"
                ));
            }
            if !matches!(deriv, Some(Deriv::Zero))
                && gcases
                    .iter()
                    .filter(|c| c.kind == GradKind::Fd && c.broadcasts(1))
                    .count()
                    < 2
            {
                missing.push(format!(
                    "{name}: element-wise, fewer than two broadcasting gradient cases"
                ));
            }
        }
        if COMPLEX_BROADCASTING.contains(&op) {
            if vcases.iter().filter(|c| c.broadcasts(2)).count() < 2 {
                missing.push(format!(
                    "{name}: fewer than two complex broadcasting value cases"
                ));
            }
            if gcases.iter().filter(|c| c.broadcasts(2)).count() < 2 {
                missing.push(format!(
                    "{name}: fewer than two complex broadcasting gradient cases"
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without tests:\n  - {}",
        missing.join("\n  - ")
    );
    assert_eq!(
        PER_OP.len(),
        Op::ALL.len(),
        "per_op_tests! lists an operation twice"
    );
}

// =====================================================================================
// Broadcasting of every element-wise operation
// =====================================================================================

/// Inputs of the broadcasting test, per argument position (op-specific where the
/// defaults would make every value NaN or every branch the same).
fn broadcast_inputs(op: Op) -> [Vec<f64>; 3] {
    match op {
        Op::IfElse => [
            vec![0.5, -1.25, 0.0],
            vec![1.5, 0.75, -3.0],
            vec![-0.5, 2.5, 1.0],
        ],
        Op::Clamp => [
            vec![-2.0, 0.5, 3.0],
            vec![-1.0, 0.75, 0.0],
            vec![1.0, 2.0, 2.5],
        ],
        Op::Mod => [
            vec![5.5, -1.25, 7.0],
            vec![2.0, 0.75, 3.0],
            vec![-0.5, 2.5, 1.0],
        ],
        _ => [
            vec![0.5, 1.25, 2.0],
            vec![1.25, 0.5, 3.0],
            vec![-0.5, 2.5, 1.0],
        ],
    }
}

/// For every element-wise operation with 2 or 3 arguments and every choice of scalar
/// arguments (the first coordinate of that argument) against vectors of dimension 3, the
/// value is the operation applied coordinate by coordinate, in the evaluator and in the
/// lowered form.
#[test]
fn elementwise_broadcasting_matches_coordinatewise_values() {
    let names = ["a", "b", "c"];
    let mut failures = Vec::new();
    let mut checked = 0;
    for &op in Op::ALL.iter().filter(|op| elementwise_multi_arg(**op)) {
        let arity = op.spec().arity;
        let inputs = broadcast_inputs(op);
        let formula = format!("{}({})", op.name(), names[..arity].join(", "));
        // every non-empty proper subset of the positions is scalar
        for mask in 1..(1u32 << arity) - 1 {
            let args: Vec<Vec<f64>> = (0..arity)
                .map(|k| {
                    if mask & (1 << k) != 0 {
                        vec![inputs[k][0]]
                    } else {
                        inputs[k].clone()
                    }
                })
                .collect();
            let expected: Vec<f64> = (0..3)
                .map(|i| {
                    let scalars: Vec<[f64; 1]> = args.iter().map(|a| [at(a, i)]).collect();
                    let refs: Vec<&[f64]> = scalars.iter().map(|s| s.as_slice()).collect();
                    apply_op::<f64>(op, &refs, &[], 1)[0]
                })
                .collect();
            let dims: Vec<(&str, usize)> = names[..arity]
                .iter()
                .zip(&args)
                .map(|(n, a)| (*n, a.len()))
                .collect();
            let r = no_panic(|| {
                let p = program(&formula, &dims)?;
                let got = eval(&p, &args)?;
                if !all_close(&got, &expected, 0.0, 0.0) {
                    return Err(format!("evaluator {got:?}, coordinate-wise {expected:?}"));
                }
                match lowered(&p, &args)? {
                    Some(low) if all_close(&low, &expected, 0.0, 0.0) => Ok(()),
                    other => Err(format!("lowered {other:?}, coordinate-wise {expected:?}")),
                }
            });
            checked += 1;
            if let Err(e) = r {
                failures.push(format!(
                    "{formula} with dims {:?}: {e}",
                    args.iter().map(Vec::len).collect::<Vec<_>>()
                ));
            }
        }
    }
    report("broadcasting", &failures);
    // Add, Subtract, Mult, Divide, Powf, Atan2, comparisons (4): 10 x 2 patterns; Clamp, Mod, IfElse: 3 x 6
    assert_eq!(
        checked, 38,
        "the set of element-wise operations with several arguments changed"
    );
}

// =====================================================================================
// Sugar and calculus operations against hand-written formulas
// =====================================================================================

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn random_vec(rng: &mut StdRng, d: usize, dom: Dom) -> Vec<f64> {
    (0..d).map(|_| dom.sample(rng)).collect()
}

/// Checks `formula` (variables `vars`) against `expected(point)` at 20 random points.
fn against_formula(
    formula: &str,
    vars: &[(&str, usize, Dom)],
    seed: u64,
    rel: f64,
    expected: impl Fn(&[Vec<f64>]) -> Result<Vec<f64>, String>,
) -> Result<(), String> {
    let dims: Vec<(&str, usize)> = vars.iter().map(|(n, d, _)| (*n, *d)).collect();
    let p = program(formula, &dims)?;
    let mut r = rng(seed);
    for _ in 0..20 {
        let x: Vec<Vec<f64>> = vars
            .iter()
            .map(|(_, d, dom)| random_vec(&mut r, *d, *dom))
            .collect();
        let got = eval(&p, &x)?;
        let want = expected(&x)?;
        if !all_close(&got, &want, rel, rel) {
            return Err(format!(
                "{formula} at {x:?}: got {got:?}, expected {want:?}"
            ));
        }
    }
    Ok(())
}

#[test]
fn laplacian_of_a_gaussian_is_closed_form() {
    // Laplacian of exp(-|x|^2) = (4 |x|^2 - 2 d) exp(-|x|^2)
    for d in 1..=4 {
        against_formula(
            "Laplacian(Exp(-SqNorm2(x)), x)",
            &[("x", d, U(-1.5, 1.5))],
            d as u64,
            1e-12,
            |v| {
                let n2: f64 = v[0].iter().map(|x| x * x).sum();
                Ok(vec![(4.0 * n2 - 2.0 * d as f64) * (-n2).exp()])
            },
        )
        .unwrap();
    }
}

#[test]
fn diff_is_the_jacobian_times_the_direction() {
    // Diff(f, x, u) = J u = (f(x + h u) - f(x - h u)) / 2h, for a vector-valued f
    let f = "Concat(Exp(x) * Elem(x, 0), Sum(Sin(x)) * Elem(x, 2))";
    let fp = program(f, &[("x", 3)]).unwrap();
    against_formula(
        &format!("Diff({f}, x, u)"),
        &[("x", 3, U(-1.5, 1.5)), ("u", 3, U(-1.0, 1.0))],
        7,
        FD_TOL,
        |v| {
            let (x, u) = (&v[0], &v[1]);
            let plus: Vec<f64> = x.iter().zip(u).map(|(a, b)| a + H * b).collect();
            let minus: Vec<f64> = x.iter().zip(u).map(|(a, b)| a - H * b).collect();
            let (a, b) = (eval(&fp, &[plus])?, eval(&fp, &[minus])?);
            Ok(a.iter().zip(&b).map(|(p, m)| (p - m) / (2.0 * H)).collect())
        },
    )
    .unwrap();
}

#[test]
fn gradmatrix_is_the_row_major_jacobian() {
    // f: R^3 -> R^2, GradMatrix(f, x)[k * 3 + l] = d f_k / d x_l (d(f) blocks of d(x))
    let f = "Concat(Elem(x, 0) * Exp(Elem(x, 2)), Sum(Sin(x)) * Elem(x, 1))";
    let fp = program(f, &[("x", 3)]).unwrap();
    against_formula(
        &format!("GradMatrix({f}, x)"),
        &[("x", 3, U(-1.5, 1.5))],
        8,
        FD_TOL,
        |v| fd_jacobian(&fp, v, 0),
    )
    .unwrap();
}

#[test]
fn divergence_is_the_trace_of_the_jacobian() {
    let f = "Sin(x) * Sum(x * x) + Exp(Elem(x, 0)) * x";
    let fp = program(f, &[("x", 3)]).unwrap();
    against_formula(
        &format!("Divergence({f}, x)"),
        &[("x", 3, U(-1.5, 1.5))],
        9,
        FD_TOL,
        |v| {
            let j = fd_jacobian(&fp, v, 0)?;
            Ok(vec![j[0] + j[4] + j[8]])
        },
    )
    .unwrap();
}

#[test]
fn trace_operator_of_linear_maps() {
    let w = ("w", 3, U(-2.0, 2.0));
    let x = ("x", 3, U(-2.0, 2.0));
    let sum_w = |v: &[Vec<f64>]| Ok(vec![v[0].iter().sum::<f64>()]);
    // w 1^T, diag(w), the row w^T: trace (or sum of the row) = sum(w)
    against_formula("TraceOperator(w * Sum(x), x)", &[w, x], 10, 1e-12, sum_w).unwrap();
    against_formula("TraceOperator(w * x, x)", &[w, x], 11, 1e-12, sum_w).unwrap();
    against_formula(
        "TraceOperator(Scalprod(w, x), x)",
        &[w, x],
        12,
        1e-12,
        sum_w,
    )
    .unwrap();
    // a permutation without fixed point: trace 0
    against_formula(
        "TraceOperator(Concat(Extract(x, 1, 2), Elem(x, 0)), x)",
        &[x],
        13,
        0.0,
        |_| Ok(vec![0.0]),
    )
    .unwrap();
}

#[test]
fn trace_operator_of_a_matrix_is_its_trace() {
    // MatVecMult(A, x) with A 3 x 3 row-major: trace A = A00 + A11 + A22
    against_formula(
        "TraceOperator(MatVecMult(a, x), x)",
        &[("a", 9, U(-2.0, 2.0)), ("x", 3, U(-2.0, 2.0))],
        14,
        1e-12,
        |v| Ok(vec![v[0][0] + v[0][4] + v[0][8]]),
    )
    .unwrap();
}

#[test]
fn grad_inside_a_formula_is_the_transposed_jacobian() {
    // Grad(f, x, e) = J^T e, against finite differences of <f, e>
    let f = "Exp(-SqDist(x, y)) * y + Sin(x)";
    let fp = program(f, &[("x", 3), ("y", 3)]).unwrap();
    against_formula(
        &format!("Grad({f}, x, e)"),
        &[
            ("x", 3, U(-1.0, 1.0)),
            ("y", 3, U(-1.0, 1.0)),
            ("e", 3, U(-1.0, 1.0)),
        ],
        15,
        FD_TOL,
        |v| {
            (0..3)
                .map(|k| central_difference(&fp, &v[..2], 0, k, &v[2]))
                .collect()
        },
    )
    .unwrap();
}

#[test]
fn grad_of_a_reduction_equals_the_reduction_of_grad() {
    // Grad(Sum_Reduction(F, 0), x, e) (a gradient program) = Sum_Reduction(Grad(F, x, e), 0)
    let f = "Exp(-SqDist(x, y)) * Atan2(x, y) + Rsqrt(SqNorm2(x) + 1)";
    let text = format!("x = Vi(3); y = Vi(3); e = Vi(3); Grad(Sum_Reduction({f}, 0), x, e)");
    let by_program = keops_ir::Program::parse(&text).unwrap();
    let by_formula = program(&format!("Grad({f}, x, e)"), &[("x", 3), ("y", 3), ("e", 3)]).unwrap();
    let mut r = rng(16);
    for _ in 0..20 {
        let args: Vec<Vec<f64>> = (0..3)
            .map(|_| random_vec(&mut r, 3, U(-1.0, 1.0)))
            .collect();
        let (a, b) = (
            eval(&by_program, &args).unwrap(),
            eval(&by_formula, &args).unwrap(),
        );
        assert!(all_close(&a, &b, 1e-12, 1e-14), "{a:?} vs {b:?}");
    }
}

fn quadratic_form(s: &[f64], f: &[f64]) -> f64 {
    let d = f.len();
    (0..d)
        .flat_map(|k| (0..d).map(move |l| (k, l)))
        .map(|(k, l)| s[k * d + l] * f[k] * f[l])
        .sum()
}

#[test]
fn isotropic_and_diagonal_weighted_norms_match_their_definitions() {
    let r = U(-2.0, 2.0);
    let sq = |f: &[f64]| f.iter().map(|x| x * x).sum::<f64>();
    let diag = |s: &[f64], f: &[f64]| s.iter().zip(f).map(|(a, b)| a * b * b).sum::<f64>();
    let diff = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<f64>>();
    against_formula(
        "SqNormIso(s, x)",
        &[("s", 1, r), ("x", 4, r)],
        20,
        1e-13,
        |v| Ok(vec![v[0][0] * sq(&v[1])]),
    )
    .unwrap();
    against_formula(
        "WeightedSqNorm(s, x)",
        &[("s", 1, r), ("x", 4, r)],
        21,
        1e-13,
        |v| Ok(vec![v[0][0] * sq(&v[1])]),
    )
    .unwrap();
    against_formula(
        "SqNormDiag(s, x)",
        &[("s", 4, r), ("x", 4, r)],
        22,
        1e-13,
        |v| Ok(vec![diag(&v[0], &v[1])]),
    )
    .unwrap();
    against_formula(
        "WeightedSqNorm(s, x)",
        &[("s", 4, r), ("x", 4, r)],
        23,
        1e-13,
        |v| Ok(vec![diag(&v[0], &v[1])]),
    )
    .unwrap();
    against_formula(
        "WeightedSqDist(s, x, y)",
        &[("s", 1, r), ("x", 4, r), ("y", 4, r)],
        24,
        1e-13,
        |v| Ok(vec![v[0][0] * sq(&diff(&v[1], &v[2]))]),
    )
    .unwrap();
    against_formula(
        "WeightedSqDist(s, x, y)",
        &[("s", 4, r), ("x", 4, r), ("y", 4, r)],
        25,
        1e-13,
        |v| Ok(vec![diag(&v[0], &diff(&v[1], &v[2]))]),
    )
    .unwrap();
}

#[test]
fn full_weighted_norms_match_their_definitions() {
    // sum_kl s_kl f_k f_l with a random (asymmetric) row-major s
    let r = U(-2.0, 2.0);
    against_formula(
        "SymSqNorm(s, x)",
        &[("s", 9, r), ("x", 3, r)],
        26,
        1e-13,
        |v| Ok(vec![quadratic_form(&v[0], &v[1])]),
    )
    .unwrap();
    against_formula(
        "WeightedSqNorm(s, x)",
        &[("s", 9, r), ("x", 3, r)],
        27,
        1e-13,
        |v| Ok(vec![quadratic_form(&v[0], &v[1])]),
    )
    .unwrap();
    against_formula(
        "WeightedSqDist(s, x, y)",
        &[("s", 9, r), ("x", 3, r), ("y", 3, r)],
        28,
        1e-13,
        |v| {
            let f: Vec<f64> = v[1].iter().zip(&v[2]).map(|(a, b)| a - b).collect();
            Ok(vec![quadratic_form(&v[0], &f)])
        },
    )
    .unwrap();
}

#[test]
fn kron_matches_numpy_kron() {
    // a: 2 x 3, b: 3 x 2 (row-major); kron(a, b)[(i*3 + k), (j*2 + l)] = a[i][j] b[k][l], a 6 x 6 matrix
    against_formula(
        "Kron(a, b, (2, 3), (3, 2))",
        &[("a", 6, U(-2.0, 2.0)), ("b", 6, U(-2.0, 2.0))],
        30,
        1e-13,
        |v| {
            let (a, b) = (&v[0], &v[1]);
            let mut out = vec![0.0; 36];
            for i in 0..2 {
                for j in 0..3 {
                    for k in 0..3 {
                        for l in 0..2 {
                            out[(i * 3 + k) * 6 + (j * 2 + l)] = a[i * 3 + j] * b[k * 2 + l];
                        }
                    }
                }
            }
            Ok(out)
        },
    )
    .unwrap();
}

#[test]
fn complex_angle_is_atan2_of_the_imaginary_and_real_parts() {
    against_formula(
        "ComplexAngle(z)",
        &[("z", 6, U(-2.0, 2.0))],
        31,
        1e-13,
        |v| Ok(v[0].chunks(2).map(|c| c[1].atan2(c[0])).collect()),
    )
    .unwrap();
}

#[test]
fn ifelse_gradient_follows_the_selected_branch() {
    // IfElse(c, a, b) takes a where c >= 0 (0 and -0 included), b elsewhere (c < 0 or NaN):
    // the cotangent must go where the value comes from (KeOps: IfElse(c, da, db)).
    let p = program("IfElse(c, a, b)", &[("c", 5), ("a", 5), ("b", 5)]).unwrap();
    let c = vec![1.0, -1.0, 0.0, -0.0, NAN];
    let (a, b) = (
        vec![10.0, 20.0, 30.0, 40.0, 50.0],
        vec![-10.0, -20.0, -30.0, -40.0, -50.0],
    );
    let e = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    let value = eval(&p, &[c.clone(), a.clone(), b.clone()]).unwrap();
    assert!(
        all_close(&value, &[10.0, -20.0, 30.0, 40.0, -50.0], 0.0, 0.0),
        "{value:?}"
    );
    let args = vec![c, a, b, e];
    let da = eval(&p.grad(1, "cot").unwrap(), &args).unwrap();
    let db = eval(&p.grad(2, "cot").unwrap(), &args).unwrap();
    let ok_a = all_close(&da, &[1.0, 0.0, 3.0, 4.0, 0.0], 0.0, 0.0);
    let ok_b = all_close(&db, &[0.0, 2.0, 0.0, 0.0, 5.0], 0.0, 0.0);
    assert!(
        ok_a && ok_b,
        "d/da = {da:?} (expected [1, 0, 3, 4, 0]), d/db = {db:?} (expected [0, 2, 0, 0, 5])"
    );
}

#[test]
fn max_and_min_gradients_at_ties_do_not_depend_on_declared_dimensions() {
    // At a tie the gradient of Max/Min goes to the first extreme coordinate (as ArgMax,
    // and as the lowest-index rule of the reductions), whether the width of x is declared
    // or left to inference: [1, 0, 0] for Max at x = (3, 3, 1), [0, 1, 0] for Min at (1, -2, -2).
    let mut failures = Vec::new();
    for (op, x, want) in [
        ("Max", [3.0, 3.0, 1.0], [1.0, 0.0, 0.0]),
        ("Min", [1.0, -2.0, -2.0], [0.0, 1.0, 0.0]),
    ] {
        for decl in ["x_i: 3; ", ""] {
            let text = format!("{decl}Sum_j({op}(x_i) * y_j)");
            let g = keops_ir::Program::parse(&text)
                .unwrap()
                .grad(0, "cot")
                .unwrap();
            let got = eval(&g, &[x.to_vec(), vec![1.0], vec![1.0]]).unwrap();
            if got != want {
                failures.push(format!(
                    "`{text}` at x = {x:?}: gradient {got:?}, expected {want:?}"
                ));
            }
        }
    }
    report("gradients at ties", &failures);
}
