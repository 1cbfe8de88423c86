//! The limits of the compiler (`keops_ir::limits`): formulas of any depth and length go
//! through every stage on a thread with a 2 MiB stack, and numbers past a limit are
//! typed errors naming the operation and the number, never a panic or an abort.

use keops_ir::eval::{Array, EvalOptions};
use keops_ir::limits::{MAX_ARG_INDEX, MAX_EVAL_VALUES, MAX_K, MAX_WIDTH, MAX_WORK};
use keops_ir::lower::{SumMode, lower_reduction};
use keops_ir::parse::{Parser, Source};
use keops_ir::{ErrorKind, Program};
use std::time::Instant;

// ---------------------------------------------------------------------------------------
// Depth and length.

/// Levels of nesting and terms of the chains below.
const DEEP: usize = 100_000;

/// Runs `f` on a thread with a 2 MiB stack (the default of a spawned thread), re-raising
/// its panic.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn a thread");
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// x: 2 rows, y: 3 rows, both of width 1.
const X: [f64; 2] = [1.0, -1.0];
const Y: [f64; 3] = [-1.0, 1.0, 1.0];

/// Parses, checks, evaluates on (X, Y) and lowers `text`, timing each stage (printed with
/// `--nocapture`, so that a stage that becomes slow shows).
fn run(label: &str, text: &str) -> Vec<f64> {
    let t = Instant::now();
    let p = Program::parse(text).unwrap_or_else(|e| panic!("{label}: {e}"));
    let parsed = t.elapsed();
    let args = [Array::new(&X, 2, 1), Array::new(&Y, 3, 1)];
    let out = p
        .evaluate::<f64>(&args, &EvalOptions::default())
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    let evaluated = t.elapsed();
    let q = p.instantiate(&[1, 1]).expect("instantiate");
    let r = q.reductions().next().expect("a reduction");
    let k = lower_reduction(&q, r, SumMode::Plain).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(!k.formula.results.is_empty());
    println!(
        "{label}: parse + check {parsed:?}, evaluate {:?}, lower {:?}, {} nodes",
        evaluated - parsed,
        t.elapsed() - evaluated,
        p.graph.len()
    );
    drop((p, q, k));
    out.values
}

fn nested(open: &str, inner: &str, close: &str) -> String {
    let mut s = open.repeat(DEEP);
    s.push_str(inner);
    s.push_str(&close.repeat(DEEP));
    s
}

/// `x y x y ...` joined by `op`, `n` terms.
fn chain(x: &str, y: &str, op: &str, n: usize) -> String {
    (0..n)
        .map(|k| if k % 2 == 0 { x } else { y })
        .collect::<Vec<_>>()
        .join(op)
}

/// `Sum_j(x_i + y_j)` on (X, Y): `3 x_i + 1`.
const SUM_X_PLUS_Y: [f64; 2] = [4.0, -2.0];

#[test]
fn nested_parentheses_on_a_small_stack() {
    on_small_stack(|| {
        let concise = format!("Sum_j({} + y_j)", nested("(", "x_i", ")"));
        assert_eq!(run("parentheses, concise", &concise), SUM_X_PLUS_Y);
        let keops = format!(
            "x = Vi(0, 1); y = Vj(1, 1); Sum_Reduction({} + y, 0)",
            nested("(", "x", ")")
        );
        assert_eq!(run("parentheses, string syntax", &keops), SUM_X_PLUS_Y);
    });
}

#[test]
fn nested_unary_operations_on_a_small_stack() {
    on_small_stack(|| {
        // An even number of minus signs: x itself.
        let minus = format!("Sum_j({} + y_j)", nested("-(", "x_i", ")"));
        assert_eq!(run("-(-(...)), concise", &minus), SUM_X_PLUS_Y);
        let bare = format!("Sum_j({}x_i + y_j)", "- ".repeat(DEEP));
        assert_eq!(run("- - ... x, concise", &bare), SUM_X_PLUS_Y);
        let abs = format!(
            "x = Vi(0, 1); y = Vj(1, 1); Sum_Reduction({} + y, 0)",
            nested("Abs(", "x", ")")
        );
        // |x| = 1 for both rows: 3 + 1.
        assert_eq!(run("Abs(Abs(...)), string syntax", &abs), [4.0, 4.0]);
        let half = DEEP / 2;
        let exp_log = format!(
            "Sum_j({}x_i{} * y_j)",
            "Log(Exp(".repeat(half),
            "))".repeat(half)
        );
        // 50,000 pairs of Log(Exp(.)) of 1 and -1, within rounding; the sum of y is 1.
        let got = run("Log(Exp(...)), concise", &exp_log);
        assert!(
            (got[0] - 1.0).abs() < 1e-9 && (got[1] + 1.0).abs() < 1e-9,
            "{got:?}"
        );
    });
}

