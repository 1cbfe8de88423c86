//! Every reduction, in both directions, evaluated by [`Program::evaluate`] and compared
//! with a naive loop over the explicit M x N matrix written here; the special cases users
//! rely on (ties, K > N, NaN, -inf rows, M = 1, N = 1) in f32 and f64; the float32
//! summation schemes; and the lowered hooks (`lower_reduction`, run with `Block::run`)
//! against the reference `ReductionKind::{init, accumulate, merge, finalize}`.

mod support;

use keops_ir::eval::{EvalOptions, Output, SumScheme};
use keops_ir::lower::{Hooks, SumMode, Val, lower_reduction};
use keops_ir::real::Real;
use keops_ir::reduction::{Acc, ReductionId, ReductionKind};
use keops_ir::{INDEX_NONE, Program};
use proptest::prelude::*;
use rand::Rng;
use support::*;

// ---------------------------------------------------------------------------------------
// The reductions under test and their naive semantics.
// ---------------------------------------------------------------------------------------

/// A reduction as written in a formula (LogSumExp with and without weight apart).
#[derive(Copy, Clone, Debug, PartialEq)]
enum Red {
    Sum,
    Min,
    Max,
    ArgMin,
    ArgMax,
    MinArgMin,
    MaxArgMax,
    KMin(usize),
    ArgKMin(usize),
    KMinArgKMin(usize),
    Lse,
    LseW,
    Ssmw,
}

impl Red {
    fn all(k: usize) -> Vec<Red> {
        vec![
            Red::Sum,
            Red::Min,
            Red::Max,
            Red::ArgMin,
            Red::ArgMax,
            Red::MinArgMin,
            Red::MaxArgMax,
            Red::KMin(k),
            Red::ArgKMin(k),
            Red::KMinArgKMin(k),
            Red::Lse,
            Red::LseW,
            Red::Ssmw,
        ]
    }

    fn base(self) -> &'static str {
        match self {
            Red::Sum => "Sum",
            Red::Min => "Min",
            Red::Max => "Max",
            Red::ArgMin => "ArgMin",
            Red::ArgMax => "ArgMax",
            Red::MinArgMin => "Min_ArgMin",
            Red::MaxArgMax => "Max_ArgMax",
            Red::KMin(_) => "KMin",
            Red::ArgKMin(_) => "ArgKMin",
            Red::KMinArgKMin(_) => "KMin_ArgKMin",
            Red::Lse | Red::LseW => "LogSumExp",
            Red::Ssmw => "SumSoftMaxWeight",
        }
    }

    fn k(self) -> Option<usize> {
        match self {
            Red::KMin(k) | Red::ArgKMin(k) | Red::KMinArgKMin(k) => Some(k),
            _ => None,
        }
    }

    /// `Some(true)` for minimum-type selections, `Some(false)` for maximum-type ones.
    fn smaller(self) -> Option<bool> {
        match self {
            Red::Min
            | Red::ArgMin
            | Red::MinArgMin
            | Red::KMin(_)
            | Red::ArgKMin(_)
            | Red::KMinArgKMin(_) => Some(true),
            Red::Max | Red::ArgMax | Red::MaxArgMax => Some(false),
            _ => None,
        }
    }

    fn has_values(self) -> bool {
        !matches!(self, Red::ArgMin | Red::ArgMax | Red::ArgKMin(_))
    }

    fn has_indices(self) -> bool {
        matches!(
            self,
            Red::ArgMin
                | Red::ArgMax
                | Red::ArgKMin(_)
                | Red::MinArgMin
                | Red::MaxArgMax
                | Red::KMinArgKMin(_)
        )
    }

    /// The formula F, in the concise syntax.
    fn f(self) -> &'static str {
        match self {
            Red::Sum => "Exp(-SqDist(x_i, y_j)) * b_j",
            Red::Lse | Red::LseW | Red::Ssmw => "a_i - SqDist(x_i, y_j)",
            _ => "Abs(x_i - y_j)",
        }
    }

    /// The formula G, in the concise syntax.
    fn g(self) -> Option<&'static str> {
        match self {
            Red::LseW | Red::Ssmw => Some("b_j * Exp(-Square(a_i))"),
            _ => None,
        }
    }

    /// The concise form, `Red_j(...)` (dir = I) or `Red_i(...)` (dir = J).
    fn concise(self, out_i: bool) -> String {
        let suffix = if out_i { "j" } else { "i" };
        // Undeclared dimensions unify rather than broadcast: in `b_j * Exp(-Square(a_i))`
        // the width of `a` must be declared for `b` to stay free.
        let decl = if self.g().is_some() { "a_i: 1; " } else { "" };
        let mut s = format!("{decl}{}_{suffix}({}", self.base(), self.f());
        if let Some(k) = self.k() {
            s.push_str(&format!(", {k}"));
        }
        if let Some(g) = self.g() {
            s.push_str(&format!(", {g}"));
        }
        s.push(')');
        s
    }

    /// The KeOps string form with aliases: `Red_Reduction(F, [K,] tag[, G])`.
    fn alias(self, out_i: bool, d: usize, gd: usize) -> String {
        let strip = |s: &str| s.replace("_i", "").replace("_j", "");
        let tag = if out_i { 0 } else { 1 };
        let mut s = format!(
            "x = Vi({d}); y = Vj({d}); a = Vi(1); b = Vj({gd}); {}_Reduction({}",
            self.base(),
            strip(self.f())
        );
        if let Some(k) = self.k() {
            s.push_str(&format!(", {k}"));
        }
        s.push_str(&format!(", {tag}"));
        if let Some(g) = self.g() {
            s.push_str(&format!(", {}", strip(g)));
        }
        s.push(')');
        s
    }
}

