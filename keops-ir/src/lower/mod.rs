//! Stage 4: the lowered form, designed for two emitters (Rust source for the CPU, PTX for
//! the GPU).
//!
//! A kernel lowers to flat, typed blocks of scalar instructions over numbered registers
//! ([`Block`]): the formula (inputs to values) and the reduction's hooks (init,
//! accumulate, merge, finalize). All dimensions are known (programs are instantiated
//! first), so every vector is a fixed set of registers; emitters map instructions one to
//! one and place the blocks in their loop structure (tiles, threads, blocks).

pub(crate) mod builder;
mod form;
pub mod math;
pub(crate) mod scalar;

pub use builder::{Block, Lower};
pub use form::{Hooks, KernelInput, LoweredKernel, Precision, SumMode};
pub use scalar::{Inst, Reg, SOp, SOpSpec, Ty, Val};

use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Graph, Node, NodeId, VarId};
use crate::ops::{LowerArgs, Lowering, Op};
use crate::program::{Program, Reduce};
use crate::reduction::{INDEX_NONE, Order, ReductionKind, Rule};
use std::collections::HashMap;

/// Upper bound on the instructions of one formula block: beyond it, code generation
/// would take too long and the kernel would not fit in registers anyway.
pub const INSTRUCTION_LIMIT: usize = 200_000;

/// Upper bound on the instructions of a reduction's hooks (init, accumulate, merge,
/// finalize; see [`hooks_size`]). The merge of two K-selections inserts each of the K
/// slots of one into the other, about `8 K^2` instructions per coordinate of F, which
/// bounds K x K x the width of F by about 400,000 (K = 630 for a scalar F).
pub const HOOKS_INSTRUCTION_LIMIT: usize = 16 * INSTRUCTION_LIMIT;

/// Replaces the math functions of a kernel (exp, log, sin, ...) by sequences of primitive
/// instructions for the given precision (the [`math`] library), so that every backend
/// emits the same algorithms.
pub fn expand_math(k: &LoweredKernel, p: Precision) -> LoweredKernel {
    math::expand_kernel(k, p)
}

/// Replaces the math functions of a block (see [`expand_math`]); `tys` are the types of
/// its registers. Returns the new block and the types of all its registers.
pub fn expand_block_math(tys: &[Ty], b: &Block, p: Precision) -> (Block, Vec<Ty>) {
    let mut l = Lower::with_types(tys.to_vec());
    let b = math::expand_block(&mut l, b, p);
    (b, l.tys)
}

/// Replaces the math functions of a reduction's hooks (see [`expand_math`]).
pub fn expand_hooks_math(tys: &[Ty], h: &Hooks, p: Precision) -> (Hooks, Vec<Ty>) {
    let mut l = Lower::with_types(tys.to_vec());
    let h = h.map_blocks(|b| math::expand_block(&mut l, b, p));
    (h, l.tys)
}

fn limit() -> Error {
    Error::new(
        ErrorKind::Limit,
        format!("the formula lowers to more than {INSTRUCTION_LIMIT} scalar instructions"),
    )
    .help("reduce the dimensions involved, or split the formula into several kernels")
}