#[test]
fn long_chains_on_a_small_stack() {
    on_small_stack(|| {
        // 50,000 x and 50,000 y: 50,000 (3 x_i + 1).
        let add = format!("Sum_j({})", chain("x_i", "y_j", " + ", DEEP));
        assert_eq!(run("x + y + ..., concise", &add), [200_000.0, -100_000.0]);
        // 50,001 x and 50,000 y, of values +-1: x_i sum_j y_j^50000 = 3 x_i.
        let mul = format!(
            "x = Vi(0, 1); y = Vj(1, 1); Sum_Reduction({}, 0)",
            chain("x", "y", " * ", DEEP + 1)
        );
        assert_eq!(run("x * y * ..., string syntax", &mul), [3.0, -3.0]);
        let sub = format!("Sum_j({})", chain("x_i", "y_j", " - ", DEEP));
        // x appears with + once and - 49,999 times, y with - 50,000 times.
        let want: Vec<f64> = X
            .iter()
            .map(|x| Y.iter().map(|y| -49_998.0 * x - 50_000.0 * y).sum())
            .collect();
        assert_eq!(run("x - y - ..., concise", &sub), want);
    });
}

#[test]
fn deep_syntax_trees_clone_compare_and_drop_on_a_small_stack() {
    on_small_stack(|| {
        let text = format!("Sum_j({})", nested("Exp(", "x_i", ")"));
        let src = Source::from_text(&text).unwrap();
        let items = Parser::new(&src).items().unwrap();
        let copy = items.clone();
        assert!(copy == items);
        let shown = format!("{:?}", &items[0]);
        assert!(shown.len() > DEEP);
        drop(copy);
        drop(items);
    });
}

// ---------------------------------------------------------------------------------------
// Numbers past the limits.

/// Parses `text`, which must fail with `kind`, a message containing every one of `must`,
/// and (when given) the caret under `under`.
fn fails(text: &str, kind: ErrorKind, must: &[&str], under: Option<&str>) {
    let e = match Program::parse(text) {
        Ok(p) => panic!("`{text}` should not parse; it gave {p}"),
        Err(e) => e,
    };
    assert_eq!(e.error.kind, kind, "`{text}`:\n{}", e.rendered);
    for m in must {
        assert!(
            e.error.message.contains(m),
            "`{text}`: the message should contain {m:?}:\n{}",
            e.rendered
        );
    }
    if let Some(under) = under {
        let src = Source::from_text(text).unwrap();
        let at = e.error.at.expect("a location");
        assert_eq!(src.snippet(at), under, "`{text}`:\n{}", e.rendered);
    }
}

#[test]
fn argument_index_past_the_limit() {
    fails(
        "Sum_Reduction(Var(99999999999, 1, 0), 0)",
        ErrorKind::Limit,
        &["Var index 99999999999", &MAX_ARG_INDEX.to_string()],
        Some("99999999999"),
    );
    fails(
        "x = Vi(65536, 1); Sum_Reduction(x, 0)",
        ErrorKind::Limit,
        &["Vi index 65536", "past the limit 65535"],
        Some("65536"),
    );
    // At the limit it is an ordinary gap in the argument positions.
    fails(
        "x = Vi(65535, 1); Sum_Reduction(x, 0)",
        ErrorKind::Declaration,
        &["never declared"],
        None,
    );
}

