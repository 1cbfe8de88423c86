//! Simplification: a named table of local rewrite rules applied when nodes are built,
//! plus a bottom-up pass to a fixed point.
//!
//! Rules run in table order; the first that applies wins. Each returns a node built
//! through [`Builder::op`], so rules compose; [`crate::builder::REWRITE_DEPTH_LIMIT`]
//! and [`PASS_LIMIT`] bound the work, so simplification is deterministic and terminates.

use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::Result;
use crate::graph::{Node, NodeId, Param};
use crate::ops::{Op, Zeros};
use std::collections::HashMap;

/// Maximum number of whole-formula passes of [`simplify`].
pub const PASS_LIMIT: usize = 8;

/// A node about to be built.
pub struct Site<'s> {
    /// Operation.
    pub op: Op,
    /// Arguments (already simplified).
    pub args: &'s [NodeId],
    /// Parameters.
    pub params: &'s [Param],
    /// Output dimension.
    pub dim: &'s Dim,
}

/// A rewrite rule: `None` when it does not apply.
pub type RuleFn = fn(&mut Builder<'_>, &Site<'_>) -> Option<Result<NodeId>>;

/// A named rule with its pattern, for documentation and tests.
pub struct Rule {
    /// Name.
    pub name: &'static str,
    /// `before => after`.
    pub pattern: &'static str,
    /// Implementation.
    pub apply: RuleFn,
}

/// The rules, in the order they are tried.
pub static RULES: &[Rule] = &[
    Rule {
        name: "fold-constants",
        pattern: "Exp(IntCst(0)) => 1; Zero(3) + Zero(3) => Zero(3)",
        apply: fold_constants,
    },
    Rule {
        name: "zero-absorbs",
        pattern: "Zero(3) * x => Zero(3); Sum(Zero(3)) => 0",
        apply: zero_absorbs,
    },
    Rule {
        name: "add-zero",
        pattern: "x + 0 => x; 0 + x => x",
        apply: add_zero,
    },
    Rule {
        name: "sub-zero",
        pattern: "x - 0 => x; 0 - x => -x",
        apply: sub_zero,
    },
    Rule {
        name: "sub-self",
        pattern: "x - x => Zero(d)",
        apply: sub_self,
    },
    Rule {
        name: "mul-one",
        pattern: "1 * x => x; x * 1 => x",
        apply: mul_one,
    },
    Rule {
        name: "mul-minus-one",
        pattern: "-1 * x => -x",
        apply: mul_minus_one,
    },
    Rule {
        name: "div-one",
        pattern: "x / 1 => x",
        apply: div_one,
    },
    Rule {
        name: "neg-neg",
        pattern: "-(-x) => x",
        apply: neg_neg,
    },
    Rule {
        name: "const-left",
        pattern: "x * 2 => 2 * x",
        apply: const_left,
    },
    Rule {
        name: "mul-const-const",
        pattern: "2 * (3 * x) => 6 * x",
        apply: mul_const_const,
    },
    Rule {
        name: "mul-neg",
        pattern: "(-a) * b => -(a * b); a * (-b) => -(a * b)",
        apply: mul_neg,
    },
    Rule {
        name: "div-neg",
        pattern: "(-a) / b => -(a / b)",
        apply: div_neg,
    },
    Rule {
        name: "add-self",
        pattern: "x + x => 2 * x",
        apply: add_self,
    },
    Rule {
        name: "add-neg",
        pattern: "x + (-y) => x - y; (-x) + y => y - x",
        apply: add_neg,
    },
    Rule {
        name: "sub-neg",
        pattern: "x - (-y) => x + y",
        apply: sub_neg,
    },
    Rule {
        name: "scalar-identity",
        pattern: "Sum(x) => x, Elem(x, 0) => x, SumT(x, 1) => x (x scalar); Extract(x, 0, d(x)) => x",
        apply: scalar_identity,
    },
    Rule {
        name: "scalprod-scalars",
        pattern: "(a | b) => a * b (a, b scalars)",
        apply: scalprod_scalars,
    },
    Rule {
        name: "elem-of-onehot",
        pattern: "Elem(ElemT(f, n, m), m) => f; Elem(ElemT(f, n, m), k) => 0; Sum(ElemT(f, n, m)) => f; Elem(SumT(f, d), k) => f",
        apply: elem_of_structured,
    },
    Rule {
        name: "index-concat",
        pattern: "Elem(Concat(a, b), k) => Elem(a, k) or Elem(b, k - d(a)); Extract likewise",
        apply: index_concat,
    },
    Rule {
        name: "mult-elemt",
        pattern: "x * ElemT(f, n, m) => ElemT(Elem(x, m) * f, n, m)",
        apply: mult_elemt,
    },
    Rule {
        name: "mul-ones",
        pattern: "x * (Zero(d) + 1) => x; x * SumT(1, d) => x (x of dimension d)",
        apply: mul_ones,
    },
    Rule {
        name: "const-out",
        pattern: "x * (2 * y) => 2 * (x * y); (2 * x) / y => 2 * (x / y)",
        apply: const_out,
    },
    Rule {
        name: "linear-out",
        pattern: "Sum(-x) => -Sum(x); Sum(2 * x) => 2 * Sum(x) (also Elem, Extract, SumT, ElemT, ExtractT)",
        apply: linear_out,
    },
    Rule {
        name: "collect-terms",
        pattern: "a - b + (c - a) => c - b; 2 * x - x => x",
        apply: collect_terms,
    },
];

