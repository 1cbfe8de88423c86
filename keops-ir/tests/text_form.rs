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
        "x_i: D0; y_j: D0; b_j: D1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)"
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

/// Generic programs (widths left to the arguments): the text states every width as a
/// polynomial of width symbols (`x_i: D0`, `a_i: D0*D1`), zeros of symbolic width
/// (`Zero(D1)`), the conditions that fix a width only a zero shows, and arguments the
/// simplified formula no longer uses; it parses back to itself, with the same arguments,
/// and computes the same values (issue 14, items 1 and 2).
const GENERIC: &[&str] = &[
    "Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)",
    // A zero of the arguments' width, from simplification and from a gradient.
    "Sum_j(x_i - x_i + y_j)",
    "Sum_j(Grad(SqNorm2(y_j), x_i, e_i) + x_i)",
    // The arguments shared a width through an operation simplified away.
    "Sum_j(0 * SqDist(x_i, y_j) + b_j)",
    // Polynomial widths.
    "Sum_j(MatVecMult(a_i, b_j))",
    "Sum_j(Concat(x_i, y_j) - Concat(x_i, y_j) + 1)",
    "Sum_j(ComplexReal(z_i) + 0 * ComplexImag(z_i))",
    "Sum_j(0 * TensorProd(x_i, y_j) + b_j)",
    // A width fixed only by a condition: `Zero(D1)` with `D0*D1 == 2`.
    "Sum_j(MatVecMult(Zero(2), s_i) + b_j)",
    // A bound on an argument's width, from an operation simplified away.
    "Sum_j(0 * Elem(x_i, 2) + b_j)",
    // Inline variables, one of them simplified away, in every category.
    "Sum_Reduction(0 * SqNorm2(Var(0, 3, 0)) + Var(1, 1, 1), 0)",
    "Sum_Reduction(Var(1, 2, 1) + 0 * Var(0, 2, 0) + 0 * Var(2, 2, 2), 1)",
    "x = Vi(0, 2); Sum_Reduction(x + 0 * Var(0, 2, 1), 0)",
    "Max_ArgMax_Reduction(Var(1, 1, 1) + 0 * Var(0, 4, 2), 0)",
];

/// The widths of a program's symbols for a test: each symbol a small width.
fn instantiated_widths(p: &Program, choice: usize) -> Vec<usize> {
    let mut syms: Vec<keops_ir::SymId> = p.args.iter().flat_map(|a| a.dim.syms()).collect();
    syms.sort();
    syms.dedup();
    p.args
        .iter()
        .map(|a| {
            a.dim
                .subst(&|s| {
                    let k = syms.iter().position(|t| *t == s).unwrap_or(0);
                    Some(keops_ir::Dim::known(1 + (k + choice) % 3))
                })
                .as_known()
                .unwrap()
        })
        .collect()
}

#[test]
fn generic_programs_print_their_widths_and_parse_back() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    for f in GENERIC {
        let p = Program::parse(f).unwrap_or_else(|e| panic!("{f}\n{e}"));
        let text = p.to_string();
        let c = p
            .canonical()
            .unwrap_or_else(|e| panic!("{f}: the text `{text}` does not read back: {e}"));
        assert_eq!(
            c.to_string(),
            Program::parse(&c.to_string()).unwrap().to_string()
        );
        assert_eq!(c.args.len(), p.args.len(), "{f}: {text}");
        let mut evaluated = 0;
        for choice in 0..3 {
            let widths = instantiated_widths(&p, choice);
            let (Ok(pi), Ok(ci)) = (p.instantiate(&widths), c.instantiate(&widths)) else {
                // Both refuse the widths, or neither (a condition of the formula).
                assert_eq!(
                    p.instantiate(&widths).is_ok(),
                    c.instantiate(&widths).is_ok(),
                    "{f}: widths {widths:?}"
                );
                continue;
            };
            assert_eq!(pi.args, ci.args, "{f}: widths {widths:?}");
            // M = N = 4: an argument may be indexed by both i and j.
            let shapes: Vec<(usize, usize)> = pi
                .args
                .iter()
                .map(|a| {
                    let rows = if a.rows() == keops_ir::Cat::P { 1 } else { 4 };
                    (rows, a.dim.as_known().unwrap())
                })
                .collect();
            let data: Vec<Vec<f64>> = shapes
                .iter()
                .map(|(r, c)| (0..r * c).map(|_| rng.random_range(-1.5..1.5)).collect())
                .collect();
            let arrays: Vec<Array<'_, f64>> = data
                .iter()
                .zip(&shapes)
                .map(|(d, (r, c))| Array::new(d, *r, *c))
                .collect();
            let opts = EvalOptions {
                m: Some(4),
                n: Some(4),
                ..EvalOptions::default()
            };
            let o1 = p.evaluate(&arrays, &opts).unwrap();
            let o2 = c.evaluate(&arrays, &opts).unwrap();
            assert_eq!(o1, o2, "{f}: widths {widths:?}");
            evaluated += 1;
        }
        assert!(evaluated > 0, "{f}: no width tried was accepted");
    }
}