/// Lowers the formulas at `roots` (all dimensions known) into a block whose parameters
/// are the components of the variables used, in the order returned.
pub fn lower_formula(
    l: &mut Lower,
    g: &Graph,
    roots: &[NodeId],
) -> Result<(Block, Vec<KernelInput>)> {
    let order = g.topo(roots);
    let mut regs: HashMap<NodeId, Vec<Reg>> = HashMap::new();
    let mut var_regs: HashMap<VarId, Vec<Reg>> = HashMap::new();
    let mut inputs = Vec::new();
    let mut params = Vec::new();
    for v in g.vars_of(roots) {
        let info = g.var(v);
        let dim = info.dim.as_known().ok_or_else(|| {
            Error::new(
                ErrorKind::Dimension,
                "cannot lower a formula with symbolic dimensions; instantiate it first",
            )
        })?;
        let rs: Vec<Reg> = (0..dim).map(|_| l.param(Ty::F)).collect();
        params.extend(&rs);
        inputs.push(KernelInput {
            var: v,
            cat: info.cat,
            source: info.source,
            dim,
        });
        var_regs.insert(v, rs);
    }
    let mut count = 0usize;
    for n in &order {
        let out_dim = g.known_dim(*n).ok_or_else(|| {
            Error::new(
                ErrorKind::Dimension,
                "cannot lower a formula with symbolic dimensions",
            )
        })?;
        if out_dim > INSTRUCTION_LIMIT {
            return Err(limit());
        }
        let r = match g.node(*n) {
            Node::Var(v) => var_regs[v].clone(),
            Node::Const(b) => vec![l.cst(f64::from_bits(*b))],
            Node::Zero(_) => vec![l.cst(0.0); out_dim],
            Node::Op(op, args, params) => {
                let arg_regs: Vec<Vec<Reg>> = args.iter().map(|a| regs[a].clone()).collect();
                lower_op(l, *op, &arg_regs, params, out_dim)?
            }
        };
        count = count.saturating_add(r.len());
        if count > INSTRUCTION_LIMIT {
            return Err(limit());
        }
        regs.insert(*n, r);
    }
    let results = roots.iter().flat_map(|r| regs[r].clone()).collect();
    Ok((l.finish(params, results), inputs))
}

/// Lowers one operation whose widths are known: its output registers from its
/// arguments' registers (`out_dim` of them; a width-1 argument broadcasts).
pub fn lower_op(
    l: &mut Lower,
    op: Op,
    args: &[Vec<Reg>],
    params: &[crate::graph::Param],
    out_dim: usize,
) -> Result<Vec<Reg>> {
    let prim = op.spec().prim().ok_or_else(|| {
        Error::new(
            ErrorKind::Limit,
            format!("{} should have been expanded", op.name()),
        )
    })?;
    // What the operation emits is about the terms it computes: past the limit, say so
    // before emitting (SoftDTW's table, a TensorDot's products).
    let widths: Vec<usize> = args.iter().map(Vec::len).collect();
    match crate::ops::node_work(op, &widths, params, out_dim) {
        Some(w) if w <= INSTRUCTION_LIMIT => {}
        _ => return Err(limit()),
    }
    let pick = |a: &Vec<Reg>, k: usize| if a.len() == 1 { a[0] } else { a[k] };
    Ok(match prim.lower {
        Lowering::Unary(f) => (0..out_dim)
            .map(|k| f(l, params, pick(&args[0], k)))
            .collect(),
        Lowering::Binary(f) => (0..out_dim)
            .map(|k| f(l, params, pick(&args[0], k), pick(&args[1], k)))
            .collect(),
        Lowering::Ternary(f) => (0..out_dim)
            .map(|k| {
                f(
                    l,
                    params,
                    pick(&args[0], k),
                    pick(&args[1], k),
                    pick(&args[2], k),
                )
            })
            .collect(),
        Lowering::Vector(f) => f(
            l,
            &LowerArgs {
                args,
                params,
                out_dim,
            },
        ),
    })
}

/// Lowers a reduction step of an instantiated program.
pub fn lower_reduction(p: &Program, r: &Reduce, sum_mode: SumMode) -> Result<LoweredKernel> {
    let mut l = Lower::new();
    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
    let (formula, inputs) = lower_formula(&mut l, &p.graph, &roots)?;
    let fdim = p.graph.known_dim(r.formula).unwrap_or(0);
    let gdim = r.weight.and_then(|w| p.graph.known_dim(w)).unwrap_or(1);
    check_hooks(r.kind, fdim, gdim)?;
    let hooks = lower_hooks(&mut l, r.kind, fdim, gdim, r.weight.is_some(), sum_mode);
    Ok(LoweredKernel {
        kind: r.kind,
        out_rows: r.out_rows,
        tys: l.tys,
        inputs,
        formula,
        fdim,
        gdim,
        hooks,
    })
}

