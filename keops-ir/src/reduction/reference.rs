//! The reference semantics of the reductions, as init / accumulate / merge / finalize on
//! an accumulator, one implementation per [`Rule`].
//!
//! The lowering in `crate::lower` emits the same steps as scalar code for the CPU and GPU
//! kernels, and tests check the two agree. `merge` combines two partial results (tiles,
//! threads, the 2D GPU scheme), so every reduction here is associative up to rounding.

use super::table::{INDEX_NONE, Order, ReductionKind, Rule};
use crate::real::Real;

/// A running reduction: float state and index state.
#[derive(Clone, Debug, PartialEq)]
pub struct Acc<R> {
    /// Float state (sums, running max and scaled sums, or selected values).
    pub vals: Vec<R>,
    /// Selected indices (selections only).
    pub idx: Vec<u64>,
}

impl ReductionKind {
    /// The accumulator of an empty reduction.
    pub fn init<R: Real>(self, f: usize, g: usize) -> Acc<R> {
        let (nf, ni) = self.acc_width(f, g);
        let mut vals = vec![R::zero(); nf];
        match self.rule() {
            Rule::Sum => {}
            Rule::LogSumExp | Rule::SoftMaxWeight => vals[0] = R::neg_infinity(),
            Rule::Select { order, .. } => vals.fill(match order {
                Order::Smaller => R::infinity(),
                Order::Larger => R::neg_infinity(),
            }),
        }
        Acc {
            vals,
            idx: vec![INDEX_NONE; ni],
        }
    }

    /// Adds the term `(f, g)` of index `j`.
    pub fn accumulate<R: Real>(self, acc: &mut Acc<R>, f: &[R], g: &[R], j: u64) {
        match self.rule() {
            Rule::Sum => {
                for (a, x) in acc.vals.iter_mut().zip(f) {
                    *a = *a + *x;
                }
            }
            Rule::LogSumExp => lse_accumulate(&mut acc.vals, f[0], g),
            Rule::SoftMaxWeight => {
                let mut w = Vec::with_capacity(1 + g.len());
                w.push(R::one());
                w.extend_from_slice(g);
                lse_accumulate(&mut acc.vals, f[0], &w);
            }
            Rule::Select { order, .. } => {
                let k = self.slots();
                let d = f.len();
                for (c, x) in f.iter().enumerate() {
                    insert(acc, Column { c, d, k, order }, *x, j);
                }
            }
        }
    }

    /// Combines two partial accumulators.
    pub fn merge<R: Real>(self, acc: &mut Acc<R>, other: &Acc<R>) {
        match self.rule() {
            Rule::Sum => {
                for (a, x) in acc.vals.iter_mut().zip(&other.vals) {
                    *a = *a + *x;
                }
            }
            Rule::LogSumExp | Rule::SoftMaxWeight => lse_merge(&mut acc.vals, &other.vals),
            Rule::Select { order, .. } => {
                let k = self.slots();
                let d = acc.vals.len() / k;
                for slot in 0..k {
                    for c in 0..d {
                        let p = slot * d + c;
                        insert(acc, Column { c, d, k, order }, other.vals[p], other.idx[p]);
                    }
                }
            }
        }
    }

    /// The output row: values and indices.
    pub fn finalize<R: Real>(self, acc: &Acc<R>) -> (Vec<R>, Vec<u64>) {
        match self.rule() {
            Rule::Sum => (acc.vals.clone(), vec![]),
            Rule::LogSumExp => {
                let m = acc.vals[0];
                (acc.vals[1..].iter().map(|s| m + s.ln()).collect(), vec![])
            }
            Rule::SoftMaxWeight => {
                let s = acc.vals[1];
                (acc.vals[2..].iter().map(|t| *t / s).collect(), vec![])
            }
            Rule::Select { output, .. } => (
                if output.values() {
                    acc.vals.clone()
                } else {
                    vec![]
                },
                if output.indices() {
                    acc.idx.clone()
                } else {
                    vec![]
                },
            ),
        }
    }
}

/// Whether `(v, j)` beats `(w, i)`: strictly better value, or equal value and lower
/// index. NaN never beats anything.
pub fn beats<R: Real>(v: R, j: u64, w: R, i: u64, order: Order) -> bool {
    let better = match order {
        Order::Smaller => v < w,
        Order::Larger => v > w,
    };
    better || (v == w && j < i)
}

/// One coordinate's column of slots in a selection accumulator (layout `[slot][d]`).
#[derive(Copy, Clone)]
struct Column {
    /// Coordinate.
    c: usize,
    /// Dimension of F.
    d: usize,
    /// Number of slots (K).
    k: usize,
    /// Which values are best.
    order: Order,
}

/// Insertion of `(x, j)` into the `k` sorted slots of coordinate `c` (layout `[slot][d]`):
/// the candidate moves down past every slot it beats.
fn insert<R: Real>(acc: &mut Acc<R>, at: Column, x: R, j: u64) {
    let (mut x, mut j) = (x, j);
    let (vals, idx) = (&mut acc.vals, &mut acc.idx);
    for slot in 0..at.k {
        let p = slot * at.d + at.c;
        if beats(x, j, vals[p], idx[p], at.order) {
            std::mem::swap(&mut x, &mut vals[p]);
            std::mem::swap(&mut j, &mut idx[p]);
        }
    }
}

