//! The operation table: every operation of the formula language, declared once.
//!
//! A row gives the name, arity, integer parameters, dimension rule, derivative, value
//! (reference semantics, f32 and f64), lowering to scalar instructions (which the CPU
//! and PTX emitters map one to one), whether constants fold, how it prints, and how it
//! is computed over a width left to the caller ([`AnyWidth`], for kernels with const
//! generic widths).
//! Operations that are sugar for others (`SqNormIso`, `Kron`, `Grad`, ...) are `Expand`
//! rows: they rewrite to primitives when built.
//!
//! The rows themselves are written once, in `rows.rs`, which also makes the [`Op`] enum
//! from them for the modules below the builder (the graph stores operations); this
//! module turns the same rows into [`OPS`] and gives each operation its reference value
//! ([`apply_op`]).
//!
//! Layering: this module and its row modules form one loop with [`crate::builder`],
//! [`crate::simplify`] and [`crate::diff`], on purpose. The rows are the behaviour of the
//! operations, and that behaviour builds formulas: a derivative rule or a sugar expansion
//! returns new nodes made with the builder (`Grad` with `diff`), while the builder needs
//! the rows to build any node (dimension rule, expansion, folding by [`apply_op`] in the
//! rewrite rules). Cutting it would take an indirection (the table handed to the builder
//! at run time, or the rows building through a trait object) and gain nothing. The loop
//! imports only the bottom layer (graph, dimensions, errors, reals, the lowered
//! instructions `lower::{builder, scalar}`); the program, the lowering, the evaluator,
//! the checker and the printer import it from above.

mod calculus;
mod complex;
mod elementwise;
mod indexing;
mod linalg;
pub(crate) mod rows;
mod special;
mod vector;

pub use crate::real::{Scalar1, Scalar2, Scalar3, VecArgs, VectorFn};
pub(crate) use rows::edit_distance;
pub use rows::{Op, ParamKind};

