//! Dimension inference: unification, symbolic widths, deferred conditions.

use keops_ir::eval::{Array, EvalOptions};
use keops_ir::{ErrorKind, Program};

#[test]
fn widths_unify_through_operations() {
    let p = Program::parse("x_i: 3; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)").unwrap();
    let y = p.arg_position("y").unwrap();
    assert_eq!(
        p.args[y].dim.as_known(),
        Some(3),
        "SqDist makes d(y) = d(x)"
    );
    let b = p.arg_position("b").unwrap();
    assert!(p.args[b].dim.as_known().is_none(), "b stays symbolic");
    assert_eq!(
        p.output_info().values,
        p.args[b].dim,
        "the output has the width of b"
    );
}

#[test]
fn sums_of_widths_are_solved() {
    // d(z) = d(x) + d(y) from Concat, then d(x) from the data.
    let p = Program::parse("y_i: 2; Sum_j(Concat(x_i, y_i) - z_j)").unwrap();
    let widths: Vec<usize> = p
        .args
        .iter()
        .map(|a| a.dim.as_known().unwrap_or(3))
        .collect();
    let pos_z = p.arg_position("z").unwrap();
    let mut w = widths.clone();
    w[pos_z] = 5;
    assert!(p.instantiate(&w).is_ok());
    w[pos_z] = 6;
    let err = p.instantiate(&w).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Input);
}

#[test]
fn deferred_equations_are_solved_at_instantiation() {
    // ComplexReal(Concat(x, y)) halves d(x) + d(y), unknown until instantiation.
    let p = Program::parse("Sum_j(ComplexReal(Concat(x_i, y_i)))").unwrap();
    let q = p.instantiate(&[2, 4]).unwrap();
    assert_eq!(q.output_info().values.as_known(), Some(3));
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let out = p
        .evaluate(
            &[Array::new(&x[..2], 1, 2), Array::new(&x[2..], 1, 4)],
            &EvalOptions {
                n: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(out.values, vec![1.0, 3.0, 5.0]);
    let err = p.instantiate(&[2, 3]).unwrap_err();
    assert!(
        err.message.contains("ComplexReal"),
        "the message names the operation: {}",
        err.message
    );
}

#[test]
fn conditions_on_symbolic_widths_are_checked_at_instantiation() {
    let p = Program::parse("Sum_j(Elem(x_i, 4) * y_j)").unwrap();
    assert!(p.instantiate(&[5, 1]).is_ok());
    let err = p.instantiate(&[3, 1]).unwrap_err();
    assert!(err.message.contains("Elem"), "{}", err.message);
}

#[test]
fn mismatched_known_widths_are_compile_errors() {
    let err = Program::parse("x_i: 3; y_j: 2; Sum_j(SqDist(x_i, y_j))").unwrap_err();
    assert_eq!(err.error.kind, ErrorKind::Dimension);
    assert!(err.error.message.contains("SqDist"));
    assert!(err.error.message.contains('3') && err.error.message.contains('2'));
}

#[test]
fn quotient_widths_are_solved_at_instantiation() {
    // MatVecMult(A, v): d(A) = n * d(v) with n the output width, known only from data.
    let p = Program::parse("Sum_j(MatVecMult(A_i, v_j))").unwrap();
    let q = p.instantiate(&[6, 2]).unwrap();
    assert_eq!(q.output_info().values.as_known(), Some(3));
    assert!(p.instantiate(&[7, 2]).is_err());
}

/// `as_sym` of a known width is `None` (it indexed the constant term's empty monomial and
/// panicked; found by the fuzz test).
#[test]
fn a_known_width_is_not_a_symbol() {
    use keops_ir::{Dim, SymId};
    assert_eq!(Dim::known(1).as_sym(), None);
    assert_eq!(Dim::known(3).as_sym(), None);
    assert_eq!(Dim::known(0).as_sym(), None);
    assert_eq!(Dim::sym(SymId(2)).as_sym(), Some(SymId(2)));
    assert_eq!(Dim::sym(SymId(2)).scale(2).as_sym(), None);
}
