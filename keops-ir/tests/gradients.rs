//! Gradients of reductions as programs ([`Program::grad`]) against central finite
//! differences in f64 of `<e, output>`: Sum (i-, j-, parameter and shared variables),
//! LogSumExp (plain and weighted), SumSoftMaxWeight, Min/Max/Min_ArgMin and the KMin
//! family (through the selected indices), in both directions; gradients of gradients
//! (including a Hamiltonian); the KeOps string form `Grad(Sum_Reduction(F, 0), x, e)`;
//! and ArgMin, whose gradient is zero.

mod support;

use keops_ir::eval::Output;
use keops_ir::reduction::{Backward, ReductionId, ReductionKind, Rule, Weight};
use keops_ir::{ErrorKind, Program};
use support::*;

const H: f64 = 1e-5;

/// `<e, output values>`, skipping infinite values (the +inf padding of KMin with K > N,
/// constant under perturbation).
fn pairing(out: &Output<f64>, e: &[f64]) -> f64 {
    assert_eq!(out.values.len(), e.len(), "cotangent shape");
    out.values
        .iter()
        .zip(e)
        .filter(|(a, _)| a.is_finite())
        .map(|(a, b)| a * b)
        .sum()
}

/// Central finite differences of `<cot, p(inputs)>` with respect to every entry of the
/// input named `wrt`.
fn finite_differences(p: &Program, inputs: &[Input<f64>], wrt: &str, cot: &[f64]) -> Vec<f64> {
    let k = inputs
        .iter()
        .position(|i| i.name == wrt)
        .expect("input to differentiate");
    (0..inputs[k].data.len())
        .map(|c| {
            let mut plus = inputs.to_vec();
            plus[k].data[c] += H;
            let mut minus = inputs.to_vec();
            minus[k].data[c] -= H;
            (pairing(&eval(p, &plus), cot) - pairing(&eval(p, &minus), cot)) / (2.0 * H)
        })
        .collect()
}

/// A random cotangent shaped like the output of `p` on `inputs`, named `name`.
fn cotangent(p: &Program, inputs: &[Input<f64>], name: &str, seed: u64) -> Input<f64> {
    let out = eval(p, inputs);
    let data = uniform(&mut rng(seed), out.values.len(), -1.0, 1.0);
    input(name, out.rows, out.vdim, &data)
}

/// Checks `p.grad(wrt)` against finite differences; returns the gradient program and
/// the inputs extended with the cotangent (for second-order checks).
#[track_caller]
fn check_grad(
    p: &Program,
    inputs: &[Input<f64>],
    wrt: &str,
    cot_name: &str,
    seed: u64,
) -> (Program, Vec<Input<f64>>) {
    check_grad_or_zero(p, inputs, wrt, cot_name, seed, true)
}

/// Like [`check_grad`]; `nonzero` false when the gradient is expected to be zero.
#[track_caller]
fn check_grad_or_zero(
    p: &Program,
    inputs: &[Input<f64>],
    wrt: &str,
    cot_name: &str,
    seed: u64,
    nonzero: bool,
) -> (Program, Vec<Input<f64>>) {
    let pos = p
        .arg_position(wrt)
        .unwrap_or_else(|| panic!("no argument `{wrt}` in {p}"));
    let cot = cotangent(p, inputs, cot_name, seed);
    let g = p
        .grad(pos, cot_name)
        .unwrap_or_else(|e| panic!("gradient of {p} with respect to `{wrt}`: {e}"));
    let mut with_cot = inputs.to_vec();
    with_cot.push(cot.clone());
    let got = eval(&g, &with_cot);
    let target = inputs.iter().find(|i| i.name == wrt).expect("input");
    assert_eq!(
        (got.rows, got.vdim),
        (target.rows, target.dim),
        "the gradient of {p} w.r.t. `{wrt}` is shaped like `{wrt}`"
    );
    let want = finite_differences(p, inputs, wrt, &cot.data);
    let what = format!("d<{cot_name}, {p}>/d{wrt}\n gradient program: {g}");
    assert_close(&what, &got.values, &want, 1e-6, 1e-7);
    if nonzero {
        assert!(
            want.iter().any(|v| v.abs() > 1e-3),
            "{what}: the finite differences are all ~0, the check is void: {want:?}"
        );
    } else {
        assert!(
            want.iter().all(|v| v.abs() < 1e-6),
            "{what}: expected a zero gradient: {want:?}"
        );
    }
    (g, with_cot)
}

