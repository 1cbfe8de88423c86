//! Sizes of gradients (issue 14, item 8): the gradient of a product of `n` factors, of a
//! sum of `n` terms or of an `n`-deep nesting has a number of nodes linear in `n`; a
//! gradient that would pass the node limit is an `ErrorKind::Limit` error, not an
//! exhausted memory; and formulas of 100,000 terms or levels differentiate on a thread
//! with a 2 MiB stack. (Their times are printed by `examples/grad_scaling.rs`.)
//!
//! The formulas are built through the `Builder` API rather than parsed: the text of a
//! 100,000-term formula is not what these tests are about.

mod built;

use built::{chain, program};
use keops_ir::builder::{Builder, NODE_LIMIT};
use keops_ir::dim::{Dim, DimSolver};
use keops_ir::graph::{Graph, VarInfo, VarSource};
use keops_ir::{Cat, ErrorKind, Op, Program};

/// `x * x * ... * x`, `n` factors.
fn repeated_product(n: usize) -> Program {
    program(1, |b, x| chain(b, n, Op::Mult, |_, _| x[0]))
}

/// `x0 * x1 * ... * x(n-1)`.
fn distinct_product(n: usize) -> Program {
    program(n, |b, x| chain(b, n, Op::Mult, |_, k| x[k]))
}

/// `Sin(1 * x) + Sin(2 * x) + ... + Sin(n * x)`.
fn sum_of_terms(n: usize) -> Program {
    program(1, |b, x| {
        chain(b, n, Op::Add, |b, k| {
            let kx = b.scale((k + 1) as f64, x[0]).expect("builds");
            b.f1(Op::Sin, kx).expect("builds")
        })
    })
}

/// `n` nested `ops`: `Exp(Sin(Exp(Sin(... x ...))))` for `[Sin, Exp]`.
fn nested(n: usize, ops: &[Op]) -> Program {
    program(1, |b, x| {
        let mut acc = x[0];
        for _ in 0..n {
            for op in ops {
                acc = b.f1(*op, acc).expect("builds");
            }
        }
        acc
    })
}

/// Nodes of the gradient of `p` with respect to argument `pos`.
fn grad_nodes(p: &Program, pos: usize) -> usize {
    p.grad(pos, "e").expect("the gradient builds").node_count()
}

#[test]
fn the_builder_api_builds_what_the_parser_builds() {
    // The programs of these tests are those of the formula texts.
    let built = distinct_product(3).to_string();
    let parsed =
        Program::parse("x0 = Vi(1); x1 = Vi(1); x2 = Vi(1); Sum_Reduction(x0 * x1 * x2, 0)")
            .expect("parses")
            .to_string();
    assert_eq!(built, parsed);
    let built = sum_of_terms(2).to_string();
    let parsed = Program::parse("x0 = Vi(1); Sum_Reduction(Sin(x0) + Sin(2 * x0), 0)")
        .expect("parses")
        .to_string();
    assert_eq!(built, parsed);
}

#[test]
fn gradient_of_a_product_has_a_linear_number_of_nodes() {
    for (name, make) in [
        ("x * x * ... * x", repeated_product as fn(usize) -> Program),
        ("x0 * x1 * ...", distinct_product),
    ] {
        let sizes: Vec<(usize, usize)> = [1000, 2000, 4000]
            .into_iter()
            .map(|n| {
                // With respect to the middle factor.
                let p = make(n);
                (n, grad_nodes(&p, p.args.len() / 2))
            })
            .collect();
        for w in sizes.windows(2) {
            let ((n1, g1), (n2, g2)) = (w[0], w[1]);
            assert!(
                g2 < 3 * g1,
                "{name}: {g1} nodes for {n1} factors, {g2} for {n2}"
            );
        }
        for (n, g) in sizes {
            assert!(g <= 5 * n + 16, "{name}: {g} nodes for {n} factors");
        }
    }
}

#[test]
fn gradient_of_sums_and_nestings_has_a_linear_number_of_nodes() {
    for (name, make) in [
        ("sum of Sin(k * x)", sum_of_terms as fn(usize) -> Program),
        ("nested Exp(Sin(.))", |n| nested(n, &[Op::Sin, Op::Exp])),
        ("nested Exp(.)", |n| nested(n, &[Op::Exp])),
    ] {
        let g: Vec<usize> = [1000, 2000, 4000]
            .into_iter()
            .map(|n| grad_nodes(&make(n), 0))
            .collect();
        assert!(g[1] < 3 * g[0] && g[2] < 3 * g[1], "{name}: {g:?}");
        assert!(g[2] <= 8 * 4000 + 16, "{name}: {g:?}");
    }
}