/// Maximum number of terms `collect_terms` looks at in one sum.
pub const COLLECT_LIMIT: usize = 32;

/// Applies the first rule of [`RULES`] that matches.
pub(crate) fn rewrite(
    b: &mut Builder<'_>,
    op: Op,
    args: &[NodeId],
    params: &[Param],
    dim: &Dim,
) -> Option<Result<NodeId>> {
    let site = Site {
        op,
        args,
        params,
        dim,
    };
    RULES.iter().find_map(|r| (r.apply)(b, &site))
}

/// Rebuilds the formulas at `roots` bottom-up through the rules until nothing changes
/// (at most [`PASS_LIMIT`] passes). Returns the new roots.
pub fn simplify(b: &mut Builder<'_>, roots: &[NodeId]) -> Result<Vec<NodeId>> {
    let mut roots = roots.to_vec();
    for _ in 0..PASS_LIMIT {
        let mut map: HashMap<NodeId, NodeId> = HashMap::new();
        for n in b.graph.topo(&roots) {
            let new = match b.graph.node(n).clone() {
                Node::Op(op, args, params) => {
                    let args: Vec<NodeId> = args.iter().map(|a| map[a]).collect();
                    b.op(op, &args, params)?
                }
                _ => n,
            };
            map.insert(n, new);
        }
        let next: Vec<NodeId> = roots.iter().map(|r| map[r]).collect();
        if next == roots {
            break;
        }
        roots = next;
    }
    Ok(roots)
}

fn cval(b: &Builder<'_>, n: NodeId) -> Option<f64> {
    b.graph.const_value(n)
}

fn is_const(b: &Builder<'_>, n: NodeId) -> bool {
    matches!(b.graph.node(n), Node::Const(_) | Node::Zero(_))
}

fn op_of(b: &Builder<'_>, n: NodeId) -> Option<(Op, Vec<NodeId>, Vec<Param>)> {
    match b.graph.node(n) {
        Node::Op(op, args, params) => Some((*op, args.clone(), params.clone())),
        _ => None,
    }
}

fn same_dim(b: &Builder<'_>, n: NodeId, d: &Dim) -> bool {
    b.dim_is(n, d)
}

fn fold_constants(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    let prim = s.op.spec().prim()?;
    if !prim.fold || !s.args.iter().all(|a| is_const(b, *a)) {
        return None;
    }
    let out_dim = s.dim.as_known()?;
    let mut values = Vec::new();
    for a in s.args {
        let n = b.dim(*a).as_known()?;
        values.push(match b.graph.node(*a) {
            Node::Const(bits) => vec![f64::from_bits(*bits); n],
            _ => vec![0.0; n],
        });
    }
    let refs: Vec<&[f64]> = values.iter().map(|v| v.as_slice()).collect();
    let out = crate::ops::apply_op::<f64>(s.op, &refs, s.params, out_dim);
    if out.iter().all(|x| *x == 0.0) {
        return Some(Ok(b.zero(s.dim.clone())));
    }
    (out_dim == 1 && out[0].is_finite()).then(|| Ok(b.cst(out[0])))
}