#[test]
fn widths_past_the_limit() {
    fails(
        "Sum_j(Zero(4294967296) + x_i)",
        ErrorKind::Limit,
        &["dimension of Zero, 4294967296", &MAX_WIDTH.to_string()],
        Some("4294967296"),
    );
    fails(
        "Sum_Reduction(Var(0, 1048577, 0), 0)",
        ErrorKind::Limit,
        &["dimension of Var, 1048577"],
        Some("1048577"),
    );
    fails(
        "x_i: 99999999999; Sum_j(x_i)",
        ErrorKind::Limit,
        &["`x_i`", "99999999999"],
        Some("99999999999"),
    );
    fails(
        "Sum_j(SumT(Elem(x_i, 0), 4294967296))",
        ErrorKind::Limit,
        &["SumT", "4294967296"],
        None,
    );
    fails(
        "Sum_j(OneHot(Elem(x_i, 0), 9223372036854775807))",
        ErrorKind::Limit,
        &["OneHot", "9223372036854775807"],
        None,
    );
    fails(
        "Sum_j(ElemT(Elem(x_i, 0), 1099511627776, 0))",
        ErrorKind::Limit,
        &["ElemT", "1099511627776"],
        None,
    );
    fails(
        "Sum_j(ExtractT(x_i, 0, 1099511627776))",
        ErrorKind::Limit,
        &["ExtractT", "1099511627776"],
        None,
    );
    fails(
        "Sum_j(Extract(x_i, 0, 1099511627776))",
        ErrorKind::Limit,
        &["Extract", "1099511627776"],
        None,
    );
    fails(
        "Sum_j(ComplexSumT(Real2Complex(Elem(x_i, 0)), 4294967296))",
        ErrorKind::Limit,
        &["ComplexSumT", "4294967296"],
        None,
    );
}

#[test]
fn integer_parameters_past_32_bits() {
    fails(
        "Sum_j(Pow(x_i, 4294967298))",
        ErrorKind::Parameter,
        &["Pow", "exponent 4294967298", "2147483647"],
        Some("4294967298"),
    );
    fails(
        "Sum_j(Pow(x_i, -4294967298))",
        ErrorKind::Parameter,
        &["Pow", "-4294967298"],
        Some("-4294967298"),
    );
    fails(
        "Sum_j(Round(x_i, 9999999999))",
        ErrorKind::Parameter,
        &["Round", "9999999999"],
        Some("9999999999"),
    );
}

#[test]
fn k_past_the_limit() {
    fails(
        "KMin_Reduction(Abs(x_i - y_j), 4611686018427387904, 0)",
        ErrorKind::Limit,
        &[
            "KMin_Reduction",
            "K = 4611686018427387904",
            &MAX_K.to_string(),
        ],
        Some("4611686018427387904"),
    );
    fails(
        "ArgKMin_j(x_i - y_j, 1048577)",
        ErrorKind::Limit,
        &["ArgKMin_j", "1048577"],
        Some("1048577"),
    );
    // K within its limit, but K times the width of F past the width limit.
    fails(
        "x = Vi(0, 1024); y = Vj(1, 1024); KMin_ArgKMin_Reduction(x - y, 2048, 0)",
        ErrorKind::Limit,
        &["KMin_ArgKMin_Reduction", "2048 x 1024 = 2097152"],
        Some("KMin_ArgKMin_Reduction(x - y, 2048, 0)"),
    );
}

/// `Vi(0, n)` and `Vj(1, m)`, then the formula `f` reduced over j.
fn with_widths(n: usize, m: usize, f: &str) -> String {
    format!("x = Vi(0, {n}); y = Vj(1, {m}); Sum_Reduction({f}, 0)")
}

#[test]
fn products_of_widths_past_the_limit() {
    let big = MAX_WIDTH;
    fails(
        &with_widths(big, big, "Concat(x, y)"),
        ErrorKind::Limit,
        &["Concat", "2097152", "Concat(x, y)"],
        Some("Concat(x, y)"),
    );
    fails(
        &with_widths(big, big, "TensorProd(x, y)"),
        ErrorKind::Limit,
        &["TensorProd", "1099511627776"],
        Some("TensorProd(x, y)"),
    );
    // Nested: the product of three widths would overflow 40 bits; the first past the
    // limit is reported.
    fails(
        &with_widths(big, 2, "TensorProd(TensorProd(x, y), y)"),
        ErrorKind::Limit,
        &["TensorProd", "2097152"],
        Some("TensorProd(x, y)"),
    );
    fails(
        &with_widths(1024, 2048, "TensorDot(x, y, (1024,), (2048,), (), ())"),
        ErrorKind::Limit,
        &["TensorDot", "2097152"],
        None,
    );
    fails(
        &with_widths(
            4,
            4,
            "TensorDot(x, y, (4294967296, 4294967296, 4294967296), (4,), (), ())",
        ),
        ErrorKind::Limit,
        &["TensorDot", "(4294967296, 4294967296, 4294967296)"],
        None,
    );
    fails(
        &with_widths(1024, 2048, "Kron(x, y, (32, 32), (32, 64))"),
        ErrorKind::Limit,
        &["TensorDot", "2097152", "Kron(x, y, (32, 32), (32, 64))"],
        Some("Kron(x, y, (32, 32), (32, 64))"),
    );
    fails(
        &with_widths(4, 4, "Kron(x, y, (4294967296, 4294967296), (2, 2))"),
        ErrorKind::Limit,
        &["Kron", "(4294967296, 4294967296)", "more than 2^64"],
        None,
    );
    fails(
        &with_widths(8, 1, "BSpline(x, y, 4611686018427387904)"),
        ErrorKind::Limit,
        &["BSpline", "4611686018427387904"],
        None,
    );
    fails(
        &with_widths(big, 1, "Real2Complex(x)"),
        ErrorKind::Limit,
        &["Real2Complex", "2097152"],
        None,
    );
    fails(
        "x = Vi(0, 8192); y = Vj(1, 8192); Sum_Reduction(SoftDTW_SqDist(x, y, IntCst(1)), 0)",
        ErrorKind::Limit,
        &["SoftDTW_SqDist", "8192", &MAX_WORK.to_string()],
        None,
    );
}