/// About how many instructions the hooks of `kind` take for F of width `fdim` and G of
/// width `gdim` (an upper bound, a few times the real number); `None` when it overflows.
pub fn hooks_size(kind: ReductionKind, fdim: usize, gdim: usize) -> Option<usize> {
    let k = kind.slots();
    let linear = fdim.checked_add(gdim)?.checked_mul(64)?;
    let select = match kind.rule() {
        // accumulate: K slots per coordinate; merge: K insertions of K slots each
        Rule::Select { .. } => k
            .checked_mul(k)?
            .checked_add(k)?
            .checked_mul(fdim)?
            .checked_mul(8)?,
        Rule::Sum | Rule::LogSumExp | Rule::SoftMaxWeight => 0,
    };
    linear.checked_add(select)
}

/// Checks [`hooks_size`] against [`HOOKS_INSTRUCTION_LIMIT`]: an [`ErrorKind::Limit`]
/// error names the reduction, K and the width.
pub fn check_hooks(kind: ReductionKind, fdim: usize, gdim: usize) -> Result<()> {
    match hooks_size(kind, fdim, gdim) {
        Some(n) if n <= HOOKS_INSTRUCTION_LIMIT => Ok(()),
        _ => Err(Error::new(
            ErrorKind::Limit,
            format!(
                "the {} reduction with K = {} over a formula of width {fdim} lowers to more than {HOOKS_INSTRUCTION_LIMIT} scalar instructions",
                kind.name(),
                kind.slots()
            ),
        )
        .help("choose a smaller K, or reduce fewer coordinates at a time")),
    }
}

