//! Programs built through the `Builder` API, not parsed (the text of a 100,000-term
//! formula is not what they are about): shared by `tests/grad_size.rs` and
//! `examples/grad_scaling.rs`, which include this file.

use keops_ir::builder::Builder;
use keops_ir::dim::{Dim, DimSolver};
use keops_ir::graph::{Graph, VarInfo, VarSource};
use keops_ir::program::{BufInfo, Reduce};
use keops_ir::{ArgInfo, Cat, NodeId, Op, Program, ReductionKind, Step};

/// `Sum_Reduction(F, 0)` over `nargs` scalar i-variables `x0, x1, ...`, `F` built by
/// `build` from their nodes.
pub fn program(nargs: usize, build: impl FnOnce(&mut Builder<'_>, &[NodeId]) -> NodeId) -> Program {
    let mut graph = Graph::new();
    let mut dims = DimSolver::new();
    let (mut args, mut nodes) = (Vec::new(), Vec::new());
    for k in 0..nargs {
        let name = format!("x{k}");
        let (_, node) = graph.add_var(VarInfo {
            name: Some(name.clone()),
            cat: Cat::I,
            dim: Dim::one(),
            source: VarSource::Arg(k),
            declared_at: None,
        });
        nodes.push(node);
        args.push(ArgInfo {
            name: Some(name),
            dim: Dim::one(),
            cats: vec![Cat::I],
            concise: false,
        });
    }
    let formula = build(&mut Builder::new(&mut graph, &mut dims), &nodes);
    let values = graph.dim(formula).clone();
    Program {
        graph,
        dims,
        args,
        bufs: vec![BufInfo {
            rows: Cat::I,
            values,
            indices: Dim::known(0),
        }],
        steps: vec![Step::Reduce(Reduce {
            kind: ReductionKind::Sum,
            out_rows: Cat::I,
            formula,
            weight: None,
            out: 0,
        })],
        output: 0,
    }
}

/// `t(0) op t(1) op ... op t(n - 1)`, left to right.
pub fn chain(
    b: &mut Builder<'_>,
    n: usize,
    op: Op,
    mut t: impl FnMut(&mut Builder<'_>, usize) -> NodeId,
) -> NodeId {
    let mut acc = t(b, 0);
    for k in 1..n {
        let next = t(b, k);
        acc = b.f2(op, acc, next).expect("the chain builds");
    }
    acc
}