/// The data of one case: x (M x D), y (N x D), a (M x 1), b (N x gd), in f64.
#[derive(Clone, Debug)]
struct Case {
    m: usize,
    n: usize,
    d: usize,
    gd: usize,
    x: Vec<f64>,
    y: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// Values of a formula on the M x N matrix: `[row][t][coordinate]`.
type Matrix = Vec<Vec<Vec<f64>>>;

#[derive(Copy, Clone, Debug, PartialEq)]
enum Flavor {
    /// Uniform random values.
    Generic,
    /// Small integers: many equal values.
    Ties,
    /// NaN entries in x, y and a.
    Nan,
    /// -inf in a (all -inf rows of LogSumExp for tag 0) and +inf rows in y (all -inf
    /// rows for tag 1; +inf values for the selections).
    Inf,
}

impl Case {
    fn new(
        r: &mut rand::rngs::StdRng,
        m: usize,
        n: usize,
        d: usize,
        gd: usize,
        flavor: Flavor,
    ) -> Case {
        let mut c = match flavor {
            Flavor::Ties => Case {
                m,
                n,
                d,
                gd,
                x: small_ints(r, m * d, -2, 2),
                y: small_ints(r, n * d, -2, 2),
                a: small_ints(r, m, -1, 1),
                b: uniform(r, n * gd, 0.5, 2.0),
            },
            _ => Case {
                m,
                n,
                d,
                gd,
                x: uniform(r, m * d, -1.5, 1.5),
                y: uniform(r, n * d, -1.5, 1.5),
                a: uniform(r, m, -1.0, 1.0),
                b: uniform(r, n * gd, 0.5, 2.0),
            },
        };
        match flavor {
            Flavor::Nan => {
                for v in c.y.iter_mut() {
                    if r.random_bool(0.25) {
                        *v = f64::NAN;
                    }
                }
                for v in c.x.iter_mut() {
                    if r.random_bool(0.1) {
                        *v = f64::NAN;
                    }
                }
                for v in c.a.iter_mut() {
                    if r.random_bool(0.2) {
                        *v = f64::NAN;
                    }
                }
            }
            Flavor::Inf => {
                for v in c.a.iter_mut() {
                    if r.random_bool(0.3) {
                        *v = f64::NEG_INFINITY;
                    }
                }
                for row in c.y.chunks_mut(d) {
                    if r.random_bool(0.3) {
                        row.fill(f64::INFINITY);
                    }
                }
            }
            _ => {}
        }
        c
    }

    fn inputs<R: Real>(&self) -> Vec<Input<R>> {
        vec![
            input("x", self.m, self.d, &self.x),
            input("y", self.n, self.d, &self.y),
            input("a", self.m, 1, &self.a),
            input("b", self.n, self.gd, &self.b),
        ]
    }