/// The reduction's hooks for F of dimension `fdim` and, when `weighted`, G of dimension
/// `gdim` (the accumulate block then takes G's values after F's). Their size is about
/// [`hooks_size`]: callers check it first ([`check_hooks`]; [`lower_reduction`] does).
pub fn lower_hooks(
    l: &mut Lower,
    kind: ReductionKind,
    fdim: usize,
    gdim: usize,
    weighted: bool,
    sum_mode: SumMode,
) -> Hooks {
    let rule = kind.rule();
    // Kahan sums keep a compensation per coordinate after the sums.
    let (nf, ni) = match (rule, sum_mode) {
        (Rule::Sum, SumMode::Kahan) => (2 * fdim, 0),
        (Rule::Sum, SumMode::Plain)
        | (Rule::Select { .. } | Rule::LogSumExp | Rule::SoftMaxWeight, _) => {
            kind.acc_width(fdim, gdim)
        }
    };
    let acc_tys: Vec<Ty> = std::iter::repeat_n(Ty::F, nf)
        .chain(std::iter::repeat_n(Ty::Idx, ni))
        .collect();
    let fresh_acc = |l: &mut Lower| -> Vec<Reg> { acc_tys.iter().map(|t| l.param(*t)).collect() };

    // init
    let init_vals: Vec<Reg> = match rule {
        Rule::Sum => vec![l.cst(0.0); nf],
        Rule::LogSumExp | Rule::SoftMaxWeight => {
            let mut v = vec![l.cst(f64::NEG_INFINITY)];
            v.extend(vec![l.cst(0.0); nf - 1]);
            v
        }
        Rule::Select { order, .. } => {
            let worst = match order {
                Order::Smaller => f64::INFINITY,
                Order::Larger => f64::NEG_INFINITY,
            };
            vec![l.cst(worst); nf]
        }
    };
    let none = l.idx(INDEX_NONE);
    let mut init_res = init_vals;
    init_res.extend(vec![none; ni]);
    let init = l.finish(vec![], init_res);

    // accumulate
    let acc = fresh_acc(l);
    let fvals: Vec<Reg> = (0..fdim).map(|_| l.param(Ty::F)).collect();
    let gvals: Vec<Reg> = if weighted {
        (0..gdim).map(|_| l.param(Ty::F)).collect()
    } else {
        vec![]
    };
    let j = l.param(Ty::Idx);
    let new_acc = match rule {
        Rule::Sum => match sum_mode {
            SumMode::Plain => acc.iter().zip(&fvals).map(|(a, f)| l.add(*a, *f)).collect(),
            SumMode::Kahan => {
                let (s, c) = acc.split_at(fdim);
                let mut out_s = Vec::new();
                let mut out_c = Vec::new();
                for k in 0..fdim {
                    let y = l.sub(fvals[k], c[k]);
                    let t = l.add(s[k], y);
                    let d = l.sub(t, s[k]);
                    out_c.push(l.sub(d, y));
                    out_s.push(t);
                }
                out_s.extend(out_c);
                out_s
            }
        },
        Rule::LogSumExp => {
            let w: Vec<Reg> = if gvals.is_empty() {
                vec![l.cst(1.0)]
            } else {
                gvals.clone()
            };
            lse_step(l, &acc, fvals[0], &w)
        }
        Rule::SoftMaxWeight => {
            let mut w = vec![l.cst(1.0)];
            w.extend(&gvals);
            lse_step(l, &acc, fvals[0], &w)
        }
        Rule::Select { order, .. } => {
            let k = kind.slots();
            let (mut vals, mut idx) = (acc[..nf].to_vec(), acc[nf..].to_vec());
            for (c, f) in fvals.iter().enumerate() {
                insert(l, &mut vals, &mut idx, c, fdim, k, *f, j, order);
            }
            vals.extend(idx);
            vals
        }
    };
    let mut acc_params = acc.clone();
    acc_params.extend(&fvals);
    acc_params.extend(&gvals);
    acc_params.push(j);
    let accumulate = l.finish(acc_params, new_acc);

    // merge
    let a = fresh_acc(l);
    let b = fresh_acc(l);
    let merged = match rule {
        Rule::Sum => match sum_mode {
            SumMode::Plain => a.iter().zip(&b).map(|(x, y)| l.add(*x, *y)).collect(),
            SumMode::Kahan => {
                let (s1, c1) = a.split_at(fdim);
                let (s2, c2) = b.split_at(fdim);
                let mut out_s = Vec::new();
                let mut out_c = Vec::new();
                for k in 0..fdim {
                    let s2c = l.sub(s2[k], c2[k]);
                    let y = l.sub(s2c, c1[k]);
                    let t = l.add(s1[k], y);
                    let d = l.sub(t, s1[k]);
                    out_c.push(l.sub(d, y));
                    out_s.push(t);
                }
                out_s.extend(out_c);
                out_s
            }
        },
        Rule::LogSumExp | Rule::SoftMaxWeight => lse_merge(l, &a, &b),
        Rule::Select { order, .. } => {
            let k = kind.slots();
            let (mut vals, mut idx) = (a[..nf].to_vec(), a[nf..].to_vec());
            for slot in 0..k {
                for c in 0..fdim {
                    let p = slot * fdim + c;
                    insert(l, &mut vals, &mut idx, c, fdim, k, b[p], b[nf + p], order);
                }
            }
            vals.extend(idx);
            vals
        }
    };
    let mut merge_params = a.clone();
    merge_params.extend(&b);
    let merge = l.finish(merge_params, merged);

    // finalize
    let acc = fresh_acc(l);
    let (out_values, out_indices) = kind.output_width(fdim, gdim);
    let results: Vec<Reg> = match rule {
        Rule::Sum => acc[..fdim].to_vec(),
        Rule::LogSumExp => {
            let m = acc[0];
            acc[1..]
                .iter()
                .map(|s| {
                    let lg = l.f1(SOp::Log, *s);
                    l.add(m, lg)
                })
                .collect()
        }
        Rule::SoftMaxWeight => acc[2..].iter().map(|t| l.div(*t, acc[1])).collect(),
        Rule::Select { output, .. } => {
            let mut r = Vec::new();
            if output.values() {
                r.extend(&acc[..nf]);
            }
            if output.indices() {
                r.extend(&acc[nf..]);
            }
            r
        }
    };
    let finalize = l.finish(acc, results);
    Hooks {
        acc: acc_tys,
        init,
        accumulate,
        merge,
        finalize,
        out_values,
        out_indices,
    }
}