/// One step of the stable log-sum-exp with weights: state `(m, s_1..s_n)` holds
/// `sum exp(F - m) w`. `-inf` terms contribute nothing; NaN propagates.
/// Written with one exponential, `exp(-|f - m|)`, as the kernels do.
pub fn lse_accumulate<R: Real>(state: &mut [R], f: R, w: &[R]) {
    let m = state[0];
    let gt = f > m;
    let t = (-(f - m).abs()).exp();
    let scale = if gt { t } else { R::one() };
    let mut weight = if gt || f == m { R::one() } else { t };
    if f == R::neg_infinity() {
        weight = R::zero();
    }
    if gt {
        state[0] = f;
    }
    for (s, g) in state[1..].iter_mut().zip(w) {
        *s = *s * scale + *g * weight;
    }
}

/// Merge of two log-sum-exp states.
pub fn lse_merge<R: Real>(state: &mut [R], other: &[R]) {
    let (m1, m2) = (state[0], other[0]);
    let gt = m2 > m1;
    let t = (-(m2 - m1).abs()).exp();
    // An empty partial (m2 = -inf) adds 0 * s2: nothing, unless s2 is NaN.
    let (a, b) = if m2 == R::neg_infinity() {
        (R::one(), R::zero())
    } else if gt {
        (t, R::one())
    } else if m2 == m1 {
        (R::one(), R::one())
    } else {
        (R::one(), t)
    };
    if gt {
        state[0] = m2;
    }
    for (s, o) in state[1..].iter_mut().zip(&other[1..]) {
        *s = *s * a + *o * b;
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{INDEX_NONE, ReductionKind};

    fn run(kind: ReductionKind, xs: &[f64]) -> (Vec<f64>, Vec<u64>) {
        let mut acc = kind.init::<f64>(1, 1);
        for (j, x) in xs.iter().enumerate() {
            kind.accumulate(&mut acc, &[*x], &[1.0], j as u64);
        }
        kind.finalize(&acc)
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        assert_eq!(run(ReductionKind::ArgMin, &[3.0, 1.0, 1.0, 2.0]).1, vec![1]);
        assert_eq!(run(ReductionKind::ArgMax, &[3.0, 1.0, 3.0]).1, vec![0]);
        assert_eq!(
            run(ReductionKind::ArgKMin(3), &[2.0, 1.0, 2.0, 1.0]).1,
            vec![1, 3, 0]
        );
    }

    #[test]
    fn nan_never_wins_and_k_beyond_n_pads() {
        assert_eq!(
            run(ReductionKind::MinArgMin, &[f64::NAN, 5.0]),
            (vec![5.0], vec![1])
        );
        let (v, i) = run(ReductionKind::KMinArgKMin(3), &[4.0, f64::NAN]);
        assert_eq!(v, vec![4.0, f64::INFINITY, f64::INFINITY]);
        assert_eq!(i, vec![0, INDEX_NONE, INDEX_NONE]);
    }

    #[test]
    fn logsumexp_edge_cases() {
        let ninf = f64::NEG_INFINITY;
        assert_eq!(run(ReductionKind::LogSumExp, &[ninf, ninf]).0, vec![ninf]);
        assert_eq!(run(ReductionKind::LogSumExp, &[]).0, vec![ninf]);
        assert!(run(ReductionKind::LogSumExp, &[1.0, f64::NAN]).0[0].is_nan());
        let v = run(ReductionKind::LogSumExp, &[1000.0, 1000.0]).0[0];
        assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12);
        assert_eq!(
            run(
                ReductionKind::LogSumExp,
                &[f64::INFINITY, 1.0, f64::INFINITY]
            )
            .0,
            vec![f64::INFINITY]
        );
    }

    #[test]
    fn merge_equals_sequential() {
        let xs = [0.3, -2.0, 5.0, 5.0, 1.0, -7.0, 2.5];
        for kind in [
            ReductionKind::Sum,
            ReductionKind::KMinArgKMin(3),
            ReductionKind::MaxArgMax,
            ReductionKind::LogSumExp,
        ] {
            let whole = run(kind, &xs);
            let mut a = kind.init::<f64>(1, 1);
            let mut b = kind.init::<f64>(1, 1);
            for (j, x) in xs.iter().enumerate() {
                let acc = if j % 2 == 0 { &mut a } else { &mut b };
                kind.accumulate(acc, &[*x], &[1.0], j as u64);
            }
            kind.merge(&mut a, &b);
            let merged = kind.finalize(&a);
            assert_eq!(merged.1, whole.1, "{kind}");
            for (p, q) in merged.0.iter().zip(&whole.0) {
                assert!((p - q).abs() < 1e-12, "{kind}: {p} vs {q}");
            }
        }
    }
}
