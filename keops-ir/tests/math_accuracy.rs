//! Accuracy of the math library (`keops_ir::lower::math`): every non-primitive scalar
//! instruction is expanded into primitive ones and run by the lowered-form interpreter,
//! and its error is measured in ulps against the exact value.
//!
//! - f32: every 2039th bit pattern of the whole f32 domain (2.1 million inputs, both
//!   signs, NaNs and infinities included; sin and cos: every 1229th of |x| < 2^20), plus
//!   each function's edge regions (every pattern, or a few hundred thousand); references are the f64 functions of Rust's
//!   std, whose error is far below an f32 ulp. Two-argument functions take a few million
//!   random pairs (uniform bit patterns, and structured pairs: y log x spanning the
//!   exponent range for pow, ratios spanning 2^±70 for atan2).
//! - f64: the correctly rounded references of `tests/data/math_f64_reference.txt`
//!   (mpmath, `scripts/math_reference.py`), plus a wider random sweep against Rust's std
//!   (glibc's libm, itself within 1 ulp: bound 3 there).
//!
//! The bound is 2 ulp everywhere (0 for round and recip, which are exact).
//! `cargo test -p keops-ir --release --test math_accuracy -- --nocapture` prints the
//! table of `docs/math-accuracy.md`.

mod math_util;

use keops_ir::lower::SOp;
use math_util::{Exact, Expanded, RefLine, THIN, err32, err64, exponent, reference};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// sin and cos are within bound for |x| below this in f32 (where x 2/pi, rounded to
/// f32, still gives the nearest quadrant within the polynomials' domain).
const TRIG_LIMIT_F32: f32 = 1048576.0; // 2^20
/// Same, in f64.
const TRIG_LIMIT_F64: f64 = 281474976710656.0; // 2^48

/// One line of the accuracy table.
struct Row {
    func: String,
    prec: &'static str,
    inputs: String,
    points: u64,
    max: f64,
    worst: String,
    bound: f64,
}

/// Maximum error so far and where.
#[derive(Default)]
struct Acc {
    max: f64,
    worst: String,
    n: u64,
}

impl Acc {
    fn add(&mut self, err: f64, at: impl FnOnce() -> String) {
        self.n += 1;
        if err > self.max || err.is_nan() {
            self.max = if err.is_nan() { f64::INFINITY } else { err };
            self.worst = at();
        }
    }
    fn row(self, func: &str, prec: &'static str, inputs: &str, bound: f64) -> Row {
        Row {
            func: func.to_string(),
            prec,
            inputs: inputs.to_string(),
            points: self.n,
            max: self.max,
            worst: self.worst,
            bound,
        }
    }
}

// ---------------------------------------------------------------- f32 inputs

/// Every `stride`-th bit pattern of the f32 domain.
fn strided(stride: u64) -> impl Iterator<Item = f32> {
    (0..1u64 << 32)
        .step_by((stride * THIN) as usize)
        .map(|b| f32::from_bits(b as u32))
}

/// Every `stride`-th f32 in [0, lim), and their negatives.
fn strided_below(lim: f32, stride: u64) -> impl Iterator<Item = f32> {
    (0..lim.to_bits())
        .step_by((stride * THIN) as usize)
        .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
}

/// About `n` f32 evenly spread (in bit patterns) over [lo, hi] (both positive), and
/// their negatives: every f32 there when the window holds fewer than `n`.
fn dense(lo: f32, hi: f32, n: u64) -> impl Iterator<Item = f32> {
    let (a, b) = (lo.to_bits() as u64, hi.to_bits() as u64);
    let step = ((b - a) / n).max(1) * THIN;
    (a..=b)
        .step_by(step as usize)
        .flat_map(|b| [f32::from_bits(b as u32), -f32::from_bits(b as u32)])
}

