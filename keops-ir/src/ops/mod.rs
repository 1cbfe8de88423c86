//! The operation table: every operation of the formula language, declared once.
//!
//! A row gives the name, arity, integer parameters, dimension rule, derivative, value
//! (reference semantics, f32 and f64), lowering to scalar instructions (which the CPU
//! and PTX emitters map one to one), whether constants fold, how it prints, and how it
//! is computed over a width left to the caller ([`AnyWidth`], for kernels with const
//! generic widths).
//! Operations that are sugar for others (`SqNormIso`, `Kron`, `Grad`, ...) are `Expand`
//! rows: they rewrite to primitives when built.

mod calculus;
mod complex;
mod elementwise;
mod indexing;
mod linalg;
mod special;
mod vector;

use crate::builder::Builder;
use crate::dim::{Dim, DimConstraint, DimSolver};
use crate::error::Result;
use crate::graph::{NodeId, Param};
use crate::lower::{Lower, Reg};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Kind of an integer parameter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// One integer.
    Int,
    /// A list of integers `(a, b, ...)`.
    List,
    /// An optional trailing list.
    OptList,
}

/// Context of a dimension rule: the argument dimensions, parameters and the solver.
pub struct DimCx<'a> {
    /// Dimensions of the arguments.
    pub args: &'a [Dim],
    /// Parameters.
    pub params: &'a [Param],
    /// Unification state.
    pub solver: &'a mut DimSolver,
}

/// A dimension error: what is wrong (the caller adds the operation and sub-expression).
pub type DimResult<T> = std::result::Result<T, String>;

impl DimCx<'_> {
    /// Dimension of argument `k`, resolved.
    pub fn arg(&self, k: usize) -> Dim {
        self.solver.resolve(&self.args[k])
    }

    /// Known dimension of argument `k`.
    pub fn known(&self, k: usize) -> Option<usize> {
        self.arg(k).as_known()
    }

    /// Integer parameter `k`.
    pub fn int(&self, k: usize) -> i64 {
        self.params.get(k).map(Param::int).unwrap_or(0)
    }

    /// List parameter `k` (empty when absent).
    pub fn list(&self, k: usize) -> Vec<i64> {
        self.params.get(k).map(Param::list).unwrap_or_default()
    }

    /// Requires two dimensions to be equal.
    pub fn unify(&mut self, a: &Dim, b: &Dim, what: &str) -> DimResult<()> {
        self.solver
            .unify(a, b)
            .map_err(|m| format!("{what}: {} vs {}", m.left, m.right))
    }

    /// Requires argument `k` to be a scalar.
    pub fn scalar(&mut self, k: usize, role: &str) -> DimResult<()> {
        let d = self.arg(k);
        self.solver
            .unify(&d, &Dim::one())
            .map_err(|_| format!("{role} must be a scalar (dimension 1), found dimension {d}"))
    }

    /// Requires argument `k` to have dimension `d`.
    pub fn expect(&mut self, k: usize, d: &Dim, role: &str) -> DimResult<()> {
        let a = self.arg(k);
        self.solver
            .unify(&a, d)
            .map_err(|m| format!("{role} must have dimension {}, found {}", m.right, m.left))
    }

    /// Requires a condition, deferring it while dimensions are symbolic.
    pub fn require(
        &mut self,
        c: DimConstraint,
        msg: impl FnOnce(&DimConstraint) -> String,
    ) -> DimResult<()> {
        self.solver.require(c).map_err(|c| msg(&c))
    }

    /// Broadcasting of element-wise operations: equal dimensions, or two distinct ones of
    /// which one is 1. Undeclared dimensions unify rather than broadcast.
    pub fn broadcast(&mut self, ks: &[usize]) -> DimResult<Dim> {
        self.broadcast_unit(ks, 1)
    }

    /// Broadcasting with a unit other than 1 (2 for complex operations).
    pub fn broadcast_unit(&mut self, ks: &[usize], unit: usize) -> DimResult<Dim> {
        let mut out: Option<Dim> = None;
        for &k in ks {
            let d = self.arg(k);
            if d.is(unit) {
                continue;
            }
            match &out {
                None => out = Some(d),
                Some(o) => {
                    let o = o.clone();
                    self.solver.unify(&o, &d).map_err(|m| {
                        format!("arguments have dimensions {} and {}; they must be equal, or one of them {unit}", m.left, m.right)
                    })?;
                }
            }
        }
        Ok(out
            .map(|d| self.solver.resolve(&d))
            .unwrap_or_else(|| Dim::known(unit)))
    }
}