/// x (M x D), y (N x D), b (N x 2, positive), s (a positive parameter), w (a parameter of
/// dimension D).
fn data(m: usize, n: usize, d: usize, seed: u64) -> Vec<Input<f64>> {
    let mut r = rng(seed);
    vec![
        input("x", m, d, &uniform(&mut r, m * d, -1.0, 1.0)),
        input("y", n, d, &uniform(&mut r, n * d, -1.0, 1.0)),
        input("b", n, 2, &uniform(&mut r, n * 2, 0.5, 1.5)),
        input("s", 1, 1, &[0.7]),
        input("w", 1, d, &uniform(&mut r, d, 0.5, 1.5)),
    ]
}

/// Only the inputs `p` uses (gradient programs take exactly their arguments).
fn used(p: &Program, inputs: &[Input<f64>]) -> Vec<Input<f64>> {
    inputs
        .iter()
        .filter(|i| {
            p.args
                .iter()
                .any(|a| a.name.as_deref() == Some(i.name.as_str()))
        })
        .cloned()
        .collect()
}

fn grads_match_finite_differences(text: &str, wrt: &[&str], m: usize, n: usize, seed: u64) {
    let p = parse(text);
    let inputs = used(&p, &data(m, n, 3, seed));
    for (k, v) in wrt.iter().enumerate() {
        check_grad(&p, &inputs, v, "e", seed + 100 + k as u64);
    }
}

#[test]
fn sum_with_respect_to_i_j_and_parameter_variables() {
    let gauss = "s: 1; Sum_j(Exp(-SqDist(x_i, y_j) / s) * b_j)";
    // x: an i-variable (same reduction); y, b: j-variables (transposed reduction);
    // s: a parameter (summed over i and j).
    grads_match_finite_differences(gauss, &["x", "y", "b", "s"], 5, 4, 1);
    // Output indexed by j.
    grads_match_finite_differences(
        "s: 1; Sum_i(Exp(-SqDist(x_i, y_j) / s) * b_j)",
        &["x", "y", "b", "s"],
        5,
        4,
        2,
    );
    // A parameter of dimension 3, and a vector-valued F.
    grads_match_finite_differences(
        "Sum_j(Exp(-SqDist(x_i * w, y_j)) * (x_i - y_j))",
        &["x", "y", "w"],
        4,
        6,
        3,
    );
    // The KeOps string syntax, tag 1.
    grads_match_finite_differences(
        "x = Vi(3); y = Vj(3); b = Vj(2); s = Pm(1); Sum_Reduction(Exp(-SqDist(x, y) / s) * b, 1)",
        &["x", "y", "b", "s"],
        3,
        5,
        4,
    );
}

#[test]
fn sum_with_a_variable_used_as_both_x_i_and_x_j() {
    let p = parse("Sum_j(Exp(-SqDist(x_i, x_j)) * b_j)");
    assert_eq!(
        p.args[0].cats.len(),
        2,
        "x is indexed by i and j: {:?}",
        p.args
    );
    let mut inputs = data(6, 6, 3, 5);
    inputs.retain(|i| i.name == "x" || i.name == "b");
    check_grad(&p, &inputs, "x", "e", 6);
    check_grad(&p, &inputs, "b", "e", 7);
}