/// Evaluates `text` on arrays of the given rows and widths (all zeros), which must fail
/// with `kind` and a message containing every one of `must`.
fn evaluation_fails(text: &str, arrays: &[(usize, usize)], opts: EvalOptions, must: &[&str]) {
    let p = Program::parse(text).unwrap_or_else(|e| panic!("{e}"));
    let data: Vec<Vec<f64>> = arrays
        .iter()
        .map(|(r, w)| vec![0.0; r.saturating_mul(*w).min(1 << 24)])
        .collect();
    let args: Vec<Array<'_, f64>> = arrays
        .iter()
        .zip(&data)
        .map(|((r, w), d)| Array::new(d, *r, *w))
        .collect();
    let e = p.evaluate(&args, &opts).expect_err(text);
    assert_eq!(e.kind, ErrorKind::Limit, "`{text}`: {e}");
    for m in must {
        assert!(e.message.contains(m), "`{text}`: {m:?} not in {e}");
    }
}

#[test]
fn generic_widths_are_checked_when_instantiated() {
    // The product of two widths given at run time.
    evaluation_fails(
        "Sum_j(TensorProd(x_i, y_j))",
        &[(1, 2048), (1, 1024)],
        EvalOptions::default(),
        &["TensorProd", "2097152"],
    );
    evaluation_fails(
        "Sum_j(Concat(x_i, y_j))",
        &[(1, 1 << 20), (1, 1)],
        EvalOptions::default(),
        &["Concat", "1048577"],
    );
    // An argument wider than any width.
    evaluation_fails(
        "Sum_j(x_i * y_j)",
        &[(1, (1 << 20) + 1), (1, 1)],
        EvalOptions::default(),
        &["argument 0", "1048577"],
    );
    // K times a width given at run time.
    evaluation_fails(
        "KMin_j(x_i - y_j, 4096)",
        &[(1, 512), (1, 512)],
        EvalOptions::default(),
        &["buffer 0", "2097152"],
    );
    // The table of SoftDTW over sequences whose lengths are given at run time.
    evaluation_fails(
        "Sum_j(SoftDTW_SqDist(x_i, y_j, g))",
        &[(1, 4096), (1, 4096), (1, 1)],
        EvalOptions::default(),
        &["SoftDTW_SqDist", &MAX_WORK.to_string()],
    );
    let p = Program::parse("Sum_j(Exp(x_i) * y_j)").unwrap();
    let e = p.instantiate(&[usize::MAX, 1]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit, "{e}");
    assert!(e.message.contains(&usize::MAX.to_string()), "{e}");
}

#[test]
fn evaluation_sizes_past_the_limit() {
    // rows x width overflows.
    let p = Program::parse("Sum_j(x_i * y_j)").unwrap();
    let x = [0.0; 4];
    let e = p
        .evaluate(
            &[Array::new(&x, usize::MAX / 2 + 1, 2), Array::new(&x, 2, 2)],
            &EvalOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Limit, "{e}");
    assert!(e.message.contains("argument 0"), "{e}");
    assert!(e.message.contains(&(usize::MAX / 2 + 1).to_string()), "{e}");
    // An output of more rows than any buffer holds: its rows come from the options.
    evaluation_fails(
        "p = Pm(0, 2); Sum_Reduction(p, 0)",
        &[(1, 2)],
        EvalOptions {
            m: Some(MAX_EVAL_VALUES),
            n: Some(1),
            ..EvalOptions::default()
        },
        &["Sum", &MAX_EVAL_VALUES.to_string(), "2 values per row"],
    );
}