/// Dimension rule: output dimension from argument dimensions, or what is wrong.
pub type DimRule = fn(&mut DimCx<'_>) -> DimResult<Dim>;

/// The node being differentiated, as seen by a derivative rule.
#[derive(Clone, Debug)]
pub struct Call {
    /// The node itself (its value, for rules like `Exp' = Exp`).
    pub node: NodeId,
    /// Its arguments.
    pub args: Vec<NodeId>,
    /// Its parameters.
    pub params: Vec<Param>,
}

impl Call {
    /// Integer parameter `k`.
    pub fn int(&self, k: usize) -> i64 {
        self.params.get(k).map(Param::int).unwrap_or(0)
    }
}

/// Reverse-mode rule: given the cotangent `e` of the node (its dimension), the cotangent
/// of argument `k`. It may have the node's dimension for a broadcast scalar argument:
/// the engine sums it back.
pub type DerivFn = fn(&mut Builder<'_>, &Call, NodeId, usize) -> Result<NodeId>;

/// How an operation is differentiated.
#[derive(Copy, Clone)]
pub enum Deriv {
    /// A reverse-mode rule.
    Rule(DerivFn),
    /// Piecewise constant: the gradient is zero.
    Zero,
    /// Not differentiable; the text says why and what to do.
    Undefined(&'static str),
}

/// Scalar function for element-wise operations, in both precisions.
#[derive(Copy, Clone)]
pub struct Scalar1 {
    /// f64 version.
    pub f64: fn(&[Param], f64) -> f64,
    /// f32 version.
    pub f32: fn(&[Param], f32) -> f32,
}
/// Binary scalar function.
#[derive(Copy, Clone)]
pub struct Scalar2 {
    /// f64 version.
    pub f64: fn(&[Param], f64, f64) -> f64,
    /// f32 version.
    pub f32: fn(&[Param], f32, f32) -> f32,
}
/// Ternary scalar function.
#[derive(Copy, Clone)]
pub struct Scalar3 {
    /// f64 version.
    pub f64: fn(&[Param], f64, f64, f64) -> f64,
    /// f32 version.
    pub f32: fn(&[Param], f32, f32, f32) -> f32,
}

/// Arguments of a vector evaluation.
pub struct VecArgs<'a, R> {
    /// Argument values.
    pub args: &'a [&'a [R]],
    /// Parameters.
    pub params: &'a [Param],
}

impl<R> VecArgs<'_, R> {
    /// Integer parameter `k`.
    pub fn int(&self, k: usize) -> i64 {
        self.params.get(k).map(Param::int).unwrap_or(0)
    }
    /// List parameter `k`.
    pub fn list(&self, k: usize) -> Vec<i64> {
        self.params.get(k).map(Param::list).unwrap_or_default()
    }
}

/// A vector function: fills the output from the arguments.
#[derive(Copy, Clone)]
pub struct VectorFn {
    /// f64 version.
    pub f64: fn(&VecArgs<'_, f64>, &mut [f64]),
    /// f32 version.
    pub f32: fn(&VecArgs<'_, f32>, &mut [f32]),
}

/// Reference value of an operation.
#[derive(Copy, Clone)]
pub enum Eval {
    /// Element-wise with broadcasting.
    Unary(Scalar1),
    /// Element-wise with broadcasting.
    Binary(Scalar2),
    /// Element-wise with broadcasting.
    Ternary(Scalar3),
    /// General.
    Vector(VectorFn),
}

/// Arguments of a vector lowering.
pub struct LowerArgs<'a> {
    /// Registers of each argument.
    pub args: &'a [Vec<Reg>],
    /// Parameters.
    pub params: &'a [Param],
    /// Output dimension.
    pub out_dim: usize,
}

impl LowerArgs<'_> {
    /// Integer parameter `k`.
    pub fn int(&self, k: usize) -> i64 {
        self.params.get(k).map(Param::int).unwrap_or(0)
    }
    /// List parameter `k`.
    pub fn list(&self, k: usize) -> Vec<i64> {
        self.params.get(k).map(Param::list).unwrap_or_default()
    }
}

/// Lowering of an operation to scalar instructions.
#[derive(Copy, Clone)]
pub enum Lowering {
    /// Element-wise.
    Unary(fn(&mut Lower, &[Param], Reg) -> Reg),
    /// Element-wise.
    Binary(fn(&mut Lower, &[Param], Reg, Reg) -> Reg),
    /// Element-wise.
    Ternary(fn(&mut Lower, &[Param], Reg, Reg, Reg) -> Reg),
    /// General: output registers from argument registers.
    Vector(fn(&mut Lower, &LowerArgs<'_>) -> Vec<Reg>),
}

/// When the result is zero because arguments are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Zeros {
    /// No rule (e.g. `Exp(0) = 1`: constant folding handles it).
    None,
    /// Any zero argument makes it zero (products).
    Any,
    /// A zero first argument makes it zero (quotients, linear unary operations).
    First,
}

/// How a node prints in the text form.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Print {
    /// `Name(args, params)`.
    Call,
    /// Infix operator with its precedence (higher binds tighter).
    Infix(&'static str, u8),
    /// Prefix operator.
    Prefix(&'static str),
}

/// What a fold adds up, per coordinate `k` of the arguments `x` (and `y`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FoldTerm {
    /// `x_k`.
    X,
    /// `x_k * x_k`.
    XX,
    /// `x_k * y_k`.
    XY,
    /// `(x_k - y_k)^2`.
    DiffSquared,
}

/// What a fold outputs from its sum `s`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum FoldOutput {
    /// `s`.
    Sum,
    /// `sqrt(s)`.
    Sqrt,
    /// `x / sqrt(s)` (0 where `s` is 0).
    Normalized,
}

