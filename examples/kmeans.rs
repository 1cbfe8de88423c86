//! K-means clustering (Lloyd's algorithm) of 100,000 points in 2D into K = 50 clusters,
//! both steps as keops reductions:
//!
//! - assignment: `Min_ArgMin_j(SqDist(x_i, c_j))`, the nearest centroid of every point and
//!   its squared distance (whose sum is the inertia), over the N x K distance matrix;
//! - update: `Sum_i(Equal(l_i, k_j) * Concat(x_i, 1))`, for every cluster k (its number as a
//!   float, `k_j`) the sum of the points labelled `l_i = k` and their count, a reduction over
//!   the points with one-hot weights; the new centroid is sum / count.
//!
//! The points are drawn from a mixture of 50 Gaussian blobs of various sizes, the centroids
//! start at 50 of the points. Prints the inertia (which Lloyd's algorithm never increases:
//! checked), the number of points that changed cluster and the time of each iteration.
//! The first iteration's sums and assignments are checked against plain loops in f64.
//!
//! `cargo run --release --example kmeans [-- N K ITERATIONS]`

use keops::keops;
use std::time::Instant;

keops! {
    /// For each point `x_i`, the squared distance to its nearest centroid `c_j`, and the
    /// centroid's index.
    nearest(x_i: 2, c_j: 2) = Min_ArgMin_j(SqDist(x_i, c_j))
}

keops! {
    /// For each cluster number `k_j`: the sum of the points `x_i` labelled `l_i = k_j`, and
    /// their number (the last coordinate).
    cluster_sums(x_i: 2, l_i: 1, k_j: 1) = Sum_i(Equal(l_i, k_j) * Concat(x_i, 1))
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

/// `n` points from a mixture of `blobs` Gaussian blobs with random centres in the unit
/// square, spreads between 0.01 and 0.05 and weights between 1 and 3; and the centres.
fn blobs(n: usize, blobs: usize, rng: &mut Rng) -> (Vec<[f32; 2]>, Vec<[f32; 2]>) {
    let shapes: Vec<([f64; 2], f64, f64)> = (0..blobs)
        .map(|_| {
            let centre = [rng.uniform(), rng.uniform()];
            (
                centre,
                0.01 + 0.04 * rng.uniform(),
                1.0 + 2.0 * rng.uniform(),
            )
        })
        .collect();
    let total: f64 = shapes.iter().map(|s| s.2).sum();
    let points = (0..n)
        .map(|_| {
            let mut u = rng.uniform() * total;
            let (centre, spread, _) = shapes
                .iter()
                .find(|s| {
                    u -= s.2;
                    u < 0.0
                })
                .unwrap_or(&shapes[blobs - 1]);
            centre.map(|m| (m + spread * rng.normal()) as f32)
        })
        .collect();
    let centres = shapes.iter().map(|s| s.0.map(|m| m as f32)).collect();
    (points, centres)
}

fn main() -> Result<(), keops::KeopsError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let k = args.get(1).copied().unwrap_or(50);
    let iterations = args.get(2).copied().unwrap_or(10);
    assert!(k >= 1 && n >= k, "need 1 <= K <= N");

    let mut rng = Rng(7);
    let (x, generating_centres) = blobs(n, 50, &mut rng);
    // Initial centroids: K of the points, evenly spaced in the (random) order.
    let mut c: Vec<[f32; 2]> = (0..k).map(|j| x[j * n / k]).collect();
    // The cluster numbers as a j-variable, and the labels as an i-variable (floats).
    let cluster_ids: Vec<[f32; 1]> = (0..k).map(|j| [j as f32]).collect();
    let mut labels: Vec<[f32; 1]> = vec![[-1.0]; n];

    println!(
        "K-means, N = {n} points, D = 2, K = {k} clusters, {iterations} iterations, float32 (CPU: {} threads; GPU usable: {})",
        threads(),
        keops::gpu_available()
    );
    println!("iteration     inertia   changed   assign (ms)   update (ms)");
    let mut inertias: Vec<f64> = Vec::new();
    let total = Instant::now();
    let (mut assign_s, mut update_s) = (0.0, 0.0);
    for it in 0..iterations {
        // Assignment step.
        let start = Instant::now();
        let (dist, nearest_index) = nearest.eval(&x, &c)?;
        let t_assign = start.elapsed().as_secs_f64();
        let inertia: f64 = dist.iter().map(|d| d[0] as f64).sum();
        let mut changed = 0;
        for (l, j) in labels.iter_mut().zip(&nearest_index) {
            let new = j[0] as f32;
            changed += usize::from(l[0] != new);
            l[0] = new;
        }

        // Update step: per-cluster sums and counts.
        let start = Instant::now();
        let sums: Vec<[f32; 3]> = cluster_sums.eval(&x, &labels, &cluster_ids)?;
        let t_update = start.elapsed().as_secs_f64();

        if it == 0 {
            check(&x, &c, &dist, &nearest_index, &sums);
        }
        for (cj, s) in c.iter_mut().zip(&sums) {
            if s[2] > 0.0 {
                *cj = [s[0] / s[2], s[1] / s[2]];
            } // an empty cluster keeps its centroid
        }
        assign_s += t_assign;
        update_s += t_update;
        println!(
            "{:>9} {inertia:>11.4} {changed:>9} {:>13.2} {:>13.2}",
            it + 1,
            t_assign * 1e3,
            t_update * 1e3
        );
        if let Some(&previous) = inertias.last() {
            assert!(
                inertia <= previous * (1.0 + 1e-6),
                "the inertia increased: {previous} -> {inertia}"
            );
        }
        inertias.push(inertia);
    }
    let seconds = total.elapsed().as_secs_f64();
    let pairs = (n * k * iterations) as f64;
    println!("reductions ran on {:?}", keops::last_backend());
    println!(
        "total: {seconds:.3} s; assignment {:.3e} pairs/s, update {:.3e} pairs/s",
        pairs / assign_s,
        pairs / update_s
    );
    println!("first iteration's assignments, sums and counts: checked against plain loops in f64");
    if let (Some(first), Some(last)) = (inertias.first(), inertias.last()) {
        println!(
            "inertia: {first:.4} -> {last:.4} ({:.1} % lower), mean squared distance to the centroid {:.3e}",
            100.0 * (1.0 - last / first),
            last / n as f64
        );
    }
    // For reference: the inertia with the centres of the blobs that generated the data.
    let (dist, _) = nearest.eval(&x, &generating_centres)?;
    println!(
        "inertia with the {} generating blob centres as centroids: {:.4}",
        generating_centres.len(),
        dist.iter().map(|d| d[0] as f64).sum::<f64>()
    );
    Ok(())
}