/// Branch-free insertion of `(x, j)` into sorted slots (see [`crate::reduction`]).
#[allow(clippy::too_many_arguments)]
fn insert(
    l: &mut Lower,
    vals: &mut [Reg],
    idx: &mut [Reg],
    c: usize,
    d: usize,
    k: usize,
    x: Reg,
    j: Reg,
    order: Order,
) {
    let (mut x, mut j) = (x, j);
    for slot in 0..k {
        let p = slot * d + c;
        let (sv, si) = (vals[p], idx[p]);
        let better = match order {
            Order::Smaller => l.lt(x, sv),
            Order::Larger => l.lt(sv, x),
        };
        let same = l.eq(x, sv);
        let lower = l.emit(SOp::IdxLt, &[j, si]);
        let tie = l.and(same, lower);
        let beats = l.or(better, tie);
        vals[p] = l.select(beats, x, sv);
        idx[p] = l.select(beats, j, si);
        x = l.select(beats, sv, x);
        j = l.select(beats, si, j);
    }
}

/// One log-sum-exp step: state `(m, s..)`, term `f` with weights `w` (see
/// [`crate::reduction::lse_accumulate`], which this mirrors instruction for instruction).
fn lse_step(l: &mut Lower, acc: &[Reg], f: Reg, w: &[Reg]) -> Vec<Reg> {
    let m = acc[0];
    let gt = l.lt(m, f);
    let d = l.sub(f, m);
    let ad = l.f1(SOp::Abs, d);
    let nad = l.neg(ad);
    let t = l.f1(SOp::Exp, nad);
    let one = l.cst(1.0);
    let zero = l.cst(0.0);
    let scale = l.select(gt, t, one);
    let eq = l.eq(f, m);
    let take_one = l.or(gt, eq);
    let weight = l.select(take_one, one, t);
    let ninf = l.cst(f64::NEG_INFINITY);
    let is_ninf = l.eq(f, ninf);
    let weight = l.select(is_ninf, zero, weight);
    let new_m = l.select(gt, f, m);
    let mut out = vec![new_m];
    for (s, g) in acc[1..].iter().zip(w) {
        let a = l.mul(*s, scale);
        let b = l.mul(*g, weight);
        out.push(l.add(a, b));
    }
    out
}

/// Merge of two log-sum-exp states (mirrors [`crate::reduction::lse_merge`]).
fn lse_merge(l: &mut Lower, a: &[Reg], b: &[Reg]) -> Vec<Reg> {
    let (m1, m2) = (a[0], b[0]);
    let ninf = l.cst(f64::NEG_INFINITY);
    let empty = l.eq(m2, ninf);
    let gt = l.lt(m1, m2);
    let d = l.sub(m2, m1);
    let ad = l.f1(SOp::Abs, d);
    let nad = l.neg(ad);
    let t = l.f1(SOp::Exp, nad);
    let (one, zero) = (l.cst(1.0), l.cst(0.0));
    let eq = l.eq(m1, m2);
    let fa = l.select(gt, t, one);
    let take_one = l.or(gt, eq);
    let fb = l.select(take_one, one, t);
    let fb = l.select(empty, zero, fb);
    let mut out = vec![l.select(gt, m2, m1)];
    for (s1, s2) in a[1..].iter().zip(&b[1..]) {
        let x = l.mul(*s1, fa);
        let y = l.mul(*s2, fb);
        out.push(l.add(x, y));
    }
    out
}
