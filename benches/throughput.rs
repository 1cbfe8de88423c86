//! Throughput of the CPU kernels, in pairs (i, j) per second, for the three computations
//! the project is compared with pykeops on (see `BENCHMARKS.md`):
//!
//! - `gaussian`: `Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)`, D = 3, b_j of width 1;
//! - `argkmin`: `ArgKMin_j(SqDist(x_i, y_j), 10)`, D = 3;
//! - `logsumexp`: `LogSumExp_j(-g * SqDist(x_i, y_j))`, D = 3.
//!
//! Each kernel is called once untimed (warm-up; its result is checked against a direct f64
//! computation on a few rows, so that a wrong kernel cannot be measured silently), then
//! timed `reps` times; the median is reported. Inputs are pseudo-random with fixed seeds,
//! generated exactly like `scripts/bench_pykeops.py` does, so both sides see the same data.
//!
//! ```sh
//! cargo bench --bench throughput                       # M = N = 20000, f32, 5 timed runs
//! cargo bench --bench throughput -- --m 50000 --n 50000 --reps 7 --f64
//! KEOPS_BENCH_M=10000 KEOPS_BENCH_N=10000 cargo bench --bench throughput
//! cargo bench --bench throughput -- --only gaussian,logsumexp
//! RAYON_NUM_THREADS=1 cargo bench --bench throughput   # one thread
//! ```
//!
//! Besides the human-readable report, every timed run is printed as a tab-separated line
//! `SAMPLE  rust  <kernel>  <dtype>  <M>  <N>  <seconds>`, which `scripts/bench_vs_pykeops.sh`
//! collects.

use keops::ir::Real;
use keops::{KeopsFloat, keops};
use std::hint::black_box;
use std::time::Instant;

keops! {
    /// Gaussian convolution.
    gaussian(x_i: 3, y_j: 3, b_j: 1, g: 1) = Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)
}

keops! {
    /// Indices of the 10 nearest neighbours.
    argkmin(x_i: 3, y_j: 3) = ArgKMin_j(SqDist(x_i, y_j), 10)
}

keops! {
    /// Log-sum-exp of a Gaussian kernel.
    logsumexp(x_i: 3, y_j: 3, g: 1) = LogSumExp_j(-g * SqDist(x_i, y_j))
}

/// K of the ArgKMin benchmark.
const K: usize = 10;
/// The kernels' bandwidth: g = 1 / (2 sigma^2) with sigma = 0.1 (points are in the unit cube).
const G: f64 = 50.0;
/// Number of rows checked against the f64 computation.
const CHECKED_ROWS: usize = 8;
/// The kernel names, in the order they run.
const KERNELS: [&str; 3] = ["gaussian", "argkmin", "logsumexp"];