#[test]
fn logsumexp_plain_and_weighted() {
    grads_match_finite_differences(
        "LogSumExp_j(-SqDist(x_i, y_j) / s)",
        &["x", "y", "s"],
        5,
        4,
        10,
    );
    grads_match_finite_differences(
        "LogSumExp_i(-SqDist(x_i, y_j) / s)",
        &["x", "y", "s"],
        5,
        4,
        11,
    );
    grads_match_finite_differences(
        "LogSumExp_j(-SqDist(x_i, y_j), b_j)",
        &["x", "y", "b"],
        5,
        4,
        12,
    );
    // G depending on the variable of F as well.
    grads_match_finite_differences(
        "y_j: 3; LogSumExp_j((x_i | y_j), b_j * Exp(Elem(y_j, 0)))",
        &["x", "y", "b"],
        4,
        5,
        13,
    );
    grads_match_finite_differences(
        "x = Vi(3); y = Vj(3); b = Vj(2); LogSumExp_Reduction(-SqDist(x, y), 1, b)",
        &["x", "y", "b"],
        4,
        5,
        14,
    );
}

#[test]
fn sum_softmax_weight() {
    grads_match_finite_differences(
        "s: 1; SumSoftMaxWeight_j(-SqDist(x_i, y_j) / s, b_j)",
        &["x", "y", "b", "s"],
        5,
        4,
        20,
    );
    grads_match_finite_differences(
        "x_i: 3; b_j: 2; SumSoftMaxWeight_i((x_i | y_j), Concat(x_i, b_j))",
        &["x", "y", "b"],
        5,
        4,
        21,
    );
}

/// The variables among x, y, b and s that `text` uses (`x_i`, `* s`).
fn variables_of(text: &str) -> Vec<&'static str> {
    ["x", "y", "b", "s"]
        .into_iter()
        .filter(|v| {
            text.contains(&format!("{v}_"))
                || text.contains(&format!("* {v}"))
                || text.contains(&format!("/ {v})"))
        })
        .collect()
}

/// Inputs where every selection is strict (no ties, gaps far above the step of the
/// finite differences): continuous random data.
#[test]
fn min_max_and_arg_variants_through_the_selected_index() {
    for (k, text) in [
        "s: 1; b_j: 2; Min_j(Square(x_i - y_j) * s + Elem(b_j, 0))",
        "s: 1; b_j: 2; Max_j(Square(x_i - y_j) * s + Elem(b_j, 0))",
        "s: 1; b_j: 2; Min_ArgMin_j(Square(x_i - y_j) * s + Elem(b_j, 0))",
        "s: 1; b_j: 2; Max_ArgMax_j(Square(x_i - y_j) * s + Elem(b_j, 0))",
        "s: 1; b_j: 2; Min_ArgMin_i(Square(x_i - y_j) * s + Elem(b_j, 0))",
        "Max_i(SqDist(x_i, y_j) * b_j)",
    ]
    .iter()
    .enumerate()
    {
        grads_match_finite_differences(text, &variables_of(text), 5, 6, 30 + k as u64);
    }
}

#[test]
fn kmin_family_through_the_selected_indices() {
    for (k, text) in [
        "s: 1; b_j: 2; KMin_j(Square(x_i - y_j) * s + Elem(b_j, 1), 3)",
        "s: 1; b_j: 2; KMin_ArgKMin_j(Square(x_i - y_j) * s + Elem(b_j, 1), 3)",
        "KMin_ArgKMin_i(SqDist(x_i, y_j) * b_j, 2)",
        // K > N: the padded slots (INDEX_NONE) contribute nothing.
        "b_j: 2; KMin_ArgKMin_j(Square(x_i - y_j) + Elem(b_j, 1), 9)",
    ]
    .iter()
    .enumerate()
    {
        grads_match_finite_differences(text, &variables_of(text), 5, 6, 40 + k as u64);
    }
}