#[test]
fn arguments_the_simplified_formula_no_longer_uses_stay_in_the_signature() {
    // `Var(0, 3, 0)` is multiplied by zero: the program still takes it, and checks it.
    let p = Program::parse("Sum_Reduction(0 * SqNorm2(Var(0, 3, 0)) + Var(1, 1, 1), 0)").unwrap();
    assert_eq!(
        p.to_string(),
        "Var(0, 3, 0); Var(1, 1, 1); Sum_Reduction(Var(1, 1, 1), 0)"
    );
    let c = p.canonical().unwrap();
    assert_eq!(c.args, p.args);
    let (x, y) = (vec![0.0; 2 * 3], vec![1.0, 2.0, 3.0]);
    let opts = EvalOptions::default();
    let out = c
        .evaluate(&[Array::new(&x, 2, 3), Array::new(&y, 3, 1)], &opts)
        .unwrap();
    assert_eq!(out.values, vec![6.0, 6.0]);
    // The unused argument's width is still checked.
    let bad = vec![0.0; 2 * 2];
    assert!(
        c.evaluate(&[Array::new(&bad, 2, 2), Array::new(&y, 3, 1)], &opts)
            .is_err()
    );
}

#[test]
fn width_symbols_and_conditions_read_back() {
    let p =
        Program::parse("x_i: D0; y_j: D0; b_j: 2*D1 + 1; Sum_j(SqDist(x_i, y_j) * b_j)").unwrap();
    assert_eq!(p.args[0].dim, p.args[1].dim, "one name, one symbol");
    let p = Program::parse("s_i: D0; D0*D1 == 2; Sum_j(Zero(D1))").unwrap();
    assert!(p.instantiate(&[1]).is_ok());
    assert!(p.instantiate(&[2]).is_ok());
    assert!(p.instantiate(&[3]).is_err(), "3 divides no width into 2");
    let p = Program::parse("x_i: D0; D0 >= 3; Sum_j(x_i)").unwrap();
    assert!(p.instantiate(&[2]).is_err());
    assert!(p.instantiate(&[3]).is_ok());
    // Width symbols only mean something in width positions: in a formula `D0` is a
    // parameter like any other name.
    let p = Program::parse("x_i: D0; Sum_j(x_i + D0)").unwrap();
    assert_eq!(p.args[1].name.as_deref(), Some("D0"));
    let p = Program::parse("x_i: D0; MultipleOf(D0, 2); Sum_j(x_i)").unwrap();
    assert!(p.instantiate(&[3]).is_err());
    assert!(p.instantiate(&[4]).is_ok());
    assert!(Program::parse("x_i: Q0; Sum_j(x_i)").is_err());
    assert!(Program::parse("x_i: D0; D0 == Q; Sum_j(x_i)").is_err());
}

/// Every operation of the table applied to zeros of symbolic width (and to one
/// argument, so that the program has arguments): its text parses back, to the same
/// arguments, and computes the same values.
#[test]
fn every_operation_on_zeros_of_symbolic_width_prints_and_parses_back() {
    let mut exercised = 0;
    for op in keops_ir::Op::ALL {
        let spec = op.spec();
        let mut parts: Vec<String> = (0..spec.arity)
            .map(|k| format!("(x{k}_i - x{k}_i)"))
            .collect();
        for kind in spec.params {
            parts.push(match kind {
                keops_ir::ops::ParamKind::Int => "1".to_string(),
                _ => "(0,)".to_string(),
            });
        }
        let f = format!("Sum_j({}({}) + 0 * b_j)", op.name(), parts.join(", "));
        let Ok(p) = Program::parse(&f) else {
            continue;
        };
        let c = p
            .canonical()
            .unwrap_or_else(|e| panic!("{f}: `{p}` does not read back: {e}"));
        assert_eq!(c.args.len(), p.args.len(), "{f}");
        for choice in 0..3 {
            let widths = instantiated_widths(&p, choice);
            assert_eq!(
                p.instantiate(&widths).is_ok(),
                c.instantiate(&widths).is_ok(),
                "{f}: `{p}` vs `{c}` at widths {widths:?}"
            );
        }
        exercised += 1;
    }
    assert!(
        exercised * 2 > keops_ir::Op::ALL.len(),
        "only {exercised} of {} operations took zeros of symbolic width",
        keops_ir::Op::ALL.len()
    );
}