/// Value `k` (k = 0, 1, ...) of the stream `seed`: SplitMix64 of `seed + (k + 1) * golden`,
/// top 24 bits, uniform in [0, 1) and exact in f32. `scripts/bench_pykeops.py` computes the
/// same numbers with numpy.
fn uniform(seed: u64, k: u64) -> f64 {
    let mut z = seed.wrapping_add((k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f64 / (1u64 << 24) as f64
}

/// `n` rows of `D` values of the stream `seed`, mapped by `f`.
fn rows<const D: usize>(n: usize, seed: u64, f: impl Fn(f64) -> f64) -> Vec<[f64; D]> {
    (0..n)
        .map(|r| std::array::from_fn(|c| f(uniform(seed, (r * D + c) as u64))))
        .collect()
}

/// The benchmark's data in f64 (exactly representable in f32): x in [0,1)^3 (seed 1),
/// y in [0,1)^3 (seed 2), b in [-1,1) (seed 3).
struct Data {
    x: Vec<[f64; 3]>,
    y: Vec<[f64; 3]>,
    b: Vec<[f64; 1]>,
}

impl Data {
    fn new(m: usize, n: usize) -> Data {
        Data {
            x: rows(m, 1, |u| u),
            y: rows(n, 2, |u| u),
            b: rows(n, 3, |u| 2.0 * u - 1.0),
        }
    }
}

fn cast<T: Real, const D: usize>(v: &[[f64; D]]) -> Vec<[T; D]> {
    v.iter().map(|r| r.map(T::of)).collect()
}

fn sqdist(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// Rows checked against the f64 computation: spread over [0, M).
fn checked_rows(m: usize) -> Vec<usize> {
    let mut r: Vec<usize> = (0..CHECKED_ROWS)
        .map(|k| k * (m - 1) / (CHECKED_ROWS - 1).max(1))
        .collect();
    r.dedup();
    r
}

/// Tolerances of the checks, for the precision benchmarked.
fn tolerance<T: Real>() -> f64 {
    if T::BITS == 32 { 1e-3 } else { 1e-9 }
}

/// Gaussian: |a_i - exact| <= tol * sum_j |terms| for the checked rows. Returns the largest
/// error so scaled.
fn check_gaussian<T: Real>(d: &Data, got: &[[T; 1]]) -> Result<f64, String> {
    let mut worst = 0f64;
    for i in checked_rows(d.x.len()) {
        let (mut sum, mut abs) = (0f64, 0f64);
        for (y, b) in d.y.iter().zip(&d.b) {
            let t = (-G * sqdist(&d.x[i], y)).exp() * b[0];
            sum += t;
            abs += t.abs();
        }
        let err = (got[i][0].f64() - sum).abs() / abs.max(1e-300);
        if err.is_nan() || err > tolerance::<T>() {
            return Err(format!(
                "row {i}: got {}, exact {sum} (error {err:.2e} of sum |terms| = {abs:.3e})",
                got[i][0]
            ));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// ArgKMin: the K indices are valid and distinct, and their exact distances (in f64) are
/// the K smallest exact distances in increasing order, up to the rounding of the distances
/// in the benchmarked precision (ties may be broken differently). Returns the largest
/// distance discrepancy.
fn check_argkmin<T: Real>(d: &Data, got: &[[usize; K]]) -> Result<f64, String> {
    let n = d.y.len();
    let slack = if T::BITS == 32 { 1e-5 } else { 1e-12 };
    let mut worst = 0f64;
    for i in checked_rows(d.x.len()) {
        let mut exact: Vec<f64> = d.y.iter().map(|y| sqdist(&d.x[i], y)).collect();
        exact.sort_by(f64::total_cmp);
        let idx = &got[i];
        let mut seen = idx.to_vec();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != K.min(n) || idx[..K.min(n)].iter().any(|&j| j >= n) {
            return Err(format!("row {i}: bad indices {idx:?}"));
        }
        for k in 0..K.min(n) {
            let dk = sqdist(&d.x[i], &d.y[idx[k]]);
            let err = (dk - exact[k]).abs();
            if err.is_nan() || err > slack {
                return Err(format!(
                    "row {i}: neighbour {k} is {} at distance^2 {dk}, the exact {k}-th smallest is {}",
                    idx[k], exact[k]
                ));
            }
            worst = worst.max(err);
        }
    }
    Ok(worst)
}

/// LogSumExp: absolute error <= tol * max(1, |exact|) on the checked rows.
fn check_logsumexp<T: Real>(d: &Data, got: &[[T; 1]]) -> Result<f64, String> {
    let mut worst = 0f64;
    for i in checked_rows(d.x.len()) {
        let v: Vec<f64> = d.y.iter().map(|y| -G * sqdist(&d.x[i], y)).collect();
        let mx = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exact = mx + v.iter().map(|t| (t - mx).exp()).sum::<f64>().ln();
        let err = (got[i][0].f64() - exact).abs() / exact.abs().max(1.0);
        if err.is_nan() || err > tolerance::<T>() {
            return Err(format!(
                "row {i}: got {}, exact {exact} (error {err:.2e})",
                got[i][0]
            ));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// CPU time used so far by all threads of this process, in seconds (Linux; None elsewhere).
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u128;
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let s = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
        ns += s.split_whitespace().next()?.parse::<u128>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

struct Config {
    m: usize,
    n: usize,
    reps: usize,
    warmup: usize,
    f64: bool,
    only: Vec<String>,
    /// The call options: backend (`--backend`, else `KEOPS_BACKEND`, else Auto) and
    /// `--fast-math` (GPU f32 kernels).
    options: keops::Options,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench throughput -- [M [N]] [--m M] [--n N] [--reps R] [--warmup W] \
         [--f64] [--only gaussian,argkmin,logsumexp] [--backend auto|cpu|gpu|gpu:N|emulated] [--fast-math]\n\
         environment: KEOPS_BENCH_M, KEOPS_BENCH_N, KEOPS_BENCH_REPS, KEOPS_BENCH_WARMUP, \
         KEOPS_BENCH_F64=1, KEOPS_BENCH_ONLY, KEOPS_BENCH_FAST_MATH=1, KEOPS_BACKEND; \
         RAYON_NUM_THREADS sets the CPU threads"
    );
    std::process::exit(2)
}

fn parse_usize(s: &str, what: &str) -> usize {
    match s.replace('_', "").parse() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("{what}: not a number: {s:?}");
            usage()
        }
    }
}

impl Config {
    /// Environment first, then the command line (which wins).
    fn get() -> Config {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut c = Config {
            m: env("KEOPS_BENCH_M").map_or(20_000, |v| parse_usize(&v, "KEOPS_BENCH_M")),
            n: 0,
            reps: env("KEOPS_BENCH_REPS").map_or(5, |v| parse_usize(&v, "KEOPS_BENCH_REPS")),
            warmup: env("KEOPS_BENCH_WARMUP").map_or(1, |v| parse_usize(&v, "KEOPS_BENCH_WARMUP")),
            f64: env("KEOPS_BENCH_F64").is_some_and(|v| v != "0"),
            only: env("KEOPS_BENCH_ONLY")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            options: keops::Options {
                fast_math: env("KEOPS_BENCH_FAST_MATH").is_some_and(|v| v != "0"),
                ..Default::default()
            },
        };
        let mut n = env("KEOPS_BENCH_N").map(|v| parse_usize(&v, "KEOPS_BENCH_N"));
        let mut positional = 0;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |what: &str| {
                args.next().unwrap_or_else(|| {
                    eprintln!("{what} needs a value");
                    usage()
                })
            };
            match a.as_str() {
                "--m" => c.m = parse_usize(&value("--m"), "--m"),
                "--n" => n = Some(parse_usize(&value("--n"), "--n")),
                "--reps" => c.reps = parse_usize(&value("--reps"), "--reps"),
                "--warmup" => c.warmup = parse_usize(&value("--warmup"), "--warmup"),
                "--f64" => c.f64 = true,
                "--f32" => c.f64 = false,
                "--only" => c.only = value("--only").split(',').map(str::to_owned).collect(),
                "--fast-math" => c.options.fast_math = true,
                "--backend" => {
                    let b = value("--backend");
                    c.options.backend = Some(b.parse().unwrap_or_else(|e| {
                        eprintln!("--backend: {e}");
                        usage()
                    }));
                }
                // Passed by `cargo bench` to every bench binary.
                "--bench" => {}
                "-h" | "--help" => usage(),
                s if !s.starts_with('-') && positional == 0 => {
                    c.m = parse_usize(s, "M");
                    positional += 1;
                }
                s if !s.starts_with('-') && positional == 1 => {
                    n = Some(parse_usize(s, "N"));
                    positional += 1;
                }
                s => {
                    eprintln!("unknown argument {s:?}");
                    usage()
                }
            }
        }
        c.n = n.unwrap_or(c.m);
        c.only.retain(|s| !s.is_empty());
        if let Some(bad) = c.only.iter().find(|s| !KERNELS.contains(&s.as_str())) {
            eprintln!("unknown kernel {bad:?}; kernels: {}", KERNELS.join(", "));
            usage()
        }
        if c.m == 0 || c.n == 0 || c.reps == 0 {
            eprintln!("M, N and the repetitions must be positive");
            usage()
        }
        if let Ok(keops::Backend::Gpu(i)) = c.options.backend()
            && let Err(e) = keops::gpu_device_count().and_then(|count| {
                if i < count {
                    Ok(())
                } else {
                    Err(keops::GpuError::NoDevice { index: i, count })
                }
            })
        {
            eprintln!("--backend gpu:{i}: {e}");
            std::process::exit(2);
        }
        c
    }

    fn runs(&self, kernel: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|k| k == kernel)
    }
}

/// Warm-up calls (the first is checked), then `reps` timed calls. Prints the report and
/// the samples; panics if the check fails.
fn bench<R>(
    c: &Config,
    name: &str,
    dtype: &str,
    mut call: impl FnMut() -> R,
    check: impl Fn(&R) -> Result<f64, String>,
    same: impl Fn(&R, &R) -> bool,
) {
    let t0 = Instant::now();
    let first = call();
    let first_s = t0.elapsed().as_secs_f64();
    println!("INFO\trust\tbackend_{name}\t{:?}", keops::last_backend());
    let worst = match check(&first) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{name} ({dtype}): WRONG RESULT against the f64 computation: {e}");
            std::process::exit(1);
        }
    };
    for _ in 1..c.warmup {
        black_box(call());
    }
    let mut times = Vec::with_capacity(c.reps);
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let mut deterministic = true;
    for _ in 0..c.reps {
        let t = Instant::now();
        let r = black_box(call());
        let s = t.elapsed().as_secs_f64();
        times.push(s);
        println!("SAMPLE\trust\t{name}\t{dtype}\t{}\t{}\t{s:.6}", c.m, c.n);
        deterministic &= same(&first, &r);
    }
    let cores = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => format!("{:.2}", (b - a) / wall0.elapsed().as_secs_f64()),
        _ => "n/a".into(),
    };
    let (lo, hi) = (
        times.iter().copied().fold(f64::INFINITY, f64::min),
        times.iter().copied().fold(0f64, f64::max),
    );
    let med = median(&mut times);
    let pairs = c.m as f64 * c.n as f64;
    println!(
        "{name:<10} {dtype}  median {med:8.4} s  (min {lo:.4}, max {hi:.4}, first call {first_s:.4})  \
         {:10.4e} pairs/s  cores busy {cores}  check ok (worst error {worst:.1e} on {} rows){}",
        pairs / med,
        checked_rows(c.m).len(),
        if deterministic {
            ""
        } else {
            "  NOT DETERMINISTIC across calls"
        }
    );
    println!("INFO\trust\tcores_busy_{name}\t{cores}");
}

fn run<T: KeopsFloat>(c: &Config, d: &Data) {
    let dtype = T::NAME;
    let (x, y, b) = (cast::<T, 3>(&d.x), cast::<T, 3>(&d.y), cast::<T, 1>(&d.b));
    let g = [[T::of(G)]];
    if c.runs("gaussian") {
        bench(
            c,
            "gaussian",
            dtype,
            || {
                gaussian
                    .eval_with(&c.options, &x, &y, &b, &g)
                    .expect("gaussian")
            },
            |r: &Vec<[T; 1]>| check_gaussian(d, r),
            |a, b| a == b,
        );
    }
    if c.runs("argkmin") {
        bench(
            c,
            "argkmin",
            dtype,
            || -> Vec<[usize; K]> { argkmin.eval_with(&c.options, &x, &y).expect("argkmin") },
            |r| check_argkmin::<T>(d, r),
            |a, b| a == b,
        );
    }
    if c.runs("logsumexp") {
        bench(
            c,
            "logsumexp",
            dtype,
            || {
                logsumexp
                    .eval_with(&c.options, &x, &y, &g)
                    .expect("logsumexp")
            },
            |r: &Vec<[T; 1]>| check_logsumexp(d, r),
            |a, b| a == b,
        );
    }
}

fn main() {
    let c = Config::get();
    let threads = rayon::current_num_threads();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "keops-rs throughput: M = {}, N = {}, D = 3, {}, {} warm-up + {} timed calls per kernel (median), \
         rayon threads {threads} (CPUs available {cpus})",
        c.m,
        c.n,
        if c.f64 { "float64" } else { "float32" },
        c.warmup.max(1),
        c.reps
    );
    println!("INFO\trust\tthreads\t{threads}");
    let d = Data::new(c.m, c.n);
    if c.f64 {
        run::<f64>(&c, &d);
    } else {
        run::<f32>(&c, &d);
    }
}