/// Checks a first iteration against plain loops in f64: the per-cluster sums and counts
/// exactly (counts) or to f32 accuracy (sums), and the nearest centroid of a few points.
fn check(
    x: &[[f32; 2]],
    c: &[[f32; 2]],
    dist: &[[f32; 1]],
    nearest_index: &[[usize; 1]],
    sums: &[[f32; 3]],
) {
    let sq = |p: &[f32; 2], q: &[f32; 2]| -> f64 {
        (p[0] as f64 - q[0] as f64).powi(2) + (p[1] as f64 - q[1] as f64).powi(2)
    };
    let mut want = vec![[0f64; 3]; c.len()];
    for (p, j) in x.iter().zip(nearest_index) {
        let w = &mut want[j[0]];
        w[0] += p[0] as f64;
        w[1] += p[1] as f64;
        w[2] += 1.0;
    }
    for (j, (got, want)) in sums.iter().zip(&want).enumerate() {
        assert_eq!(got[2] as f64, want[2], "cluster {j}: count");
        for d in 0..2 {
            assert!(
                (got[d] as f64 - want[d]).abs() <= 1e-5 * want[2].max(1.0),
                "cluster {j}: sum {d}: got {}, want {}",
                got[d],
                want[d]
            );
        }
    }
    for i in (0..x.len()).step_by(x.len().div_ceil(1000)) {
        let best = c.iter().map(|q| sq(&x[i], q)).fold(f64::INFINITY, f64::min);
        let got = sq(&x[i], &c[nearest_index[i][0]]);
        assert!(
            got <= best + 1e-6 * best.max(1e-3),
            "point {i}: centroid at squared distance {got}, the nearest at {best}"
        );
        assert!((dist[i][0] as f64 - got).abs() <= 1e-5 * got.max(1e-3));
    }
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