    /// The M x N matrices of F and G, computed entry by entry in precision `R`
    /// (then exactly widened to f64), oriented so that `[row][t]` is output row `row`
    /// and reduced index `t`.
    fn matrices<R: Real>(&self, red: Red, out_i: bool) -> (Matrix, Matrix) {
        let q = |v: f64| R::of(v);
        let (d, gd) = (self.d, self.gd);
        let x = |i: usize, c: usize| q(self.x[i * d + c]);
        let y = |j: usize, c: usize| q(self.y[j * d + c]);
        let a = |i: usize| q(self.a[i]);
        let b = |j: usize, c: usize| q(self.b[j * gd + c]);
        let sqdist = |i: usize, j: usize| {
            (0..d).fold(R::zero(), |s, c| {
                s + (x(i, c) - y(j, c)) * (x(i, c) - y(j, c))
            })
        };
        let entry = |i: usize, j: usize| -> (Vec<f64>, Vec<f64>) {
            let f: Vec<R> = match red {
                Red::Sum => {
                    let e = (-sqdist(i, j)).exp();
                    (0..gd).map(|c| e * b(j, c)).collect()
                }
                Red::Lse | Red::LseW | Red::Ssmw => vec![a(i) - sqdist(i, j)],
                _ => (0..d).map(|c| (x(i, c) - y(j, c)).abs()).collect(),
            };
            let g: Vec<R> = match red {
                Red::LseW | Red::Ssmw => {
                    let w = (-(a(i) * a(i))).exp();
                    (0..gd).map(|c| b(j, c) * w).collect()
                }
                _ => vec![R::one()],
            };
            (
                f.iter().map(|v| v.f64()).collect(),
                g.iter().map(|v| v.f64()).collect(),
            )
        };
        let (rows, inner) = if out_i {
            (self.m, self.n)
        } else {
            (self.n, self.m)
        };
        let mut fm = vec![Vec::new(); rows];
        let mut gm = vec![Vec::new(); rows];
        for row in 0..rows {
            for t in 0..inner {
                let (i, j) = if out_i { (row, t) } else { (t, row) };
                let (f, g) = entry(i, j);
                fm[row].push(f);
                gm[row].push(g);
            }
        }
        (fm, gm)
    }
}

/// The K best `(value, index)` of a list, NaN skipped, ties to the lowest index, padded
/// with `(worst, INDEX_NONE)`.
fn naive_select(vals: &[f64], k: usize, smaller: bool) -> Vec<(f64, u64)> {
    let mut c: Vec<(f64, u64)> = vals
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .map(|(t, v)| (*v, t as u64))
        .collect();
    c.sort_by(|p, q| {
        let o = p.0.partial_cmp(&q.0).expect("no NaN left");
        let o = if smaller { o } else { o.reverse() };
        o.then(p.1.cmp(&q.1))
    });
    c.truncate(k);
    let worst = if smaller {
        f64::INFINITY
    } else {
        f64::NEG_INFINITY
    };
    c.resize(k, (worst, INDEX_NONE));
    c
}

/// `log sum_t exp(f_t) w_t` for one coordinate of the weights.
fn naive_lse(f: &[f64], w: &[f64]) -> f64 {
    if f.iter().chain(w).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let m = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if m == f64::INFINITY {
        return f64::INFINITY;
    }
    m + f
        .iter()
        .zip(w)
        .map(|(f, w)| (f - m).exp() * w)
        .sum::<f64>()
        .ln()
}

/// `sum_t exp(f_t) w_t / sum_t exp(f_t)`.
fn naive_softmax(f: &[f64], w: &[f64]) -> f64 {
    if f.iter().chain(w).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let m = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let num: f64 = f.iter().zip(w).map(|(f, w)| (f - m).exp() * w).sum();
    let den: f64 = f.iter().map(|f| (f - m).exp()).sum();
    num / den
}

/// The naive reduction of every row: `(values, indices)`, row-major, KMin layout `[k][d]`.
fn naive(
    red: Red,
    fm: &[Vec<Vec<f64>>],
    gm: &[Vec<Vec<f64>>],
    fdim: usize,
    gdim: usize,
) -> (Vec<f64>, Vec<u64>) {
    let (mut values, mut indices) = (Vec::new(), Vec::new());
    for (frow, grow) in fm.iter().zip(gm) {
        match red {
            Red::Sum => {
                for c in 0..fdim {
                    values.push(frow.iter().map(|f| f[c]).sum());
                }
            }
            Red::Lse | Red::LseW | Red::Ssmw => {
                let f: Vec<f64> = frow.iter().map(|f| f[0]).collect();
                for c in 0..gdim {
                    let w: Vec<f64> = grow.iter().map(|g| g[c]).collect();
                    values.push(if red == Red::Ssmw {
                        naive_softmax(&f, &w)
                    } else {
                        naive_lse(&f, &w)
                    });
                }
            }
            _ => {
                let k = red.k().unwrap_or(1);
                let smaller = red.smaller().expect("a selection");
                let per_coord: Vec<Vec<(f64, u64)>> = (0..fdim)
                    .map(|c| {
                        naive_select(&frow.iter().map(|f| f[c]).collect::<Vec<_>>(), k, smaller)
                    })
                    .collect();
                for slot in 0..k {
                    for sel in &per_coord {
                        if red.has_values() {
                            values.push(sel[slot].0);
                        }
                        if red.has_indices() {
                            indices.push(sel[slot].1);
                        }
                    }
                }
            }
        }
    }
    (values, indices)
}

fn tolerance<R: Real>() -> (f64, f64) {
    if R::NAME == "f32" {
        (2e-5, 2e-5)
    } else {
        (1e-12, 1e-12)
    }
}

/// What a sweep went through, so that it cannot pass by missing the special cases.
#[derive(Default, Debug)]
struct Seen {
    /// Selections where the best value occurs at two indices or more.
    ties: usize,
    /// Selections with NaN candidates that still selected an index.
    nan_skipped: usize,
    /// `INDEX_NONE` in an expected output.
    index_none: usize,
    /// LogSumExp outputs equal to -inf.
    lse_minus_inf: usize,
    /// LogSumExp / SumSoftMaxWeight outputs that are NaN.
    lse_nan: usize,
    /// Cases checked.
    cases: usize,
}

/// Evaluates `red` on `case` in one direction and one syntax, and compares with the
/// naive loop.
fn check_case<R: Real>(red: Red, case: &Case, out_i: bool, alias: bool) -> Seen {
    let text = if alias {
        red.alias(out_i, case.d, case.gd)
    } else {
        red.concise(out_i)
    };
    let p = parse(&text);
    let inputs = case.inputs::<R>();
    let out: Output<R> = eval(&p, &inputs);
    let (fm, gm) = case.matrices::<R>(red, out_i);
    let fdim = match red {
        Red::Sum => case.gd,
        Red::Lse | Red::LseW | Red::Ssmw => 1,
        _ => case.d,
    };
    let gdim = if red.g().is_some() { case.gd } else { 1 };
    let (want_v, want_i) = naive(red, &fm, &gm, fdim, gdim);
    let rows = if out_i { case.m } else { case.n };
    let what = format!(
        "{} `{text}` M={} N={} D={} case {case:?}",
        R::NAME,
        case.m,
        case.n,
        case.d
    );
    assert_eq!(out.rows, rows, "{what}: rows");
    assert_eq!(out.values.len(), want_v.len(), "{what}: number of values");
    assert_eq!(out.vdim * rows, want_v.len(), "{what}: vdim");
    assert_eq!(out.indices, want_i, "{what}: indices");
    if red.smaller().is_some() {
        // Selections return entries of the matrix: exactly.
        for (k, (g, w)) in out.values.iter().zip(&want_v).enumerate() {
            assert!(
                g.f64() == *w,
                "{what}: value {k} is {g}, expected {w}\n got:  {:?}\n want: {want_v:?}",
                out.values
            );
        }
    } else {
        let (rtol, atol) = tolerance::<R>();
        assert_close(&what, &out.values, &want_v, rtol, atol);
    }
    let mut seen = Seen {
        cases: 1,
        index_none: want_i.iter().filter(|i| **i == INDEX_NONE).count(),
        ..Seen::default()
    };
    if let Some(smaller) = red.smaller() {
        for row in &fm {
            for c in 0..fdim {
                let col: Vec<f64> = row.iter().map(|f| f[c]).collect();
                let best = naive_select(&col, 1, smaller)[0];
                if best.1 != INDEX_NONE && col.iter().filter(|v| **v == best.0).count() > 1 {
                    seen.ties += 1;
                }
                if best.1 != INDEX_NONE && col.iter().any(|v| v.is_nan()) {
                    seen.nan_skipped += 1;
                }
            }
        }
    } else if red != Red::Sum {
        seen.lse_minus_inf = want_v.iter().filter(|v| **v == f64::NEG_INFINITY).count();
        seen.lse_nan = want_v.iter().filter(|v| v.is_nan()).count();
    }
    seen
}

fn sweep<R: Real>(seed: u64) {
    let mut r = rng(seed);
    let mut total = Seen::default();
    let sizes = [(1, 1), (1, 6), (5, 1), (4, 7), (8, 3)];
    for (m, n) in sizes {
        for d in [1, 2, 3] {
            for flavor in [Flavor::Generic, Flavor::Ties, Flavor::Nan, Flavor::Inf] {
                let gd = 1 + (m + n + d) % 3;
                let case = Case::new(&mut r, m, n, d, gd, flavor);
                // K below, at and beyond the reduced length.
                for k in [1, 3, m.max(n) + 2] {
                    for red in Red::all(k) {
                        if k != 1 && red.k().is_none() {
                            continue;
                        }
                        for out_i in [true, false] {
                            for alias in [false, true] {
                                let s = check_case::<R>(red, &case, out_i, alias);
                                total.ties += s.ties;
                                total.nan_skipped += s.nan_skipped;
                                total.index_none += s.index_none;
                                total.lse_minus_inf += s.lse_minus_inf;
                                total.lse_nan += s.lse_nan;
                                total.cases += s.cases;
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("{} sweep: {total:?}", R::NAME);
    assert!(
        total.ties > 100 && total.nan_skipped > 100 && total.index_none > 100,
        "{total:?}"
    );
    assert!(total.lse_minus_inf > 20 && total.lse_nan > 20, "{total:?}");
}

#[test]
fn every_reduction_both_directions_f64() {
    sweep::<f64>(1);
}

#[test]
fn every_reduction_both_directions_f32() {
    sweep::<f32>(2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]
    /// Random sizes, dimensions, K and data flavors.
    #[test]
    fn random_cases_match_the_naive_loop(seed in any::<u64>(), m in 1usize..7, n in 1usize..7, d in 1usize..4,
                                         gd in 1usize..4, k in 1usize..9, fl in 0usize..4, f32_too in any::<bool>()) {
        let flavor = [Flavor::Generic, Flavor::Ties, Flavor::Nan, Flavor::Inf][fl];
        let case = Case::new(&mut rng(seed), m, n, d, gd, flavor);
        for red in Red::all(k) {
            for out_i in [true, false] {
                check_case::<f64>(red, &case, out_i, seed % 2 == 0);
                if f32_too {
                    check_case::<f32>(red, &case, out_i, seed % 2 == 1);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hand-made special cases, readable on their own.
// ---------------------------------------------------------------------------------------

/// One-dimensional F = |x_i - y_j| with x = [0], so that F(0, j) = |y_j|.
fn row_of<R: Real>(text: &str, ys: &[f64]) -> Output<R> {
    let p = parse(text);
    let inputs = [input::<R>("x", 1, 1, &[0.0]), input("y", ys.len(), 1, ys)];
    eval(&p, &inputs)
}

fn ties_go_to_the_lowest_index<R: Real>() {
    let o = row_of::<R>("ArgMin_j(Abs(x_i - y_j))", &[3.0, 1.0, -1.0, 2.0]);
    assert_eq!(o.indices, vec![1]);
    let o = row_of::<R>("ArgMax_j(Abs(x_i - y_j))", &[3.0, 1.0, -3.0]);
    assert_eq!(o.indices, vec![0]);
    let o = row_of::<R>("Max_ArgMax_j(Abs(x_i - y_j))", &[1.0, -3.0, 3.0, 2.0]);
    assert_eq!((o.values, o.indices), (vec![R::of(3.0)], vec![1]));
    let o = row_of::<R>("KMin_ArgKMin_j(Abs(x_i - y_j), 3)", &[2.0, 1.0, -2.0, -1.0]);
    assert_eq!(o.indices, vec![1, 3, 0]);
    assert_eq!(o.values, vec![R::of(1.0), R::of(1.0), R::of(2.0)]);
    // Reduction over i (tag 1): x varies, one y.
    let p = parse("x = Vi(1); y = Vj(1); Min_ArgMin_Reduction(Abs(x - y), 1)");
    let inputs = [
        input::<R>("x", 4, 1, &[5.0, -2.0, 2.0, 4.0]),
        input("y", 1, 1, &[0.0]),
    ];
    let o = eval(&p, &inputs);
    assert_eq!((o.values, o.indices), (vec![R::of(2.0)], vec![1]));
}

#[test]
fn ties_go_to_the_lowest_index_f32_f64() {
    ties_go_to_the_lowest_index::<f32>();
    ties_go_to_the_lowest_index::<f64>();
}

fn k_beyond_n_pads<R: Real>() {
    // D = 2, K = 4, N = 2: layout [k][d].
    let p = parse("KMin_ArgKMin_j(Abs(x_i - y_j), 4)");
    let inputs = [
        input::<R>("x", 1, 2, &[0.0, 0.0]),
        input("y", 2, 2, &[5.0, -1.0, 3.0, 7.0]),
    ];
    let o = eval(&p, &inputs);
    let inf = R::infinity();
    assert_eq!((o.rows, o.vdim, o.idim), (1, 8, 8));
    assert_eq!(
        o.values,
        vec![
            R::of(3.0),
            R::of(1.0),
            R::of(5.0),
            R::of(7.0),
            inf,
            inf,
            inf,
            inf
        ]
    );
    assert_eq!(
        o.indices,
        vec![1, 0, 0, 1, INDEX_NONE, INDEX_NONE, INDEX_NONE, INDEX_NONE]
    );
    let p = parse("x = Vi(2); y = Vj(2); ArgKMin_Reduction(Abs(x - y), 3, 0)");
    let o = eval(&p, &inputs);
    assert!(o.values.is_empty());
    assert_eq!(o.indices, vec![1, 0, 0, 1, INDEX_NONE, INDEX_NONE]);
    let p = parse("KMin_i(Abs(x_i - y_j), 2)");
    let o = eval(&p, &inputs);
    assert_eq!((o.rows, o.vdim), (2, 4));
    assert_eq!(
        o.values,
        vec![
            R::of(5.0),
            R::of(1.0),
            inf,
            inf,
            R::of(3.0),
            R::of(7.0),
            inf,
            inf
        ]
    );
}

#[test]
fn k_beyond_n_pads_with_inf_and_index_none() {
    k_beyond_n_pads::<f32>();
    k_beyond_n_pads::<f64>();
}

fn nan_is_never_selected<R: Real>() {
    let nan = f64::NAN;
    let o = row_of::<R>("Min_ArgMin_j(Abs(x_i - y_j))", &[nan, 5.0, nan, 7.0]);
    assert_eq!((o.values, o.indices), (vec![R::of(5.0)], vec![1]));
    let o = row_of::<R>("Max_ArgMax_j(Abs(x_i - y_j))", &[5.0, nan, -7.0, nan]);
    assert_eq!((o.values, o.indices), (vec![R::of(7.0)], vec![2]));
    let o = row_of::<R>("KMin_ArgKMin_j(Abs(x_i - y_j), 3)", &[nan, 2.0, nan, 1.0]);
    assert_eq!(o.indices, vec![3, 1, INDEX_NONE]);
    assert_eq!(o.values, vec![R::of(1.0), R::of(2.0), R::infinity()]);
    // All NaN: nothing selected.
    let o = row_of::<R>("Min_ArgMin_j(Abs(x_i - y_j))", &[nan, nan]);
    assert_eq!(
        (o.values, o.indices),
        (vec![R::infinity()], vec![INDEX_NONE])
    );
    let o = row_of::<R>("Max_ArgMax_j(Abs(x_i - y_j))", &[nan]);
    assert_eq!(
        (o.values, o.indices),
        (vec![R::neg_infinity()], vec![INDEX_NONE])
    );
    // LogSumExp propagates NaN, wherever it is in the row.
    for ys in [[nan, 1.0, 2.0], [1.0, nan, 2.0], [1.0, 2.0, nan]] {
        let o = row_of::<R>("LogSumExp_j(-Abs(x_i - y_j))", &ys);
        assert!(
            o.values[0].is_nan(),
            "LogSumExp of {ys:?} gave {:?}",
            o.values
        );
        let o = row_of::<R>("Sum_j(Abs(x_i - y_j))", &ys);
        assert!(o.values[0].is_nan());
    }
}

#[test]
fn nan_is_never_selected_and_propagates_through_logsumexp() {
    nan_is_never_selected::<f32>();
    nan_is_never_selected::<f64>();
}

fn logsumexp_edges<R: Real>() {
    let ninf = f64::NEG_INFINITY;
    // F = x_i + y_j: an all -inf row for x_i = -inf.
    let p = parse("LogSumExp_j(x_i + y_j)");
    let inputs = [
        input::<R>("x", 2, 1, &[ninf, 0.0]),
        input("y", 3, 1, &[1.0, 2.0, 3.0]),
    ];
    let o = eval(&p, &inputs);
    assert_eq!(o.values[0], R::neg_infinity());
    let want = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    assert!(close(o.values[1].f64(), want, 1e-6, 0.0));
    // Weighted: -inf too, not NaN.
    let p = parse("LogSumExp_j(x_i + y_j, b_j)");
    let inputs = [
        input::<R>("x", 2, 1, &[ninf, 0.0]),
        input("y", 3, 1, &[1.0, 2.0, 3.0]),
        input("b", 3, 2, &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0]),
    ];
    let o = eval(&p, &inputs);
    assert_eq!(&o.values[..2], &[R::neg_infinity(), R::neg_infinity()]);
    assert!(close(o.values[2].f64(), want, 1e-6, 0.0));
    assert!(close(o.values[3].f64(), want + 2f64.ln(), 1e-6, 0.0));
    // Large values do not overflow.
    let inputs = [
        input::<R>("x", 1, 1, &[80.0]),
        input("y", 2, 1, &[0.0, 0.0]),
    ];
    let o = eval(&parse("LogSumExp_j(x_i + y_j)"), &inputs);
    assert!(
        close(o.values[0].f64(), 80.0 + 2f64.ln(), 1e-6, 0.0),
        "{:?}",
        o.values
    );
    // SumSoftMaxWeight of an all -inf row is NaN (0 / 0, documented).
    let p = parse("SumSoftMaxWeight_j(x_i + y_j, b_j)");
    let inputs = [
        input::<R>("x", 2, 1, &[ninf, 0.0]),
        input("y", 2, 1, &[0.0, 2f64.ln()]),
        input("b", 2, 1, &[3.0, 6.0]),
    ];
    let o = eval(&p, &inputs);
    assert!(o.values[0].is_nan());
    assert!(close(o.values[1].f64(), (3.0 + 2.0 * 6.0) / 3.0, 1e-6, 0.0));
}

#[test]
fn logsumexp_of_all_minus_infinity_is_minus_infinity() {
    logsumexp_edges::<f32>();
    logsumexp_edges::<f64>();
}

#[test]
fn one_row_and_one_column() {
    // M = 1, N = 1: every reduction gives F(0, 0) (or its log/softmax).
    let x = [0.25, -1.0];
    let y = [1.0, 0.5];
    for red in Red::all(2) {
        for out_i in [true, false] {
            let case = Case {
                m: 1,
                n: 1,
                d: 2,
                gd: 2,
                x: x.to_vec(),
                y: y.to_vec(),
                a: vec![0.5],
                b: vec![2.0, 3.0],
            };
            assert_eq!(check_case::<f64>(red, &case, out_i, false).cases, 1);
        }
    }
    let o = eval(
        &parse("Min_ArgMin_i(Abs(x_i - y_j))"),
        &[input::<f64>("x", 1, 2, &x), input("y", 1, 2, &y)],
    );
    assert_eq!((o.values, o.indices), (vec![0.75, 1.5], vec![0, 0]));
    let o = eval(
        &parse("LogSumExp_j(a_i - SqDist(x_i, y_j))"),
        &[
            input::<f64>("x", 1, 2, &x),
            input("y", 1, 2, &y),
            input("a", 1, 1, &[0.5]),
        ],
    );
    assert!(close(
        o.values[0],
        0.5 - (0.75f64 * 0.75 + 1.5 * 1.5),
        1e-15,
        0.0
    ));
}

// ---------------------------------------------------------------------------------------
// Summation schemes.
// ---------------------------------------------------------------------------------------

/// Relative errors of the four schemes on a float32 sum `Sum_j(b_j)` (M = 1), against
/// the f64 sum of the same float32 terms: (direct, blocked, kahan, f64).
fn scheme_errors(b: &[f32], tile: usize) -> [f64; 4] {
    let exact: f64 = b.iter().map(|v| f64::from(*v)).sum();
    let p = parse("Sum_j(b_j)");
    let inputs = [Input {
        name: "b".to_string(),
        rows: b.len(),
        dim: 1,
        data: b.to_vec(),
    }];
    [
        SumScheme::Direct,
        SumScheme::Blocked,
        SumScheme::Kahan,
        SumScheme::F64,
    ]
    .map(|scheme| {
        let opts = EvalOptions {
            sum: scheme,
            tile,
            m: Some(1),
            ..EvalOptions::default()
        };
        let o = eval_with(&p, &inputs, &opts);
        (o.values[0].f64() - exact).abs() / exact
    })
}

/// The documented bounds: F64 and Kahan within a rounding or two, Blocked within
/// (N / tile + tile) eps.
#[track_caller]
fn assert_documented_bounds(what: &str, errs: [f64; 4], n: usize, tile: usize) {
    let eps = f64::from(f32::EPSILON);
    let [_, blocked, kahan, f64sum] = errs;
    assert!(f64sum <= eps, "{what}: F64 error {f64sum:e}");
    assert!(kahan <= 2.0 * eps, "{what}: Kahan error {kahan:e}");
    assert!(
        blocked <= (n as f64 / tile as f64 + tile as f64) * eps,
        "{what}: Blocked error {blocked:e}"
    );
}

#[test]
fn float32_summation_schemes() {
    const N: usize = 100_000;
    let tile = EvalOptions::default().tile;
    // 100k copies of 0.1f32: every addition rounds the same way, the worst case of a
    // running sum.
    let tenths = vec![0.1f32; N];
    let errs = scheme_errors(&tenths, tile);
    eprintln!(
        "0.1 x 100k: direct {:e}, blocked {:e}, kahan {:e}, f64 {:e}",
        errs[0], errs[1], errs[2], errs[3]
    );
    assert_documented_bounds("0.1 x 100k", errs, N, tile);
    let [direct, blocked, kahan, f64sum] = errs;
    assert!(direct > 1e-5, "Direct should lose digits: {direct:e}");
    assert!(blocked < 1e-5, "Blocked: {blocked:e}");
    assert!(
        direct > 10.0 * blocked.max(kahan).max(f64sum),
        "direct {direct:e} vs {errs:?}"
    );
    for tile in [32, 1024] {
        let errs = scheme_errors(&tenths, tile);
        assert_documented_bounds(&format!("0.1 x 100k, tile {tile}"), errs, N, tile);
        assert!(
            errs[1] < direct,
            "tile {tile}: blocked {:e} vs direct {direct:e}",
            errs[1]
        );
    }
    // Uniform random terms: errors partly cancel, the bounds still hold and the three
    // careful schemes still beat the running sum.
    let mut r = rng(7);
    let b: Vec<f32> = (0..N).map(|_| r.random_range(0.0f32..1.0)).collect();
    let errs = scheme_errors(&b, tile);
    eprintln!(
        "uniform: direct {:e}, blocked {:e}, kahan {:e}, f64 {:e}",
        errs[0], errs[1], errs[2], errs[3]
    );
    assert_documented_bounds("uniform", errs, N, tile);
    assert!(
        errs[0] > errs[1].max(errs[2]).max(errs[3]),
        "uniform: {errs:?}"
    );
    // In f64 every scheme gives the same answer to 1e-12.
    let exact: f64 = tenths.iter().map(|v| f64::from(*v)).sum();
    let p = parse("Sum_j(b_j)");
    let inputs64 = [Input {
        name: "b".to_string(),
        rows: N,
        dim: 1,
        data: tenths.iter().map(|v| f64::from(*v)).collect::<Vec<f64>>(),
    }];
    for scheme in [
        SumScheme::Direct,
        SumScheme::Blocked,
        SumScheme::Kahan,
        SumScheme::F64,
    ] {
        let opts = EvalOptions {
            sum: scheme,
            m: Some(1),
            ..EvalOptions::default()
        };
        let o = eval_with(&p, &inputs64, &opts);
        assert!(
            close(o.values[0], exact, 1e-12, 0.0),
            "{scheme:?}: {} vs {exact}",
            o.values[0]
        );
    }
}

// ---------------------------------------------------------------------------------------
// Lowered hooks against the reference semantics.
// ---------------------------------------------------------------------------------------

/// A formula for `kind` whose F is a j-variable `f_j` of dimension `fdim` (and G a
/// j-variable `g_j` of dimension `gdim`), and its lowered hooks.
fn hooks_for(kind: ReductionKind, fdim: usize, gdim: usize) -> Hooks {
    let (text, widths) = if kind.takes_weight() {
        (format!("{}_j(f_j, g_j)", kind.name()), vec![1, gdim])
    } else {
        match kind.k() {
            Some(k) => (format!("{}_j(f_j, {k})", kind.name()), vec![fdim]),
            None => (format!("{}_j(f_j)", kind.name()), vec![fdim]),
        }
    };
    let p: Program = parse(&text);
    let p = p
        .instantiate(&widths)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let r = p.reductions().next().expect("one reduction").clone();
    assert_eq!(r.kind, kind, "{text}");
    lower_reduction(&p, &r, SumMode::Plain)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .hooks
}

/// One term of a stream: F values, G values, index.
type Term = (Vec<f64>, Vec<f64>, u64);

/// The reference accumulator as hook registers.
fn acc_to_vals<R: Real>(acc: &Acc<R>) -> Vec<Val<R>> {
    acc.vals
        .iter()
        .map(|v| Val::F(*v))
        .chain(acc.idx.iter().map(|i| Val::I(*i)))
        .collect()
}

fn same_vals<R: Real>(a: &[Val<R>], b: &[Val<R>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Val::F(x), Val::F(y)) => same(*x, *y),
            _ => x == y,
        })
}

struct Runner<'h> {
    kind: ReductionKind,
    hooks: &'h Hooks,
    fdim: usize,
    gdim: usize,
}

impl Runner<'_> {
    fn ref_run<R: Real>(&self, terms: &[Term]) -> Acc<R> {
        let mut acc = self.kind.init::<R>(self.fdim, self.gdim);
        for (f, g, j) in terms {
            let f: Vec<R> = f.iter().map(|v| R::of(*v)).collect();
            let g: Vec<R> = g.iter().map(|v| R::of(*v)).collect();
            self.kind.accumulate(&mut acc, &f, &g, *j);
        }
        acc
    }

    /// Runs init and accumulate hooks, checking the state against the reference after
    /// every term.
    fn hook_run<R: Real>(&self, terms: &[Term]) -> Vec<Val<R>> {
        let mut state = self.hooks.init.run::<R>(&[]);
        let mut acc = self.kind.init::<R>(self.fdim, self.gdim);
        assert!(
            same_vals(&state, &acc_to_vals(&acc)),
            "{} init: hooks {state:?}, reference {acc:?}",
            self.kind
        );
        for (step, (f, g, j)) in terms.iter().enumerate() {
            let fr: Vec<R> = f.iter().map(|v| R::of(*v)).collect();
            let gr: Vec<R> = g.iter().map(|v| R::of(*v)).collect();
            let mut args = state.clone();
            args.extend(fr.iter().map(|v| Val::F(*v)));
            if self.kind.takes_weight() {
                args.extend(gr.iter().map(|v| Val::F(*v)));
            }
            args.push(Val::I(*j));
            state = self.hooks.accumulate.run(&args);
            self.kind.accumulate(&mut acc, &fr, &gr, *j);
            assert!(
                same_vals(&state, &acc_to_vals(&acc)),
                "{} ({}) after term {step} {:?}: hooks {state:?}, reference {acc:?}",
                self.kind,
                R::NAME,
                (f, g, j)
            );
        }
        state
    }

    fn hook_finalize<R: Real>(&self, state: &[Val<R>]) -> (Vec<R>, Vec<u64>) {
        let out = self.hooks.finalize.run(state);
        assert_eq!(out.len(), self.hooks.out_values + self.hooks.out_indices);
        let (v, i) = out.split_at(self.hooks.out_values);
        (
            v.iter().map(|x| x.f()).collect(),
            i.iter().map(|x| x.i()).collect(),
        )
    }
}

fn same_output<R: Real>(a: &(Vec<R>, Vec<u64>), b: &(Vec<R>, Vec<u64>)) -> bool {
    a.1 == b.1 && a.0.len() == b.0.len() && a.0.iter().zip(&b.0).all(|(x, y)| same(*x, *y))
}

/// Every reduction kind with its F and G dimensions, and its lowered hooks (built once).
fn lowered() -> &'static [(ReductionKind, usize, usize, Hooks)] {
    static CELL: std::sync::OnceLock<Vec<(ReductionKind, usize, usize, Hooks)>> =
        std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        kinds()
            .into_iter()
            .map(|(k, f, g)| (k, f, g, hooks_for(k, f, g)))
            .collect()
    })
}

/// Every row of the reduction table (with several K for the rows that take it) with its
/// F and G dimensions: F of dimension 1 to 3 (1 for the exponential reductions, whose G
/// is then of dimension 1 to 3).
fn kinds() -> Vec<(ReductionKind, usize, usize)> {
    let mut v = Vec::new();
    for dim in 1..=3 {
        for id in ReductionId::ALL {
            let ks: &[usize] = if id.spec().takes_k { &[1, 3, 4] } else { &[1] };
            for &k in ks {
                let kind = id.with_k(k);
                if kind.needs_scalar_formula() {
                    v.push((kind, 1, dim));
                } else {
                    v.push((kind, dim, 1));
                }
            }
        }
    }
    v
}

#[test]
fn the_naive_semantics_cover_every_row_of_the_reduction_table() {
    let covered: Vec<ReductionId> = Red::all(2)
        .into_iter()
        .map(|r| ReductionId::from_name(r.base()).expect("a row of the table"))
        .collect();
    for id in ReductionId::ALL {
        assert!(
            covered.contains(id),
            "{}: add it to `Red` with its naive semantics",
            id.spec().name
        );
    }
}

/// A value of a stream: small integers (ties), random floats, NaN and infinities.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-3i32..=3).prop_map(f64::from),
        4 => -20.0f64..20.0,
        1 => Just(f64::NAN),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::INFINITY),
    ]
}

/// Like [`value`], without NaN.
fn value_no_nan() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-3i32..=3).prop_map(f64::from),
        4 => -20.0f64..20.0,
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::INFINITY),
    ]
}

