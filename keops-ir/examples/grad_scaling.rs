//! Times `Program::grad` on long and deep formulas, to check that differentiation and
//! simplification stay near-linear in the size of the formula (issue 14, item 8).
//!
//! `cargo run --release -p keops-ir --example grad_scaling`
//!
//! For each shape it prints the time of `Program::grad` (best of three), the node counts
//! of the formula and of its gradient, and the ratio `t(2n) / t(n)` (about 2 when linear,
//! 4 when quadratic). The formulas are built through the [`Builder`] API, not parsed, so
//! that only differentiation is timed. It exits with status 1 when the gradient of a
//! product of 4,000 factors takes more than 1 s: a loose bound that only catches a return
//! to quadratic time (the target, under 100 ms, is reported, not asserted).

#[path = "../tests/built/mod.rs"]
mod built;

use built::{chain, program};
use keops_ir::builder::Builder;
use keops_ir::{NodeId, Op, Program};
use std::time::{Duration, Instant};

/// A formula of size about `n`, and the argument to differentiate.
type Shape = fn(usize) -> (Program, usize);

/// `x0 * x1 * ... * x(n-1)`, differentiated with respect to the middle factor.
fn distinct_product(n: usize) -> (Program, usize) {
    (program(n, |b, x| chain(b, n, Op::Mult, |_, k| x[k])), n / 2)
}

/// `x * x * ... * x` (`n` factors).
fn repeated_product(n: usize) -> (Program, usize) {
    (program(1, |b, x| chain(b, n, Op::Mult, |_, _| x[0])), 0)
}

/// `Sin(1 * x) + Sin(2 * x) + ... + Sin(n * x)`.
fn sum_of_terms(n: usize) -> (Program, usize) {
    let f = |b: &mut Builder<'_>, x: &[NodeId]| {
        chain(b, n, Op::Add, |b, k| {
            let kx = b.scale((k + 1) as f64, x[0]).expect("builds");
            b.f1(Op::Sin, kx).expect("builds")
        })
    };
    (program(1, f), 0)
}

/// `x0 * x1 + x1 * x2 + ... + x(n-1) * x0` (a sum of products), with respect to `x0`.
fn sum_of_products(n: usize) -> (Program, usize) {
    let f = |b: &mut Builder<'_>, x: &[NodeId]| {
        chain(b, n, Op::Add, |b, k| {
            b.mul(x[k], x[(k + 1) % n]).expect("builds")
        })
    };
    (program(n, f), 0)
}

/// `Exp(Sin(Exp(Sin(... x ...))))`, `n` levels of `Exp(Sin(.))`.
fn nested_exp_sin(n: usize) -> (Program, usize) {
    let f = |b: &mut Builder<'_>, x: &[NodeId]| {
        let mut acc = x[0];
        for _ in 0..n {
            let s = b.f1(Op::Sin, acc).expect("builds");
            acc = b.f1(Op::Exp, s).expect("builds");
        }
        acc
    };
    (program(1, f), 0)
}

/// The time of `Program::grad` (best of three) and the node counts of the formula and of
/// its gradient.
fn time_grad(shape: Shape, n: usize) -> (Duration, usize, usize) {
    let (p, pos) = shape(n);
    let mut best = Duration::MAX;
    let mut nodes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let g = p.grad(pos, "e").expect("the gradient builds");
        best = best.min(t.elapsed());
        nodes = g.node_count();
    }
    (best, p.node_count(), nodes)
}

fn main() {
    let shapes: [(&str, Shape, &[usize]); 5] = [
        (
            "product of n distinct factors",
            distinct_product,
            &[500, 1000, 2000, 4000, 8000],
        ),
        (
            "product of n equal factors x",
            repeated_product,
            &[500, 1000, 2000, 4000, 8000],
        ),
        (
            "sum of n terms Sin(k * x)",
            sum_of_terms,
            &[500, 1000, 2000, 4000, 8000],
        ),
        (
            "sum of n products",
            sum_of_products,
            &[500, 1000, 2000, 4000, 8000],
        ),
        (
            "n nested Exp(Sin(.))",
            nested_exp_sin,
            &[500, 1000, 2000, 4000, 8000],
        ),
    ];
    let mut failed = false;
    for (name, shape, sizes) in shapes {
        println!("{name}:");
        let mut prev: Option<(usize, Duration)> = None;
        for &n in sizes {
            let (t, before, after) = time_grad(shape, n);
            let ratio = match prev {
                Some((m, tp)) if m * 2 == n => {
                    format!("  t(2n)/t(n) = {:.2}", t.as_secs_f64() / tp.as_secs_f64())
                }
                _ => String::new(),
            };
            println!(
                "  n = {n:>6}: {:>9.2} ms  ({before} -> {after} nodes){ratio}",
                t.as_secs_f64() * 1e3
            );
            if n == 4000 && name.starts_with("product") && t > Duration::from_secs(1) {
                eprintln!(
                    "  the gradient of {n} factors took {t:?}: more than 1 s, quadratic again?"
                );
                failed = true;
            }
            prev = Some((n, t));
        }
    }
    println!("100,000-term chains:");
    let big: [(&str, Shape); 3] = [
        ("product of x", repeated_product),
        ("sum of Sin(k * x)", sum_of_terms),
        ("nested Exp(Sin(.))", nested_exp_sin),
    ];
    for (name, shape) in big {
        let (t, before, after) = time_grad(shape, 100_000);
        println!(
            "  {name}: {:.1} ms  ({before} -> {after} nodes)",
            t.as_secs_f64() * 1e3
        );
    }
    if failed {
        std::process::exit(1);
    }
}
