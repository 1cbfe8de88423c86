//! Gaussian convolution of 100,000 by 100,000 points in 3D, the README's main job:
//! `a_i = sum_j exp(-|x_i - y_j|^2 / (2 sigma^2)) b_j`, without storing the 10^10 kernel
//! matrix. Prints the time and the throughput in pairs per second, and where it ran: the
//! GPU when an NVIDIA driver and a device are present, the CPU otherwise (`KEOPS_BACKEND=cpu`
//! or `gpu` to choose).
//!
//! `cargo run --release --example gaussian_conv [-- M N]`

use keops::keops;
use std::time::Instant;

keops! {
    /// The Gaussian kernel product, compiled at build time.
    gaussian(x_i: 3, y_j: 3, b_j: 1, g: 1) = Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)
}

/// Deterministic points uniform in the unit cube.
fn points(n: usize, seed: u64) -> Vec<[f32; 3]> {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n).map(|_| [next(), next(), next()]).collect()
}

fn main() -> Result<(), keops::KeopsError> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (m, n) = (
        args.first().copied().unwrap_or(100_000),
        args.get(1).copied().unwrap_or(100_000),
    );
    let x = points(m, 1);
    let y = points(n, 2);
    let b: Vec<[f32; 1]> = points(n, 3).iter().map(|p| [p[0] - 0.5]).collect();
    let sigma = 0.1f32;
    let g = [[1.0 / (2.0 * sigma * sigma)]];

    // A small warm-up call: on a GPU, the first call opens the device and loads the module.
    let few = m.min(n).min(1000);
    gaussian.eval(&x[..few], &y[..few], &b[..few], &g)?;

    let start = Instant::now();
    let a = gaussian.eval(&x, &y, &b, &g)?;
    let seconds = start.elapsed().as_secs_f64();
    let pairs = m as f64 * n as f64;
    let backend = match keops::last_backend() {
        Some(keops::Backend::Cpu) | None => format!("CPU ({} threads)", rayon_threads()),
        Some(keops::Backend::Gpu(i)) => format!(
            "GPU {i} ({})",
            keops::gpu_device_name(i).unwrap_or_else(|e| e.to_string())
        ),
        Some(other) => format!("{other:?}"),
    };
    println!(
        "Gaussian convolution, M = {m}, N = {n}, D = 3, float32, on {backend} (GPU usable: {})",
        keops::gpu_available()
    );
    println!(
        "time: {seconds:.3} s, throughput: {:.3e} pairs/s",
        pairs / seconds
    );
    println!("a[0] = {:.6}, a[{}] = {:.6}", a[0][0], m - 1, a[m - 1][0]);
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
