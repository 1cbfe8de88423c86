//! What every reduction returns on a row with no term (N = 0), on a row whose every term
//! is -inf, and on a row whose every term is NaN, on every backend and in the reference
//! evaluator (the semantics documented in `docs/reliability.md`):
//!
//! | rule | no term | every term -inf | every term NaN |
//! |---|---|---|---|
//! | Sum | 0 | -inf | NaN |
//! | Min, KMin (values, indices) | +inf, none | -inf, the first K indices | +inf, none |
//! | Max (values, indices) | -inf, none | -inf, the first index | -inf, none |
//! | LogSumExp (plain or weighted) | -inf | -inf | NaN |
//! | SumSoftMaxWeight | NaN | NaN | NaN |
//!
//! "none" is `usize::MAX` in the typed API (`INDEX_NONE` in the reference evaluator).

use keops::ir::INDEX_NONE;
use keops::ir::eval::{Array, EvalOptions};
use keops::ir::reduction::{Order, ReductionId, ReductionKind, Rule};
use keops::{Backend, Options, Program, keops};

keops! { sum(x_i: 1, y_j: 1) = Sum_j(x_i * y_j) }
keops! { min(x_i: 1, y_j: 1) = Min_j(x_i * y_j) }
keops! { max(x_i: 1, y_j: 1) = Max_j(x_i * y_j) }
keops! { argmin(x_i: 1, y_j: 1) = ArgMin_j(x_i * y_j) }
keops! { argmax(x_i: 1, y_j: 1) = ArgMax_j(x_i * y_j) }
keops! { min_argmin(x_i: 1, y_j: 1) = Min_ArgMin_j(x_i * y_j) }
keops! { max_argmax(x_i: 1, y_j: 1) = Max_ArgMax_j(x_i * y_j) }
keops! { kmin(x_i: 1, y_j: 1) = KMin_j(x_i * y_j, 2) }
keops! { argkmin(x_i: 1, y_j: 1) = ArgKMin_j(x_i * y_j, 2) }
keops! { kmin_argkmin(x_i: 1, y_j: 1) = KMin_ArgKMin_j(x_i * y_j, 2) }
keops! { lse(x_i: 1, y_j: 1) = LogSumExp_j(x_i * y_j) }
keops! { lse_weighted(x_i: 1, y_j: 1, b_j: 2) = LogSumExp_j(x_i * y_j, b_j) }
keops! { softmax(x_i: 1, y_j: 1, b_j: 2) = SumSoftMaxWeight_j(x_i * y_j, b_j) }

/// The three kinds of rows.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Row {
    /// N = 0.
    Empty,
    /// Every term -inf (F = x * y with x > 0 and y = -inf).
    MinusInf,
    /// Every term NaN.
    Nan,
}

const ROWS: [Row; 3] = [Row::Empty, Row::MinusInf, Row::Nan];
/// Rows of the output (M), terms per row (N, when not empty), K, G's width.
const M: usize = 2;
const N: usize = 3;
const K: usize = 2;
const G: usize = 2;

/// The documented result of a row for `kind`: values then indices, per output row.
fn expected(kind: ReductionKind, row: Row, weighted: bool) -> (Vec<f64>, Vec<u64>) {
    let inf = f64::INFINITY;
    let width = |w: usize, v: f64| vec![v; w];
    match kind.rule() {
        Rule::Sum => (
            width(
                1,
                match row {
                    Row::Empty => 0.0,
                    Row::MinusInf => -inf,
                    Row::Nan => f64::NAN,
                },
            ),
            vec![],
        ),
        Rule::Select { order, output } => {
            let k = kind.slots();
            let (values, indices): (Vec<f64>, Vec<u64>) = match (row, order) {
                (Row::MinusInf, _) => (vec![-inf; k], (0..k as u64).collect()),
                (Row::Empty | Row::Nan, Order::Smaller) => (vec![inf; k], vec![INDEX_NONE; k]),
                (Row::Empty | Row::Nan, Order::Larger) => (vec![-inf; k], vec![INDEX_NONE; k]),
            };
            (
                if output.values() { values } else { vec![] },
                if output.indices() { indices } else { vec![] },
            )
        }
        Rule::LogSumExp => {
            let w = if weighted { G } else { 1 };
            match row {
                Row::Empty | Row::MinusInf => (width(w, -inf), vec![]),
                Row::Nan => (width(w, f64::NAN), vec![]),
            }
        }
        Rule::SoftMaxWeight => (width(G, f64::NAN), vec![]),
    }
}

