//! The name `Program::grad` gives the cotangent, a new argument of the gradient (issue 14,
//! item 10): it must be a name of the formula language that no argument answers to, so
//! that the gradient's text form reads back as the same program. Anything else is a
//! `Declaration` error naming it.

use keops_ir::{ErrorKind, Program};

/// `x = Vi(1); y = Vj(1); Sum_Reduction(x * y, 0)`.
fn xy() -> Program {
    Program::parse("x = Vi(1); y = Vj(1); Sum_Reduction(x * y, 0)").expect("parses")
}

/// `p.grad(pos, name)`, which must fail with a `Declaration` error whose message contains
/// each of `must`.
fn refused(p: &Program, pos: usize, name: &str, must: &[&str]) {
    match p.grad(pos, name) {
        Ok(g) => panic!("grad({pos}, {name:?}) should fail, it gave\n{g}"),
        Err(e) => {
            assert_eq!(e.kind, ErrorKind::Declaration, "{name:?}: {e:?}");
            for m in must {
                assert!(
                    e.message.contains(m),
                    "{name:?}: `{}` lacks `{m}`",
                    e.message
                );
            }
            let help = e.help.unwrap_or_default();
            assert!(
                help.contains("e.g."),
                "{name:?}: the help suggests no name: {help}"
            );
        }
    }
}

/// The gradient's text reads back as itself.
fn reads_back(g: &Program) {
    let text = g.to_string();
    let back = Program::parse(&text).unwrap_or_else(|e| panic!("`{text}` does not parse:\n{e}"));
    assert_eq!(back.to_string(), text);
}

#[test]
fn cotangent_named_like_an_argument_is_refused() {
    let p = xy();
    refused(&p, 0, "x", &["`x`", "argument 0"]);
    refused(&p, 0, "y", &["`y`", "argument 1"]);
    // The variable of differentiation or another one: both are refused.
    refused(&p, 1, "x", &["`x`", "argument 0"]);
}

#[test]
fn cotangent_named_like_a_use_of_an_argument_is_refused() {
    // `x_i` and `x_j` answer to the argument `x` (Program::arg_position).
    let p = xy();
    refused(&p, 0, "x_i", &["`x_i`", "argument 0", "(`x`)"]);
    refused(&p, 0, "y_j", &["`y_j`", "argument 1", "(`y`)"]);
    let concise: Program = "Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)"
        .parse()
        .expect("parses");
    let x = concise.arg_position("x").expect("x is an argument");
    refused(&concise, x, "x", &["`x`"]);
    refused(&concise, x, "b_j", &["`b_j`", "(`b`)"]);
    refused(&concise, x, "y_i", &["`y_i`", "(`y`)"]);
}

#[test]
fn cotangent_named_like_an_earlier_cotangent_is_refused() {
    let p = xy();
    let g = p.grad(0, "e").expect("the first gradient builds");
    assert_eq!(g.arg_position("e"), Some(2));
    refused(&g, 0, "e", &["`e`", "argument 2"]);
    refused(&g, 1, "e", &["`e`", "argument 2"]);
    // The suggested name is free.
    let help = g.grad(0, "e").unwrap_err().help.unwrap_or_default();
    assert!(help.contains("`e0`"), "{help}");
    // Another name works, and the second gradient reads back.
    let gg = g.grad(1, "f").expect("the second gradient builds");
    assert_eq!(gg.arg_position("f"), Some(3));
    reads_back(&gg);
    refused(&gg, 0, "f", &["`f`", "argument 3"]);
    refused(&gg, 0, "e", &["`e`", "argument 2"]);
}

#[test]
fn cotangent_name_that_is_not_a_name_is_refused() {
    let p = xy();
    refused(&p, 0, "", &["empty"]);
    for bad in [
        "1e", "a b", "e;", "e)", "(e)", " e", "e ", "x*y", "e-1", "2", "r#e", "e\n", "\"e\"",
    ] {
        refused(&p, 0, bad, &["is not a name"]);
    }
    for op in ["Exp", "Grad", "Sum", "SqDist"] {
        refused(&p, 0, op, &["the name of an operation", op]);
    }
}

#[test]
fn valid_cotangent_names_read_back() {
    let p = xy();
    for name in [
        "e",
        "e_i",
        "cotangent",
        "_e",
        "E2",
        "Vi",
        "Sum_Reduction",
        "é",
    ] {
        let g = p
            .grad(0, name)
            .unwrap_or_else(|e| panic!("{name:?} should be accepted: {e:?}"));
        assert_eq!(g.args.last().and_then(|a| a.name.as_deref()), Some(name));
        assert_eq!(g.arg_position(name), Some(2));
        reads_back(&g);
    }
}

#[test]
fn gradient_program_checks_the_name_too() {
    let p = xy();
    let e = p.gradient_program(0, "y").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Declaration);
    assert!(p.gradient_program(0, "e").is_ok());
}
