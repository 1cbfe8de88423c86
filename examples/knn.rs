//! Exact K-nearest-neighbour search and classification in 3D: for each of 2,000 query
//! points, the indices of its K = 10 nearest neighbours among 100,000 labelled database
//! points (`ArgKMin_j(SqDist(x_i, y_j), 10)`, without storing the 2 10^8 distances), then a
//! majority vote of the neighbours' labels. The data are overlapping Gaussian clusters, one
//! class per cluster; the queries come from the same distribution, so the vote's accuracy
//! can be compared with the Bayes-optimal rule (which knows the true clusters).
//!
//! A few rows are checked against a brute-force search in f64. Prints the time, the
//! throughput in pairs per second and the accuracies.
//!
//! `cargo run --release --example knn [-- M N]`

use keops::keops;
use std::time::Instant;

/// The number of neighbours.
const K: usize = 10;
/// The number of classes (clusters).
const CLASSES: usize = 8;
/// The standard deviation of each cluster.
const SPREAD: f64 = 0.15;

keops! {
    /// Indices of the K nearest database points `y_j` of each query `x_i`, nearest first.
    knn_search(x_i: 3, y_j: 3) = ArgKMin_j(SqDist(x_i, y_j), 10)
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` points drawn from the mixture of Gaussian clusters centred at `centres`, with
/// their cluster (class) labels.
fn sample(n: usize, centres: &[[f64; 3]], rng: &mut Rng) -> (Vec<[f32; 3]>, Vec<usize>) {
    (0..n)
        .map(|_| {
            let c = ((rng.uniform() * centres.len() as f64) as usize).min(centres.len() - 1);
            let p = centres[c].map(|m| (m + SPREAD * rng.normal()) as f32);
            (p, c)
        })
        .unzip()
}

fn sqdist64(a: &[f32; 3], b: &[f32; 3]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

/// The most frequent label among `neighbours` (ties: the label of the nearest of them).
fn vote(neighbours: &[usize], labels: &[usize]) -> usize {
    let mut counts = [0usize; CLASSES];
    for &j in neighbours {
        counts[labels[j]] += 1;
    }
    let best = *counts.iter().max().unwrap_or(&0);
    neighbours
        .iter()
        .map(|&j| labels[j])
        .find(|&l| counts[l] == best)
        .unwrap_or(0)
}

fn main() -> Result<(), keops::KeopsError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, n) = (
        args.first().copied().unwrap_or(2_000),
        args.get(1).copied().unwrap_or(100_000),
    );
    assert!(n >= K, "the database needs at least K = {K} points");

    let mut rng = Rng(2024);
    let centres: Vec<[f64; 3]> = (0..CLASSES)
        .map(|_| [rng.uniform(), rng.uniform(), rng.uniform()])
        .collect();
    let (y, y_labels) = sample(n, &centres, &mut rng);
    let (x, x_labels) = sample(m, &centres, &mut rng);

    let start = Instant::now();
    let neighbours: Vec<[usize; K]> = knn_search.eval(&x, &y)?;
    let seconds = start.elapsed().as_secs_f64();
    let backend = match keops::last_backend() {
        Some(keops::Backend::Cpu) | None => format!("CPU ({} threads)", threads()),
        Some(other) => format!("{other:?}"),
    };
    println!(
        "K-nearest neighbours (K = {K}), M = {m} queries, N = {n} points, D = 3, float32, on {backend}"
    );
    println!(
        "time: {seconds:.3} s, throughput: {:.3e} pairs/s",
        m as f64 * n as f64 / seconds
    );

    // Brute-force check of a few rows in f64: the K returned points must be distinct and, in
    // order, as near as the K nearest points (ties and f32 rounding may permute equals).
    let checked: Vec<usize> = (0..20).map(|r| r * m / 20).collect();
    let mut identical = 0;
    let start = Instant::now();
    for &i in &checked {
        let mut all: Vec<(f64, usize)> = y
            .iter()
            .enumerate()
            .map(|(j, p)| (sqdist64(&x[i], p), j))
            .collect();
        all.select_nth_unstable_by(K - 1, |a, b| a.partial_cmp(b).unwrap());
        all.truncate(K);
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let got = &neighbours[i];
        let mut distinct = got.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), K, "row {i}: repeated neighbours {got:?}");
        for (k, (&j, &(want, _))) in got.iter().zip(&all).enumerate() {
            assert!(j < n, "row {i}: index {j} out of range");
            let d = sqdist64(&x[i], &y[j]);
            assert!(
                (d - want).abs() <= 1e-6 * want.max(1e-2),
                "row {i}, neighbour {k}: point {j} at squared distance {d}, the brute force's {k}-th is at {want}"
            );
        }
        if got.iter().zip(&all).all(|(&j, &(_, b))| j == b) {
            identical += 1;
        }
    }
    println!(
        "brute-force check (f64) of {} rows: passed, {identical} with identical index lists ({:.1} ms per row)",
        checked.len(),
        start.elapsed().as_secs_f64() * 1e3 / checked.len() as f64
    );

    // Classification by majority vote, and by the nearest neighbour alone.
    let correct = |predict: &dyn Fn(usize) -> usize| {
        (0..m).filter(|&i| predict(i) == x_labels[i]).count() as f64 / m as f64
    };
    let knn_accuracy = correct(&|i| vote(&neighbours[i], &y_labels));
    let nn_accuracy = correct(&|i| y_labels[neighbours[i][0]]);
    // The Bayes-optimal rule for equal weights and spreads: the nearest cluster centre.
    let bayes_accuracy = correct(&|i| {
        let p = x[i].map(|v| v as f64);
        (0..CLASSES)
            .min_by(|&a, &b| {
                let da: f64 = (0..3).map(|d| (p[d] - centres[a][d]).powi(2)).sum();
                let db: f64 = (0..3).map(|d| (p[d] - centres[b][d]).powi(2)).sum();
                da.partial_cmp(&db).unwrap()
            })
            .unwrap_or(0)
    });
    println!("classification of the queries ({CLASSES} overlapping clusters, spread {SPREAD}):");
    println!("  {K}-NN majority vote: {:.2} %", 100.0 * knn_accuracy);
    println!("  1-NN:                {:.2} %", 100.0 * nn_accuracy);
    println!("  Bayes-optimal rule:  {:.2} %", 100.0 * bayes_accuracy);
    assert!(knn_accuracy > nn_accuracy && knn_accuracy <= bayes_accuracy + 0.02);
    Ok(())
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