/// Which coordinate an extreme picks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Extreme {
    /// The first largest.
    Largest,
    /// The first smallest.
    Smallest,
}

/// What an extreme outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExtremeOutput {
    /// The extreme value.
    Value,
    /// Its coordinate, as a float.
    Index,
    /// A one-hot vector of its coordinate.
    Mask,
}

/// How an operation is computed when an argument's width is left to the caller (a const
/// generic `D` of a `keops!` kernel), where the scalar lowering, which needs every width,
/// cannot be used: the CPU emitter writes one loop per form.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AnyWidth {
    /// Not available: the widths must be declared.
    No,
    /// Coordinate `k` of the output from coordinate `k` of each argument (a width-1
    /// argument broadcasts): the element-wise rows.
    Elementwise,
    /// A fold over the coordinates of the first argument (and the second):
    /// `s = sum_k term(x_k, y_k)`, then the output from `s`.
    Fold(FoldTerm, FoldOutput),
    /// The first extreme coordinate of the argument (a NaN never wins).
    Extreme(Extreme, ExtremeOutput),
    /// Coordinate `m` of the argument (the first parameter).
    Elem,
    /// Coordinates `start .. start + d` of the argument (the parameters).
    Extract,
    /// The argument placed at `start` (the first parameter) in a zero vector.
    ExtractT,
}

/// A primitive operation: everything the compiler needs.
#[derive(Copy, Clone)]
pub struct Prim {
    /// Output dimension rule.
    pub dim: DimRule,
    /// Derivative.
    pub deriv: Deriv,
    /// Reference value.
    pub eval: Eval,
    /// Lowering to scalar instructions.
    pub lower: Lowering,
    /// Whether constant arguments fold to a constant.
    pub fold: bool,
    /// Zero propagation.
    pub zeros: Zeros,
    /// Text form.
    pub print: Print,
    /// The computation over an undeclared width.
    pub any_width: AnyWidth,
}

