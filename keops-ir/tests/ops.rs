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

use common::*;
use keops_ir::eval::apply_op;
use keops_ir::ops::{Deriv, Eval, OpKind};
use keops_ir::{ErrorKind, Op};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;

const NAN: f64 = f64::NAN;
const INF: f64 = f64::INFINITY;
/// math.pi
const PI: f64 = std::f64::consts::PI;
/// math.pi / 2
const PI_2: f64 = std::f64::consts::FRAC_PI_2;
/// math.pi / 4
const PI_4: f64 = std::f64::consts::FRAC_PI_4;

// =====================================================================================
// Value table
// =====================================================================================

/// A hand-checked point: the formula, its variables (each a `Vi` of the given values'
/// length) and the expected value of the formula.
struct Case {
    op: Op,
    formula: &'static str,
    vars: Vec<(&'static str, Vec<f64>)>,
    expected: Vec<f64>,
}

impl Case {
    fn dims(&self) -> Vec<(&'static str, usize)> {
        self.vars.iter().map(|(n, v)| (*n, v.len())).collect()
    }
    fn args(&self) -> Vec<Vec<f64>> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }
    /// Mixes scalar and vector variables (a broadcasting case).
    fn broadcasts(&self, unit: usize) -> bool {
        self.vars.iter().any(|(_, v)| v.len() == unit)
            && self.vars.iter().any(|(_, v)| v.len() > unit)
    }
}

/// `case!(Op, "formula", { x: [values], y: [values] } => [expected])`
macro_rules! case {
    ($op:ident, $f:expr, { $($v:ident : [$($x:expr),* $(,)?]),* $(,)? } => [$($e:expr),* $(,)?]) => {
        Case { op: Op::$op, formula: $f, vars: vec![$((stringify!($v), vec![$($x),*])),*], expected: vec![$($e),*] }
    };
}