/// ArgMin, ArgMax and ArgKMin output indices, which are piecewise constant: their
/// gradient is zero (spec section 4), shaped like the variable, for a cotangent shaped
/// like the indices.
#[test]
fn gradients_of_arg_reductions_are_zero() {
    for (text, cot_width) in [
        ("x_i: 2; y_j: 2; ArgMin_j(SqDist(x_i, y_j))", 1),
        ("x_i: 2; y_j: 2; ArgMax_i(SqDist(x_i, y_j))", 1),
        ("x_i: 2; y_j: 2; ArgKMin_j(x_i - y_j, 3)", 6),
    ] {
        let p = parse(text);
        for pos in 0..2 {
            let g = p.grad(pos, "e").unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(g.args[2].dim.as_known(), Some(cot_width), "{text}");
            let (m, n) = (3, 4);
            let x: Vec<f64> = (0..m * 2).map(|k| k as f64 * 0.37 - 1.0).collect();
            let y: Vec<f64> = (0..n * 2).map(|k| 0.5 - k as f64 * 0.21).collect();
            let out_rows = if text.contains("_i(") { n } else { m };
            let e: Vec<f64> = (0..out_rows * cot_width).map(|k| 1.0 + k as f64).collect();
            let arrays = [
                keops_ir::eval::Array::new(&x, m, 2),
                keops_ir::eval::Array::new(&y, n, 2),
                keops_ir::eval::Array::new(&e, out_rows, cot_width),
            ];
            let out = g.evaluate(&arrays, &Default::default()).unwrap();
            let rows = if pos == 0 { m } else { n };
            assert_eq!(out.values.len(), rows * 2, "{text}");
            assert!(
                out.values.iter().all(|v| *v == 0.0),
                "{text}: {:?}",
                out.values
            );
        }
    }
}

/// Formulas for a row of the reduction table (with K = 2 where it takes K), reduced over
/// j (`out_i`) or over i: one per weighting the row accepts. Each rule has its formula,
/// differentiable in x, y, b and s where its reduction is.
fn table_formulas(kind: ReductionKind, out_i: bool) -> Vec<String> {
    let suffix = if out_i { "_j" } else { "_i" };
    let name = kind.name();
    let k = kind.k().map(|k| format!(", {k}")).unwrap_or_default();
    let f = match kind.rule() {
        Rule::Sum => "Exp(-SqDist(x_i, y_j) / s) * b_j",
        Rule::Select { .. } => "Square(x_i - y_j) * s + Elem(b_j, 0)",
        Rule::LogSumExp | Rule::SoftMaxWeight => "-SqDist(x_i, y_j) / s",
    };
    // Positive weights that vary with both indices (a G of j alone would make
    // SumSoftMaxWeight_i constant in x).
    let g = ", b_j * Exp(Elem(x_i, 0))";
    let weights: &[&str] = match kind.spec().weight {
        Weight::None => &[""],
        Weight::Optional => &["", g],
        Weight::Required => &[g],
    };
    weights
        .iter()
        .map(|g| {
            let body = format!("{name}{suffix}({f}{k}{g})");
            let b = if body.contains("b_j") { "b_j: 2; " } else { "" };
            format!("x_i: 3; y_j: 3; s: 1; {b}{body}")
        })
        .collect()
}

/// The gradients of an index-only reduction are zero, shaped like the variables, for a
/// cotangent shaped like the indices.
fn check_zero_gradients(text: &str, seed: u64) {
    let p = parse(text);
    let inputs = used(&p, &data(5, 6, 3, seed));
    let out = eval(&p, &inputs);
    assert!(out.vdim == 0 && out.idim > 0, "{text}: indices only");
    let e = input(
        "e",
        out.rows,
        out.idim,
        &uniform(&mut rng(seed), out.rows * out.idim, -1.0, 1.0),
    );
    for v in variables_of(text) {
        let pos = p.arg_position(v).expect("an argument");
        let g = p
            .grad(pos, "e")
            .unwrap_or_else(|err| panic!("{text}: {err}"));
        let mut with_e = inputs.clone();
        with_e.push(e.clone());
        let got = eval(&g, &with_e);
        let target = inputs.iter().find(|i| i.name == v).expect("input");
        assert_eq!(
            (got.rows, got.vdim),
            (target.rows, target.dim),
            "{text}: d/d{v}"
        );
        assert!(
            got.values.iter().all(|x| *x == 0.0),
            "{text}: d/d{v} = {:?}",
            got.values
        );
    }
}