/// Expansion of sugar operations into primitives.
pub type ExpandFn = fn(&mut Builder<'_>, &[NodeId], &[Param]) -> Result<NodeId>;

/// A row of the table is either primitive or sugar.
#[derive(Copy, Clone)]
pub enum OpKind {
    /// A primitive.
    Prim(Prim),
    /// Sugar, rewritten when built.
    Expand(ExpandFn),
}

/// One row of the operation table.
pub struct OpSpec {
    /// Name in both syntaxes.
    pub name: &'static str,
    /// Signature shown in arity errors and docs, e.g. `Pow(f, m: int)`.
    pub signature: &'static str,
    /// Number of formula arguments.
    pub arity: usize,
    /// Integer parameters after the formula arguments.
    pub params: &'static [ParamKind],
    /// Primitive or sugar.
    pub kind: OpKind,
}

impl OpSpec {
    /// The primitive part, if primitive.
    pub fn prim(&self) -> Option<&Prim> {
        match &self.kind {
            OpKind::Prim(p) => Some(p),
            OpKind::Expand(_) => None,
        }
    }
}

const fn elementwise(
    eval: Eval,
    lower: Lowering,
    deriv: Deriv,
    fold: bool,
    zeros: Zeros,
    print: Print,
) -> OpKind {
    OpKind::Prim(Prim {
        dim: dim_broadcast,
        deriv,
        eval,
        lower,
        fold,
        zeros,
        print,
        any_width: AnyWidth::Elementwise,
    })
}

const fn prim(dim: DimRule, eval: Eval, lower: Lowering, deriv: Deriv, zeros: Zeros) -> OpKind {
    OpKind::Prim(Prim {
        dim,
        deriv,
        eval,
        lower,
        fold: true,
        zeros,
        print: Print::Call,
        any_width: AnyWidth::No,
    })
}

/// A primitive row computed over undeclared widths as `any_width` says.
const fn on_any_width(kind: OpKind, any_width: AnyWidth) -> OpKind {
    match kind {
        OpKind::Prim(p) => OpKind::Prim(Prim { any_width, ..p }),
        OpKind::Expand(f) => OpKind::Expand(f),
    }
}

fn dim_broadcast(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let ks: Vec<usize> = (0..cx.args.len()).collect();
    cx.broadcast(&ks)
}

/// Element-wise scalar function in both precisions.
macro_rules! s1 {
    ($f:path) => {
        $crate::ops::Eval::Unary($crate::ops::Scalar1 { f64: $f, f32: $f })
    };
}
/// Binary scalar function in both precisions.
macro_rules! s2 {
    ($f:path) => {
        $crate::ops::Eval::Binary($crate::ops::Scalar2 { f64: $f, f32: $f })
    };
}
/// Ternary scalar function in both precisions.
macro_rules! s3 {
    ($f:path) => {
        $crate::ops::Eval::Ternary($crate::ops::Scalar3 { f64: $f, f32: $f })
    };
}
/// Vector function in both precisions.
macro_rules! vf {
    ($f:path) => {
        $crate::ops::Eval::Vector($crate::ops::VectorFn { f64: $f, f32: $f })
    };
}

macro_rules! op_table {
    ($( $(#[$doc:meta])* $name:ident $sig:literal ($arity:expr $(; $($pk:ident),*)?) => $kind:expr, )*) => {
        /// An operation of the formula language (see the table in [`OPS`]).
        // Variant names are the formula language's names, `SoftDTW_SqDist` included.
        #[allow(non_camel_case_types)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $( $(#[$doc])* $name, )*
        }
        /// The operation table, indexed by [`Op`].
        pub static OPS: &[OpSpec] = &[
            $( OpSpec { name: stringify!($name), signature: $sig, arity: $arity, params: &[$($(ParamKind::$pk),*)?], kind: $kind }, )*
        ];
        impl Op {
            /// Every operation, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];
        }
    };
}

use Deriv::{Rule, Undefined};
use calculus as calc;
use complex as cx;
use elementwise as ew;
use indexing as ix;
use linalg as la;
use special as sp;
use vector as vc;

op_table! {
    // ---- arithmetic
    /// `f + g`
    Add "Add(f, g)" (2) => elementwise(s2!(ew::add), Lowering::Binary(ew::l_add), Rule(ew::d_add), true, Zeros::None, Print::Infix("+", 3)),
    /// `f - g`
    Subtract "Subtract(f, g)" (2) => elementwise(s2!(ew::sub), Lowering::Binary(ew::l_sub), Rule(ew::d_sub), true, Zeros::None, Print::Infix("-", 3)),
    /// `f * g`
    Mult "Mult(f, g)" (2) => elementwise(s2!(ew::mul), Lowering::Binary(ew::l_mul), Rule(ew::d_mul), true, Zeros::Any, Print::Infix("*", 4)),
    /// `f / g`
    Divide "Divide(f, g)" (2) => elementwise(s2!(ew::div), Lowering::Binary(ew::l_div), Rule(ew::d_div), true, Zeros::First, Print::Infix("/", 4)),
    /// `-f`
    Minus "Minus(f)" (1) => elementwise(s1!(ew::neg), Lowering::Unary(ew::l_neg), Rule(ew::d_neg), true, Zeros::First, Print::Prefix("-")),
    /// `1 / f`
    Inv "Inv(f)" (1) => elementwise(s1!(ew::inv), Lowering::Unary(ew::l_inv), Rule(ew::d_inv), true, Zeros::None, Print::Call),
    // ---- powers
    /// `f * f`
    Square "Square(f)" (1) => elementwise(s1!(ew::square), Lowering::Unary(ew::l_square), Rule(ew::d_square), true, Zeros::First, Print::Call),
    /// Square root.
    Sqrt "Sqrt(f)" (1) => elementwise(s1!(ew::sqrt), Lowering::Unary(ew::l_sqrt), Rule(ew::d_sqrt), true, Zeros::None, Print::Call),
    /// `1 / sqrt(f)`, with `Rsqrt(0) = 0`.
    Rsqrt "Rsqrt(f)" (1) => elementwise(s1!(ew::rsqrt), Lowering::Unary(ew::l_rsqrt), Rule(ew::d_rsqrt), true, Zeros::None, Print::Call),
    /// `f` to an integer power.
    Pow "Pow(f, m: int)" (1; Int) => elementwise(s1!(ew::pow), Lowering::Unary(ew::l_pow), Rule(ew::d_pow), true, Zeros::None, Print::Call),
    /// `f` to the power `g`.
    Powf "Powf(f, g)" (2) => elementwise(s2!(ew::powf), Lowering::Binary(ew::l_powf), Rule(ew::d_powf), true, Zeros::None, Print::Call),
    // ---- exp / log
    /// Exponential.
    Exp "Exp(f)" (1) => elementwise(s1!(ew::exp), Lowering::Unary(ew::l_exp), Rule(ew::d_exp), true, Zeros::None, Print::Call),
    /// Natural logarithm.
    Log "Log(f)" (1) => elementwise(s1!(ew::log), Lowering::Unary(ew::l_log), Rule(ew::d_log), true, Zeros::None, Print::Call),
    /// `f log f`, 0 at 0.
    XLogX "XLogX(f)" (1) => elementwise(s1!(ew::xlogx), Lowering::Unary(ew::l_xlogx), Rule(ew::d_xlogx), true, Zeros::None, Print::Call),
    // ---- trigonometry
    /// Sine.
    Sin "Sin(f)" (1) => elementwise(s1!(ew::sin), Lowering::Unary(ew::l_sin), Rule(ew::d_sin), true, Zeros::First, Print::Call),
    /// Cosine.
    Cos "Cos(f)" (1) => elementwise(s1!(ew::cos), Lowering::Unary(ew::l_cos), Rule(ew::d_cos), true, Zeros::None, Print::Call),
    /// `sin(f) / f`, 1 at 0.
    SinXDivX "SinXDivX(f)" (1) => elementwise(s1!(ew::sinxdivx), Lowering::Unary(ew::l_sinxdivx), Rule(ew::d_sinxdivx), true, Zeros::None, Print::Call),
    /// Arc sine.
    Asin "Asin(f)" (1) => elementwise(s1!(ew::asin), Lowering::Unary(ew::l_asin), Rule(ew::d_asin), true, Zeros::First, Print::Call),
    /// Arc cosine.
    Acos "Acos(f)" (1) => elementwise(s1!(ew::acos), Lowering::Unary(ew::l_acos), Rule(ew::d_acos), true, Zeros::None, Print::Call),
    /// Arc tangent.
    Atan "Atan(f)" (1) => elementwise(s1!(ew::atan), Lowering::Unary(ew::l_atan), Rule(ew::d_atan), true, Zeros::First, Print::Call),
    /// `atan2(f, g)`: angle of the point (g, f).
    Atan2 "Atan2(f, g)" (2) => elementwise(s2!(ew::atan2), Lowering::Binary(ew::l_atan2), Rule(ew::d_atan2), true, Zeros::None, Print::Call),
    // ---- piecewise
    /// Absolute value.
    Abs "Abs(f)" (1) => elementwise(s1!(ew::abs), Lowering::Unary(ew::l_abs), Rule(ew::d_abs), true, Zeros::First, Print::Call),
    /// `max(f, 0)`.
    ReLU "ReLU(f)" (1) => elementwise(s1!(ew::relu), Lowering::Unary(ew::l_relu), Rule(ew::d_relu), true, Zeros::First, Print::Call),
    /// `f` clamped to `[a, b]`.
    Clamp "Clamp(f, a, b)" (3) => elementwise(s3!(ew::clamp), Lowering::Ternary(ew::l_clamp), Rule(ew::d_clamp), true, Zeros::None, Print::Call),
    /// `f` clamped to the integer interval `[a, b]`.
    ClampInt "ClampInt(f, a: int, b: int)" (1; Int, Int) => elementwise(s1!(ew::clampint), Lowering::Unary(ew::l_clampint), Rule(ew::d_clampint), true, Zeros::None, Print::Call),
    /// `x - n floor((x - d) / n)`.
    Mod "Mod(x, n, d)" (3) => elementwise(s3!(ew::modulo), Lowering::Ternary(ew::l_mod), Rule(ew::d_mod), true, Zeros::None, Print::Call),
    // ---- piecewise constant (zero gradient)
    /// -1, 0 or 1.
    Sign "Sign(f)" (1) => elementwise(s1!(ew::sign), Lowering::Unary(ew::l_sign), Deriv::Zero, true, Zeros::First, Print::Call),
    /// 0 if `f < 0`, else 1.
    Step "Step(f)" (1) => elementwise(s1!(ew::step), Lowering::Unary(ew::l_step), Deriv::Zero, true, Zeros::None, Print::Call),
    /// Floor.
    Floor "Floor(f)" (1) => elementwise(s1!(ew::floor), Lowering::Unary(ew::l_floor), Deriv::Zero, true, Zeros::First, Print::Call),
    /// `f` rounded to `d` decimals.
    Round "Round(f, d: int)" (1; Int) => elementwise(s1!(ew::round), Lowering::Unary(ew::l_round), Deriv::Zero, true, Zeros::First, Print::Call),
    /// 1 where `a <= f <= b`, else 0 (derivative of ClampInt).
    DiffClampInt "DiffClampInt(f, a: int, b: int)" (1; Int, Int) => elementwise(s1!(ew::diffclampint), Lowering::Unary(ew::l_diffclampint), Deriv::Zero, true, Zeros::None, Print::Call),
    // ---- conditional and comparisons
    /// `a` where `c >= 0`, else `b`.
    IfElse "IfElse(c, a, b)" (3) => elementwise(s3!(ew::ifelse), Lowering::Ternary(ew::l_ifelse), Rule(ew::d_ifelse), true, Zeros::None, Print::Call),
    /// 1 where `f < g`, else 0.
    LessThan "LessThan(f, g)" (2) => elementwise(s2!(ew::less_than), Lowering::Binary(ew::l_less_than), Deriv::Zero, true, Zeros::None, Print::Infix("<", 1)),
    /// 1 where `f <= g`, else 0.
    LessOrEqual "LessOrEqual(f, g)" (2) => elementwise(s2!(ew::less_or_equal), Lowering::Binary(ew::l_less_or_equal), Deriv::Zero, true, Zeros::None, Print::Infix("<=", 1)),
    /// 1 where `f == g`, else 0.
    Equal "Equal(f, g)" (2) => elementwise(s2!(ew::equal), Lowering::Binary(ew::l_equal), Deriv::Zero, true, Zeros::None, Print::Infix("==", 1)),
    /// 1 where `f != g`, else 0.
    NotEqual "NotEqual(f, g)" (2) => elementwise(s2!(ew::not_equal), Lowering::Binary(ew::l_not_equal), Deriv::Zero, true, Zeros::None, Print::Infix("!=", 1)),
    // ---- reductions inside formulas
    /// Sum of the coordinates.
    Sum "Sum(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::sum), Lowering::Vector(vc::l_sum), Rule(vc::d_sum), Zeros::First), AnyWidth::Fold(FoldTerm::X, FoldOutput::Sum)),
    /// Largest coordinate.
    Max "Max(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::max), Lowering::Vector(vc::l_max), Rule(vc::d_max), Zeros::None), AnyWidth::Extreme(Extreme::Largest, ExtremeOutput::Value)),
    /// Smallest coordinate.
    Min "Min(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::min), Lowering::Vector(vc::l_min), Rule(vc::d_min), Zeros::None), AnyWidth::Extreme(Extreme::Smallest, ExtremeOutput::Value)),
    /// Index of the largest coordinate, as a float.
    ArgMax "ArgMax(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::argmax), Lowering::Vector(vc::l_argmax), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Largest, ExtremeOutput::Index)),
    /// Index of the smallest coordinate, as a float.
    ArgMin "ArgMin(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::argmin), Lowering::Vector(vc::l_argmin), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Smallest, ExtremeOutput::Index)),
    /// One-hot vector of the first largest coordinate (the gradient mask of Max).
    MaxMask "MaxMask(f)" (1) => on_any_width(prim(vc::dim_same, vf!(vc::max_mask), Lowering::Vector(vc::l_max_mask), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Largest, ExtremeOutput::Mask)),
    /// One-hot vector of the first smallest coordinate (the gradient mask of Min).
    MinMask "MinMask(f)" (1) => on_any_width(prim(vc::dim_same, vf!(vc::min_mask), Lowering::Vector(vc::l_min_mask), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Smallest, ExtremeOutput::Mask)),
    // ---- norms and distances
    /// Squared Euclidean norm.
    SqNorm2 "SqNorm2(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::sqnorm2), Lowering::Vector(vc::l_sqnorm2), Rule(vc::d_sqnorm2), Zeros::First), AnyWidth::Fold(FoldTerm::XX, FoldOutput::Sum)),
    /// Euclidean norm.
    Norm2 "Norm2(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::norm2), Lowering::Vector(vc::l_norm2), Rule(vc::d_norm2), Zeros::First), AnyWidth::Fold(FoldTerm::XX, FoldOutput::Sqrt)),
    /// `f / |f|` (0 for f = 0).
    Normalize "Normalize(f)" (1) => on_any_width(prim(vc::dim_same, vf!(vc::normalize), Lowering::Vector(vc::l_normalize), Rule(vc::d_normalize), Zeros::First), AnyWidth::Fold(FoldTerm::XX, FoldOutput::Normalized)),
    /// Squared Euclidean distance.
    SqDist "SqDist(f, g)" (2) => on_any_width(prim(vc::dim_pair, vf!(vc::sqdist), Lowering::Vector(vc::l_sqdist), Rule(vc::d_sqdist), Zeros::None), AnyWidth::Fold(FoldTerm::DiffSquared, FoldOutput::Sum)),
    /// Scalar product, also written `f | g`.
    Scalprod "Scalprod(f, g)" (2) => OpKind::Prim(Prim { dim: vc::dim_pair, deriv: Rule(vc::d_scalprod), eval: vf!(vc::scalprod), lower: Lowering::Vector(vc::l_scalprod), fold: true, zeros: Zeros::Any, print: Print::Infix("|", 2), any_width: AnyWidth::Fold(FoldTerm::XY, FoldOutput::Sum) }),
    /// Weighted squared norm: `s` isotropic (dim 1), diagonal (dim f) or full (dim f^2).
    WeightedSqNorm "WeightedSqNorm(s, f)" (2) => OpKind::Expand(vc::x_weighted_sqnorm),
    /// `WeightedSqNorm(s, f - g)`.
    WeightedSqDist "WeightedSqDist(s, f, g)" (3) => OpKind::Expand(vc::x_weighted_sqdist),
    /// `s |f|^2` with `s` scalar.
    SqNormIso "SqNormIso(s, f)" (2) => OpKind::Expand(vc::x_sqnorm_iso),
    /// `sum_k s_k f_k^2`.
    SqNormDiag "SqNormDiag(s, f)" (2) => OpKind::Expand(vc::x_sqnorm_diag),
    /// `sum_kl s_kl f_k f_l` (s row-major).
    SymSqNorm "SymSqNorm(s, f)" (2) => OpKind::Expand(vc::x_sym_sqnorm),
    // ---- indexing
    /// Coordinate `m` of `f`.
    Elem "Elem(f, m: int)" (1; Int) => on_any_width(prim(ix::dim_elem, vf!(ix::elem), Lowering::Vector(ix::l_elem), Rule(ix::d_elem), Zeros::First), AnyWidth::Elem),
    /// The vector of dimension `n` with `f` at coordinate `m`, zeros elsewhere.
    ElemT "ElemT(f, n: int, m: int)" (1; Int, Int) => prim(ix::dim_elemt, vf!(ix::elemt), Lowering::Vector(ix::l_elemt), Rule(ix::d_elemt), Zeros::First),
    /// Coordinates `start .. start + d` of `f`.
    Extract "Extract(f, start: int, d: int)" (1; Int, Int) => on_any_width(prim(ix::dim_extract, vf!(ix::extract), Lowering::Vector(ix::l_extract), Rule(ix::d_extract), Zeros::First), AnyWidth::Extract),
    /// `f` placed at `start` in a zero vector of dimension `D`.
    ExtractT "ExtractT(f, start: int, D: int)" (1; Int, Int) => on_any_width(prim(ix::dim_extractt, vf!(ix::extractt), Lowering::Vector(ix::l_extractt), Rule(ix::d_extractt), Zeros::First), AnyWidth::ExtractT),
    /// Concatenation.
    Concat "Concat(f, g)" (2) => prim(ix::dim_concat, vf!(ix::concat), Lowering::Vector(ix::l_concat), Rule(ix::d_concat), Zeros::None),
    /// One-hot encoding of the rounded scalar `f` in dimension `D`.
    OneHot "OneHot(f, D: int)" (1; Int) => prim(ix::dim_onehot, vf!(ix::onehot), Lowering::Vector(ix::l_onehot), Deriv::Zero, Zeros::None),
    /// The scalar `f` repeated `d` times (adjoint of Sum).
    SumT "SumT(f, d: int)" (1; Int) => prim(ix::dim_sumt, vf!(ix::sumt), Lowering::Vector(ix::l_sumt), Rule(ix::d_sumt), Zeros::First),
    // ---- linear algebra
    /// Row-major matrix `A` (n x p) times vector `v` (p).
    MatVecMult "MatVecMult(A, v)" (2) => prim(la::dim_matvec, vf!(la::matvec), Lowering::Vector(la::l_matvec), Rule(la::d_matvec), Zeros::Any),
    /// Vector `v` (p) times row-major matrix `A` (p x n).
    VecMatMult "VecMatMult(v, A)" (2) => prim(la::dim_vecmat, vf!(la::vecmat), Lowering::Vector(la::l_vecmat), Rule(la::d_vecmat), Zeros::Any),
    /// Outer product, row-major.
    TensorProd "TensorProd(f, g)" (2) => prim(la::dim_tensorprod, vf!(la::tensorprod), Lowering::Vector(la::l_tensorprod), Rule(la::d_tensorprod), Zeros::Any),
    /// Tensor contraction (numpy `tensordot`), with an optional permutation of the result axes.
    TensorDot "TensorDot(f, g, dimsf, dimsg, contf, contg[, permute])" (2; List, List, List, List, OptList) => prim(la::dim_tensordot, vf!(la::tensordot), Lowering::Vector(la::l_tensordot), Rule(la::d_tensordot), Zeros::Any),
    /// Kronecker product of two tensors of the same rank.
    Kron "Kron(f, g, dimsf, dimsg)" (2; List, List) => OpKind::Expand(la::x_kron),
    // ---- complex numbers (interleaved re, im)
    /// Real parts.
    ComplexReal "ComplexReal(f)" (1) => prim(cx::dim_half, vf!(cx::real), Lowering::Vector(cx::l_real), Rule(cx::d_real), Zeros::First),
    /// Imaginary parts.
    ComplexImag "ComplexImag(f)" (1) => prim(cx::dim_half, vf!(cx::imag), Lowering::Vector(cx::l_imag), Rule(cx::d_imag), Zeros::First),
    /// Real vector to complex.
    Real2Complex "Real2Complex(f)" (1) => prim(cx::dim_double, vf!(cx::real2complex), Lowering::Vector(cx::l_real2complex), Rule(cx::d_real2complex), Zeros::First),
    /// Imaginary vector to complex.
    Imag2Complex "Imag2Complex(f)" (1) => prim(cx::dim_double, vf!(cx::imag2complex), Lowering::Vector(cx::l_imag2complex), Rule(cx::d_imag2complex), Zeros::First),
    /// Complex conjugate.
    Conj "Conj(f)" (1) => prim(cx::dim_even, vf!(cx::conj), Lowering::Vector(cx::l_conj), Rule(cx::d_conj), Zeros::First),
    /// Complex sum (broadcasting a single complex number).
    ComplexAdd "ComplexAdd(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::add), Lowering::Vector(cx::l_add), Rule(cx::d_add), Zeros::None),
    /// Complex difference.
    ComplexSubtract "ComplexSubtract(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::sub), Lowering::Vector(cx::l_sub), Rule(cx::d_sub), Zeros::None),
    /// Complex product.
    ComplexMult "ComplexMult(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::mul), Lowering::Vector(cx::l_mul), Rule(cx::d_mul), Zeros::Any),
    /// Complex quotient.
    ComplexDivide "ComplexDivide(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::div), Lowering::Vector(cx::l_div), Rule(cx::d_div), Zeros::First),
    /// Complex exponential.
    ComplexExp "ComplexExp(f)" (1) => prim(cx::dim_even, vf!(cx::exp), Lowering::Vector(cx::l_exp), Rule(cx::d_exp), Zeros::None),
    /// `exp(i f)` for a real vector `f`.
    ComplexExp1j "ComplexExp1j(f)" (1) => prim(cx::dim_double, vf!(cx::exp1j), Lowering::Vector(cx::l_exp1j), Rule(cx::d_exp1j), Zeros::None),
    /// Moduli.
    ComplexAbs "ComplexAbs(f)" (1) => prim(cx::dim_half, vf!(cx::abs), Lowering::Vector(cx::l_abs), Rule(cx::d_abs), Zeros::First),
    /// Squared moduli.
    ComplexSquareAbs "ComplexSquareAbs(f)" (1) => prim(cx::dim_half, vf!(cx::square_abs), Lowering::Vector(cx::l_square_abs), Rule(cx::d_square_abs), Zeros::First),
    /// Arguments (angles).
    ComplexAngle "ComplexAngle(f)" (1) => OpKind::Expand(cx::x_angle),
    /// Sum of the complex coordinates.
    ComplexSum "ComplexSum(f)" (1) => prim(cx::dim_two, vf!(cx::sum), Lowering::Vector(cx::l_sum), Rule(cx::d_sum), Zeros::First),
    /// One complex number repeated to dimension `d`.
    ComplexSumT "ComplexSumT(f, d: int)" (1; Int) => prim(cx::dim_sumt, vf!(cx::sumt), Lowering::Vector(cx::l_sumt), Rule(cx::d_sumt), Zeros::First),
    /// Real scalar times complex vector.
    ComplexRealScal "ComplexRealScal(f, g)" (2) => prim(cx::dim_realscal, vf!(cx::realscal), Lowering::Vector(cx::l_realscal), Rule(cx::d_realscal), Zeros::Any),
    // ---- calculus (rewritten symbolically)
    /// Reverse mode: `[d_v f]^T e`.
    Grad "Grad(f, v, e)" (3) => OpKind::Expand(calc::x_grad),
    /// Forward mode: `[d_v f] u`.
    Diff "Diff(f, v, u)" (3) => OpKind::Expand(calc::x_diff),
    /// Sum of second derivatives of a scalar `f`.
    Laplacian "Laplacian(f, v)" (2) => OpKind::Expand(calc::x_laplacian),
    /// Trace of the Jacobian of `f` (dimension of v) with respect to `v`.
    Divergence "Divergence(f, v)" (2) => OpKind::Expand(calc::x_divergence),
    /// Jacobian matrix (transposed, row-major: d(f) blocks of d(v)).
    GradMatrix "GradMatrix(f, v)" (2) => OpKind::Expand(calc::x_gradmatrix),
    /// Trace of a linear map `f` of `v`.
    TraceOperator "TraceOperator(f, v)" (2) => OpKind::Expand(calc::x_trace),
    // ---- splines and sequences
    /// B-spline basis functions of `order` at scalar `x` over `knots`.
    BSpline "BSpline(knots, x, order: int)" (2; Int) => prim(sp::dim_bspline, vf!(sp::bspline), Lowering::Vector(sp::l_bspline), Undefined("BSpline has no derivative rule (KeOps 2.3 has none either)"), Zeros::None),
    /// Soft dynamic time warping with squared Euclidean cost between sequences `x` and `y`.
    SoftDTW_SqDist "SoftDTW_SqDist(x, y, gamma)" (3) => prim(sp::dim_softdtw, vf!(sp::softdtw), Lowering::Vector(sp::l_softdtw), Rule(sp::d_softdtw), Zeros::None),
    /// Gradient of SoftDTW_SqDist with respect to (x, y), concatenated.
    GradSoftDTW_SqDist "GradSoftDTW_SqDist(x, y, gamma)" (3) => prim(sp::dim_grad_softdtw, vf!(sp::grad_softdtw), Lowering::Vector(sp::l_grad_softdtw), Undefined("second derivatives of SoftDTW_SqDist are not implemented"), Zeros::None),
}

impl Op {
    /// The table row.
    pub fn spec(self) -> &'static OpSpec {
        &OPS[self as usize]
    }

    /// Name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Looks an operation up by name.
    pub fn from_name(name: &str) -> Option<Op> {
        static INDEX: OnceLock<HashMap<&'static str, Op>> = OnceLock::new();
        INDEX
            .get_or_init(|| Op::ALL.iter().map(|op| (op.name(), *op)).collect())
            .get(name)
            .copied()
    }

    /// The closest operation names, for "did you mean" hints.
    pub fn suggestions(name: &str) -> Vec<&'static str> {
        let lower = name.to_ascii_lowercase();
        let mut scored: Vec<(usize, &'static str)> = Op::ALL
            .iter()
            .map(|op| {
                (
                    edit_distance(&lower, &op.name().to_ascii_lowercase()),
                    op.name(),
                )
            })
            .filter(|(d, n)| *d <= 2.max(n.len() / 4))
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }
}

/// Levenshtein distance, for suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (k, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, k);
            assert!(op.spec().signature.starts_with(op.name()), "{}", op.name());
            assert_eq!(Op::from_name(op.name()), Some(*op));
            // Element-wise rows, and only they, loop over undeclared widths coordinate
            // by coordinate.
            if let Some(p) = op.spec().prim() {
                let elementwise = !matches!(p.lower, Lowering::Vector(_));
                assert_eq!(
                    p.any_width == AnyWidth::Elementwise,
                    elementwise,
                    "{}",
                    op.name()
                );
            }
        }
    }

    #[test]
    fn suggestions_find_typos() {
        assert_eq!(Op::suggestions("Exq")[0], "Exp");
        assert!(Op::suggestions("SqDst").contains(&"SqDist"));
    }
}
