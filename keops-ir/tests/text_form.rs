//! The text form: every program prints in KeOps syntax and parses back to the same
//! formula (same text, same values).

use keops_ir::Program;
use keops_ir::eval::{Array, EvalOptions};
use rand::{Rng, SeedableRng};

const FORMULAS: &[&str] = &[
    "Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)",
    "x = Vi(3); y = Vj(3); b = Vj(2); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
    "x = Vi(0, 3); y = Vj(1, 3); Sum_Reduction(Exp(-SqDist(x, y)), 1)",
    "x_i: 2; y_j: 2; Sum_j(Exp(-Norm2(x_i - y_j) * 0.5) + IntInv(3) - RatCst(2, 7))",
    "Sum_Reduction(Exp(-SqDist(Var(0, 3, 0), Var(1, 3, 1))) * Var(2, 1, 1), 0)",
    "x = Vi(2); y = Vj(2); g = Pm(1); Max_ArgMax_Reduction((x | y) - g, 1)",
    "x = Vi(2); y = Vj(2); KMin_ArgKMin_Reduction(SqDist(x, y), 3, 0)",
    "x = Vi(2); y = Vj(2); ArgKMin_Reduction(SqDist(x, y), 2, 1)",
    "x = Vi(2); y = Vj(2); b = Vj(3); LogSumExp_Reduction(-SqDist(x, y), 0, b)",
    "x = Vi(2); y = Vj(2); b = Vj(3); SumSoftMaxWeight_Reduction(-SqDist(x, y), 0, b)",
    "x_i: 3; y_j: 3; Min_j(x_i - y_j)",
    "x_i: 3; y_j: 3; Sum_j(IfElse(x_i - y_j, Sin(x_i), Cos(y_j)) + (x_i < y_j) + (x_i >= y_j))",
    "x_i: 3; y_j: 3; Sum_j(Pow(x_i, 3) + Powf(Abs(y_j) + 1, x_i) + Clamp(x_i, -1, y_j) + ClampInt(x_i, -1, 2))",
    "x_i: 3; y_j: 3; Sum_j(Round(x_i, 2) + Mod(x_i, 2.5, y_j) + Floor(x_i) * Sign(y_j) + Step(x_i) + ReLU(y_j))",
    "x_i: 3; y_j: 1; Sum_j(Concat(Elem(x_i, 2), Extract(x_i, 0, 2)) - ElemT(y_j, 3, 1) + ExtractT(Extract(x_i, 1, 2), 1, 3))",
    "x_i: 3; y_j: 9; Sum_j(Exp(-WeightedSqNorm(y_j, x_i)) * Normalize(x_i) + OneHot(Floor(Sum(x_i)), 3))",
    "x_i: 2; y_j: 2; Sum_j(Grad(Exp(-SqDist(x_i, y_j)), x_i, e_i))",
    "x_i: 2; y_j: 2; Sum_j(Laplacian(Exp(-SqDist(x_i, y_j)), x_i))",
    "x_i: 2; Sum_j(x_i * -2 - (-3) * y_j)",
];

fn random_args(p: &Program, rng: &mut impl Rng) -> (Vec<Vec<f64>>, Vec<(usize, usize)>) {
    let mut data = Vec::new();
    let mut shapes = Vec::new();
    for a in &p.args {
        let dim = a.dim.as_known().unwrap_or(2);
        let rows = match a.rows() {
            keops_ir::Cat::I => 4,
            keops_ir::Cat::J => 5,
            _ => 1,
        };
        data.push(
            (0..rows * dim)
                .map(|_| rng.random_range(-1.5..1.5))
                .collect(),
        );
        shapes.push((rows, dim));
    }
    (data, shapes)
}

#[test]
fn programs_print_and_parse_back() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for f in FORMULAS {
        let p1 = Program::parse(f).unwrap_or_else(|e| panic!("{f}\n{e}"));
        let t1 = p1.to_string();
        let p2 = Program::parse(&t1).unwrap_or_else(|e| panic!("reparse of {t1}\n{e}"));
        let t2 = p2.to_string();
        assert_eq!(t1, t2, "{f}");
        let (data, shapes) = random_args(&p1, &mut rng);
        let arrays: Vec<Array<'_, f64>> = data
            .iter()
            .zip(&shapes)
            .map(|(d, (r, c))| Array::new(d, *r, *c))
            .collect();
        let o1 = p1.evaluate(&arrays, &EvalOptions::default()).unwrap();
        let o2 = p2.evaluate(&arrays, &EvalOptions::default()).unwrap();
        assert_eq!(o1.indices, o2.indices, "{f}");
        for (a, b) in o1.values.iter().zip(&o2.values) {
            assert!(a == b || (a.is_nan() && b.is_nan()), "{f}: {a} vs {b}");
        }
    }
}

#[test]
fn printing_uses_the_syntax_it_was_given() {
    let p = Program::parse("Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)").unwrap();
    assert_eq!(
        p.to_string(),
        "x_i; y_j; b_j; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)"
    );
    let p = Program::parse_with_aliases(
        "Sum_Reduction(Exp(-SqDist(x, y)), 0)",
        &["x = Vi(3)", "y = Vj(3)"],
    )
    .unwrap();
    assert_eq!(
        p.to_string(),
        "x = Vi(0, 3); y = Vj(1, 3); Sum_Reduction(Exp(-SqDist(x, y)), 0)"
    );
}

/// Formulas 100,000 levels deep (nested functions, nested sums and functions) print on
/// a thread with a 2 MiB stack, the default of spawned threads: the printer is
/// iterative (issue 14, item 5).
#[test]
fn formulas_100000_levels_deep_print_on_a_2_mib_stack() {
    use keops_ir::Op;
    use keops_ir::builder::Builder;
    use keops_ir::dim::{Dim, DimSolver};
    use keops_ir::display::Printer;
    use keops_ir::graph::{Cat, Graph};
    let run = || {
        let (mut graph, mut dims) = (Graph::new(), DimSolver::new());
        let mut b = Builder::new(&mut graph, &mut dims);
        let (_, x) = b.temp_var(Dim::one(), Cat::I);
        let (mut nested, mut chain) = (x, x);
        for k in 0..100_000 {
            nested = b
                .f1(if k % 2 == 0 { Op::Exp } else { Op::Sin }, nested)
                .unwrap();
            let e = b.f1(Op::Exp, chain).unwrap();
            chain = b.add(e, x).unwrap();
        }
        let printer = Printer::new(&graph);
        let text = printer.formula(nested);
        assert!(text.starts_with("Sin(Exp(Sin("), "{}", &text[..40]);
        assert_eq!(text.matches('(').count(), 100_000);
        let text = printer.formula(chain);
        assert_eq!(text.matches("Exp(").count(), 100_000, "{}", &text[..40]);
    };
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}
