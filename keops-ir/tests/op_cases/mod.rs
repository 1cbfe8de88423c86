//! The table of per-operation test cases, shared by the compiler's tests (`ops.rs`) and
//! the GPU kernels' tests (`keops-gpu-kernels/tests/simt.rs`, which includes this file by
//! path): hand-checked values with special values, and random-point gradient cases with
//! their domains.

#![allow(dead_code, clippy::approx_constant)]

use crate::common::Dom;
use crate::common::{always, at, frac_away};
use keops_ir::Op;

pub const NAN: f64 = f64::NAN;
pub const INF: f64 = f64::INFINITY;
/// math.pi
pub const PI: f64 = std::f64::consts::PI;
/// math.pi / 2
pub const PI_2: f64 = std::f64::consts::FRAC_PI_2;
/// math.pi / 4
pub const PI_4: f64 = std::f64::consts::FRAC_PI_4;

// =====================================================================================
// Value table
// =====================================================================================

/// A hand-checked point: the formula, its variables (each a `Vi` of the given values'
/// length) and the expected value of the formula.
pub struct Case {
    pub op: Op,
    pub formula: &'static str,
    pub vars: Vec<(&'static str, Vec<f64>)>,
    pub expected: Vec<f64>,
}

impl Case {
    pub fn dims(&self) -> Vec<(&'static str, usize)> {
        self.vars.iter().map(|(n, v)| (*n, v.len())).collect()
    }
    pub fn args(&self) -> Vec<Vec<f64>> {
        self.vars.iter().map(|(_, v)| v.clone()).collect()
    }
    /// Mixes scalar and vector variables (a broadcasting case).
    pub fn broadcasts(&self, unit: usize) -> bool {
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
pub fn value_cases() -> Vec<Case> {
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

// =====================================================================================
// Gradient table
// =====================================================================================

/// What a gradient case checks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GradKind {
    /// Symbolic gradient = central finite differences, w.r.t. every variable.
    Fd,
    /// The gradient is exactly zero, w.r.t. every variable.
    Zero,
    /// Differentiating w.r.t. any variable is a `Differentiation` error.
    Undefined,
}

/// A formula with random inputs: each variable a `Vi` of the given dimension, drawn from
/// its domain until `valid` accepts the point (to stay away from kinks).
pub struct GradCase {
    pub op: Op,
    pub kind: GradKind,
    pub formula: &'static str,
    pub vars: Vec<(&'static str, usize, Dom)>,
    pub valid: fn(&[Vec<f64>]) -> bool,
}

impl GradCase {
    pub fn dims(&self) -> Vec<(&'static str, usize)> {
        self.vars.iter().map(|(n, d, _)| (*n, *d)).collect()
    }
    pub fn doms(&self) -> Vec<(usize, Dom)> {
        self.vars.iter().map(|(_, d, dom)| (*d, *dom)).collect()
    }
    pub fn broadcasts(&self, unit: usize) -> bool {
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

use crate::common::Dom::{Away, U};

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
pub fn grad_cases() -> Vec<GradCase> {
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