/// The 4000 f32 in [1, 2^20) closest (relatively) to a multiple of pi/2: the hardest
/// cases of the argument reduction (|x - k pi/2| / |x| down to 1.3e-13), found by
/// reducing every f32 there in f64 (pi/2 = p1 + p2 + p3, k p1 exact for k < 2^20).
fn hard_trig_cases() -> &'static [f32] {
    static CASES: OnceLock<Vec<f32>> = OnceLock::new();
    CASES.get_or_init(|| {
        let p1 = f64::from_bits(std::f64::consts::FRAC_PI_2.to_bits() & !0xfffff);
        let p2 = std::f64::consts::FRAC_PI_2 - p1;
        let p3 = 6.123233995736766e-17;
        let mut best: Vec<(f64, f32)> = Vec::new();
        for b in (1f32.to_bits()..TRIG_LIMIT_F32.to_bits()).step_by(THIN as usize) {
            let x = f32::from_bits(b) as f64;
            let k = (x * std::f64::consts::FRAC_2_PI).round();
            let rel = (((x - k * p1) - k * p2) - k * p3).abs() / x;
            if best.len() < 4000 || rel < best[3999].0 {
                best.push((rel, x as f32));
                if best.len() >= 8000 {
                    best.sort_by(|a, b| a.0.total_cmp(&b.0));
                    best.truncate(4000);
                }
            }
        }
        best.sort_by(|a, b| a.0.total_cmp(&b.0));
        best.truncate(4000);
        best.into_iter().map(|(_, x)| x).collect()
    })
}

/// A unary f32 function over the strided domain and dense edge windows.
fn unary32(
    op: SOp,
    f: fn(f64) -> f64,
    stride: u64,
    windows: &[(f32, f32, u64)],
    keep: fn(f32) -> bool,
) -> Acc {
    let mut e = Expanded::<f32>::new(op, 1);
    let mut acc = Acc::default();
    let pts = strided(stride).chain(windows.iter().flat_map(|(lo, hi, s)| dense(*lo, *hi, *s)));
    for x in pts.filter(|x| keep(*x)) {
        let got = e.f1(x);
        acc.add(err32(got, f(x as f64)), || format!("{x:e}"));
    }
    acc
}

fn all(_: f32) -> bool {
    true
}

/// Random f32 with uniformly random bits.
fn any32(rng: &mut StdRng) -> f32 {
    f32::from_bits(rng.random())
}

/// Random positive f32 with a uniform exponent in [lo, hi).
fn loguni32(rng: &mut StdRng, lo: f64, hi: f64) -> f32 {
    (rng.random_range(lo..hi).exp2() * rng.random_range(1.0..2.0f64) * 0.5) as f32
}

// ---------------------------------------------------------------- f64 inputs

/// Random positive f64 with a uniform exponent in [lo, hi) and a random mantissa.
fn loguni64(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    let e = rng.random_range(lo..hi).floor() as i32;
    math_util::ldexp(rng.random_range(1.0..2.0), e)
}

fn signed(x: f64, rng: &mut StdRng) -> f64 {
    if rng.random::<bool>() { x } else { -x }
}

/// `v` as an [`Exact`] (for a reference computed in f64 by std).
fn exact(v: f64) -> Exact {
    let e = exponent(v);
    Exact {
        e,
        hi: math_util::ldexp(v, -e),
        lo: 0.0,
    }
}

/// The f64 reference data of one function.
fn data(func: &str) -> Vec<RefLine> {
    static DATA: OnceLock<Vec<RefLine>> = OnceLock::new();
    DATA.get_or_init(reference)
        .iter()
        .filter(|l| l.func == func)
        .cloned()
        .collect()
}

/// A function against the mpmath references.
fn mpmath64(func: &str, op: SOp, keep: fn(&[f64]) -> bool) -> Acc {
    let lines = data(func);
    assert!(!lines.is_empty(), "no reference data for {func}");
    let mut e = Expanded::<f64>::new(op, lines[0].args.len());
    let mut acc = Acc::default();
    for l in lines.iter().filter(|l| keep(&l.args)) {
        let got = match l.args.len() {
            1 => e.f1(l.args[0]),
            _ => e.f2(l.args[0], l.args[1]),
        };
        acc.add(err64(got, &l.want), || {
            format!("{:e} (got {got:e}, want {:e})", l.args[0], l.want.approx())
                + &l.args
                    .get(1)
                    .map(|y| format!(", {y:e}"))
                    .unwrap_or_default()
        });
    }
    acc
}