/// A stream of terms of widths (3, 3): F and G are cut to the kind's widths.
fn stream() -> impl Strategy<Value = Vec<(Vec<f64>, Vec<f64>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(value(), 3),
            prop::collection::vec(value(), 3),
        ),
        0..24,
    )
}

/// A stream without NaN.
fn stream_no_nan() -> impl Strategy<Value = Vec<(Vec<f64>, Vec<f64>)>> {
    prop::collection::vec(
        (
            prop::collection::vec(value_no_nan(), 3),
            prop::collection::vec(value_no_nan(), 3),
        ),
        0..24,
    )
}

fn terms(raw: &[(Vec<f64>, Vec<f64>)], fdim: usize, gdim: usize, weighted: bool) -> Vec<Term> {
    raw.iter()
        .enumerate()
        .map(|(j, (f, g))| {
            // Weights of LogSumExp / SumSoftMaxWeight: arbitrary values, or all ones.
            let g: Vec<f64> = if weighted {
                g[..gdim].to_vec()
            } else {
                vec![1.0; gdim]
            };
            (f[..fdim].to_vec(), g, j as u64)
        })
        .collect()
}

fn hooks_agree<R: Real>(raw: &[(Vec<f64>, Vec<f64>)], cut: usize, weighted: bool) {
    for (kind, fdim, gdim, hooks) in lowered() {
        let (kind, fdim, gdim) = (*kind, *fdim, *gdim);
        let run = Runner {
            kind,
            hooks,
            fdim,
            gdim,
        };
        let t = terms(raw, fdim, gdim, weighted);
        // Whole stream: state after every term, then finalize.
        let state = run.hook_run::<R>(&t);
        let acc = run.ref_run::<R>(&t);
        let got = run.hook_finalize(&state);
        let want = kind.finalize(&acc);
        assert!(
            same_output(&got, &want),
            "{kind} ({}) finalize of {t:?}: hooks {got:?}, reference {want:?}",
            R::NAME
        );
        // Two partial accumulators, merged by both.
        let cut = cut % (t.len() + 1);
        let (a, b) = t.split_at(cut);
        let (sa, sb) = (run.hook_run::<R>(a), run.hook_run::<R>(b));
        let mut args = sa.clone();
        args.extend(sb);
        let merged = hooks.merge.run(&args);
        let mut ra = run.ref_run::<R>(a);
        kind.merge(&mut ra, &run.ref_run::<R>(b));
        assert!(
            same_vals(&merged, &acc_to_vals(&ra)),
            "{kind} ({}) merge at {cut} of {t:?}: hooks {merged:?}, reference {ra:?}",
            R::NAME
        );
        let got = run.hook_finalize(&merged);
        assert!(
            same_output(&got, &kind.finalize(&ra)),
            "{kind} merged finalize"
        );
    }
}

