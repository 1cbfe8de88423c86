//! Prints the size of the Hamiltonian's gradient programs (README table).
use keops_ir::{Program, Step};

fn sizes(name: &str, p: &Program) {
    let trees: u64 = p
        .steps
        .iter()
        .map(|s| match s {
            Step::Reduce(r) => p.graph.tree_size(r.formula),
            Step::Gather(g) => p.graph.tree_size(g.formula),
            _ => 0,
        })
        .sum();
    let reductions = p.reductions().count();
    println!("| {name} | {} | {} | {reductions} |", p.node_count(), trees);
}

fn main() {
    let h: Program = "s: 1; Sum_j(Exp(-SqDist(q_i, q_j) / s) * (p_i | p_j))"
        .parse()
        .unwrap();
    let (q, p) = (h.arg_position("q").unwrap(), h.arg_position("p").unwrap());
    println!("| program | DAG nodes | tree nodes | reductions |\n|---|---|---|---|");
    sizes("H", &h);
    let hq = h.grad(q, "e").unwrap();
    let hp = h.grad(p, "e").unwrap();
    sizes("dH/dq", &hq);
    sizes("dH/dp", &hp);
    sizes("d/dq <dH/dq, f>", &hq.grad(q, "f").unwrap());
    sizes("d/dp <dH/dq, f>", &hq.grad(p, "f").unwrap());
    sizes("d/dq <dH/dp, f>", &hp.grad(q, "f").unwrap());
    println!("\n{}", hq.grad(q, "f").unwrap());
}
