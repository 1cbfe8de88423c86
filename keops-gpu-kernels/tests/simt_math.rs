//! Accuracy of the math functions through the GPU kernels: each function is compiled as a
//! reduction kernel (`Sum_Reduction(F(x), 0)` over one j, one output row per input) and
//! run by the SIMT interpreter; its outputs are compared with exact values.
//!
//! - f32: every 16411th bit pattern of the whole domain (261,713 inputs, NaNs and
//!   infinities included; sin and cos below 2^20), references from Rust's f64 functions;
//!   two-argument functions on 20,000 random pairs.
//! - f64: the correctly rounded references of `keops-ir/tests/data/math_f64_reference.txt`
//!   (sin and cos below 2^48).
//!
//! Bound: 2 ulp everywhere. `cargo test -p keops-gpu-kernels --release --test simt_math --
//! --nocapture` prints the table of `docs/math-accuracy.md` ("through the GPU kernels").

#[path = "../../keops-ir/tests/math_util/mod.rs"]
mod math_util;

use keops_gpu_kernels::launch::{DeviceLimits, PlanOptions};
use keops_gpu_kernels::scheme::{KernelOptions, ReductionKernels, reduction_kernels};
use keops_gpu_kernels::simt::run_reduction;
use keops_ir::lower::{Precision, SumMode, lower_reduction};
use keops_ir::{Program, Real};
use math_util::{err32, err64, reference};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The kernel computing `formula` of `x` (and `y`) for every row.
fn kernel(formula: &str, arity: usize, p: Precision) -> ReductionKernels {
    let decl = if arity == 1 {
        "x = Vi(1); "
    } else {
        "x = Vi(1); y = Vi(1); "
    };
    let prog = Program::parse(&format!("{decl}Sum_Reduction({formula}, 0)")).unwrap();
    let prog = prog.instantiate(&vec![1; arity]).unwrap();
    let r = prog.reductions().next().unwrap();
    let k = lower_reduction(&prog, r, SumMode::Plain).unwrap();
    reduction_kernels(&k, p, &KernelOptions::default(), "math")
}

/// Runs the kernel on the points, in batches.
fn run<R: Real>(rk: &ReductionKernels, xs: &[R], ys: Option<&[R]>) -> Vec<R> {
    let mut out = Vec::with_capacity(xs.len());
    let plan = PlanOptions {
        block: Some(256),
        tile_rows: None,
        slices: Some(1),
    };
    for (k, chunk) in xs.chunks(8192).enumerate() {
        let mut inputs: Vec<(&[R], usize)> = vec![(chunk, chunk.len())];
        if let Some(ys) = ys {
            inputs.push((&ys[k * 8192..k * 8192 + chunk.len()], chunk.len()));
        }
        let (v, _) =
            run_reduction(rk, &inputs, chunk.len(), 1, &DeviceLimits::H100, &plan).unwrap();
        out.extend(v);
    }
    out
}

struct Row {
    func: String,
    prec: &'static str,
    points: usize,
    max: f64,
    worst: String,
}

fn row(func: &str, prec: &'static str, errs: impl Iterator<Item = (f64, String)>) -> Row {
    let (mut max, mut worst, mut points) = (0.0f64, String::new(), 0);
    for (e, at) in errs {
        points += 1;
        if e > max || e.is_nan() {
            max = if e.is_nan() { f64::INFINITY } else { e };
            worst = at;
        }
    }
    Row {
        func: func.to_string(),
        prec,
        points,
        max,
        worst,
    }
}

/// Unary f32 functions: (name, formula, reference, input filter).
type Unary32 = (&'static str, &'static str, fn(f64) -> f64, fn(f32) -> bool);

fn all_f32(_: f32) -> bool {
    true
}

fn trig_domain(x: f32) -> bool {
    x.abs() < 1048576.0
}

fn unary_f32() -> Vec<Unary32> {
    vec![
        ("exp", "Exp(x)", f64::exp, all_f32),
        ("log", "Log(x)", f64::ln, all_f32),
        ("sin", "Sin(x)", f64::sin, trig_domain),
        ("cos", "Cos(x)", f64::cos, trig_domain),
        ("asin", "Asin(x)", f64::asin, all_f32),
        ("acos", "Acos(x)", f64::acos, all_f32),
        ("atan", "Atan(x)", f64::atan, all_f32),
        ("sqrt", "Sqrt(x)", f64::sqrt, all_f32),
        // KeOps' Rsqrt(0) is 0.
        (
            "rsqrt",
            "Rsqrt(x)",
            |x| if x == 0.0 { 0.0 } else { 1.0 / x.sqrt() },
            all_f32,
        ),
        ("recip", "Inv(x)", |x| 1.0 / x, all_f32),
        ("floor", "Floor(x)", f64::floor, all_f32),
        ("round", "Round(x, 0)", f64::round, all_f32),
        ("pow 3", "Pow(x, 3)", |x| x.powi(3), all_f32),
        ("pow -2", "Pow(x, -2)", |x| x.powi(-2), all_f32),
        ("pow 13", "Pow(x, 13)", |x| x.powi(13), all_f32),
    ]
}