/// `merge(acc(stream[..cut]), acc(stream[cut..]))` finalizes to the same output as the
/// sequential reduction (exactly for selections, to rounding for sums), for the
/// reference and for the hooks.
fn merge_is_sequential<R: Real>(raw: &[(Vec<f64>, Vec<f64>)], cut: usize, weighted: bool) {
    for (kind, fdim, gdim, hooks) in lowered() {
        let (kind, fdim, gdim) = (*kind, *fdim, *gdim);
        let run = Runner {
            kind,
            hooks,
            fdim,
            gdim,
        };
        let t = terms(raw, fdim, gdim, weighted);
        let cut = cut % (t.len() + 1);
        let (a, b) = t.split_at(cut);
        let whole = kind.finalize(&run.ref_run::<R>(&t));
        let mut ra = run.ref_run::<R>(a);
        kind.merge(&mut ra, &run.ref_run::<R>(b));
        let merged_ref = kind.finalize(&ra);
        let mut args = run.hook_run::<R>(a);
        args.extend(run.hook_run::<R>(b));
        let merged_hooks = run.hook_finalize(&hooks.merge.run(&args));
        for (who, merged) in [("reference", &merged_ref), ("hooks", &merged_hooks)] {
            let what = format!(
                "{kind} ({}) {who}: merge at {cut} of {t:?}\n merged {merged:?}\n sequential {whole:?}",
                R::NAME
            );
            assert_eq!(merged.1, whole.1, "{what}");
            if kind.selects() {
                assert!(same_output(merged, &whole), "{what}");
            } else {
                let tol = if R::NAME == "f32" { 1e-5 } else { 1e-12 };
                let want: Vec<f64> = whole.0.iter().map(|v| v.f64()).collect();
                assert_close(&what, &merged.0, &want, tol, tol * 100.0);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Lowered init / accumulate / merge / finalize agree with `ReductionKind`, bit for
    /// bit, after every term, including ties, NaN and infinities.
    #[test]
    fn lowered_hooks_agree_with_the_reference(raw in stream(), cut in 0usize..64, weighted in any::<bool>()) {
        hooks_agree::<f64>(&raw, cut, weighted);
        hooks_agree::<f32>(&raw, cut, weighted);
    }

    /// Merging two partial accumulators gives the sequential result (ties and
    /// infinities, no NaN).
    #[test]
    fn merging_a_split_stream_without_nan_equals_the_sequential_reduction(raw in stream_no_nan(), cut in 0usize..64) {
        merge_is_sequential::<f64>(&raw, cut, false);
        merge_is_sequential::<f32>(&raw, cut, false);
    }

    /// Merging two partial accumulators gives the sequential result, NaN included
    /// (selections skip it, sums and LogSumExp propagate it).
    #[test]
    fn merging_a_split_stream_equals_the_sequential_reduction(raw in stream(), cut in 0usize..64) {
        merge_is_sequential::<f64>(&raw, cut, false);
        merge_is_sequential::<f32>(&raw, cut, false);
    }
}

/// The smallest stream on which merging loses a NaN: `[1.0] | [NaN]`.
#[test]
fn logsumexp_merge_keeps_a_nan_of_the_second_partial() {
    for kind in [ReductionKind::LogSumExp, ReductionKind::SumSoftMaxWeight] {
        let mut whole = kind.init::<f64>(1, 1);
        kind.accumulate(&mut whole, &[1.0], &[1.0], 0);
        kind.accumulate(&mut whole, &[f64::NAN], &[1.0], 1);
        assert!(kind.finalize(&whole).0[0].is_nan(), "{kind}: sequential");
        let mut a = kind.init::<f64>(1, 1);
        kind.accumulate(&mut a, &[1.0], &[1.0], 0);
        let mut b = kind.init::<f64>(1, 1);
        kind.accumulate(&mut b, &[f64::NAN], &[1.0], 1);
        kind.merge(&mut a, &b);
        assert!(
            kind.finalize(&a).0[0].is_nan(),
            "{kind}: merge([1.0], [NaN]) lost the NaN: {:?}",
            kind.finalize(&a)
        );
    }
}