/// The arguments x, y and b of the test kernels.
type Data = (Vec<[f64; 1]>, Vec<[f64; 1]>, Vec<[f64; G]>);

/// The data of a row: x (M x 1, positive), y (N x 1), b (N x G).
fn data(row: Row) -> Data {
    let x = vec![[1.5], [0.5]];
    let (n, y) = match row {
        Row::Empty => (0, f64::NAN),
        Row::MinusInf => (N, f64::NEG_INFINITY),
        Row::Nan => (N, f64::NAN),
    };
    let b = (0..n).map(|k| [1.0 + k as f64, 2.0]).collect();
    (x, vec![[y]; n], b)
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[track_caller]
fn check(what: &str, got: (Vec<f64>, Vec<u64>), want: &(Vec<f64>, Vec<u64>)) {
    let rows = |w: &[f64]| w.len();
    let want_values: Vec<f64> = (0..M).flat_map(|_| want.0.clone()).collect();
    let want_indices: Vec<u64> = (0..M).flat_map(|_| want.1.clone()).collect();
    assert_eq!(rows(&got.0), rows(&want_values), "{what}: {got:?}");
    assert!(
        got.0.iter().zip(&want_values).all(|(a, b)| same(*a, *b)),
        "{what}: values {:?}, expected {want_values:?}",
        got.0
    );
    assert_eq!(got.1, want_indices, "{what}: indices");
}

/// Values and indices of a typed result, flattened.
fn flat<const D: usize>(v: &[[f64; D]]) -> Vec<f64> {
    v.iter().flatten().copied().collect()
}
fn flat_idx<const D: usize>(v: &[[usize; D]]) -> Vec<u64> {
    v.iter().flatten().map(|i| *i as u64).collect()
}

/// Runs the kernel of `kind` (weighted or not) on `row` with `options`.
fn run(kind: ReductionKind, weighted: bool, row: Row, o: &Options) -> (Vec<f64>, Vec<u64>) {
    let (x, y, b) = data(row);
    let r = |e: keops::KeopsError| -> ! { panic!("{kind} on {row:?}: {e}") };
    match (kind.id(), weighted) {
        (ReductionId::Sum, _) => (
            flat(&sum.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
            vec![],
        ),
        (ReductionId::Min, _) => (
            flat(&min.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
            vec![],
        ),
        (ReductionId::Max, _) => (
            flat(&max.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
            vec![],
        ),
        (ReductionId::ArgMin, _) => (
            vec![],
            flat_idx(&argmin.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
        ),
        (ReductionId::ArgMax, _) => (
            vec![],
            flat_idx(&argmax.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
        ),
        (ReductionId::MinArgMin, _) => {
            let (v, i) = min_argmin.eval_with(o, &x, &y).unwrap_or_else(|e| r(e));
            (flat(&v), flat_idx(&i))
        }
        (ReductionId::MaxArgMax, _) => {
            let (v, i) = max_argmax.eval_with(o, &x, &y).unwrap_or_else(|e| r(e));
            (flat(&v), flat_idx(&i))
        }
        (ReductionId::KMin, _) => (
            flat(&kmin.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
            vec![],
        ),
        (ReductionId::ArgKMin, _) => (
            vec![],
            flat_idx(&argkmin.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
        ),
        (ReductionId::KMinArgKMin, _) => {
            let (v, i) = kmin_argkmin.eval_with(o, &x, &y).unwrap_or_else(|e| r(e));
            (flat(&v), flat_idx(&i))
        }
        (ReductionId::LogSumExp, false) => (
            flat(&lse.eval_with(o, &x, &y).unwrap_or_else(|e| r(e))),
            vec![],
        ),
        (ReductionId::LogSumExp, true) => (
            flat(
                &lse_weighted
                    .eval_with(o, &x, &y, &b)
                    .unwrap_or_else(|e| r(e)),
            ),
            vec![],
        ),
        (ReductionId::SumSoftMaxWeight, _) => (
            flat(&softmax.eval_with(o, &x, &y, &b).unwrap_or_else(|e| r(e))),
            vec![],
        ),
    }
}

/// Every row of the reduction table, with K = 2, weighted and not where it may be.
fn kinds() -> Vec<(ReductionKind, bool)> {
    let mut v = Vec::new();
    for id in ReductionId::ALL {
        let kind = id.with_k(K);
        match kind.spec().weight {
            keops::ir::reduction::Weight::None => v.push((kind, false)),
            keops::ir::reduction::Weight::Optional => {
                v.push((kind, false));
                v.push((kind, true));
            }
            keops::ir::reduction::Weight::Required => v.push((kind, true)),
        }
    }
    v
}

/// The backends: the CPU, the emulated GPU, and the GPU when one is usable.
fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Cpu, Backend::Emulated];
    if keops::gpu_available() {
        b.push(Backend::Gpu(0));
    } else if std::env::var("KEOPS_REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("KEOPS_REQUIRE_GPU=1 but no GPU is usable (no NVIDIA driver, or no device)");
    }
    b
}

#[test]
fn every_reduction_on_empty_minus_infinity_and_nan_rows_on_every_backend() {
    for backend in backends() {
        let o = Options::on(backend);
        for (kind, weighted) in kinds() {
            for row in ROWS {
                let want = expected(kind, row, weighted);
                let got = run(kind, weighted, row, &o);
                check(
                    &format!("{kind} (weighted: {weighted}) on {row:?}, {backend:?}"),
                    got,
                    &want,
                );
                assert_eq!(
                    keops::last_backend(),
                    Some(backend),
                    "{kind} on {backend:?}"
                );
            }
        }
    }
}

#[test]
fn the_reference_evaluator_agrees_in_f32_and_f64() {
    for (kind, weighted) in kinds() {
        let k = kind.k().map(|k| format!(", {k}")).unwrap_or_default();
        let (decl, g) = if weighted {
            ("b_j: 2; ", ", b_j")
        } else {
            ("", "")
        };
        let text = format!("x_i: 1; y_j: 1; {decl}{}_j(x_i * y_j{k}{g})", kind.name());
        let p = Program::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        for row in ROWS {
            let (x, y, b) = data(row);
            let (x, y, b): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                x.into_iter().flatten().collect(),
                y.into_iter().flatten().collect(),
                b.into_iter().flatten().collect(),
            );
            let n = y.len();
            let mut arrays = vec![Array::new(&x, M, 1), Array::new(&y, n, 1)];
            if weighted {
                arrays.push(Array::new(&b, n, G));
            }
            let opts = EvalOptions {
                n: Some(n),
                ..EvalOptions::default()
            };
            let want = expected(kind, row, weighted);
            let out = p.evaluate::<f64>(&arrays, &opts).unwrap();
            check(
                &format!("{text} on {row:?} (f64)"),
                (out.values, out.indices),
                &want,
            );
            let (x32, y32, b32): (Vec<f32>, Vec<f32>, Vec<f32>) = (
                x.iter().map(|v| *v as f32).collect(),
                y.iter().map(|v| *v as f32).collect(),
                b.iter().map(|v| *v as f32).collect(),
            );
            let mut arrays = vec![Array::new(&x32, M, 1), Array::new(&y32, n, 1)];
            if weighted {
                arrays.push(Array::new(&b32, n, G));
            }
            let out = p.evaluate::<f32>(&arrays, &opts).unwrap();
            let values = out.values.iter().map(|v| f64::from(*v)).collect();
            check(
                &format!("{text} on {row:?} (f32)"),
                (values, out.indices),
                &want,
            );
        }
    }
}