/// Every row of the reduction table through its gradient rule ([`Backward`]), in both
/// directions: the gradients with respect to every variable against finite differences,
/// or zero for the rows without values. A new row is checked here with no new test.
#[test]
fn every_row_of_the_reduction_table_has_a_checked_gradient() {
    for (n, id) in ReductionId::ALL.iter().enumerate() {
        let kind = id.with_k(2);
        for out_i in [true, false] {
            for (w, text) in table_formulas(kind, out_i).iter().enumerate() {
                let seed = 300 + 10 * n as u64 + 2 * w as u64 + u64::from(out_i);
                match kind.spec().backward {
                    Backward::Zero => check_zero_gradients(text, seed),
                    Backward::Linear
                    | Backward::LogSumExp
                    | Backward::SoftMaxWeight
                    | Backward::Selected => {
                        grads_match_finite_differences(text, &variables_of(text), 5, 6, seed)
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Second order.
// ---------------------------------------------------------------------------------------

#[test]
fn gradient_of_a_gradient() {
    let p = parse("x_i: 3; y_j: 3; s: 1; Sum_j(Exp(-SqDist(x_i, y_j) / s) * b_j)");
    let inputs = used(&p, &data(5, 4, 3, 50));
    let (g, with_e) = check_grad(&p, &inputs, "x", "e", 51);
    // p.grad(0, "e")?.grad(1, "f")?, by position as in the brief.
    assert_eq!(
        (p.arg_position("x"), p.arg_position("y")),
        (Some(0), Some(1))
    );
    let gg = g.grad(1, "f").expect("second order");
    let f = cotangent(&g, &with_e, "f", 52);
    let mut with_f = with_e.clone();
    with_f.push(f.clone());
    let got = eval(&gg, &with_f);
    let want = finite_differences(&g, &with_e, "y", &f.data);
    assert_close("d<f, d<e, p>/dx>/dy", &got.values, &want, 1e-6, 1e-7);
    // Through every argument of the first-order program: x again, b, s and the
    // cotangent e itself.
    for (k, v) in ["x", "b", "s", "e"].iter().enumerate() {
        check_grad(&g, &with_e, v, "f", 53 + k as u64);
    }
}

#[test]
fn second_order_through_logsumexp_softmax_and_min() {
    // (formula, first variable, second variables); `b` only moves the selection of
    // Min_ArgMin / KMin, so the second-order gradient with respect to it is zero.
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "s: 1; LogSumExp_j(-SqDist(x_i, y_j) / s, b_j)",
            "x",
            &["y", "x", "s", "b", "e"],
        ),
        (
            "SumSoftMaxWeight_j(-SqDist(x_i, y_j), b_j)",
            "y",
            &["x", "y", "b", "e"],
        ),
        (
            "s: 1; b_j: 2; Min_ArgMin_j(Square(x_i - y_j) * s + Elem(b_j, 0))",
            "x",
            &["y", "x", "s", "b"],
        ),
        (
            "b_j: 2; KMin_j(Square(x_i - y_j) + Elem(b_j, 0), 2)",
            "y",
            &["x", "y", "b"],
        ),
    ];
    for (k, (text, first, second)) in cases.into_iter().enumerate() {
        let p = parse(text);
        let inputs = used(&p, &data(4, 5, 2, 60 + k as u64));
        let (g, with_e) = check_grad(&p, &inputs, first, "e", 70 + k as u64);
        for (l, v) in second.iter().enumerate() {
            assert!(
                g.arg_position(v).is_some(),
                "{text}: `{v}` is an argument of the gradient program {g}"
            );
            let nonzero = !(*v == "b" && (text.contains("Min_ArgMin") || text.contains("KMin")));
            check_grad_or_zero(&g, &with_e, v, "f", 80 + 10 * k as u64 + l as u64, nonzero);
        }
        if text.contains("Min") {
            // Documented limitation (program.rs, gather_backward): the gradient of a
            // Min/KMin gradient with respect to its own cotangent is refused.
            let err = g
                .grad(g.arg_position("e").expect("cotangent"), "f")
                .expect_err(text);
            assert_eq!(err.kind, ErrorKind::Differentiation, "{err}");
            assert!(
                err.message.contains("not supported") && err.help.is_some(),
                "{err}"
            );
        }
    }
}

/// The smallest program hitting the Hamiltonian's problem: the gradient with respect
/// to `x` (used as `x_i` and `x_j`) is `buf_i + buf_j`, a reduction over j plus one over
/// i; differentiating it again must read the cotangent of the second term by j.
#[test]
fn second_order_with_a_variable_used_as_x_i_and_x_j() {
    let p = parse("Sum_j(Exp(-SqDist(x_i, x_j)) * b_j)");
    let mut inputs = data(5, 5, 2, 95);
    inputs.retain(|i| i.name == "x" || i.name == "b");
    let (g, with_e) = check_grad(&p, &inputs, "x", "e", 96);
    check_grad(&g, &with_e, "b", "f", 97);
    check_grad(&g, &with_e, "x", "f", 98);
}

#[test]
fn hamiltonian_second_order() {
    let h = parse("Sum_j(Exp(-SqDist(q_i, q_j) / s) * (p_i | p_j))");
    let names: Vec<&str> = h
        .args
        .iter()
        .map(|a| a.name.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["q", "s", "p"]);
    let mut r = rng(90);
    let (m, d) = (6, 2);
    let inputs = vec![
        input("q", m, d, &uniform(&mut r, m * d, -1.0, 1.0)),
        input("s", 1, 1, &[0.5]),
        input("p", m, d, &uniform(&mut r, m * d, -1.0, 1.0)),
    ];
    // dH/dq with the cotangent e = 1 (H summed over i), then the second order.
    let ones = input("e", m, 1, &vec![1.0; m]);
    let gq = h.grad(0, "e").expect("dH/dq");
    let gp = h.grad(2, "e").expect("dH/dp");
    let gqp = gq.grad(2, "f").expect("d(dH/dq)/dp");
    let gqq = gq.grad(0, "f").expect("d(dH/dq)/dq");
    eprintln!(
        "Hamiltonian node counts: H {}, dH/dq {}, dH/dp {}, d(dH/dq)/dp {}, d(dH/dq)/dq {}",
        h.node_count(),
        gq.node_count(),
        gp.node_count(),
        gqp.node_count(),
        gqq.node_count()
    );
    eprintln!("d(dH/dq)/dq = {gqq}");
    // Sharing keeps the programs small (the bound is generous: a tree-expanded second
    // order is several times larger).
    assert!(
        gq.node_count() < 40 && gqq.node_count() < 120,
        "dH/dq: {}, d2H/dq2: {}",
        gq.node_count(),
        gqq.node_count()
    );
    let mut with_e = inputs.clone();
    with_e.push(ones);
    let want = finite_differences(&h, &inputs, "q", &with_e[3].data);
    assert_close("dH/dq", &eval(&gq, &with_e).values, &want, 1e-6, 1e-7);
    check_grad(&h, &inputs, "p", "e", 91);
    // The second order, against finite differences of the first-order programs.
    check_grad(&gp, &with_e, "q", "f", 94);
    check_grad(&gq, &with_e, "p", "f", 92);
    check_grad(&gq, &with_e, "q", "f", 93);
}

// ---------------------------------------------------------------------------------------
// The KeOps string form.
// ---------------------------------------------------------------------------------------

fn same_numbers(a: &Program, b: &Program, inputs: &[Input<f64>]) {
    let (oa, ob) = (eval(a, inputs), eval(b, inputs));
    assert_eq!((oa.rows, oa.vdim), (ob.rows, ob.vdim), "{a}\n{b}");
    let want: Vec<f64> = ob.values.clone();
    assert_close(&format!("{a}\nvs\n{b}"), &oa.values, &want, 1e-14, 1e-14);
    assert!(want.iter().any(|v| v.abs() > 1e-6), "{want:?}");
}

#[test]
fn grad_in_keops_string_syntax_equals_program_grad() {
    let aliases = ["x = Vi(3)", "y = Vj(3)", "b = Vj(2)"];
    let mut r = rng(100);
    let inputs = vec![
        input::<f64>("x", 5, 3, &uniform(&mut r, 15, -1.0, 1.0)),
        input("y", 4, 3, &uniform(&mut r, 12, -1.0, 1.0)),
        input("b", 4, 2, &uniform(&mut r, 8, 0.5, 1.5)),
        input("e", 5, 2, &uniform(&mut r, 10, -1.0, 1.0)),
        input("ej", 4, 2, &uniform(&mut r, 8, -1.0, 1.0)),
        input("f", 5, 3, &uniform(&mut r, 15, -1.0, 1.0)),
        input("e_i", 5, 2, &uniform(&mut r, 10, -1.0, 1.0)),
    ];
    let forward = Program::parse_with_aliases("Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)", &aliases)
        .expect("forward");
    let by_api = forward.grad(0, "e").expect("grad");
    let with_e: Vec<&str> = aliases.iter().copied().chain(["e = Vi(2)"]).collect();
    let by_text = Program::parse_with_aliases(
        "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), x, e)",
        &with_e,
    )
    .expect("Grad text");
    same_numbers(&by_text, &by_api, &used(&by_text, &inputs));
    // With respect to a j-variable.
    let by_text = Program::parse_with_aliases(
        "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), y, e)",
        &with_e,
    )
    .expect("Grad text");
    same_numbers(
        &by_text,
        &forward.grad(1, "e").expect("grad"),
        &used(&by_text, &inputs),
    );
    // Tag 1, cotangent indexed by j.
    let forward1 =
        Program::parse_with_aliases("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", &aliases)
            .expect("forward");
    let with_ej: Vec<&str> = aliases.iter().copied().chain(["ej = Vj(2)"]).collect();
    let by_text = Program::parse_with_aliases(
        "Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 1), x, ej)",
        &with_ej,
    )
    .expect("Grad text");
    same_numbers(
        &by_text,
        &forward1.grad(0, "ej").expect("grad"),
        &used(&by_text, &inputs),
    );
    // Second order in text: Grad(Grad(..., x, e), y, f).
    let with_ef: Vec<&str> = with_e.iter().copied().chain(["f = Vi(3)"]).collect();
    let by_text = Program::parse_with_aliases(
        "Grad(Grad(Sum_Reduction(Exp(-SqDist(x, y)) * b, 0), x, e), y, f)",
        &with_ef,
    )
    .expect("Grad Grad text");
    let by_api = forward
        .grad(0, "e")
        .and_then(|g| g.grad(1, "f"))
        .expect("second order");
    same_numbers(&by_text, &by_api, &used(&by_text, &inputs));
    // The concise form, with the cotangent created by Grad (undeclared e_i).
    let by_text = parse("Grad(Sum_j(Exp(-SqDist(x_i, y_j)) * b_j), x_i, e_i)");
    same_numbers(
        &by_text,
        &parse("Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)")
            .grad(0, "e_i")
            .expect("grad"),
        &used(&by_text, &inputs),
    );
}
