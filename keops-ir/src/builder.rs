//! Smart construction of formula nodes: dimension rule, sugar expansion, then the
//! simplification rules, then interning. Every stage that creates formulas (checking,
//! differentiation, simplification) goes through [`Builder::op`].
//!
//! Layering: this module, the operation table ([`crate::ops`] with its row modules),
//! [`crate::simplify`] and [`crate::diff`] import each other, and that loop is the honest
//! shape of the formula algebra. Building a node consults the table (dimension rule,
//! expansion of sugar rows, constant folding by the reference values) and the
//! construction-time rewrite rules, while the table's derivatives and expansions and the
//! rewrite rules build their results with the builder, and `Grad` expands through `diff`.
//! Nothing else joins the loop: what it uses is below it (the graph, dimensions, errors,
//! the [`Op`] enum of `ops/rows.rs`, the reals, the lowered instructions), and the
//! program, the checker, the lowering, the evaluator and the printer are above it. The
//! test `tests/module_layers.rs` of the workspace keeps it that way.

use crate::dim::{Dim, DimSolver};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Cat, Graph, Node, NodeId, Param, VarId, VarInfo, VarSource};
use crate::limits;
use crate::ops::{DimCx, Op, OpKind, ParamKind};
use crate::simplify;

/// Bound on nested rule applications during one construction: keeps simplification
/// deterministic and terminating whatever the rules do.
pub const REWRITE_DEPTH_LIMIT: u32 = 48;

/// Bound on the number of nodes a program may create (gradients of gradients of large
/// formulas grow; past this the compiler reports it instead of exhausting memory).
pub const NODE_LIMIT: usize = 2_000_000;

/// Creates nodes in a [`Graph`], resolving dimensions with a [`DimSolver`].
pub struct Builder<'a> {
    /// The graph being built.
    pub graph: &'a mut Graph,
    /// Dimension unification state.
    pub dims: &'a mut DimSolver,
    /// Whether the simplification rules run on construction.
    pub simplify: bool,
    depth: u32,
}

impl<'a> Builder<'a> {
    /// A builder that simplifies as it goes.
    pub fn new(graph: &'a mut Graph, dims: &'a mut DimSolver) -> Self {
        Builder {
            graph,
            dims,
            simplify: true,
            depth: 0,
        }
    }

    /// A builder that builds exactly what it is asked (for tests of the rules).
    pub fn raw(graph: &'a mut Graph, dims: &'a mut DimSolver) -> Self {
        Builder {
            graph,
            dims,
            simplify: false,
            depth: 0,
        }
    }

    /// Dimension of a node, resolved.
    pub fn dim(&self, n: NodeId) -> Dim {
        let d = self.graph.dim(n);
        if d.is_known() {
            d.clone()
        } else {
            self.dims.resolve(d)
        }
    }

    /// Whether the dimension of `n`, resolved, is `d` (`d` resolved); no allocation when
    /// the stored dimension is already a number (the rules ask this at every node).
    pub fn dim_is(&self, n: NodeId, d: &Dim) -> bool {
        let stored = self.graph.dim(n);
        if stored.is_known() {
            stored == d
        } else {
            &self.dims.resolve(stored) == d
        }
    }

    /// The bound on the number of nodes: [`NODE_LIMIT`], or the lower one set by
    /// [`Graph::set_node_limit`].
    pub fn node_limit(&self) -> usize {
        self.graph
            .node_limit()
            .map_or(NODE_LIMIT, |l| l.min(NODE_LIMIT))
    }

    /// The operation node `op(args; params)`, checked, expanded and simplified.
    ///
    /// Building recurses (rules and expansions build their results through this
    /// function, and `Grad` differentiates), so each level runs under [`limits::deep`].
    pub fn op(&mut self, op: Op, args: &[NodeId], params: Vec<Param>) -> Result<NodeId> {
        limits::deep(|| self.op_here(op, args, params))
    }