#[rustfmt::skip]
fn value_cases() -> Vec<Case> {
    vec![
        // ---------------------------------------------------------------- arithmetic
        case!(Add, "x + y", { x: [1.5, -2.5, INF], y: [2.0, 0.5, -INF] } => [3.5, -2.0, NAN]),
        case!(Add, "Add(x, y)", { x: [1.0, 2.0], y: [3.0, 4.0] } => [4.0, 6.0]),
        case!(Add, "s + x", { s: [10.0], x: [1.0, 2.0, 3.0] } => [11.0, 12.0, 13.0]),
        case!(Add, "x + s", { x: [1.0, 2.0, 3.0], s: [10.0] } => [11.0, 12.0, 13.0]),
        case!(Subtract, "x - y", { x: [1.0, 0.0, INF], y: [3.0, -0.5, INF] } => [-2.0, 0.5, NAN]),
        case!(Subtract, "Subtract(x, y)", { x: [1.0, 2.0], y: [3.0, 5.0] } => [-2.0, -3.0]),
        case!(Subtract, "s - x", { s: [1.0], x: [1.0, 2.0, 3.0] } => [0.0, -1.0, -2.0]),
        case!(Subtract, "x - s", { x: [1.0, 2.0, 3.0], s: [1.0] } => [0.0, 1.0, 2.0]),
        case!(Mult, "x * y", { x: [2.0, -3.0, 0.0], y: [0.5, 4.0, INF] } => [1.0, -12.0, NAN]),
        case!(Mult, "Mult(x, y)", { x: [1.5, 2.0], y: [2.0, -3.0] } => [3.0, -6.0]),
        case!(Mult, "s * x", { s: [2.0], x: [1.0, 2.0, 3.0] } => [2.0, 4.0, 6.0]),
        case!(Mult, "x * s", { x: [1.0, 2.0, 3.0], s: [-1.0] } => [-1.0, -2.0, -3.0]),
        case!(Divide, "x / y", { x: [1.0, 1.0, 0.0, -1.0], y: [4.0, 0.0, 0.0, 0.0] } => [0.25, INF, NAN, -INF]),
        case!(Divide, "Divide(x, y)", { x: [3.0, 1.0], y: [2.0, -8.0] } => [1.5, -0.125]),
        case!(Divide, "s / x", { s: [1.0], x: [1.0, 2.0, 4.0] } => [1.0, 0.5, 0.25]),
        case!(Divide, "x / s", { x: [1.0, 2.0, 3.0], s: [2.0] } => [0.5, 1.0, 1.5]),
        case!(Minus, "-x", { x: [1.0, -2.0, 0.0, INF] } => [-1.0, 2.0, 0.0, -INF]),
        case!(Minus, "Minus(x)", { x: [1.5, NAN] } => [-1.5, NAN]),
        case!(Minus, "-s", { s: [2.5] } => [-2.5]),
        case!(Inv, "Inv(x)", { x: [2.0, -4.0, 0.0, INF] } => [0.5, -0.25, INF, 0.0]),
        case!(Inv, "Inv(s)", { s: [-4.0] } => [-0.25]),
        // ---------------------------------------------------------------- powers
        case!(Square, "Square(x)", { x: [3.0, -1.5, 0.0, -INF] } => [9.0, 2.25, 0.0, INF]),
        case!(Square, "Square(s)", { s: [-1.5] } => [2.25]),
        // math.sqrt(2)
        case!(Sqrt, "Sqrt(x)", { x: [4.0, 2.0, 0.0, -1.0, INF] } => [2.0, 1.4142135623730951, 0.0, NAN, INF]),
        case!(Sqrt, "Sqrt(s)", { s: [2.0] } => [1.4142135623730951]),
        // Rsqrt(0) = 0 (KeOps), 1 / math.sqrt(2), Rsqrt(inf) = 0, Rsqrt(-1) = NaN
        case!(Rsqrt, "Rsqrt(x)", { x: [4.0, 0.0, 2.0, INF, -1.0] } => [0.5, 0.0, 0.7071067811865475, 0.0, NAN]),
        case!(Rsqrt, "Rsqrt(s)", { s: [4.0] } => [0.5]),
        case!(Rsqrt, "Rsqrt(s)", { s: [0.0] } => [0.0]),
        case!(Pow, "Pow(x, 3)", { x: [2.0, -1.5, 0.0] } => [8.0, -3.375, 0.0]),
        case!(Pow, "Pow(x, 2)", { x: [-3.0, 0.5] } => [9.0, 0.25]),
        case!(Pow, "Pow(x, -2)", { x: [2.0, -0.5, 0.0] } => [0.25, 4.0, INF]),
        case!(Pow, "Pow(x, 1)", { x: [-7.5] } => [-7.5]),
        case!(Pow, "Pow(x, 0)", { x: [0.0, 5.0, -2.0] } => [1.0, 1.0, 1.0]),
        // 2^3, 4^0.5, 0^0 = 1 (C pow), (-8)^0.5 = NaN, 0^-1 = inf
        case!(Powf, "Powf(x, y)", { x: [2.0, 4.0, 0.0, -8.0, 0.0], y: [3.0, 0.5, 0.0, 0.5, -1.0] } => [8.0, 2.0, 1.0, NAN, INF]),
        case!(Powf, "Powf(x, s)", { x: [1.0, 4.0, 9.0], s: [0.5] } => [1.0, 2.0, 3.0]),
        case!(Powf, "Powf(s, x)", { s: [2.0], x: [0.0, 1.0, -1.0] } => [1.0, 2.0, 0.5]),
        // ---------------------------------------------------------------- exp / log
        // math.e, math.exp(-1)
        case!(Exp, "Exp(x)", { x: [0.0, 1.0, -1.0, -INF, INF] } => [1.0, 2.718281828459045, 0.36787944117144233, 0.0, INF]),
        // math.exp(2)
        case!(Exp, "Exp(s)", { s: [2.0] } => [7.38905609893065]),
        // math.log(10)
        case!(Log, "Log(x)", { x: [1.0, 10.0, 0.0, -1.0, INF] } => [0.0, 2.302585092994046, -INF, NAN, INF]),
        case!(Log, "Log(s)", { s: [10.0] } => [2.302585092994046]),
        // XLogX(0) = 0, 2 * math.log(2), 0.5 * math.log(0.5), -1 * log(-1) = NaN
        case!(XLogX, "XLogX(x)", { x: [0.0, 1.0, 2.0, 0.5, -1.0] } => [0.0, 0.0, 1.3862943611198906, -0.34657359027997264, NAN]),
        case!(XLogX, "XLogX(s)", { s: [0.0] } => [0.0]),
        case!(XLogX, "XLogX(s)", { s: [2.0] } => [1.3862943611198906]),
        // ---------------------------------------------------------------- trigonometry
        // math.sin(math.pi / 2), math.sin(-1), math.sin(math.pi)
        case!(Sin, "Sin(x)", { x: [0.0, PI_2, -1.0, PI, INF] } => [0.0, 1.0, -0.8414709848078965, 1.2246467991473532e-16, NAN]),
        case!(Sin, "Sin(s)", { s: [-1.0] } => [-0.8414709848078965]),
        // math.cos(math.pi), math.cos(1)
        case!(Cos, "Cos(x)", { x: [0.0, PI, 1.0] } => [1.0, -1.0, 0.5403023058681398]),
        // SinXDivX(0) = 1, math.sin(math.pi/2) / (math.pi/2), math.sin(-2) / -2
        case!(SinXDivX, "SinXDivX(x)", { x: [0.0, PI_2, -2.0, 1e-20, -0.0] } => [1.0, 0.6366197723675814, 0.45464871341284085, 1.0, 1.0]),
        case!(SinXDivX, "SinXDivX(s)", { s: [0.0] } => [1.0]),
        case!(SinXDivX, "SinXDivX(s)", { s: [-2.0] } => [0.45464871341284085]),
        // math.asin(1), math.asin(-0.5), asin(2) = NaN
        case!(Asin, "Asin(x)", { x: [0.0, 1.0, -0.5, 2.0] } => [0.0, 1.5707963267948966, -0.5235987755982989, NAN]),
        case!(Asin, "Asin(s)", { s: [-0.5] } => [-0.5235987755982989]),
        // math.acos(0), math.acos(-1), math.acos(0.5)
        case!(Acos, "Acos(x)", { x: [1.0, 0.0, -1.0, 0.5, -2.0] } => [0.0, 1.5707963267948966, 3.141592653589793, 1.0471975511965979, NAN]),
        case!(Acos, "Acos(s)", { s: [0.5] } => [1.0471975511965979]),
        // math.atan(1), math.atan(-inf)
        case!(Atan, "Atan(x)", { x: [0.0, 1.0, -INF, NAN] } => [0.0, 0.7853981633974483, -1.5707963267948966, NAN]),
        case!(Atan, "Atan(s)", { s: [1.0] } => [0.7853981633974483]),
        // math.atan2(1, 1), (1, 0), (0, -1), (-1, -1), (0, 0)
        case!(Atan2, "Atan2(y, x)", { y: [1.0, 1.0, 0.0, -1.0, 0.0], x: [1.0, 0.0, -1.0, -1.0, 0.0] }
            => [0.7853981633974483, 1.5707963267948966, 3.141592653589793, -2.356194490192345, 0.0]),
        // math.atan2(1, 1), (1, -1), (1, 0)
        case!(Atan2, "Atan2(s, x)", { s: [1.0], x: [1.0, -1.0, 0.0] } => [0.7853981633974483, 2.356194490192345, 1.5707963267948966]),
        // math.atan2(1, 1), (-1, 1), (0, 1)
        case!(Atan2, "Atan2(y, s)", { y: [1.0, -1.0, 0.0], s: [1.0] } => [0.7853981633974483, -0.7853981633974483, 0.0]),
        // ---------------------------------------------------------------- piecewise
        case!(Abs, "Abs(x)", { x: [-2.0, 3.0, 0.0, -INF, NAN] } => [2.0, 3.0, 0.0, INF, NAN]),
        case!(Abs, "Abs(s)", { s: [-2.5] } => [2.5]),
        // ReLU(NaN) = NaN (KeOps: x < 0 ? 0 : x)
        case!(ReLU, "ReLU(x)", { x: [-2.0, 3.0, 0.0, NAN] } => [0.0, 3.0, 0.0, NAN]),
        case!(ReLU, "ReLU(s)", { s: [-2.0] } => [0.0]),
        case!(ReLU, "ReLU(s)", { s: [1.5] } => [1.5]),
        case!(Clamp, "Clamp(x, a, b)", { x: [-2.0, 0.5, 3.0, NAN], a: [-1.0, 0.0, 1.0, 0.0], b: [1.0, 1.0, 2.0, 1.0] } => [-1.0, 0.5, 2.0, NAN]),
        // a > b: x < a is tested first (KeOps: x < a ? a : (x > b ? b : x))
        case!(Clamp, "Clamp(x, a, b)", { x: [0.0, 1.5, 3.0], a: [2.0, 2.0, 2.0], b: [1.0, 1.0, 1.0] } => [2.0, 2.0, 1.0]),
        case!(Clamp, "Clamp(x, a, b)", { x: [-2.0, 0.5, 3.0], a: [-1.0], b: [1.0] } => [-1.0, 0.5, 1.0]),
        case!(Clamp, "Clamp(s, a, b)", { s: [0.5], a: [0.0, 1.0, -1.0], b: [1.0, 2.0, 0.0] } => [0.5, 1.0, 0.0]),
        case!(Clamp, "Clamp(x, a, b)", { x: [-2.0, 0.5, 3.0], a: [-1.0], b: [0.0, 1.0, 2.0] } => [-1.0, 0.5, 2.0]),
        case!(ClampInt, "ClampInt(x, -1, 2)", { x: [-3.0, -1.0, 0.5, 2.0, 5.0, NAN] } => [-1.0, -1.0, 0.5, 2.0, 2.0, NAN]),
        case!(ClampInt, "ClampInt(s, -1, 2)", { s: [3.5] } => [2.0]),
        case!(ClampInt, "ClampInt(s, -1, 2)", { s: [0.25] } => [0.25]),
        // x - n floor((x - d) / n): 5.5 - 2*2, -1 - 3*(-1), 3.5 - 2*2, 6 - 3*2
        case!(Mod, "Mod(x, n, d)", { x: [5.5, -1.0, 3.5, 6.0], n: [2.0, 3.0, 2.0, 3.0], d: [0.0, 0.0, -1.0, 0.0] } => [1.5, 2.0, -0.5, 0.0]),
        // 5.5 - 2*2, -1 - 2*(-1), 4 - 2*2
        case!(Mod, "Mod(x, n, d)", { x: [5.5, -1.0, 4.0], n: [2.0], d: [0.0] } => [1.5, 1.0, 0.0]),
        // 7 - 2*3, 7 - 3*2, 7 - 4*1
        case!(Mod, "Mod(s, n, d)", { s: [7.0], n: [2.0, 3.0, 4.0], d: [0.0] } => [1.0, 1.0, 3.0]),
        // the result is in [d, d + n): 2.5 - 1*floor(2.5 - 0.25), 2.5 - 1*floor(2.5 - 0.75)
        case!(Mod, "Mod(s, n, d)", { s: [2.5], n: [1.0], d: [0.25, 0.75] } => [0.5, 1.5]),
        // ---------------------------------------------------------------- piecewise constant
        // Sign(NaN) = 0, Sign(-0) = 0
        case!(Sign, "Sign(x)", { x: [-2.0, 0.0, 3.0, NAN, -0.0, -INF] } => [-1.0, 0.0, 1.0, 0.0, 0.0, -1.0]),
        case!(Sign, "Sign(s)", { s: [-2.0] } => [-1.0]),
        case!(Sign, "Sign(s)", { s: [0.0] } => [0.0]),
        // Step(0) = 1, Step(NaN) = 1 (KeOps: x < 0 ? 0 : 1), Step(-0) = 1
        case!(Step, "Step(x)", { x: [-2.0, 0.0, 3.0, NAN, -0.0, -1e-300] } => [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]),
        case!(Step, "Step(s)", { s: [0.0] } => [1.0]),
        case!(Step, "Step(s)", { s: [-2.0] } => [0.0]),
        case!(Floor, "Floor(x)", { x: [1.5, -1.5, 2.0, -0.5, NAN] } => [1.0, -2.0, 2.0, -1.0, NAN]),
        case!(Floor, "Floor(s)", { s: [-1.5] } => [-2.0]),
        // halves away from zero (C round)
        case!(Round, "Round(x, 0)", { x: [2.5, -2.5, 1.4, -1.6, 0.5] } => [3.0, -3.0, 1.0, -2.0, 1.0]),
        // round(123.456)/100, round(-12.5)/100
        case!(Round, "Round(x, 2)", { x: [1.23456, -0.125] } => [1.23, -0.13]),
        // round(1234 * 0.1) / 0.1, round(15 * 0.1) / 0.1
        case!(Round, "Round(x, -1)", { x: [1234.0, 15.0] } => [1230.0, 20.0]),
        case!(DiffClampInt, "DiffClampInt(x, -1, 2)", { x: [-3.0, -1.0, 0.5, 2.0, 2.5] } => [0.0, 1.0, 1.0, 1.0, 0.0]),
        // ---------------------------------------------------------------- conditional, comparisons
        // c >= 0 takes a: 0 and -0 take a, NaN takes b
        case!(IfElse, "IfElse(c, a, b)", { c: [1.0, -1.0, 0.0, -0.0, NAN], a: [10.0, 20.0, 30.0, 40.0, 50.0], b: [-10.0, -20.0, -30.0, -40.0, -50.0] }
            => [10.0, -20.0, 30.0, 40.0, -50.0]),
        case!(IfElse, "IfElse(c, a, b)", { c: [1.0, -1.0, 0.0], a: [7.0], b: [-7.0] } => [7.0, -7.0, 7.0]),
        case!(IfElse, "IfElse(s, a, b)", { s: [-1.0], a: [1.0, 2.0, 3.0], b: [4.0, 5.0, 6.0] } => [4.0, 5.0, 6.0]),
        case!(IfElse, "IfElse(c, a, b)", { c: [1.0, -1.0, 2.0], a: [1.0, 2.0, 3.0], b: [9.0] } => [1.0, 9.0, 3.0]),
        case!(LessThan, "LessThan(x, y)", { x: [1.0, 2.0, 3.0, NAN], y: [2.0, 2.0, 2.0, 0.0] } => [1.0, 0.0, 0.0, 0.0]),
        case!(LessThan, "x < y", { x: [1.0, 2.0, 3.0, NAN], y: [2.0, 2.0, 2.0, 0.0] } => [1.0, 0.0, 0.0, 0.0]),
        case!(LessThan, "x > y", { x: [1.0, 2.0, 3.0, NAN], y: [2.0, 2.0, 2.0, 0.0] } => [0.0, 0.0, 1.0, 0.0]),
        case!(LessThan, "LessThan(s, x)", { s: [2.0], x: [1.0, 2.0, 3.0] } => [0.0, 0.0, 1.0]),
        case!(LessThan, "LessThan(x, s)", { x: [1.0, 2.0, 3.0], s: [2.0] } => [1.0, 0.0, 0.0]),
        case!(LessOrEqual, "LessOrEqual(x, y)", { x: [1.0, 2.0, 3.0, NAN], y: [2.0, 2.0, 2.0, 0.0] } => [1.0, 1.0, 0.0, 0.0]),
        case!(LessOrEqual, "x <= y", { x: [1.0, 2.0, 3.0], y: [2.0, 2.0, 2.0] } => [1.0, 1.0, 0.0]),
        case!(LessOrEqual, "x >= y", { x: [1.0, 2.0, 3.0, NAN], y: [2.0, 2.0, 2.0, 0.0] } => [0.0, 1.0, 1.0, 0.0]),
        case!(LessOrEqual, "LessOrEqual(s, x)", { s: [2.0], x: [1.0, 2.0, 3.0] } => [0.0, 1.0, 1.0]),
        case!(LessOrEqual, "LessOrEqual(x, s)", { x: [1.0, 2.0, 3.0], s: [2.0] } => [1.0, 1.0, 0.0]),
        case!(Equal, "Equal(x, y)", { x: [1.0, 2.0, NAN, 0.0], y: [1.0, 3.0, NAN, -0.0] } => [1.0, 0.0, 0.0, 1.0]),
        case!(Equal, "x == y", { x: [1.0, 2.0], y: [1.0, 3.0] } => [1.0, 0.0]),
        case!(Equal, "Equal(s, x)", { s: [2.0], x: [1.0, 2.0, 3.0] } => [0.0, 1.0, 0.0]),
        case!(Equal, "Equal(x, s)", { x: [2.0, 2.0, 3.0], s: [2.0] } => [1.0, 1.0, 0.0]),
        case!(NotEqual, "NotEqual(x, y)", { x: [1.0, 2.0, NAN, 0.0], y: [1.0, 3.0, NAN, -0.0] } => [0.0, 1.0, 1.0, 0.0]),
        case!(NotEqual, "x != y", { x: [1.0, 2.0], y: [1.0, 3.0] } => [0.0, 1.0]),
        case!(NotEqual, "NotEqual(s, x)", { s: [2.0], x: [1.0, 2.0, 3.0] } => [1.0, 0.0, 1.0]),
        case!(NotEqual, "NotEqual(x, s)", { x: [2.0, 2.0, 3.0], s: [2.0] } => [0.0, 0.0, 1.0]),
        // ---------------------------------------------------------------- reductions inside formulas
        case!(Sum, "Sum(x)", { x: [1.0, 2.0, 3.5] } => [6.5]),
        case!(Sum, "Sum(x)", { x: [1.0, INF, -INF] } => [NAN]),
        case!(Sum, "Sum(s)", { s: [-4.0] } => [-4.0]),
        case!(Max, "Max(x)", { x: [1.0, 3.0, 3.0, 2.0] } => [3.0]),
        case!(Max, "Max(x)", { x: [-5.0, -INF, -1.0] } => [-1.0]),
        // NaN in first position stays, later NaNs never win
        case!(Max, "Max(x)", { x: [NAN, 1.0] } => [NAN]),
        case!(Max, "Max(x)", { x: [1.0, NAN, 2.0] } => [2.0]),
        case!(Min, "Min(x)", { x: [1.0, -3.0, -3.0, 2.0] } => [-3.0]),
        case!(Min, "Min(x)", { x: [1.0, NAN, 0.0] } => [0.0]),
        // ties go to the first index
        case!(ArgMax, "ArgMax(x)", { x: [1.0, 3.0, 3.0, 2.0] } => [1.0]),
        case!(ArgMax, "ArgMax(x)", { x: [1.0, NAN, 2.0] } => [2.0]),
        case!(ArgMax, "ArgMax(x)", { x: [-1.0, -2.0, -3.0] } => [0.0]),
        // One-hot of the first extreme coordinate (the gradient masks of Max and Min).
        case!(MaxMask, "MaxMask(x)", { x: [1.0, 3.0, 3.0, 2.0] } => [0.0, 1.0, 0.0, 0.0]),
        case!(MaxMask, "MaxMask(x)", { x: [1.0, NAN, 2.0] } => [0.0, 0.0, 1.0]),
        case!(MaxMask, "MaxMask(s)", { s: [-7.0] } => [1.0]),
        case!(MinMask, "MinMask(x)", { x: [2.0, -1.0, 5.0, -1.0] } => [0.0, 1.0, 0.0, 0.0]),
        case!(MinMask, "MinMask(x)", { x: [0.0, 0.0] } => [1.0, 0.0]),
        case!(ArgMin, "ArgMin(x)", { x: [1.0, -3.0, -3.0, 2.0] } => [1.0]),
        case!(ArgMin, "ArgMin(x)", { x: [4.0, 3.0, 2.0, 1.0] } => [3.0]),
        case!(ArgMin, "ArgMin(s)", { s: [5.0] } => [0.0]),
        // ---------------------------------------------------------------- norms and distances
        case!(SqNorm2, "SqNorm2(x)", { x: [1.0, 2.0, -2.0] } => [9.0]),
        case!(SqNorm2, "SqNorm2(s)", { s: [-3.0] } => [9.0]),
        case!(Norm2, "Norm2(x)", { x: [1.0, 2.0, -2.0] } => [3.0]),
        case!(Norm2, "Norm2(x)", { x: [0.0, 0.0] } => [0.0]),
        case!(Normalize, "Normalize(x)", { x: [3.0, -4.0] } => [0.6, -0.8]),
        // Normalize(0) = 0
        case!(Normalize, "Normalize(x)", { x: [0.0, 0.0, 0.0] } => [0.0, 0.0, 0.0]),
        case!(Normalize, "Normalize(x)", { x: [0.0, -2.0, 0.0] } => [0.0, -1.0, 0.0]),
        case!(SqDist, "SqDist(x, y)", { x: [1.0, 2.0], y: [4.0, 6.0] } => [25.0]),
        case!(Scalprod, "Scalprod(x, y)", { x: [1.0, 2.0, 3.0], y: [4.0, 5.0, -6.0] } => [-4.0]),
        case!(Scalprod, "x | y", { x: [1.0, 2.0, 3.0], y: [4.0, 5.0, 6.0] } => [32.0]),
        // ---------------------------------------------------------------- weighted norms
        // isotropic: 2 * (1 + 4); diagonal: 1*9 + 2*16; full (row-major, asymmetric): 1*1*1 + 2*1*2 + 0*2*1 + 3*2*2
        case!(WeightedSqNorm, "WeightedSqNorm(s, x)", { s: [2.0], x: [1.0, 2.0] } => [10.0]),
        case!(WeightedSqNorm, "WeightedSqNorm(s, x)", { s: [1.0, 2.0], x: [3.0, 4.0] } => [41.0]),
        case!(WeightedSqNorm, "WeightedSqNorm(s, x)", { s: [1.0, 2.0, 0.0, 3.0], x: [1.0, 2.0] } => [17.0]),
        case!(WeightedSqDist, "WeightedSqDist(s, x, y)", { s: [2.0], x: [1.0, 2.0], y: [0.0, 0.0] } => [10.0]),
        case!(WeightedSqDist, "WeightedSqDist(s, x, y)", { s: [1.0, 2.0], x: [4.0, 6.0], y: [1.0, 2.0] } => [41.0]),
        case!(WeightedSqDist, "WeightedSqDist(s, x, y)", { s: [1.0, 2.0, 0.0, 3.0], x: [2.0, 3.0], y: [1.0, 1.0] } => [17.0]),
        case!(SqNormIso, "SqNormIso(s, x)", { s: [0.5], x: [1.0, 2.0, 2.0] } => [4.5]),
        case!(SqNormDiag, "SqNormDiag(s, x)", { s: [1.0, 2.0, 3.0], x: [1.0, 1.0, 2.0] } => [15.0]),
        case!(SymSqNorm, "SymSqNorm(s, x)", { s: [1.0, 2.0, 0.0, 3.0], x: [1.0, 2.0] } => [17.0]),
        case!(SymSqNorm, "SymSqNorm(s, x)", { s: [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0], x: [1.0, 1.0, 1.0] } => [6.0]),
        // ---------------------------------------------------------------- indexing
        case!(Elem, "Elem(x, 2)", { x: [5.0, 6.0, 7.0] } => [7.0]),
        case!(Elem, "Elem(x, 0)", { x: [5.0, 6.0, 7.0] } => [5.0]),
        case!(ElemT, "ElemT(s, 4, 1)", { s: [3.0] } => [0.0, 3.0, 0.0, 0.0]),
        case!(ElemT, "ElemT(s, 2, 1)", { s: [NAN] } => [0.0, NAN]),
        // ElemT(s, 1, 0) is the scalar s: broadcast against a vector (simplifier rule mult-elemt)
        case!(ElemT, "x * ElemT(s, 1, 0)", { x: [1.0, 2.0, 3.0], s: [2.0] } => [2.0, 4.0, 6.0]),
        case!(ElemT, "ElemT(s, 1, 0) * x", { x: [1.0, 2.0, 3.0], s: [2.0] } => [2.0, 4.0, 6.0]),
        case!(ElemT, "x * ElemT(s, 3, 2)", { x: [1.0, 2.0, 3.0], s: [2.0] } => [0.0, 0.0, 6.0]),
        case!(Extract, "Extract(x, 1, 3)", { x: [1.0, 2.0, 3.0, 4.0, 5.0] } => [2.0, 3.0, 4.0]),
        case!(ExtractT, "ExtractT(x, 1, 4)", { x: [7.0, 8.0] } => [0.0, 7.0, 8.0, 0.0]),
        case!(Concat, "Concat(x, y)", { x: [1.0, 2.0], y: [3.0] } => [1.0, 2.0, 3.0]),
        case!(Concat, "Concat(s, x)", { s: [0.5], x: [1.0, 2.0] } => [0.5, 1.0, 2.0]),
        // one-hot at floor(f + 0.5); out of range: all zeros
        case!(OneHot, "OneHot(s, 4)", { s: [1.4] } => [0.0, 1.0, 0.0, 0.0]),
        case!(OneHot, "OneHot(s, 4)", { s: [1.5] } => [0.0, 0.0, 1.0, 0.0]),
        case!(OneHot, "OneHot(s, 4)", { s: [-0.4] } => [1.0, 0.0, 0.0, 0.0]),
        case!(OneHot, "OneHot(s, 4)", { s: [-0.6] } => [0.0, 0.0, 0.0, 0.0]),
        case!(OneHot, "OneHot(s, 4)", { s: [3.49] } => [0.0, 0.0, 0.0, 1.0]),
        case!(OneHot, "OneHot(s, 4)", { s: [4.0] } => [0.0, 0.0, 0.0, 0.0]),
        case!(SumT, "SumT(s, 3)", { s: [2.5] } => [2.5, 2.5, 2.5]),
        // ---------------------------------------------------------------- linear algebra (row-major)
        // [[1,2,3],[4,5,6]] @ [1,2,3]
        case!(MatVecMult, "MatVecMult(a, v)", { a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], v: [1.0, 2.0, 3.0] } => [14.0, 32.0]),
        // [[1,2],[3,4],[5,6]] @ [1,-1]
        case!(MatVecMult, "MatVecMult(a, v)", { a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], v: [1.0, -1.0] } => [-1.0, -1.0, -1.0]),
        // [1,2] @ [[1,2,3],[4,5,6]]
        case!(VecMatMult, "VecMatMult(v, a)", { v: [1.0, 2.0], a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] } => [9.0, 12.0, 15.0]),
        // [1,0,-1] @ [[1,2],[3,4],[5,6]]
        case!(VecMatMult, "VecMatMult(v, a)", { v: [1.0, 0.0, -1.0], a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] } => [-4.0, -4.0]),
        case!(TensorProd, "TensorProd(x, y)", { x: [1.0, 2.0], y: [3.0, 4.0, 5.0] } => [3.0, 4.0, 5.0, 6.0, 8.0, 10.0]),
        // [[1,2,3],[4,5,6]] @ [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]
        case!(TensorDot, "TensorDot(a, b, (2, 3), (3, 2), (1), (0))",
            { a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], b: [7.0, 8.0, 9.0, 10.0, 11.0, 12.0] } => [58.0, 64.0, 139.0, 154.0]),
        // the same product, axes of the result permuted: its transpose
        case!(TensorDot, "TensorDot(a, b, (2, 3), (3, 2), (1), (0), (1, 0))",
            { a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], b: [7.0, 8.0, 9.0, 10.0, 11.0, 12.0] } => [58.0, 139.0, 64.0, 154.0]),
        // full contraction: sum(a * b) = 7 + 16 + 27 + 40 + 55 + 72
        case!(TensorDot, "TensorDot(a, b, (2, 3), (2, 3), (0, 1), (0, 1))",
            { a: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], b: [7.0, 8.0, 9.0, 10.0, 11.0, 12.0] } => [217.0]),
        // no contraction: the outer product
        case!(TensorDot, "TensorDot(x, y, (2), (3), [], [])", { x: [1.0, 2.0], y: [3.0, 4.0, 5.0] } => [3.0, 4.0, 5.0, 6.0, 8.0, 10.0]),
        // numpy.kron([1, 2], [3, 4, 5])
        case!(Kron, "Kron(x, y, (2), (3))", { x: [1.0, 2.0], y: [3.0, 4.0, 5.0] } => [3.0, 4.0, 5.0, 6.0, 8.0, 10.0]),
        // numpy.kron([[1,2],[3,4]], [[0,5],[6,7]]), row-major
        case!(Kron, "Kron(a, b, (2, 2), (2, 2))", { a: [1.0, 2.0, 3.0, 4.0], b: [0.0, 5.0, 6.0, 7.0] }
            => [0.0, 5.0, 0.0, 10.0, 6.0, 7.0, 12.0, 14.0, 0.0, 15.0, 0.0, 20.0, 18.0, 21.0, 24.0, 28.0]),
        // ---------------------------------------------------------------- complex (interleaved re, im)
        case!(ComplexReal, "ComplexReal(z)", { z: [1.0, 2.0, 3.0, 4.0] } => [1.0, 3.0]),
        case!(ComplexImag, "ComplexImag(z)", { z: [1.0, 2.0, 3.0, 4.0] } => [2.0, 4.0]),
        case!(Real2Complex, "Real2Complex(x)", { x: [1.0, 2.0] } => [1.0, 0.0, 2.0, 0.0]),
        case!(Imag2Complex, "Imag2Complex(x)", { x: [1.0, 2.0] } => [0.0, 1.0, 0.0, 2.0]),
        case!(Conj, "Conj(z)", { z: [1.0, 2.0, 3.0, -4.0] } => [1.0, -2.0, 3.0, 4.0]),
        case!(ComplexAdd, "ComplexAdd(z, w)", { z: [1.0, 2.0, 3.0, 4.0], w: [5.0, 6.0, 7.0, 8.0] } => [6.0, 8.0, 10.0, 12.0]),
        case!(ComplexAdd, "ComplexAdd(z, w)", { z: [1.0, 2.0], w: [3.0, 4.0, 5.0, 6.0] } => [4.0, 6.0, 6.0, 8.0]),
        case!(ComplexAdd, "ComplexAdd(w, z)", { w: [3.0, 4.0, 5.0, 6.0], z: [1.0, 2.0] } => [4.0, 6.0, 6.0, 8.0]),
        case!(ComplexSubtract, "ComplexSubtract(z, w)", { z: [1.0, 2.0, 3.0, 4.0], w: [5.0, 6.0, 7.0, 9.0] } => [-4.0, -4.0, -4.0, -5.0]),
        case!(ComplexSubtract, "ComplexSubtract(z, w)", { z: [1.0, 2.0], w: [3.0, 4.0, 5.0, 6.0] } => [-2.0, -2.0, -4.0, -4.0]),
        case!(ComplexSubtract, "ComplexSubtract(w, z)", { w: [3.0, 4.0, 5.0, 6.0], z: [1.0, 2.0] } => [2.0, 2.0, 4.0, 4.0]),
        // (1+2i)(3+4i) = -5+10i, (0+1i)(2-1i) = 1+2i
        case!(ComplexMult, "ComplexMult(z, w)", { z: [1.0, 2.0, 0.0, 1.0], w: [3.0, 4.0, 2.0, -1.0] } => [-5.0, 10.0, 1.0, 2.0]),
        // i(1+2i) = -2+i, i(3+4i) = -4+3i
        case!(ComplexMult, "ComplexMult(z, w)", { z: [0.0, 1.0], w: [1.0, 2.0, 3.0, 4.0] } => [-2.0, 1.0, -4.0, 3.0]),
        case!(ComplexMult, "ComplexMult(w, z)", { w: [1.0, 2.0, 3.0, 4.0], z: [0.0, 1.0] } => [-2.0, 1.0, -4.0, 3.0]),
        // (1+2i)/(3+4i) = (11+2i)/25
        case!(ComplexDivide, "ComplexDivide(z, w)", { z: [1.0, 2.0], w: [3.0, 4.0] } => [0.44, 0.08]),
        // (1+2i)/i = 2-i, (3+4i)/i = 4-3i
        case!(ComplexDivide, "ComplexDivide(z, w)", { z: [1.0, 2.0, 3.0, 4.0], w: [0.0, 1.0] } => [2.0, -1.0, 4.0, -3.0]),
        // 2/(1+i) = 1-i, 2/(2i) = -i
        case!(ComplexDivide, "ComplexDivide(w, z)", { w: [2.0, 0.0], z: [1.0, 1.0, 0.0, 2.0] } => [1.0, -1.0, 0.0, -1.0]),
        // exp(i pi) = (math.cos(math.pi), math.sin(math.pi)), exp(1) = (math.e, 0)
        case!(ComplexExp, "ComplexExp(z)", { z: [0.0, PI, 1.0, 0.0] } => [-1.0, 1.2246467991473532e-16, 2.718281828459045, 0.0]),
        // exp(i 0), exp(i pi/2) = (math.cos(math.pi/2), 1)
        case!(ComplexExp1j, "ComplexExp1j(x)", { x: [0.0, PI_2] } => [1.0, 0.0, 6.123233995736766e-17, 1.0]),
        case!(ComplexAbs, "ComplexAbs(z)", { z: [3.0, 4.0, 0.0, -2.0] } => [5.0, 2.0]),
        case!(ComplexSquareAbs, "ComplexSquareAbs(z)", { z: [3.0, 4.0, 0.0, -2.0] } => [25.0, 4.0]),
        // atan2(1, 1), atan2(0, -1), atan2(-2, 0)
        case!(ComplexAngle, "ComplexAngle(z)", { z: [1.0, 1.0, -1.0, 0.0, 0.0, -2.0] } => [PI_4, PI, -PI_2]),
        case!(ComplexSum, "ComplexSum(z)", { z: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] } => [9.0, 12.0]),
        // the dimension parameter counts reals (KeOps)
        case!(ComplexSumT, "ComplexSumT(z, 6)", { z: [1.0, 2.0] } => [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]),
        case!(ComplexRealScal, "ComplexRealScal(s, z)", { s: [2.0], z: [1.0, 2.0, 3.0, -4.0] } => [2.0, 4.0, 6.0, -8.0]),
        // KeOps accepts the real scalar second too
        case!(ComplexRealScal, "ComplexRealScal(z, s)", { z: [1.0, 2.0, 3.0, -4.0], s: [-1.0] } => [-1.0, -2.0, -3.0, 4.0]),
        // ---------------------------------------------------------------- calculus
        // 2 x e
        case!(Grad, "Grad(SqNorm2(x), x, e)", { x: [1.0, 2.0], e: [3.0] } => [6.0, 12.0]),
        // y * e
        case!(Grad, "Grad(x * y, x, e)", { x: [1.0, 2.0], y: [3.0, 4.0], e: [5.0, 6.0] } => [15.0, 24.0]),
        // through broadcasting: d/ds <s x, e> = <x, e>
        case!(Grad, "Grad(s * x, s, e)", { s: [2.0], x: [1.0, 2.0, 3.0], e: [1.0, -1.0, 2.0] } => [5.0]),
        // 2 <x, u>
        case!(Diff, "Diff(SqNorm2(x), x, u)", { x: [1.0, 2.0], u: [3.0, 4.0] } => [22.0]),
        case!(Diff, "Diff(x * x, x, u)", { x: [1.0, 2.0], u: [3.0, 4.0] } => [6.0, 16.0]),
        // 2 d
        case!(Laplacian, "Laplacian(SqNorm2(x), x)", { x: [1.0, 2.0, 3.0] } => [6.0]),
        // (4 |x|^2 - 2 d) exp(-|x|^2) = -5 * math.exp(-0.25)
        case!(Laplacian, "Laplacian(Exp(-SqNorm2(x)), x)", { x: [0.5, 0.0, 0.0] } => [-3.8940039153570245]),
        // 2 sum(x)
        case!(Divergence, "Divergence(x * x, x)", { x: [1.0, 2.0, 3.0] } => [12.0]),
        case!(Divergence, "Divergence(y * x, x)", { x: [1.0, 2.0, 3.0], y: [4.0, 5.0, 6.0] } => [15.0]),
        // f = (x0 x1, x0^2, x1^2) at (2, 3): rows (x1, x0), (2 x0, 0), (0, 2 x1)
        case!(GradMatrix, "GradMatrix(Concat(Elem(x, 0) * Elem(x, 1), Square(x)), x)", { x: [2.0, 3.0] } => [3.0, 2.0, 4.0, 0.0, 0.0, 6.0]),
        // y 1^T: trace sum(y)
        case!(TraceOperator, "TraceOperator(y * Sum(x), x)", { x: [7.0, 8.0, 9.0], y: [1.0, 2.0, 3.0] } => [6.0]),
        // a row y^T: sum of its entries
        case!(TraceOperator, "TraceOperator(Scalprod(y, x), x)", { x: [7.0, 8.0, 9.0], y: [1.0, 2.0, 3.0] } => [6.0]),
        case!(TraceOperator, "TraceOperator(3 * x, x)", { x: [1.0, 2.0, 3.0, 4.0] } => [12.0]),
        // ---------------------------------------------------------------- splines and sequences
        // order 0: indicator of [t_j, t_j+1); output dimension dim(knots) - order - 1
        case!(BSpline, "BSpline(k, t, 0)", { k: [0.0, 1.0, 2.0, 3.0, 4.0], t: [1.5] } => [0.0, 1.0, 0.0, 0.0]),
        // order 1: hat functions
        case!(BSpline, "BSpline(k, t, 1)", { k: [0.0, 1.0, 2.0, 3.0, 4.0], t: [1.5] } => [0.5, 0.5, 0.0]),
        // order 2, uniform knots: 3/4 at the middle of B_0's support, (1/2)(1/2)^2 for B_1
        case!(BSpline, "BSpline(k, t, 2)", { k: [0.0, 1.0, 2.0, 3.0, 4.0], t: [1.5] } => [0.75, 0.125]),
        // order 2, non-uniform knots (De Boor, as KeOps' BSpline_Impl, in Python)
        case!(BSpline, "BSpline(k, t, 2)", { k: [0.0, 0.5, 2.0, 3.0, 5.0, 6.0], t: [2.5] } => [0.09999999999999998, 0.8166666666666667, 0.08333333333333333]),
        // the recursion of KeOps' SoftDTW_SqDist, in Python
        case!(SoftDTW_SqDist, "SoftDTW_SqDist(x, y, g)", { x: [0.0, 1.0], y: [0.0, 2.0], g: [1.0] } => [0.6734373587325295]),
        case!(SoftDTW_SqDist, "SoftDTW_SqDist(x, y, g)", { x: [0.0, 1.0, 2.0], y: [1.0, 3.0], g: [0.5] } => [1.9362406072446392]),
        // KeOps' backward recursion, in Python (matches central differences to 1e-10)
        case!(GradSoftDTW_SqDist, "GradSoftDTW_SqDist(x, y, g)", { x: [0.0, 1.0], y: [0.0, 2.0], g: [1.0] }
            => [-0.05285154781515767, -1.4692241424555161, -0.5307758575444839, 2.0528515478151577]),
        case!(GradSoftDTW_SqDist, "GradSoftDTW_SqDist(x, y, g)", { x: [0.0, 1.0, 2.0], y: [1.0, 3.0], g: [0.5] }
            => [-2.000000000026984, -0.0023623999794912145, -1.7617349584460351, 1.761734958446035, 2.0023624000064757]),
    ]
}

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