/// A unary function against std on random f64 inputs.
fn std64(op: SOp, f: fn(f64) -> f64, n: u64, input: fn(&mut StdRng) -> f64) -> Acc {
    let mut e = Expanded::<f64>::new(op, 1);
    let mut rng = StdRng::seed_from_u64(7);
    let mut acc = Acc::default();
    for _ in 0..n / THIN {
        let x = input(&mut rng);
        let (got, want) = (e.f1(x), f(x));
        let err = if want == 0.0 || !want.is_finite() {
            if math_util::same(got, want) {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            err64(got, &exact(want))
        };
        acc.add(err, || format!("{x:e}"));
    }
    acc
}

/// A binary function against std on random f64 pairs.
fn std64_2(op: SOp, f: fn(f64, f64) -> f64, n: u64, input: fn(&mut StdRng) -> (f64, f64)) -> Acc {
    let mut e = Expanded::<f64>::new(op, 2);
    let mut rng = StdRng::seed_from_u64(8);
    let mut acc = Acc::default();
    for _ in 0..n / THIN {
        let (x, y) = input(&mut rng);
        let (got, want) = (e.f2(x, y), f(x, y));
        let err = if want == 0.0 || !want.is_finite() {
            if math_util::same(got, want) {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            err64(got, &exact(want))
        };
        acc.add(err, || format!("({x:e}, {y:e})"));
    }
    acc
}

fn powf_pair64(rng: &mut StdRng) -> (f64, f64) {
    match rng.random_range(0..4) {
        0 => (rng.random_range(0.0..8.0), rng.random_range(-30.0..30.0)),
        1 => {
            // Negative base, integer exponent.
            let x = -loguni64(rng, -10.0, 10.0);
            let lim = (700.0 / x.abs().ln().abs()).clamp(1.0, 1e6);
            (x, rng.random_range(-lim..lim).round())
        }
        _ => {
            // y log x spanning the exponent range.
            let x = f64::from_bits(rng.random_range(1..0x7fefffffffffffffu64));
            let t = rng.random_range(-745.0..709.7);
            (x, t / x.ln())
        }
    }
}

fn atan2_pair64(rng: &mut StdRng) -> (f64, f64) {
    let x = signed(loguni64(rng, -1000.0, 1000.0), rng);
    let r = loguni64(rng, -70.0, 70.0);
    (signed(x * r, rng), x)
}

// ---------------------------------------------------------------- the cases

type Case = Box<dyn Fn() -> Row + Send + Sync>;

fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    let strided_note = "all f32 (stride 2039)";

    // ------------------------------------------------ f32, unary
    const K: u64 = 1000;
    v.push(Box::new(move || {
        let w = [
            (87.0, 89.0, 300 * K),
            (100.0, 104.0, 100 * K),
            (0.0, 1e-6, 100 * K),
        ];
        unary32(SOp::Exp, f64::exp, 2039, &w, all).row(
            "exp",
            "f32",
            &format!("{strided_note}; every f32 in ±[87, 89]; ±[100, 104], ±[0, 1e-6] (100k each)"),
            2.0,
        )
    }));
    v.push(Box::new(move || {
        let w = [
            (0.5, 2.0, 500 * K),
            (0.999, 1.001, 30 * K),
            (0.0, 1.1754942e-38, 100 * K),
        ];
        unary32(SOp::Log, f64::ln, 2039, &w, all).row(
            "log",
            "f32",
            &format!(
                "{strided_note}; [0.5, 2] (500k); every f32 in [0.999, 1.001]; subnormals (100k)"
            ),
            2.0,
        )
    }));
    for (name, op, f) in [
        ("sin", SOp::Sin, f64::sin as fn(f64) -> f64),
        ("cos", SOp::Cos, f64::cos),
    ] {
        v.push(Box::new(move || {
            // Every f32 within ±64 ulps of the f32 nearest to k pi/2 for 512 k < 2^19.
            let near: Vec<(f32, f32, u64)> = (0..512u64)
                .map(|i| {
                    let k = 1 + (i * 2654435761) % (1 << 19);
                    let c = (k as f64 * std::f64::consts::FRAC_PI_2) as f32;
                    (f32::from_bits(c.to_bits() - 64), f32::from_bits(c.to_bits() + 64), 128)
                })
                .chain([(0.5, 8.0, 300 * K)])
                .collect();
            let mut e = Expanded::<f32>::new(op, 1);
            let mut acc = Acc::default();
            let hard = hard_trig_cases().iter().flat_map(|x| [*x, -*x]);
            let pts = strided_below(TRIG_LIMIT_F32, 1229)
                .chain(near.iter().flat_map(|(lo, hi, n)| dense(*lo, *hi, *n)))
                .chain(hard);
            for x in pts {
                let got = e.f1(x);
                acc.add(err32(got, f(x as f64)), || format!("{x:e}"));
            }
            acc.row(
                name,
                "f32",
                "every 1229th f32 of ±[0, 2^20); ±[0.5, 8] (300k); every f32 within 64 ulps of 512 multiples of pi/2; the 4000 hardest reductions in ±[1, 2^20)",
                2.0,
            )
        }));
        v.push(Box::new(move || {
            // Beyond: finite and within [-1, 1] (the error is reported, not bounded).
            let mut e = Expanded::<f32>::new(op, 1);
            let mut acc = Acc::default();
            for x in strided(4093).filter(|x| x.is_finite() && x.abs() >= TRIG_LIMIT_F32) {
                let got = e.f1(x);
                assert!(
                    got.abs() <= 1.0,
                    "{name}({x:e}) = {got} is not within [-1, 1]"
                );
                acc.add(err32(got, f(x as f64)), || format!("{x:e}"));
            }
            acc.row(
                name,
                "f32",
                "|x| >= 2^20 (stride 4093): only checked finite, within [-1, 1]",
                f64::INFINITY,
            )
        }));
    }
    for (name, op, f) in [
        ("asin", SOp::Asin, f64::asin as fn(f64) -> f64),
        ("acos", SOp::Acos, f64::acos),
    ] {
        v.push(Box::new(move || {
            let w = [(0.49, 0.51, 300 * K), (0.99, 1.0, 200 * K)];
            unary32(op, f, 2039, &w, all).row(
                name,
                "f32",
                &format!("{strided_note}; ±[0.49, 0.51] (300k); every f32 in ±[0.99, 1]"),
                2.0,
            )
        }));
    }
    v.push(Box::new(move || {
        let w = [
            (0.45, 0.55, 200 * K),
            (0.9, 1.1, 200 * K),
            (1.9, 2.1, 200 * K),
        ];
        unary32(SOp::Atan, f64::atan, 2039, &w, all).row(
            "atan",
            "f32",
            &format!("{strided_note}; ±[0.45, 0.55], ±[0.9, 1.1], ±[1.9, 2.1] (200k each)"),
            2.0,
        )
    }));
    v.push(Box::new(move || {
        let w = [(0.0, 8388608.0, 300 * K), (0.49999, 0.50001, 400)];
        unary32(SOp::Round, f64::round, 4093, &w, all).row(
            "round",
            "f32",
            "all f32 (stride 4093); ±[0, 2^23] (300k); every f32 in ±[0.49999, 0.50001]",
            0.0,
        )
    }));
    v.push(Box::new(move || {
        let w = [(0.0, 1.1754942e-38, 200 * K), (1.0, 4.0, 200 * K)];
        unary32(SOp::Rsqrt, |x| 1.0 / x.sqrt(), 4093, &w, all).row(
            "rsqrt",
            "f32",
            "all f32 (stride 4093); subnormals, [1, 4] (200k each)",
            2.0,
        )
    }));
    v.push(Box::new(move || {
        unary32(SOp::Recip, |x| 1.0 / x, 4093, &[(1.0, 2.0, 200 * K)], all).row(
            "recip",
            "f32",
            "all f32 (stride 4093); [1, 2] (200k)",
            0.5,
        )
    }));
    for n in [-7i32, -3, -2, 3, 5, 13, 100] {
        v.push(Box::new(move || {
            // Windows around the overflow and underflow thresholds of x^n.
            let t = |e: f64| (e / n.abs() as f64).exp2() as f32;
            let w = [(t(120.0), t(129.0), 50 * K), (t(-152.0), t(-124.0), 100 * K)];
            let f = match n {
                -7 => |x: f64| x.powi(-7),
                -3 => |x: f64| x.powi(-3),
                -2 => |x: f64| x.powi(-2),
                3 => |x: f64| x.powi(3),
                5 => |x: f64| x.powi(5),
                13 => |x: f64| x.powi(13),
                _ => |x: f64| x.powi(100),
            };
            unary32(SOp::PowI(n), f, 8191, &w, all).row(
                &format!("powi({n})"),
                "f32",
                &format!(
                    "all f32 (stride 8191); |x|^{} in [2^-152, 2^-124] (100k), [2^120, 2^129] (50k)",
                    n.abs()
                ),
                2.0,
            )
        }));
    }

    // ------------------------------------------------ f32, binary
    v.push(Box::new(|| {
        let mut e = Expanded::<f32>::new(SOp::Powf, 2);
        let mut rng = StdRng::seed_from_u64(1);
        let mut acc = Acc::default();
        for k in 0..1_000_000 / THIN {
            let (x, y) = match k % 4 {
                0 => (any32(&mut rng), any32(&mut rng)),
                1 => (rng.random_range(0.0..8.0f32), rng.random_range(-40.0..40.0f32)),
                2 => {
                    let x = -loguni32(&mut rng, -20.0, 20.0);
                    let lim = (80.0 / (x.abs() as f64).ln().abs()).clamp(1.0, 1e6);
                    (x, rng.random_range(-lim..lim).round() as f32)
                }
                _ => {
                    let x = f32::from_bits(rng.random_range(1..0x7f7fffffu32));
                    let t = rng.random_range(-104.0..89.0f64);
                    (x, (t / (x as f64).ln()) as f32)
                }
            };
            let got = e.f2(x, y);
            acc.add(err32(got, (x as f64).powf(y as f64)), || format!("({x:e}, {y:e})"));
        }
        acc.row("powf", "f32", "1M pairs: uniform bits; [0, 8) x [-40, 40); negative x, integer y; y ln x uniform in [-104, 89]", 2.0)
    }));
    v.push(Box::new(|| {
        let mut e = Expanded::<f32>::new(SOp::Atan2, 2);
        let mut rng = StdRng::seed_from_u64(2);
        let mut acc = Acc::default();
        for k in 0..1_000_000 / THIN {
            let (y, x) = if k % 2 == 0 {
                (any32(&mut rng), any32(&mut rng))
            } else {
                let x = f32::from_bits(rng.random());
                let r = loguni32(&mut rng, -40.0, 40.0) as f64;
                let y = (x as f64 * r) as f32;
                (if rng.random::<bool>() { y } else { -y }, x)
            };
            let got = e.f2(y, x);
            acc.add(err32(got, (y as f64).atan2(x as f64)), || {
                format!("({y:e}, {x:e})")
            });
        }
        acc.row(
            "atan2",
            "f32",
            "1M pairs: uniform bits; x uniform bits, |y/x| log-uniform in 2^±40",
            2.0,
        )
    }));

    // ------------------------------------------------ f64 against mpmath
    let any = |_: &[f64]| true;
    for (func, op, note) in [
        (
            "exp",
            SOp::Exp,
            "[-745.1, 709.8] uniform and log-uniform, subnormal results, thresholds",
        ),
        (
            "log",
            SOp::Log,
            "uniform bits (all binades, subnormals), near 1, near sqrt(1/2) 2^e",
        ),
        (
            "asin",
            SOp::Asin,
            "[-1, 1] uniform, near ±1, near ±1/2, |x| down to 2^-80",
        ),
        (
            "acos",
            SOp::Acos,
            "[-1, 1] uniform, near ±1, near ±1/2, |x| down to 2^-80",
        ),
        (
            "atan",
            SOp::Atan,
            "|x| log-uniform in [2^-60, 2^70], near 1/2, 1, 2, subnormals",
        ),
        (
            "atan2",
            SOp::Atan2,
            "|x| in 2^±1000, |y/x| in 2^±70; middle region; huge and subnormal pairs",
        ),
        (
            "powf",
            SOp::Powf,
            "y ln x uniform in [-745, 709.7] (all x, x near 1), negative x with integer y, subnormal and overflowing results",
        ),
        (
            "rsqrt",
            SOp::Rsqrt,
            "uniform bits (all binades, subnormals)",
        ),
    ] {
        v.push(Box::new(move || {
            let n = data(func).len();
            mpmath64(func, op, any).row(func, "f64", &format!("{n} mpmath references: {note}"), 2.0)
        }));
    }
    for (func, op) in [("sin", SOp::Sin), ("cos", SOp::Cos)] {
        v.push(Box::new(move || {
            mpmath64(func, op, |a| a[0].abs() < TRIG_LIMIT_F64).row(
                func,
                "f64",
                "mpmath references, |x| < 2^48: log-uniform from 2^-30, uniform in ±10 and ±1e5, near k pi/2 (k < 2^30)",
                2.0,
            )
        }));
        v.push(Box::new(move || {
            let lines: Vec<RefLine> = data(func)
                .into_iter()
                .filter(|l| l.args[0].abs() >= TRIG_LIMIT_F64)
                .collect();
            let mut e = Expanded::<f64>::new(op, 1);
            let mut acc = Acc::default();
            for l in &lines {
                let got = e.f1(l.args[0]);
                assert!(
                    got.abs() <= 1.0,
                    "{func}({:e}) = {got} is not within [-1, 1]",
                    l.args[0]
                );
                acc.add(err64(got, &l.want), || format!("{:e}", l.args[0]));
            }
            acc.row(
                func,
                "f64",
                "mpmath references, |x| >= 2^48: only checked finite, within [-1, 1]",
                f64::INFINITY,
            )
        }));
    }
    for n in [-7, -3, -2, 3, 5, 13] {
        v.push(Box::new(move || {
            let func = format!("powi:{n}");
            mpmath64(&func, SOp::PowI(n), any).row(
                &format!("powi({n})"),
                "f64",
                "mpmath references: |x|^n log-uniform over the range, near overflow and underflow",
                2.0,
            )
        }));
    }

    // ------------------------------------------------ f64 against std, wider
    fn exp_in(r: &mut StdRng) -> f64 {
        if r.random::<bool>() {
            r.random_range(-745.2..709.8)
        } else {
            signed(loguni64(r, -60.0, 9.5), r)
        }
    }
    fn bits_pos(r: &mut StdRng) -> f64 {
        f64::from_bits(r.random_range(1..0x7fefffffffffffffu64))
    }
    fn trig_in(r: &mut StdRng) -> f64 {
        signed(loguni64(r, -30.0, 48.0), r)
    }
    fn unit_in(r: &mut StdRng) -> f64 {
        if r.random::<bool>() {
            r.random_range(-1.0..=1.0)
        } else {
            signed(1.0 - loguni64(r, -53.0, -1.0), r)
        }
    }
    fn atan_in(r: &mut StdRng) -> f64 {
        signed(loguni64(r, -60.0, 70.0), r)
    }
    let std_note = "200k random, against std (glibc libm, itself within 1 ulp: bound 3)";
    for (name, op, f, input) in [
        (
            "exp",
            SOp::Exp,
            f64::exp as fn(f64) -> f64,
            exp_in as fn(&mut StdRng) -> f64,
        ),
        ("log", SOp::Log, f64::ln, bits_pos),
        ("sin", SOp::Sin, f64::sin, trig_in),
        ("cos", SOp::Cos, f64::cos, trig_in),
        ("asin", SOp::Asin, f64::asin, unit_in),
        ("acos", SOp::Acos, f64::acos, unit_in),
        ("atan", SOp::Atan, f64::atan, atan_in),
        ("rsqrt", SOp::Rsqrt, |x| 1.0 / x.sqrt(), bits_pos),
    ] {
        v.push(Box::new(move || {
            std64(op, f, 200_000, input).row(name, "f64", std_note, 3.0)
        }));
    }
    v.push(Box::new(move || {
        std64_2(SOp::Powf, f64::powf, 200_000, powf_pair64).row("powf", "f64", std_note, 3.0)
    }));
    v.push(Box::new(move || {
        std64_2(SOp::Atan2, |y, x| y.atan2(x), 200_000, atan2_pair64)
            .row("atan2", "f64", std_note, 3.0)
    }));
    v.push(Box::new(move || {
        let g = |r: &mut StdRng| -> f64 {
            match r.random_range(0..3) {
                0 => f64::from_bits(r.random()),
                1 => r.random_range(-1e6..1e6),
                _ => (r.random_range(-1e6..1e6f64)).round() + 0.5,
            }
        };
        std64(SOp::Round, f64::round, 200_000, g).row(
            "round",
            "f64",
            "200k random: uniform bits, uniform in ±1e6, halves",
            0.0,
        )
    }));
    v.push(Box::new(move || {
        std64(
            SOp::Recip,
            |x| 1.0 / x,
            200_000,
            |r| f64::from_bits(r.random()),
        )
        .row("recip", "f64", "200k random bit patterns", 0.0)
    }));
    v
}

/// Runs every case (on all cores), prints the markdown table and checks the bounds.
#[test]
fn accuracy_table() {
    let cases = cases();
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<(usize, Row)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(k) else { break };
                    let t = std::time::Instant::now();
                    let row = case();
                    eprintln!(
                        "{} {}: {:.1} s",
                        row.func,
                        row.prec,
                        t.elapsed().as_secs_f64()
                    );
                    rows.lock().unwrap().push((k, row));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|(k, _)| *k);
    println!("| function | precision | max error (ulp) | bound | inputs | points | worst input |");
    println!("|---|---|---|---|---|---|---|");
    for (_, r) in &rows {
        let (max, bound) = if r.bound.is_finite() {
            (format!("{:.3}", r.max), format!("{}", r.bound))
        } else {
            ("not bounded".to_string(), "-".to_string())
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.func, r.prec, max, bound, r.inputs, r.points, r.worst
        );
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|(_, r)| r.max > r.bound)
        .map(|(_, r)| format!("{} {}: {} ulp at {}", r.func, r.prec, r.max, r.worst))
        .collect();
    assert!(bad.is_empty(), "over the bound:\n{}", bad.join("\n"));
}