#[test]
fn gradient_past_the_node_limit_is_a_limit_error() {
    let mut p = repeated_product(4000);
    let full = grad_nodes(&p, 0);
    // Room for half the gradient only.
    p.graph.set_node_limit(p.graph.len() + full / 2);
    let e = p.grad(0, "e").expect_err("the gradient does not fit");
    assert_eq!(e.kind, ErrorKind::Limit, "{e:?}");
    assert!(
        e.message.contains(&(p.graph.len() + full / 2).to_string()),
        "{}",
        e.message
    );
    // And the gradient program, simplified, the same.
    let e = p
        .gradient_program(0, "e")
        .expect_err("the gradient does not fit");
    assert_eq!(e.kind, ErrorKind::Limit);
    // Room for it: it builds.
    p.graph.set_node_limit(p.graph.len() + 2 * full);
    assert_eq!(grad_nodes(&p, 0), full);
}

#[test]
fn a_node_limit_above_the_default_keeps_the_default() {
    let mut graph = Graph::new();
    let mut dims = DimSolver::new();
    assert_eq!(graph.node_limit(), None);
    assert_eq!(Builder::new(&mut graph, &mut dims).node_limit(), NODE_LIMIT);
    graph.set_node_limit(10 * NODE_LIMIT);
    assert_eq!(Builder::new(&mut graph, &mut dims).node_limit(), NODE_LIMIT);
    graph.set_node_limit(10);
    assert_eq!(Builder::new(&mut graph, &mut dims).node_limit(), 10);
}

#[test]
fn building_past_the_node_limit_is_a_limit_error() {
    // Through the builder directly: every new node is checked.
    let mut graph = Graph::new();
    graph.set_node_limit(100);
    let mut dims = DimSolver::new();
    let (_, x) = graph.add_var(VarInfo {
        name: Some("x".into()),
        cat: Cat::I,
        dim: Dim::one(),
        source: VarSource::Arg(0),
        declared_at: None,
    });
    let mut b = Builder::new(&mut graph, &mut dims);
    let mut acc = x;
    let mut err = None;
    for _ in 0..1000 {
        match b.f1(Op::Exp, acc) {
            Ok(n) => acc = n,
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let e = err.expect("1000 nested Exp do not fit in 100 nodes");
    assert_eq!(e.kind, ErrorKind::Limit);
    assert!(graph.len() <= 101, "{} nodes", graph.len());
}

/// Runs `f` on a thread with a 2 MiB stack (the default of spawned threads).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("the thread starts")
        .join()
        .expect("the thread does not panic");
}

#[test]
fn gradient_of_a_100000_factor_product_on_a_2_mib_stack() {
    on_small_stack(|| {
        let n = 100_000;
        let p = repeated_product(n);
        let g = p.grad(0, "e").expect("the gradient builds");
        assert!(g.node_count() <= 5 * n + 16, "{} nodes", g.node_count());
        // One variable among 100,000.
        let p = distinct_product(n);
        let g = p.grad(n - 1, "e").expect("the gradient builds");
        assert!(g.node_count() <= 2 * n + 16, "{} nodes", g.node_count());
    });
}

#[test]
fn gradient_of_a_100000_term_sum_on_a_2_mib_stack() {
    on_small_stack(|| {
        let n = 100_000;
        let p = sum_of_terms(n);
        let g = p.grad(0, "e").expect("the gradient builds");
        assert!(g.node_count() <= 8 * n + 16, "{} nodes", g.node_count());
    });
}

#[test]
fn gradient_of_a_100000_deep_nesting_on_a_2_mib_stack() {
    on_small_stack(|| {
        let n = 100_000;
        let p = nested(n, &[Op::Exp]);
        let g = p.grad(0, "e").expect("the gradient builds");
        assert!(g.node_count() <= 4 * n + 16, "{} nodes", g.node_count());
        let g = p
            .gradient_program(0, "e")
            .expect("the gradient program builds");
        assert!(g.node_count() <= 4 * n + 16, "{} nodes", g.node_count());
        let p = nested(n / 2, &[Op::Sin, Op::Exp]);
        let g = p.grad(0, "e").expect("the gradient builds");
        assert!(g.node_count() <= 4 * n + 16, "{} nodes", g.node_count());
    });
}