#[test]
fn math_functions_through_gpu_kernels_are_within_2_ulp() {
    let mut rows = Vec::new();
    // f32, unary: every 16411th bit pattern.
    let xs: Vec<f32> = (0..1u64 << 32)
        .step_by(16411)
        .map(|b| f32::from_bits(b as u32))
        .collect();
    for (name, formula, f, keep) in unary_f32() {
        let rk = kernel(formula, 1, Precision::F32);
        let pts: Vec<f32> = xs.iter().copied().filter(|x| keep(*x)).collect();
        let got = run(&rk, &pts, None);
        rows.push(row(
            name,
            "f32",
            pts.iter()
                .zip(&got)
                .map(|(x, g)| (err32(*g, f(*x as f64)), format!("{x:e}"))),
        ));
    }
    // f32, binary: random pairs (uniform bit patterns, and moderate values).
    let mut rng = StdRng::seed_from_u64(32);
    let pairs: Vec<(f32, f32)> = (0..20000)
        .map(|k| {
            if k % 2 == 0 {
                (f32::from_bits(rng.random()), f32::from_bits(rng.random()))
            } else {
                (
                    rng.random_range(-10.0f32..10.0),
                    rng.random_range(-10.0f32..10.0),
                )
            }
        })
        .collect();
    let (px, py): (Vec<f32>, Vec<f32>) = pairs.iter().copied().unzip();
    for (name, formula, f) in [
        ("atan2", "Atan2(x, y)", f64::atan2 as fn(f64, f64) -> f64),
        ("powf", "Powf(x, y)", f64::powf),
    ] {
        let rk = kernel(formula, 2, Precision::F32);
        let got = run(&rk, &px, Some(&py));
        rows.push(row(
            name,
            "f32",
            pairs.iter().zip(&got).map(|((x, y), g)| {
                (
                    err32(*g, f(*x as f64, *y as f64)),
                    format!("({x:e}, {y:e})"),
                )
            }),
        ));
    }
    // f64: the correctly rounded references.
    let refs = reference();
    let mut funcs: Vec<String> = refs.iter().map(|r| r.func.clone()).collect();
    funcs.dedup();
    for func in funcs {
        // sin and cos are within bound below 2^48 in f64 (as in `math_accuracy.rs`).
        let trig = func == "sin" || func == "cos";
        let lines: Vec<_> = refs
            .iter()
            .filter(|r| r.func == func && !(trig && r.args[0].abs() >= 281474976710656.0))
            .collect();
        let (formula, arity) = match func.as_str() {
            "exp" => ("Exp(x)".to_string(), 1),
            "log" => ("Log(x)".to_string(), 1),
            "sin" => ("Sin(x)".to_string(), 1),
            "cos" => ("Cos(x)".to_string(), 1),
            "asin" => ("Asin(x)".to_string(), 1),
            "acos" => ("Acos(x)".to_string(), 1),
            "atan" => ("Atan(x)".to_string(), 1),
            "rsqrt" => ("Rsqrt(x)".to_string(), 1),
            "atan2" => ("Atan2(x, y)".to_string(), 2),
            "powf" => ("Powf(x, y)".to_string(), 2),
            f if f.starts_with("powi:") => (format!("Pow(x, {})", &f[5..]), 1),
            other => panic!("reference function {other} has no formula"),
        };
        let rk = kernel(&formula, arity, Precision::F64);
        let xs: Vec<f64> = lines.iter().map(|l| l.args[0]).collect();
        let ys: Vec<f64> = lines
            .iter()
            .map(|l| l.args.get(1).copied().unwrap_or(0.0))
            .collect();
        let got = run(&rk, &xs, (arity == 2).then_some(&ys[..]));
        rows.push(row(
            &func,
            "f64",
            lines
                .iter()
                .zip(&got)
                .map(|(l, g)| (err64(*g, &l.want), format!("{:?}", l.args))),
        ));
    }
    println!(
        "| function | precision | inputs | max error (ulp) | worst input |\n|---|---|---|---|---|"
    );
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.3} | {} |",
            r.func, r.prec, r.points, r.max, r.worst
        );
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.max.is_nan() || r.max > 2.0)
        .map(|r| format!("{} {}: {:.3} ulp at {}", r.func, r.prec, r.max, r.worst))
        .collect();
    assert!(bad.is_empty(), "beyond 2 ulp:\n{}", bad.join("\n"));
}