use crate::builder::Builder;
use crate::dim::{Dim, DimConstraint, DimSolver};
use crate::error::Result;
use crate::graph::{NodeId, Param};
use crate::limits::{MAX_WIDTH, MAX_WORK};
use crate::lower::builder::Lower;
use crate::lower::scalar::Reg;
use crate::real::Real;

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

    /// The width `d` of the result, checked against [`MAX_WIDTH`]: a known width past it,
    /// or a symbolic one with a coefficient past it (every symbol is at least 1), is an
    /// error (which the builder prefixes with the operation's name, and the checker makes
    /// an [`ErrorKind::Limit`](crate::ErrorKind::Limit)). Rules whose result can be wider
    /// than their arguments return through here, before anything is folded or allocated
    /// at that width.
    pub fn width(&mut self, d: Dim) -> DimResult<Dim> {
        let over = match d.as_known() {
            Some(n) => n > MAX_WIDTH,
            None => d.max_coefficient() > MAX_WIDTH as u64,
        };
        if !over {
            return Ok(d);
        }
        self.solver.note_past_limit();
        Err(if d == Dim::overflowed() {
            format!("the width of the result overflows (it is past the limit {MAX_WIDTH})")
        } else {
            format!("the width of the result, {d}, is past the limit {MAX_WIDTH}")
        })
    }

    /// `work` scalar terms computed per pair (see [`node_work`]), checked against
    /// [`MAX_WORK`] (`None`: it overflows).
    pub fn work(&mut self, work: Option<usize>, what: impl FnOnce() -> String) -> DimResult<()> {
        if work.is_some_and(|w| w <= MAX_WORK) {
            return Ok(());
        }
        self.solver.note_past_limit();
        Err(format!(
            "{} {} past the limit {MAX_WORK}",
            what(),
            match work {
                Some(w) => format!("is {w} terms,"),
                None => "overflows,".to_string(),
            }
        ))
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

/// The table's expansion of the rows ([`rows`]): each row's kind, with the name, signature,
/// arity and parameter kinds of the same row.
macro_rules! op_table {
    ($( $(#[$doc:meta])* $name:ident $sig:literal ($arity:expr $(; $($pk:ident),*)?) => $kind:expr, )*) => {
        /// The operation table, indexed by [`Op`].
        pub static OPS: &[OpSpec] = &[
            $( OpSpec { name: stringify!($name), signature: $sig, arity: $arity, params: &[$($(ParamKind::$pk),*)?], kind: $kind }, )*
        ];
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

rows::op_rows!(op_table);

impl Op {
    /// The table row.
    pub fn spec(self) -> &'static OpSpec {
        &OPS[self as usize]
    }
}

/// The number of scalar terms operation `op` computes for one pair (i, j), from the
/// widths of its arguments and of its result: their sum for most operations, the
/// `n x m` table for the SoftDTW operations, the products for TensorDot and the matrix
/// products. `None` when it overflows. Bounded by [`MAX_WORK`] (checked by the dimension
/// rules when the widths are known, by [`crate::Program::instantiate`] otherwise), it
/// bounds what the evaluator allocates and what the lowering emits for the node.
pub fn node_work(op: Op, args: &[usize], params: &[Param], out: usize) -> Option<usize> {
    let linear = args.iter().try_fold(out, |s, a| s.checked_add(*a))?;
    let extra = match op {
        Op::SoftDTW_SqDist | Op::GradSoftDTW_SqDist => {
            let (n, m) = (*args.first()?, *args.get(1)?);
            // the forward table, and for the gradient the backward one
            n.checked_mul(m)?.checked_mul(2)?
        }
        Op::TensorDot => linalg::tensordot_terms(params)?,
        Op::BSpline => {
            // the recursion over the orders, each over the knot intervals
            let order = params.first().map(Param::int).unwrap_or(0);
            args.first()?
                .checked_mul(usize::try_from(order).unwrap_or(0))?
        }
        _ => 0,
    };
    linear.checked_add(extra)
}

/// Applies one operation to argument vectors (broadcasting element-wise operations).
pub fn apply_op<R: Real>(op: Op, args: &[&[R]], params: &[Param], out_dim: usize) -> Vec<R> {
    let mut out = vec![R::zero(); out_dim];
    apply_op_into(op, args, params, &mut out);
    out
}

fn bc<R: Copy>(a: &[R], k: usize) -> R {
    if a.len() == 1 { a[0] } else { a[k] }
}

/// Like [`apply_op`], into a given output.
pub fn apply_op_into<R: Real>(op: Op, args: &[&[R]], params: &[Param], out: &mut [R]) {
    let Some(prim) = op.spec().prim() else {
        out.fill(R::nan());
        return;
    };
    match prim.eval {
        Eval::Unary(f) => {
            let f = R::s1(&f);
            for (k, o) in out.iter_mut().enumerate() {
                *o = f(params, bc(args[0], k));
            }
        }
        Eval::Binary(f) => {
            let f = R::s2(&f);
            for (k, o) in out.iter_mut().enumerate() {
                *o = f(params, bc(args[0], k), bc(args[1], k));
            }
        }
        Eval::Ternary(f) => {
            let f = R::s3(&f);
            for (k, o) in out.iter_mut().enumerate() {
                *o = f(params, bc(args[0], k), bc(args[1], k), bc(args[2], k));
            }
        }
        Eval::Vector(f) => R::vf(&f)(&VecArgs { args, params }, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (k, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, k);
            assert!(op.spec().signature.starts_with(op.name()), "{}", op.name());
            // The two expansions of the rows (the table's and the enum's) agree.
            assert_eq!(op.spec().name, op.name());
            assert_eq!(op.spec().signature, op.signature());
            assert_eq!(op.spec().arity, op.arity());
            assert_eq!(op.spec().params, op.param_kinds());
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