// =====================================================================================
// Gradient table
// =====================================================================================

/// What a gradient case checks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum GradKind {
    /// Symbolic gradient = central finite differences, w.r.t. every variable.
    Fd,
    /// The gradient is exactly zero, w.r.t. every variable.
    Zero,
    /// Differentiating w.r.t. any variable is a `Differentiation` error.
    Undefined,
}

/// A formula with random inputs: each variable a `Vi` of the given dimension, drawn from
/// its domain until `valid` accepts the point (to stay away from kinks).
struct GradCase {
    op: Op,
    kind: GradKind,
    formula: &'static str,
    vars: Vec<(&'static str, usize, Dom)>,
    valid: fn(&[Vec<f64>]) -> bool,
}

impl GradCase {
    fn dims(&self) -> Vec<(&'static str, usize)> {
        self.vars.iter().map(|(n, d, _)| (*n, *d)).collect()
    }
    fn doms(&self) -> Vec<(usize, Dom)> {
        self.vars.iter().map(|(_, d, dom)| (*d, *dom)).collect()
    }
    fn broadcasts(&self, unit: usize) -> bool {
        self.vars.iter().any(|(_, d, _)| *d == unit) && self.vars.iter().any(|(_, d, _)| *d > unit)
    }
}

/// `grad!(Fd, Op, "formula", [x: 3 in U(-1.0, 1.0), ...] $(, valid)?)`
macro_rules! grad {
    ($kind:ident, $op:ident, $f:expr, [$($v:ident : $d:literal in $dom:expr),* $(,)?]) => {
        grad!($kind, $op, $f, [$($v : $d in $dom),*], always)
    };
    ($kind:ident, $op:ident, $f:expr, [$($v:ident : $d:literal in $dom:expr),* $(,)?], $valid:expr) => {
        GradCase { op: Op::$op, kind: GradKind::$kind, formula: $f, vars: vec![$((stringify!($v), $d, $dom)),*], valid: $valid }
    };
}

use common::Dom::{Away, U};

/// Every coordinate pair of `v` at least 0.01 apart (Max, Min, ArgMax, ArgMin are smooth there).
fn distinct(v: &[f64]) -> bool {
    v.iter()
        .enumerate()
        .all(|(i, a)| v[i + 1..].iter().all(|b| (a - b).abs() > 0.01))
}

/// Mod(x, n, d): (x - d) / n away from the integers.
fn mod_valid(v: &[Vec<f64>]) -> bool {
    let dim = v.iter().map(Vec::len).max().unwrap_or(1);
    (0..dim).all(|k| frac_away((at(&v[0], k) - at(&v[2], k)) / at(&v[1], k), 0.0, 0.01))
}

/// Clamp(x, a, b): x away from both bounds.
fn clamp_valid(v: &[Vec<f64>]) -> bool {
    let dim = v.iter().map(Vec::len).max().unwrap_or(1);
    (0..dim).all(|k| {
        (at(&v[0], k) - at(&v[1], k)).abs() > 0.01 && (at(&v[0], k) - at(&v[2], k)).abs() > 0.01
    })
}

/// Two arguments at least 0.01 apart (comparisons).
fn apart(v: &[Vec<f64>]) -> bool {
    let dim = v.iter().map(Vec::len).max().unwrap_or(1);
    (0..dim).all(|k| (at(&v[0], k) - at(&v[1], k)).abs() > 0.01)
}

#[rustfmt::skip]
fn grad_cases() -> Vec<GradCase> {
    let r = U(-2.0, 2.0);
    vec![
        // ---------------------------------------------------------------- arithmetic
        grad!(Fd, Add, "x + y", [x: 3 in r, y: 3 in r]),
        grad!(Fd, Add, "s + x", [s: 1 in r, x: 3 in r]),
        grad!(Fd, Add, "x + s", [x: 3 in r, s: 1 in r]),
        grad!(Fd, Subtract, "x - y", [x: 3 in r, y: 3 in r]),
        grad!(Fd, Subtract, "s - x", [s: 1 in r, x: 3 in r]),
        grad!(Fd, Subtract, "x - s", [x: 3 in r, s: 1 in r]),
        grad!(Fd, Mult, "x * y", [x: 3 in r, y: 3 in r]),
        grad!(Fd, Mult, "s * x", [s: 1 in r, x: 3 in r]),
        grad!(Fd, Mult, "x * s", [x: 3 in r, s: 1 in r]),
        grad!(Fd, Mult, "x * x", [x: 3 in r]),
        grad!(Fd, Divide, "x / y", [x: 3 in r, y: 3 in Away(0.5, 2.0)]),
        grad!(Fd, Divide, "s / y", [s: 1 in r, y: 3 in Away(0.5, 2.0)]),
        grad!(Fd, Divide, "x / s", [x: 3 in r, s: 1 in Away(0.5, 2.0)]),
        grad!(Fd, Minus, "-x", [x: 3 in r]),
        grad!(Fd, Inv, "Inv(x)", [x: 3 in Away(0.5, 2.0)]),
        // ---------------------------------------------------------------- powers
        grad!(Fd, Square, "Square(x)", [x: 3 in r]),
        grad!(Fd, Sqrt, "Sqrt(x)", [x: 3 in U(0.1, 3.0)]),
        grad!(Fd, Rsqrt, "Rsqrt(x)", [x: 3 in U(0.1, 3.0)]),
        grad!(Fd, Pow, "Pow(x, 3)", [x: 3 in r]),
        grad!(Fd, Pow, "Pow(x, -2)", [x: 3 in Away(0.5, 2.0)]),
        grad!(Fd, Pow, "Pow(x, 1)", [x: 3 in r]),
        grad!(Fd, Pow, "Pow(x, 0)", [x: 3 in r]),
        grad!(Fd, Powf, "Powf(x, y)", [x: 3 in U(0.2, 3.0), y: 3 in r]),
        grad!(Fd, Powf, "Powf(s, y)", [s: 1 in U(0.2, 3.0), y: 3 in r]),
        grad!(Fd, Powf, "Powf(x, s)", [x: 3 in U(0.2, 3.0), s: 1 in r]),
        // ---------------------------------------------------------------- exp / log
        grad!(Fd, Exp, "Exp(x)", [x: 3 in r]),
        grad!(Fd, Log, "Log(x)", [x: 3 in U(0.1, 3.0)]),
        grad!(Fd, XLogX, "XLogX(x)", [x: 3 in U(0.1, 3.0)]),
        // ---------------------------------------------------------------- trigonometry
        grad!(Fd, Sin, "Sin(x)", [x: 3 in U(-4.0, 4.0)]),
        grad!(Fd, Cos, "Cos(x)", [x: 3 in U(-4.0, 4.0)]),
        grad!(Fd, SinXDivX, "SinXDivX(x)", [x: 3 in Away(0.1, 4.0)]),
        grad!(Fd, Asin, "Asin(x)", [x: 3 in U(-0.9, 0.9)]),
        grad!(Fd, Acos, "Acos(x)", [x: 3 in U(-0.9, 0.9)]),
        grad!(Fd, Atan, "Atan(x)", [x: 3 in U(-3.0, 3.0)]),
        // away from the branch cut (second argument < 0, first = 0)
        grad!(Fd, Atan2, "Atan2(y, x)", [y: 3 in Away(0.2, 2.0), x: 3 in r]),
        grad!(Fd, Atan2, "Atan2(s, x)", [s: 1 in Away(0.2, 2.0), x: 3 in r]),
        grad!(Fd, Atan2, "Atan2(y, s)", [y: 3 in Away(0.2, 2.0), s: 1 in r]),
        // ---------------------------------------------------------------- piecewise
        grad!(Fd, Abs, "Abs(x)", [x: 3 in Away(0.05, 2.0)]),
        grad!(Fd, ReLU, "ReLU(x)", [x: 3 in Away(0.05, 2.0)]),
        grad!(Fd, Clamp, "Clamp(x, a, b)", [x: 3 in U(-3.0, 3.0), a: 3 in U(-1.5, -0.5), b: 3 in U(0.5, 1.5)], clamp_valid),
        grad!(Fd, Clamp, "Clamp(x, a, b)", [x: 3 in U(-3.0, 3.0), a: 1 in U(-1.5, -0.5), b: 1 in U(0.5, 1.5)], clamp_valid),
        grad!(Fd, Clamp, "Clamp(s, a, b)", [s: 1 in U(-3.0, 3.0), a: 3 in U(-1.5, -0.5), b: 3 in U(0.5, 1.5)], clamp_valid),
        grad!(Fd, Clamp, "Clamp(x, a, b)", [x: 3 in U(-3.0, 3.0), a: 1 in U(-1.5, -0.5), b: 3 in U(0.5, 1.5)], clamp_valid),
        grad!(Fd, ClampInt, "ClampInt(x, -1, 2)", [x: 3 in U(-3.0, 4.0)],
            |v: &[Vec<f64>]| v[0].iter().all(|x| (x + 1.0).abs() > 0.01 && (x - 2.0).abs() > 0.01)),
        grad!(Fd, Mod, "Mod(x, n, d)", [x: 3 in U(-5.0, 5.0), n: 3 in U(1.0, 3.0), d: 3 in U(-1.0, 1.0)], mod_valid),
        grad!(Fd, Mod, "Mod(x, n, d)", [x: 3 in U(-5.0, 5.0), n: 1 in U(1.0, 3.0), d: 1 in U(-1.0, 1.0)], mod_valid),
        grad!(Fd, Mod, "Mod(s, n, d)", [s: 1 in U(-5.0, 5.0), n: 3 in U(1.0, 3.0), d: 3 in U(-1.0, 1.0)], mod_valid),
        // ---------------------------------------------------------------- piecewise constant
        grad!(Zero, Sign, "Sign(x)", [x: 3 in r]),
        grad!(Fd, Sign, "x * Sign(x)", [x: 3 in Away(0.05, 2.0)]),
        grad!(Zero, Step, "Step(x)", [x: 3 in r]),
        grad!(Fd, Step, "x * Step(x)", [x: 3 in Away(0.05, 2.0)]),
        grad!(Zero, Floor, "Floor(x)", [x: 3 in r]),
        grad!(Fd, Floor, "x * Floor(x)", [x: 3 in r], |v: &[Vec<f64>]| v[0].iter().all(|x| frac_away(*x, 0.0, 0.01))),
        grad!(Zero, Round, "Round(x, 1)", [x: 3 in r]),
        grad!(Fd, Round, "x * Round(x, 0)", [x: 3 in r], |v: &[Vec<f64>]| v[0].iter().all(|x| frac_away(*x, 0.5, 0.01))),
        grad!(Zero, DiffClampInt, "DiffClampInt(x, -1, 2)", [x: 3 in U(-3.0, 4.0)]),
        grad!(Fd, DiffClampInt, "x * DiffClampInt(x, -1, 2)", [x: 3 in U(-3.0, 4.0)],
            |v: &[Vec<f64>]| v[0].iter().all(|x| (x + 1.0).abs() > 0.01 && (x - 2.0).abs() > 0.01)),
        // ---------------------------------------------------------------- conditional, comparisons
        grad!(Fd, IfElse, "IfElse(c, a, b)", [c: 3 in Away(0.05, 2.0), a: 3 in r, b: 3 in r]),
        grad!(Fd, IfElse, "IfElse(c, a, b)", [c: 3 in Away(0.05, 2.0), a: 1 in r, b: 3 in r]),
        grad!(Fd, IfElse, "IfElse(s, a, b)", [s: 1 in Away(0.05, 2.0), a: 3 in r, b: 3 in r]),
        grad!(Fd, IfElse, "IfElse(c, a, b)", [c: 3 in Away(0.05, 2.0), a: 3 in r, b: 1 in r]),
        grad!(Zero, LessThan, "LessThan(x, y)", [x: 3 in r, y: 3 in r]),
        grad!(Zero, LessThan, "LessThan(s, y)", [s: 1 in r, y: 3 in r]),
        grad!(Fd, LessThan, "x * LessThan(x, y)", [x: 3 in r, y: 3 in r], apart),
        grad!(Zero, LessOrEqual, "LessOrEqual(x, y)", [x: 3 in r, y: 3 in r]),
        grad!(Zero, LessOrEqual, "LessOrEqual(x, s)", [x: 3 in r, s: 1 in r]),
        grad!(Fd, LessOrEqual, "x * LessOrEqual(x, y)", [x: 3 in r, y: 3 in r], apart),
        grad!(Zero, Equal, "Equal(x, y)", [x: 3 in r, y: 3 in r]),
        grad!(Zero, Equal, "Equal(s, y)", [s: 1 in r, y: 3 in r]),
        grad!(Fd, Equal, "Exp(x) * Equal(x, y)", [x: 3 in r, y: 3 in r], apart),
        grad!(Zero, NotEqual, "NotEqual(x, y)", [x: 3 in r, y: 3 in r]),
        grad!(Zero, NotEqual, "NotEqual(x, s)", [x: 3 in r, s: 1 in r]),
        grad!(Fd, NotEqual, "Exp(x) * NotEqual(x, y)", [x: 3 in r, y: 3 in r], apart),
        // ---------------------------------------------------------------- reductions inside formulas
        grad!(Fd, Sum, "Sum(x)", [x: 3 in r]),
        grad!(Fd, Sum, "Sum(x * y)", [x: 3 in r, y: 3 in r]),
        grad!(Fd, Max, "Max(x)", [x: 4 in r], |v: &[Vec<f64>]| distinct(&v[0])),
        grad!(Fd, Max, "Max(x * y)", [x: 3 in r, y: 3 in r], |v: &[Vec<f64>]| distinct(&[v[0][0] * v[1][0], v[0][1] * v[1][1], v[0][2] * v[1][2]])),
        grad!(Fd, Min, "Min(x)", [x: 4 in r], |v: &[Vec<f64>]| distinct(&v[0])),
        grad!(Zero, ArgMax, "ArgMax(x)", [x: 4 in r]),
        grad!(Fd, ArgMax, "Elem(x, 0) * ArgMax(x)", [x: 4 in r], |v: &[Vec<f64>]| distinct(&v[0])),
        grad!(Zero, ArgMin, "ArgMin(x)", [x: 4 in r]),
        grad!(Zero, MaxMask, "MaxMask(x)", [x: 4 in r]),
        grad!(Zero, MinMask, "MinMask(x)", [x: 4 in r]),
        grad!(Fd, ArgMin, "Elem(x, 0) * ArgMin(x)", [x: 4 in r], |v: &[Vec<f64>]| distinct(&v[0])),
        // ---------------------------------------------------------------- norms and distances
        grad!(Fd, SqNorm2, "SqNorm2(x)", [x: 3 in r]),
        grad!(Fd, Norm2, "Norm2(x)", [x: 3 in r], |v: &[Vec<f64>]| v[0].iter().map(|x| x * x).sum::<f64>() > 0.01),
        grad!(Fd, Normalize, "Normalize(x)", [x: 3 in r], |v: &[Vec<f64>]| v[0].iter().map(|x| x * x).sum::<f64>() > 0.01),
        grad!(Fd, SqDist, "SqDist(x, y)", [x: 3 in r, y: 3 in r]),
        grad!(Fd, Scalprod, "Scalprod(x, y)", [x: 3 in r, y: 3 in r]),
        grad!(Fd, Scalprod, "x | x", [x: 3 in r]),
        // ---------------------------------------------------------------- weighted norms
        grad!(Fd, WeightedSqNorm, "WeightedSqNorm(s, x)", [s: 1 in r, x: 3 in r]),
        grad!(Fd, WeightedSqNorm, "WeightedSqNorm(s, x)", [s: 3 in r, x: 3 in r]),
        grad!(Fd, WeightedSqNorm, "WeightedSqNorm(s, x)", [s: 9 in r, x: 3 in r]),
        grad!(Fd, WeightedSqDist, "WeightedSqDist(s, x, y)", [s: 1 in r, x: 3 in r, y: 3 in r]),
        grad!(Fd, WeightedSqDist, "WeightedSqDist(s, x, y)", [s: 3 in r, x: 3 in r, y: 3 in r]),
        grad!(Fd, WeightedSqDist, "WeightedSqDist(s, x, y)", [s: 9 in r, x: 3 in r, y: 3 in r]),
        grad!(Fd, SqNormIso, "SqNormIso(s, x)", [s: 1 in r, x: 3 in r]),
        grad!(Fd, SqNormDiag, "SqNormDiag(s, x)", [s: 3 in r, x: 3 in r]),
        grad!(Fd, SymSqNorm, "SymSqNorm(s, x)", [s: 4 in r, x: 2 in r]),
        // ---------------------------------------------------------------- indexing
        grad!(Fd, Elem, "Elem(x, 1)", [x: 3 in r]),
        grad!(Fd, ElemT, "ElemT(s, 3, 1)", [s: 1 in r]),
        grad!(Fd, Extract, "Extract(x, 1, 2)", [x: 4 in r]),
        grad!(Fd, ExtractT, "ExtractT(x, 1, 4)", [x: 2 in r]),
        grad!(Fd, Concat, "Concat(x, y)", [x: 2 in r, y: 3 in r]),
        grad!(Fd, Concat, "Concat(x, x)", [x: 2 in r]),
        grad!(Zero, OneHot, "OneHot(s, 4)", [s: 1 in U(0.0, 3.0)]),
        grad!(Fd, OneHot, "s * OneHot(s, 4)", [s: 1 in U(0.0, 3.0)], |v: &[Vec<f64>]| frac_away(v[0][0], 0.5, 0.01)),
        grad!(Fd, SumT, "SumT(s, 3)", [s: 1 in r]),
        // ---------------------------------------------------------------- linear algebra
        grad!(Fd, MatVecMult, "MatVecMult(a, v)", [a: 6 in r, v: 3 in r]),
        grad!(Fd, VecMatMult, "VecMatMult(v, a)", [v: 2 in r, a: 6 in r]),
        grad!(Fd, TensorProd, "TensorProd(x, y)", [x: 2 in r, y: 3 in r]),
        grad!(Fd, TensorDot, "TensorDot(a, b, (2, 3), (3, 2), (1), (0))", [a: 6 in r, b: 6 in r]),
        grad!(Fd, TensorDot, "TensorDot(a, b, (2, 3), (3, 2), (1), (0), (1, 0))", [a: 6 in r, b: 6 in r]),
        grad!(Fd, Kron, "Kron(a, b, (2, 2), (2, 3))", [a: 4 in r, b: 6 in r]),
        // ---------------------------------------------------------------- complex (real gradients)
        grad!(Fd, ComplexReal, "ComplexReal(z)", [z: 4 in r]),
        grad!(Fd, ComplexImag, "ComplexImag(z)", [z: 4 in r]),
        grad!(Fd, Real2Complex, "Real2Complex(x)", [x: 2 in r]),
        grad!(Fd, Imag2Complex, "Imag2Complex(x)", [x: 2 in r]),
        grad!(Fd, Conj, "Conj(z)", [z: 4 in r]),
        grad!(Fd, ComplexAdd, "ComplexAdd(z, w)", [z: 4 in r, w: 4 in r]),
        grad!(Fd, ComplexAdd, "ComplexAdd(z, w)", [z: 2 in r, w: 4 in r]),
        grad!(Fd, ComplexAdd, "ComplexAdd(w, z)", [w: 4 in r, z: 2 in r]),
        grad!(Fd, ComplexSubtract, "ComplexSubtract(z, w)", [z: 4 in r, w: 4 in r]),
        grad!(Fd, ComplexSubtract, "ComplexSubtract(z, w)", [z: 2 in r, w: 4 in r]),
        grad!(Fd, ComplexSubtract, "ComplexSubtract(w, z)", [w: 4 in r, z: 2 in r]),
        grad!(Fd, ComplexMult, "ComplexMult(z, w)", [z: 4 in r, w: 4 in r]),
        grad!(Fd, ComplexMult, "ComplexMult(z, w)", [z: 2 in r, w: 4 in r]),
        grad!(Fd, ComplexMult, "ComplexMult(w, z)", [w: 4 in r, z: 2 in r]),
        grad!(Fd, ComplexDivide, "ComplexDivide(z, w)", [z: 4 in r, w: 4 in Away(0.5, 2.0)]),
        grad!(Fd, ComplexDivide, "ComplexDivide(z, w)", [z: 2 in r, w: 4 in Away(0.5, 2.0)]),
        grad!(Fd, ComplexDivide, "ComplexDivide(w, z)", [w: 4 in r, z: 2 in Away(0.5, 2.0)]),
        grad!(Fd, ComplexExp, "ComplexExp(z)", [z: 4 in U(-1.0, 1.0)]),
        grad!(Fd, ComplexExp1j, "ComplexExp1j(x)", [x: 2 in r]),
        grad!(Fd, ComplexAbs, "ComplexAbs(z)", [z: 4 in Away(0.3, 2.0)]),
        grad!(Fd, ComplexSquareAbs, "ComplexSquareAbs(z)", [z: 4 in r]),
        // imaginary parts away from 0: away from the branch cut of the angle
        grad!(Fd, ComplexAngle, "ComplexAngle(z)", [z: 4 in Away(0.3, 2.0)]),
        grad!(Fd, ComplexSum, "ComplexSum(z)", [z: 6 in r]),
        grad!(Fd, ComplexSumT, "ComplexSumT(z, 6)", [z: 2 in r]),
        grad!(Fd, ComplexRealScal, "ComplexRealScal(s, z)", [s: 1 in r, z: 4 in r]),
        // ---------------------------------------------------------------- calculus (second and third derivatives)
        grad!(Fd, Grad, "Grad(Exp(Scalprod(x, y)), x, w)", [x: 3 in U(-1.0, 1.0), y: 3 in U(-1.0, 1.0), w: 1 in r]),
        grad!(Fd, Grad, "Grad(Sin(x) * y, x, e)", [x: 3 in r, y: 3 in r, e: 3 in r]),
        grad!(Fd, Diff, "Diff(Exp(Scalprod(x, y)) * x, x, u)", [x: 3 in U(-1.0, 1.0), y: 3 in U(-1.0, 1.0), u: 3 in r]),
        grad!(Fd, Laplacian, "Laplacian(Exp(-SqNorm2(x)) * Sum(y * x), x)", [x: 3 in U(-1.0, 1.0), y: 3 in r]),
        grad!(Fd, Divergence, "Divergence(Sin(x) * Sum(x * y), x)", [x: 3 in r, y: 3 in r]),
        grad!(Fd, GradMatrix, "GradMatrix(Sin(x) * Elem(y, 0), x)", [x: 3 in r, y: 2 in r]),
        grad!(Fd, TraceOperator, "TraceOperator(Exp(y) * Scalprod(z, x), x)", [x: 3 in r, y: 3 in r, z: 3 in r]),
        // ---------------------------------------------------------------- splines and sequences
        grad!(Undefined, BSpline, "BSpline(k, t, 2)", [k: 5 in r, t: 1 in r]),
        grad!(Fd, SoftDTW_SqDist, "SoftDTW_SqDist(x, y, 0.5)", [x: 3 in U(-1.0, 1.0), y: 4 in U(-1.0, 1.0)]),
        grad!(Undefined, GradSoftDTW_SqDist, "GradSoftDTW_SqDist(x, y, 0.5)", [x: 3 in U(-1.0, 1.0), y: 4 in U(-1.0, 1.0)]),
    ]
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
