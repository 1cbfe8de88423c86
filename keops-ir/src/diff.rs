//! Symbolic differentiation of formulas: reverse mode over the shared DAG.
//!
//! `grad(f, v, e)` walks the nodes that depend on `v` once, in reverse topological
//! order, accumulating cotangents; each node's contribution comes from its row of the
//! operation table. Because the DAG is shared, the gradient of a formula with many
//! repeated sub-expressions stays proportional to the formula, and nested gradients
//! stay small. Forward mode (`Diff`) is the transpose of reverse mode ("double
//! backward"), which needs no second set of rules.

use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Cat, Node, NodeId, VarId};
use crate::ops::{Call, Deriv, Op};
use std::collections::HashMap;

/// `[d_v f]^T e`: the gradient of `<f, e>` with respect to variable `v`.
pub fn grad(b: &mut Builder<'_>, f: NodeId, v: VarId, e: NodeId) -> Result<NodeId> {
    let (df, de) = (b.dim(f), b.dim(e));
    b.dims.unify(&df, &de).map_err(|m| {
        Error::new(ErrorKind::Dimension, format!("Grad: the cotangent has dimension {}, the formula {}", m.right, m.left))
            .help("the third argument of Grad must have the dimension of the formula being differentiated")
    })?;
    let vdim = b.graph.var(v).dim.clone();
    let dep = b.graph.depending_on(f, v);
    if !dep.contains(&f) {
        return Ok(b.zero(vdim));
    }
    let order = b.graph.topo(&[f]);
    let mut cot: HashMap<NodeId, NodeId> = HashMap::from([(f, e)]);
    let mut result: Option<NodeId> = None;
    for n in order.into_iter().rev() {
        if !dep.contains(&n) {
            continue;
        }
        let Some(c) = cot.remove(&n) else { continue };
        if b.graph.is_zero(c) {
            continue;
        }
        match b.graph.node(n).clone() {
            Node::Var(w) if w == v => {
                result = Some(match result {
                    None => c,
                    Some(r) => b.add(r, c)?,
                });
            }
            Node::Op(op, args, params) => {
                let Some(prim) = op.spec().prim() else {
                    continue;
                };
                let rule = match prim.deriv {
                    Deriv::Zero => continue,
                    Deriv::Undefined(why) => {
                        return Err(Error::new(
                            ErrorKind::Differentiation,
                            format!("cannot differentiate {}: {why}", op.name()),
                        )
                        .help(
                            "remove this operation from the differentiated part of the formula",
                        ));
                    }
                    Deriv::Rule(rule) => rule,
                };
                let call = Call {
                    node: n,
                    args: args.clone(),
                    params,
                };
                for (k, a) in args.iter().enumerate() {
                    if !dep.contains(a) {
                        continue;
                    }
                    let contrib = rule(b, &call, c, k)?;
                    let target = b.dim(*a);
                    let contrib = b.unbroadcast(contrib, &target)?;
                    // A rule returning the wrong width is a compiler bug: report it
                    // rather than produce a gradient of the wrong shape.
                    let got = b.dim(contrib);
                    if b.dims.unify(&got, &target).is_err() {
                        return Err(Error::new(
                            ErrorKind::Differentiation,
                            format!(
                                "internal error: the derivative rule of {} gave width {got} for an argument of width {target}",
                                op.name()
                            ),
                        ));
                    }
                    let sum = match cot.get(a) {
                        None => contrib,
                        Some(prev) => b.add(*prev, contrib)?,
                    };
                    cot.insert(*a, sum);
                }
            }
            _ => {}
        }
    }
    Ok(match result {
        Some(r) => r,
        None => b.zero(vdim),
    })
}

/// Replaces every occurrence of variable `v` under `root` by `by`, simplifying.
pub fn substitute(b: &mut Builder<'_>, root: NodeId, v: VarId, by: NodeId) -> Result<NodeId> {
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    for n in b.graph.topo(&[root]) {
        let new = match b.graph.node(n).clone() {
            Node::Var(w) if w == v => by,
            Node::Op(op, args, params) => {
                let new_args: Vec<NodeId> = args.iter().map(|a| map[a]).collect();
                if new_args == args {
                    n
                } else {
                    b.op(op, &new_args, params)?
                }
            }
            _ => n,
        };
        map.insert(n, new);
    }
    Ok(map[&root])
}

/// `[d_v f] u`: forward mode, as the transpose of reverse mode.
pub fn diff(b: &mut Builder<'_>, f: NodeId, v: VarId, u: NodeId) -> Result<NodeId> {
    let (dv, du) = (b.graph.var(v).dim.clone(), b.dim(u));
    b.dims.unify(&dv, &du).map_err(|m| {
        Error::new(
            ErrorKind::Dimension,
            format!(
                "Diff: the direction has dimension {}, the variable {}",
                m.right, m.left
            ),
        )
        .help("the third argument of Diff must have the dimension of the variable")
    })?;
    let df = b.dim(f);
    let (w, wn) = b.temp_var(df.clone(), Cat::Temp);
    let jt_w = grad(b, f, v, wn)?;
    let s = b.dot(jt_w, u)?;
    let one = b.cst(1.0);
    let ju = grad(b, s, w, one)?;
    // J u does not depend on w (J^T w is linear in w); remove any leftover occurrence.
    let z = b.zero(df);
    substitute(b, ju, w, z)
}

fn var_of(b: &Builder<'_>, n: NodeId, op: &str) -> Result<VarId> {
    match b.graph.node(n) {
        Node::Var(v) => Ok(*v),
        _ => Err(Error::new(ErrorKind::Differentiation, format!("{op}: the variable to differentiate with respect to must be a variable, not an expression"))
            .help("write the variable's name, e.g. Grad(f, x_i, e_i)")),
    }
}

/// The variable a calculus operation differentiates with respect to.
pub(crate) fn wrt(b: &Builder<'_>, n: NodeId, op: Op) -> Result<VarId> {
    var_of(b, n, op.name())
}

/// `sum_k Elem(Grad(f, v, basis_k), k)`: the trace of the Jacobian of `f` (dimension of `v`).
pub fn trace_jacobian(b: &mut Builder<'_>, f: NodeId, v: VarId, what: &str) -> Result<NodeId> {
    let df = b.dim(f);
    let dv = b.graph.var(v).dim.clone();
    if df.is(1) && !dv.is(1) {
        // The Jacobian is a row: its "trace" is the sum of its entries.
        let one = b.cst(1.0);
        let g = grad(b, f, v, one)?;
        return b.sum(g);
    }
    b.dims.unify(&df, &dv).map_err(|m| {
        Error::new(
            ErrorKind::Dimension,
            format!(
                "{what}: the formula has dimension {} and the variable {}; they must be equal",
                m.left, m.right
            ),
        )
    })?;
    let n = b.known_dim(f, what)?;
    let mut total = b.zero(Dim::one());
    for k in 0..n {
        let one = b.cst(1.0);
        let basis = b.elemt(one, n, k)?;
        let g = grad(b, f, v, basis)?;
        let gk = b.elem(g, k)?;
        total = b.add(total, gk)?;
    }
    Ok(total)
}
