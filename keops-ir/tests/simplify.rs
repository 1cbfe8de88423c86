//! The simplification rules, each tested as `before => after`, and their limits.

use keops_ir::check::{Declarations, check_source};
use keops_ir::simplify::RULES;
use keops_ir::{Program, Source, Step};

const HEADER: &str = "x = Vi(0, 3); y = Vj(1, 3); s = Pm(2, 1); ";

/// The formula of a one-reduction program, as text.
fn formula(p: &Program) -> String {
    match p.steps.as_slice() {
        [Step::Reduce(r)] => p.formula_text(r.formula),
        _ => panic!("expected one reduction"),
    }
}

fn raw(f: &str) -> Program {
    let text = format!("{HEADER}Sum_Reduction({f}, 0)");
    let src = Source::from_text(&text).unwrap();
    check_source(
        &src,
        &Declarations {
            unsimplified: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn simplified(f: &str) -> String {
    let mut p = raw(f);
    p.simplify().unwrap();
    formula(&p)
}

/// `(rule, before, after)`: every rule of the table appears at least once.
const CASES: &[(&str, &str, &str)] = &[
    ("fold-constants", "Exp(IntCst(0)) * x", "x"),
    ("fold-constants", "Zero(3) + Zero(3)", "Zero(3)"),
    ("fold-constants", "2 * 3 + s", "6 + s"),
    ("zero-absorbs", "Zero(3) * x", "Zero(3)"),
    ("zero-absorbs", "Sum(Zero(3)) + s", "s"),
    ("zero-absorbs", "Zero(3) / x", "Zero(3)"),
    ("add-zero", "x + Zero(3)", "x"),
    ("add-zero", "Zero(3) + x", "x"),
    ("sub-zero", "x - Zero(3)", "x"),
    ("sub-zero", "Zero(3) - x", "-x"),
    ("sub-self", "x - x", "Zero(3)"),
    ("sub-self", "Exp(x) - Exp(x)", "Zero(3)"),
    ("mul-one", "1 * x", "x"),
    ("mul-one", "x * 1", "x"),
    ("mul-minus-one", "-1 * x", "-x"),
    ("div-one", "x / 1", "x"),
    ("neg-neg", "-(-x)", "x"),
    ("const-left", "x * 2", "2 * x"),
    ("mul-const-const", "2 * (3 * x)", "6 * x"),
    ("mul-neg", "(-x) * y", "-(x * y)"),
    ("mul-neg", "x * (-y)", "-(x * y)"),
    ("div-neg", "(-x) / y", "-(x / y)"),
    ("add-self", "x + x", "2 * x"),
    ("add-neg", "x + (-y)", "x - y"),
    ("add-neg", "(-x) + y", "y - x"),
    ("sub-neg", "x - (-y)", "x + y"),
    ("scalar-identity", "Sum(s) * x", "s * x"),
    ("scalar-identity", "Elem(s, 0) * x", "s * x"),
    ("scalar-identity", "Extract(x, 0, 3)", "x"),
    ("scalar-identity", "SumT(s, 1) * x", "s * x"),
    ("scalprod-scalars", "(s | s) * x", "s * s * x"),
    ("elem-of-onehot", "Elem(ElemT(s, 3, 1), 1) * x", "s * x"),
    ("elem-of-onehot", "Elem(ElemT(s, 3, 1), 2) * x", "Zero(3)"),
    ("elem-of-onehot", "Sum(ElemT(s, 3, 1)) * x", "s * x"),
    ("elem-of-onehot", "Elem(SumT(s, 3), 2) * x", "s * x"),
    ("index-concat", "Elem(Concat(x, y), 4)", "Elem(y, 1)"),
    ("index-concat", "Extract(Concat(x, y), 3, 3)", "y"),
    (
        "index-concat",
        "Extract(Concat(x, y), 1, 2)",
        "Extract(x, 1, 2)",
    ),
    (
        "mult-elemt",
        "x * ElemT(s, 3, 1)",
        "ElemT(Elem(x, 1) * s, 3, 1)",
    ),
    ("mul-ones", "x * (Zero(3) + 1)", "x"),
    ("mul-ones", "SumT(1, 3) * x", "x"),
    ("const-out", "x * (2 * y)", "2 * (x * y)"),
    ("const-out", "(2 * x) / y", "2 * (x / y)"),
    ("linear-out", "Sum(-x) * y", "-(Sum(x) * y)"),
    ("linear-out", "Elem(3 * x, 1) * y", "3 * (Elem(x, 1) * y)"),
    ("collect-terms", "x - y + (Exp(x) - x)", "Exp(x) - y"),
    ("collect-terms", "2 * x - x", "x"),
    ("collect-terms", "x + y - (y + x)", "Zero(3)"),
    ("collect-terms", "-x - x + y", "y - 2 * x"),
];

#[test]
fn every_rule_before_after() {
    let mut failures = Vec::new();
    for (rule, before, after) in CASES {
        let got = simplified(before);
        if got != *after {
            failures.push(format!("rule {rule}: {before} => {got}, expected {after}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_is_tested() {
    for r in RULES {
        assert!(
            CASES.iter().any(|(n, _, _)| *n == r.name),
            "rule {} has no before => after case",
            r.name
        );
    }
}

#[test]
fn rules_do_not_fire_when_they_should_not() {
    // Broadcasting: s + 0 with s scalar and 0 a vector keeps the vector shape.
    assert_eq!(simplified("s + Zero(3)"), "s + Zero(3)");
    // 1 * s broadcast to dimension 3 is not s.
    assert_eq!(simplified("SumT(1, 3) * s"), "SumT(1, 3) * s");
    // Non-finite folds are kept symbolic (Log(0) would be -inf).
    assert_eq!(simplified("Log(0) + s"), "Log(0) + s");
    // Different sub-expressions are not cancelled.
    assert_eq!(simplified("x - y"), "x - y");
}

#[test]
fn simplification_is_deterministic() {
    let f = "Sum_j(Grad(Grad(Exp(-SqDist(x_i, y_j)) * (u_i | v_j), x_i, e_i), x_i, f_i))";
    let a = Program::parse(f).unwrap();
    let b = Program::parse(f).unwrap();
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.node_count(), b.node_count());
}