    fn op_here(&mut self, op: Op, args: &[NodeId], params: Vec<Param>) -> Result<NodeId> {
        let spec = op.spec();
        if args.len() != spec.arity {
            return Err(Error::new(
                ErrorKind::Arity,
                format!(
                    "{} takes {} formula argument(s), found {}",
                    spec.name,
                    spec.arity,
                    args.len()
                ),
            )
            .help(format!("the signature is {}", spec.signature)));
        }
        check_params(op, &params)?;
        let limit = self.node_limit();
        if self.graph.len() > limit {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("the formula grew past {limit} nodes"),
            )
            .help("differentiate fewer times, or split the computation into several reductions"));
        }
        let prim = match &spec.kind {
            OpKind::Expand(expand) => return expand(self, args, &params),
            OpKind::Prim(p) => *p,
        };
        let arg_dims: Vec<Dim> = args.iter().map(|a| self.dim(*a)).collect();
        let deferred_before = self.dims.deferred.len();
        let dim = {
            let mut cx = DimCx {
                args: &arg_dims,
                params: &params,
                solver: self.dims,
            };
            (prim.dim)(&mut cx)
                .map_err(|m| Error::new(ErrorKind::Dimension, format!("{}: {m}", spec.name)))?
        };
        self.dims.label_since(deferred_before, spec.name);
        let dim = if dim.is_known() {
            dim
        } else {
            self.dims.resolve(&dim)
        };
        if self.simplify && self.depth < REWRITE_DEPTH_LIMIT {
            self.depth += 1;
            let rewritten = simplify::rewrite(self, op, args, &params, &dim);
            self.depth -= 1;
            if let Some(r) = rewritten {
                return r;
            }
        }
        Ok(self.graph.intern(Node::Op(op, args.to_vec(), params), dim))
    }

    /// Interns an operation node without rules (the rules' own fallback).
    pub fn intern_op(&mut self, op: Op, args: &[NodeId], params: Vec<Param>, dim: Dim) -> NodeId {
        self.graph.intern(Node::Op(op, args.to_vec(), params), dim)
    }

    /// A scalar constant.
    pub fn cst(&mut self, x: f64) -> NodeId {
        self.graph.constant(x)
    }

    /// The zero vector.
    pub fn zero(&mut self, d: Dim) -> NodeId {
        let d = self.dims.resolve(&d);
        self.graph.intern(Node::Zero(d.clone()), d)
    }

    /// A placeholder variable (cotangents while differentiating).
    pub fn temp_var(&mut self, dim: Dim, cat: Cat) -> (VarId, NodeId) {
        self.graph.add_var(VarInfo {
            name: None,
            cat,
            dim,
            source: VarSource::Temp,
            declared_at: None,
        })
    }

    /// The node of a variable.
    pub fn var(&mut self, v: VarId) -> NodeId {
        self.graph.var_node(v)
    }

    /// `a + b`
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Add, &[a, b], vec![])
    }
    /// `a - b`
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Subtract, &[a, b], vec![])
    }
    /// `a * b`
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Mult, &[a, b], vec![])
    }
    /// `a / b`
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Divide, &[a, b], vec![])
    }
    /// `-a`
    pub fn neg(&mut self, a: NodeId) -> Result<NodeId> {
        self.op(Op::Minus, &[a], vec![])
    }
    /// `c * a` for a float constant `c`.
    pub fn scale(&mut self, c: f64, a: NodeId) -> Result<NodeId> {
        let c = self.cst(c);
        self.mul(c, a)
    }
    /// A unary operation without parameters.
    pub fn f1(&mut self, op: Op, a: NodeId) -> Result<NodeId> {
        self.op(op, &[a], vec![])
    }
    /// A binary operation without parameters.
    pub fn f2(&mut self, op: Op, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(op, &[a, b], vec![])
    }
    /// Sum of coordinates.
    pub fn sum(&mut self, a: NodeId) -> Result<NodeId> {
        self.op(Op::Sum, &[a], vec![])
    }
    /// Scalar repeated to dimension `d`.
    pub fn sumt(&mut self, a: NodeId, d: usize) -> Result<NodeId> {
        self.op(Op::SumT, &[a], vec![Param::Int(d as i64)])
    }
    /// Coordinate `m`.
    pub fn elem(&mut self, a: NodeId, m: usize) -> Result<NodeId> {
        self.op(Op::Elem, &[a], vec![Param::Int(m as i64)])
    }
    /// Coordinates `start .. start + d`.
    pub fn extract(&mut self, a: NodeId, start: usize, d: usize) -> Result<NodeId> {
        self.op(
            Op::Extract,
            &[a],
            vec![Param::Int(start as i64), Param::Int(d as i64)],
        )
    }
    /// Scalar `a` at coordinate `m` of a zero vector of dimension `n`.
    pub fn elemt(&mut self, a: NodeId, n: usize, m: usize) -> Result<NodeId> {
        self.op(
            Op::ElemT,
            &[a],
            vec![Param::Int(n as i64), Param::Int(m as i64)],
        )
    }
    /// `a` at `start` in a zero vector of dimension `d`.
    pub fn extractt(&mut self, a: NodeId, start: usize, d: usize) -> Result<NodeId> {
        self.op(
            Op::ExtractT,
            &[a],
            vec![Param::Int(start as i64), Param::Int(d as i64)],
        )
    }
    /// Scalar product.
    pub fn dot(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Scalprod, &[a, b], vec![])
    }
    /// Concatenation.
    pub fn concat(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.op(Op::Concat, &[a, b], vec![])
    }

    /// Known dimension of a node, or an error naming what needs declaring.
    pub fn known_dim(&self, n: NodeId, what: &str) -> Result<usize> {
        self.dim(n).as_known().ok_or_else(|| {
            Error::new(
                ErrorKind::Dimension,
                format!(
                    "{what} needs a known dimension, found the symbolic dimension {}",
                    self.dim(n)
                ),
            )
            .help("declare the dimensions of the variables involved, e.g. `x_i: 3`")
        })
    }

    /// Sums `contrib` down to dimension 1 when it was computed for a broadcast scalar.
    pub fn unbroadcast(&mut self, contrib: NodeId, target: &Dim) -> Result<NodeId> {
        let d = self.dim(contrib);
        if target.is(1) && !d.is(1) {
            self.sum(contrib)
        } else {
            Ok(contrib)
        }
    }

    /// Broadcasts a scalar to dimension `d` (identity when already of that dimension).
    pub fn broadcast_to(&mut self, a: NodeId, d: &Dim) -> Result<NodeId> {
        let da = self.dim(a);
        if &da == d || !da.is(1) {
            return Ok(a);
        }
        match d.as_known() {
            Some(n) => self.sumt(a, n),
            None => {
                // SumT needs a number: multiply by a vector of ones of the symbolic width.
                let z = self.zero(d.clone());
                let one = self.cst(1.0);
                let ones = self.add(z, one)?;
                self.mul(a, ones)
            }
        }
    }
}

fn check_params(op: Op, params: &[Param]) -> Result<()> {
    let spec = op.spec();
    let required = spec
        .params
        .iter()
        .filter(|k| **k != ParamKind::OptList)
        .count();
    if params.len() < required || params.len() > spec.params.len() {
        return Err(Error::new(
            ErrorKind::Parameter,
            format!(
                "{} takes {} integer parameter(s), found {}",
                spec.name,
                spec.params.len(),
                params.len()
            ),
        )
        .help(format!("the signature is {}", spec.signature)));
    }
    for (k, (p, kind)) in params.iter().zip(spec.params).enumerate() {
        if *kind == ParamKind::Int && matches!(p, Param::List(_)) {
            return Err(Error::new(
                ErrorKind::Parameter,
                format!(
                    "parameter {} of {} must be an integer, found a list",
                    k + 1,
                    spec.name
                ),
            )
            .help(format!("the signature is {}", spec.signature)));
        }
    }
    Ok(())
}