fn zero_absorbs(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    let zeros = s.op.spec().prim()?.zeros;
    let hit = match zeros {
        Zeros::None => false,
        Zeros::Any => s.args.iter().any(|a| b.graph.is_zero(*a)),
        Zeros::First => b.graph.is_zero(s.args[0]),
    };
    hit.then(|| Ok(b.zero(s.dim.clone())))
}

fn add_zero(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Add {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    if b.graph.is_zero(y) && same_dim(b, x, s.dim) {
        return Some(Ok(x));
    }
    (b.graph.is_zero(x) && same_dim(b, y, s.dim)).then_some(Ok(y))
}

fn sub_zero(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Subtract {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    if b.graph.is_zero(y) && same_dim(b, x, s.dim) {
        return Some(Ok(x));
    }
    (b.graph.is_zero(x) && same_dim(b, y, s.dim)).then(|| b.neg(y))
}

fn sub_self(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    (s.op == Op::Subtract && s.args[0] == s.args[1]).then(|| Ok(b.zero(s.dim.clone())))
}

fn mul_one(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    if cval(b, x) == Some(1.0) && same_dim(b, y, s.dim) {
        return Some(Ok(y));
    }
    (cval(b, y) == Some(1.0) && same_dim(b, x, s.dim)).then_some(Ok(x))
}

fn mul_minus_one(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    (cval(b, x) == Some(-1.0) && same_dim(b, y, s.dim)).then(|| b.neg(y))
}

fn div_one(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    (s.op == Op::Divide && cval(b, s.args[1]) == Some(1.0) && same_dim(b, s.args[0], s.dim))
        .then_some(Ok(s.args[0]))
}

fn neg_neg(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Minus {
        return None;
    }
    match op_of(b, s.args[0]) {
        Some((Op::Minus, inner, _)) => Some(Ok(inner[0])),
        _ => None,
    }
}

fn const_left(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    (cval(b, y).is_some() && cval(b, x).is_none()).then(|| b.mul(y, x))
}

fn mul_const_const(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let c1 = cval(b, s.args[0])?;
    let (Op::Mult, inner, _) = op_of(b, s.args[1])? else {
        return None;
    };
    let c2 = cval(b, inner[0])?;
    let c = b.cst(c1 * c2);
    Some(b.mul(c, inner[1]))
}

fn mul_neg(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    if let Some((Op::Minus, inner, _)) = op_of(b, x) {
        return Some(b.mul(inner[0], y).and_then(|p| b.neg(p)));
    }
    if let Some((Op::Minus, inner, _)) = op_of(b, y) {
        return Some(b.mul(x, inner[0]).and_then(|p| b.neg(p)));
    }
    None
}

fn div_neg(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Divide {
        return None;
    }
    let (Op::Minus, inner, _) = op_of(b, s.args[0])? else {
        return None;
    };
    Some(b.div(inner[0], s.args[1]).and_then(|q| b.neg(q)))
}

fn add_self(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    (s.op == Op::Add && s.args[0] == s.args[1]).then(|| b.scale(2.0, s.args[0]))
}

fn add_neg(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Add {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    if let Some((Op::Minus, inner, _)) = op_of(b, y) {
        return Some(b.sub(x, inner[0]));
    }
    if let Some((Op::Minus, inner, _)) = op_of(b, x) {
        return Some(b.sub(y, inner[0]));
    }
    None
}

fn sub_neg(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Subtract {
        return None;
    }
    let (Op::Minus, inner, _) = op_of(b, s.args[1])? else {
        return None;
    };
    Some(b.add(s.args[0], inner[0]))
}

fn scalar_identity(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    let x = *s.args.first()?;
    let dx = b.dim(x);
    let hit = match s.op {
        Op::Sum => dx.is(1),
        Op::Elem => dx.is(1) && s.params[0].int() == 0,
        Op::SumT => dx.is(1) && s.params[0].int() == 1,
        Op::Extract => s.params[0].int() == 0 && dx.as_known() == Some(s.params[1].int() as usize),
        _ => false,
    };
    hit.then_some(Ok(x))
}

fn scalprod_scalars(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    (s.op == Op::Scalprod && b.dim(s.args[0]).is(1) && b.dim(s.args[1]).is(1))
        .then(|| b.mul(s.args[0], s.args[1]))
}

fn elem_of_structured(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    let (inner_op, inner, ip) = op_of(b, *s.args.first()?)?;
    match (s.op, inner_op) {
        (Op::Elem, Op::ElemT) => {
            let k = s.params[0].int();
            Some(Ok(if k == ip[1].int() {
                inner[0]
            } else {
                b.zero(Dim::one())
            }))
        }
        (Op::Sum, Op::ElemT) | (Op::Elem, Op::SumT) => Some(Ok(inner[0])),
        _ => None,
    }
}

fn index_concat(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if !matches!(s.op, Op::Elem | Op::Extract) {
        return None;
    }
    let (Op::Concat, inner, _) = op_of(b, s.args[0])? else {
        return None;
    };
    let da = b.dim(inner[0]).as_known()? as i64;
    let start = s.params[0].int();
    let len = if s.op == Op::Elem {
        1
    } else {
        s.params[1].int()
    };
    let (part, offset) = if start + len <= da {
        (inner[0], start)
    } else if start >= da {
        (inner[1], start - da)
    } else {
        return None;
    };
    let mut params = s.params.to_vec();
    params[0] = Param::Int(offset);
    Some(b.op(s.op, &[part], params))
}

fn mult_elemt(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let (x, e) = match (op_of(b, s.args[0]), op_of(b, s.args[1])) {
        (_, Some((Op::ElemT, inner, p))) => (s.args[0], (inner[0], p)),
        (Some((Op::ElemT, inner, p)), _) => (s.args[1], (inner[0], p)),
        _ => return None,
    };
    let (f, p) = e;
    let (n, m) = (p[0].int() as usize, p[1].int() as usize);
    // ElemT(f, 1, 0) is a scalar that broadcasts: only rewrite when no broadcast happens.
    if s.dim.as_known() != Some(n) {
        return None;
    }
    Some((|| {
        let xm = if b.dim(x).is(1) { x } else { b.elem(x, m)? };
        let prod = b.mul(xm, f)?;
        b.elemt(prod, n, m)
    })())
}

/// Whether `n` is a vector of ones (`Zero(d) + 1` or `SumT(1, d)`), as built by
/// [`Builder::broadcast_to`].
fn is_ones(b: &Builder<'_>, n: NodeId) -> bool {
    match op_of(b, n) {
        Some((Op::Add, a, _)) => b.graph.is_zero(a[0]) && cval(b, a[1]) == Some(1.0),
        Some((Op::SumT, a, _)) => cval(b, a[0]) == Some(1.0),
        _ => false,
    }
}

fn mul_ones(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if s.op != Op::Mult {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    if is_ones(b, y) && same_dim(b, x, s.dim) {
        return Some(Ok(x));
    }
    (is_ones(b, x) && same_dim(b, y, s.dim)).then_some(Ok(y))
}

fn const_out(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if !matches!(s.op, Op::Mult | Op::Divide) {
        return None;
    }
    let (x, y) = (s.args[0], s.args[1]);
    let scaled = |b: &Builder<'_>, n: NodeId| match op_of(b, n) {
        Some((Op::Mult, a, _)) if cval(b, a[0]).is_some() && cval(b, n).is_none() => {
            Some((a[0], a[1]))
        }
        _ => None,
    };
    match s.op {
        Op::Mult if cval(b, x).is_none() => {
            if let Some((c, inner)) = scaled(b, y) {
                return Some(b.mul(x, inner).and_then(|p| b.mul(c, p)));
            }
            let (c, inner) = scaled(b, x)?;
            Some(b.mul(inner, y).and_then(|p| b.mul(c, p)))
        }
        Op::Divide => {
            let (c, inner) = scaled(b, x)?;
            Some(b.div(inner, y).and_then(|q| b.mul(c, q)))
        }
        _ => None,
    }
}

fn linear_out(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if !matches!(
        s.op,
        Op::Sum | Op::Elem | Op::Extract | Op::SumT | Op::ElemT | Op::ExtractT
    ) {
        return None;
    }
    let (inner_op, inner, _) = op_of(b, s.args[0])?;
    match inner_op {
        Op::Minus => Some(
            b.op(s.op, &[inner[0]], s.params.to_vec())
                .and_then(|n| b.neg(n)),
        ),
        Op::Mult if cval(b, inner[0]).is_some() && b.dim(inner[1]) == b.dim(s.args[0]) => {
            let c = inner[0];
            Some(
                b.op(s.op, &[inner[1]], s.params.to_vec())
                    .and_then(|n| b.mul(c, n)),
            )
        }
        _ => None,
    }
}

/// Maximum number of nodes `collect_terms` visits while flattening one sum (terms and
/// the `+`, `-`, negations and constant factors above them).
///
/// Without it, flattening a long left-leaning chain of sums walked down the whole chain
/// before finding its first term, at every new `+` of the chain: building a sum of `n`
/// terms (the gradient of a product of `n` factors) took time quadratic in `n`.
pub const COLLECT_VISIT_LIMIT: usize = 8 * COLLECT_LIMIT;

/// Flattens a sum into `(term, coefficient)` pairs, left to right: at most
/// [`COLLECT_LIMIT`] terms (plus one) and [`COLLECT_VISIT_LIMIT`] visited nodes, else
/// `false` (as soon as the terms found plus the nodes left to visit exceed the limit). Iterative (an explicit stack), so it never recurses into a deep formula.
fn terms(
    b: &Builder<'_>,
    roots: [(NodeId, f64); 2],
    dim: &Dim,
    out: &mut Vec<(NodeId, f64)>,
) -> bool {
    let mut stack: Vec<(NodeId, f64)> = vec![roots[1], roots[0]];
    let mut visits = 0usize;
    while let Some((n, coef)) = stack.pop() {
        // Every node still on the stack gives at least one term: past the limit already,
        // stop now rather than at the last term (a long chain is not walked to its end).
        if out.len() + stack.len() > COLLECT_LIMIT || visits >= COLLECT_VISIT_LIMIT {
            return false;
        }
        visits += 1;
        if b.dim_is(n, dim) {
            match b.graph.node(n) {
                Node::Op(Op::Add, a, _) => {
                    stack.push((a[1], coef));
                    stack.push((a[0], coef));
                    continue;
                }
                Node::Op(Op::Subtract, a, _) => {
                    stack.push((a[1], -coef));
                    stack.push((a[0], coef));
                    continue;
                }
                Node::Op(Op::Minus, a, _) => {
                    stack.push((a[0], -coef));
                    continue;
                }
                Node::Op(Op::Mult, a, _) if b.dim_is(a[1], dim) => {
                    if let Some(k) = cval(b, a[0]) {
                        stack.push((a[1], coef * k));
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push((n, coef));
    }
    true
}

fn collect_terms(b: &mut Builder<'_>, s: &Site<'_>) -> Option<Result<NodeId>> {
    if !matches!(s.op, Op::Add | Op::Subtract) {
        return None;
    }
    let mut flat = Vec::new();
    let sign = if s.op == Op::Add { 1.0 } else { -1.0 };
    if !terms(b, [(s.args[0], 1.0), (s.args[1], sign)], s.dim, &mut flat) {
        return None;
    }
    let mut combined: Vec<(NodeId, f64)> = Vec::new();
    for (t, c) in &flat {
        match combined.iter_mut().find(|(u, _)| u == t) {
            Some(entry) => entry.1 += c,
            None => combined.push((*t, *c)),
        }
    }
    combined.retain(|(_, c)| *c != 0.0);
    if combined.len() == flat.len() {
        return None;
    }
    // Positive terms first, so the result starts without a minus sign when it can.
    combined.sort_by_key(|(_, c)| *c < 0.0);
    Some((|| {
        let mut acc: Option<NodeId> = None;
        for (t, c) in combined {
            let mag = c.abs();
            let term = if mag == 1.0 { t } else { b.scale(mag, t)? };
            acc = Some(match (acc, c > 0.0) {
                (None, true) => term,
                (None, false) => b.neg(term)?,
                (Some(a), true) => b.add(a, term)?,
                (Some(a), false) => b.sub(a, term)?,
            });
        }
        Ok(match acc {
            Some(a) => b.broadcast_to(a, s.dim)?,
            None => b.zero(s.dim.clone()),
        })
    })())
}
