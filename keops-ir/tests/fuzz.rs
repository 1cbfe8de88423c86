//! The stable fuzz test (issue 14): generated and mutated formula texts through every stage
//! of the compiler, asserting that nothing panics and that, where a formula is valid, the
//! paths that compute it agree.
//!
//! Inputs, from one seeded generator:
//! - token soups: random sequences of operation names, names, numbers (extreme ones
//!   included) and punctuation;
//! - grammar formulas: every operation of the table and every reduction, with random
//!   arguments, parameters and widths, in both syntaxes, with inline `Var`s;
//! - mutations of grammar formulas (cut, doubled, replaced or extreme tokens);
//! - deep formulas: long nesting and long chains.
//!
//! Each input goes through parse; for a valid program: its text form parses back
//! ([`Program::canonical`]), gradients with respect to its arguments, instantiation at random
//! widths, the reference evaluator in f64 and f32 at small sizes, the canonical program (must
//! agree with the original) and the lowered kernels run by the scalar interpreter, with
//! and without the math expansion (must agree with the evaluator).
//!
//! Runs for `KEOPS_FUZZ_SECONDS` seconds (default 3) or `KEOPS_FUZZ_INPUTS` inputs, from
//! `KEOPS_FUZZ_SEED` (default: fixed, so a failure reproduces; the seed is printed), on
//! `KEOPS_FUZZ_THREADS` threads (default 1; worker `w` draws from seed + `w`).
//! `docs/reliability.md` records a long run.

use keops_ir::Program;
use keops_ir::eval::{Array, BackendStep, EvalOptions, Output};
use keops_ir::lower::{LoweredKernel, Precision, SumMode, Val, expand_math, lower_reduction};
use keops_ir::reduction::ReductionId;
use keops_ir::{Cat, Op, Real, Step};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// Numbers that stress every size and value computation.
const EXTREME_INTS: &[&str] = &["0", "-1", "7"];

const FLOATS: &[&str] = &[
    "0.5", "1.5", "-2.25", "3.0", "1e-300", "1e300", "0.0", "2.0", "-0.125",
];

/// Concise variables: name and row category.
const CONCISE: &[&str] = &["x_i", "y_j", "z_i", "w_j", "s_i", "t_j"];

/// Alias names (declared in the header with their positions).
const ALIASES: &[&str] = &["a", "b", "c", "g"];

struct Gen {
    rng: StdRng,
    /// Whether the formula being generated uses aliases (else concise names).
    alias: bool,
}

impl Gen {
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// An integer parameter: mostly small, sometimes extreme.
    fn int(&mut self) -> String {
        if self.chance(0.05) {
            self.pick(EXTREME_INTS).to_string()
        } else {
            self.rng.random_range(-1i64..5).to_string()
        }
    }

    /// A width: mostly 1 to 4, sometimes extreme.
    fn width(&mut self) -> String {
        if self.chance(0.03) {
            self.pick(EXTREME_INTS).to_string()
        } else {
            self.rng.random_range(1usize..5).to_string()
        }
    }

    fn leaf(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0 => self.pick(FLOATS).to_string(),
            1 => {
                let pos = if self.chance(0.05) {
                    self.pick(EXTREME_INTS).to_string()
                } else {
                    self.rng.random_range(0..6usize).to_string()
                };
                let (w, c) = (self.width(), self.rng.random_range(0..3));
                format!("Var({pos}, {w}, {c})")
            }
            2 => format!("Zero({})", self.width()),
            3 => format!("IntCst({})", self.int()),
            _ if self.alias => self.pick(ALIASES).to_string(),
            _ => self.pick(CONCISE).to_string(),
        }
    }

    /// A formula of at most `depth` levels: any operation of the table, or an operator.
    fn formula(&mut self, depth: u32) -> String {
        if depth == 0 || self.chance(0.25) {
            return self.leaf();
        }
        match self.rng.random_range(0..8) {
            0 => {
                let op = self.pick(&["+", "-", "*", "/"]);
                format!(
                    "({} {op} {})",
                    self.formula(depth - 1),
                    self.formula(depth - 1)
                )
            }
            1 => format!("-{}", self.formula(depth - 1)),
            2 => format!(
                "({} | {})",
                self.formula(depth - 1),
                self.formula(depth - 1)
            ),
            _ => {
                let op = Op::ALL[self.rng.random_range(0..Op::ALL.len())];
                let spec = op.spec();
                let mut parts: Vec<String> =
                    (0..spec.arity).map(|_| self.formula(depth - 1)).collect();
                for kind in spec.params {
                    use keops_ir::ops::ParamKind;
                    match kind {
                        ParamKind::Int => parts.push(self.int()),
                        ParamKind::List | ParamKind::OptList => {
                            if *kind == ParamKind::OptList && self.chance(0.5) {
                                continue;
                            }
                            let n = self.rng.random_range(1..4);
                            let l: Vec<String> = (0..n).map(|_| self.int()).collect();
                            parts.push(format!("({})", l.join(", ")));
                        }
                    }
                }
                // Sometimes a wrong number of arguments.
                if self.chance(0.02) {
                    if self.chance(0.5) {
                        parts.pop();
                    } else {
                        parts.push(self.leaf());
                    }
                }
                format!("{}({})", op.name(), parts.join(", "))
            }
        }
    }

    /// A whole program: header, then a reduction of a formula.
    fn program(&mut self) -> String {
        self.alias = self.chance(0.4);
        let mut text = String::new();
        if self.alias {
            for (k, name) in ALIASES.iter().enumerate() {
                let cat = self.pick(&["Vi", "Vj", "Vj", "Pm"]);
                if self.chance(0.2) {
                    // Position by declaration order.
                    text.push_str(&format!("{name} = {cat}({}); ", self.width()));
                } else {
                    text.push_str(&format!("{name} = {cat}({k}, {}); ", self.width()));
                }
            }
        } else {
            for v in CONCISE {
                if self.chance(0.3) {
                    text.push_str(&format!("{v}: {}; ", self.width()));
                } else if self.chance(0.1) {
                    text.push_str(&format!("{v}; "));
                }
            }
        }
        let depth = self.rng.random_range(1..5);
        let f = self.formula(depth);
        let red = ReductionId::ALL[self.rng.random_range(0..ReductionId::ALL.len())];
        let name = red.spec().name;
        let mut extra = Vec::new();
        if red.spec().takes_k && !self.chance(0.02) {
            extra.push(if self.chance(0.1) {
                self.pick(EXTREME_INTS).to_string()
            } else {
                self.rng.random_range(1..5usize).to_string()
            });
        }
        let weight = match red.spec().weight {
            keops_ir::reduction::Weight::None => self.chance(0.01),
            keops_ir::reduction::Weight::Optional => self.chance(0.5),
            keops_ir::reduction::Weight::Required => !self.chance(0.02),
        };
        let g = weight.then(|| self.formula(2));
        if self.alias || self.chance(0.2) {
            let axis = if self.chance(0.02) {
                self.int()
            } else {
                self.rng.random_range(0..2).to_string()
            };
            extra.push(axis);
        }
        let suffix = if self.alias || extra.len() > usize::from(red.spec().takes_k) {
            "_Reduction".to_string()
        } else {
            self.pick(&["_j", "_i"]).to_string()
        };
        extra.extend(g);
        let mut call = format!("{name}{suffix}({f}");
        for e in extra {
            call.push_str(", ");
            call.push_str(&e);
        }
        call.push(')');
        text.push_str(&call);
        text
    }

    /// A random sequence of tokens.
    fn soup(&mut self) -> String {
        let n = self.rng.random_range(1..40);
        let mut s = String::new();
        for _ in 0..n {
            let t = match self.rng.random_range(0..8) {
                0 => Op::ALL[self.rng.random_range(0..Op::ALL.len())]
                    .name()
                    .to_string(),
                1 => format!(
                    "{}{}",
                    ReductionId::ALL[self.rng.random_range(0..ReductionId::ALL.len())]
                        .spec()
                        .name,
                    self.pick(&["_Reduction", "_j", "_i"])
                ),
                2 => self.pick(CONCISE).to_string(),
                3 => self.pick(EXTREME_INTS).to_string(),
                4 => self.pick(FLOATS).to_string(),
                5 => self
                    .pick(&["Vi", "Vj", "Pm", "Var", "Zero", "Grad", "a", "b"])
                    .to_string(),
                _ => self
                    .pick(&[
                        "(", ")", ",", ";", "=", ":", "+", "-", "*", "/", "|", "[", "]", "**", ".",
                    ])
                    .to_string(),
            };
            s.push_str(&t);
            s.push(' ');
        }
        s
    }

    /// A grammar program with a few random edits.
    fn mutation(&mut self) -> String {
        let mut s: Vec<char> = self.program().chars().collect();
        for _ in 0..self.rng.random_range(1..4) {
            if s.is_empty() {
                break;
            }
            let a = self.rng.random_range(0..s.len());
            let b = (a + self.rng.random_range(1..8)).min(s.len());
            match self.rng.random_range(0..4) {
                0 => {
                    s.drain(a..b);
                }
                1 => {
                    let piece: Vec<char> = s[a..b].to_vec();
                    s.splice(a..a, piece);
                }
                2 => {
                    let t: Vec<char> = self.pick(EXTREME_INTS).chars().collect();
                    s.splice(a..b, t);
                }
                _ => {
                    let t: Vec<char> = self.soup().chars().take(12).collect();
                    s.splice(a..a, t);
                }
            }
        }
        s.into_iter().collect()
    }

    /// A deep formula: nesting or a chain of `n` levels.
    fn deep(&mut self) -> String {
        let n = if self.chance(0.1) {
            self.rng.random_range(10_000..100_001)
        } else {
            self.rng.random_range(100..3_000)
        };
        match self.rng.random_range(0..4) {
            0 => format!("Sum_j({}x_i + y_j{})", "(".repeat(n), ")".repeat(n)),
            1 => format!("Sum_j({}x_i * y_j{})", "Abs(".repeat(n), ")".repeat(n)),
            2 => format!("Sum_j(x_i{})", " + y_j".repeat(n)),
            _ => format!("Max_j({}-x_i + y_j)", "-".repeat(n)),
        }
    }
}

/// What the test saw, for the summary.
#[derive(Default, Debug)]
struct Tally {
    inputs: u64,
    parsed: u64,
    evaluated: u64,
    lowered: u64,
    gradients: u64,
    /// Results compared with another path's (and equal).
    compared: u64,
    deep: u64,
    /// Texts whose canonical program refused widths the original accepted.
    refusals: Vec<String>,
    panics: Vec<(String, String)>,
    failures: Vec<(String, String)>,
}

impl Tally {
    /// Adds what `other` saw (an input's, or a worker's).
    fn add(&mut self, other: Tally) {
        self.inputs += other.inputs;
        self.parsed += other.parsed;
        self.evaluated += other.evaluated;
        self.lowered += other.lowered;
        self.gradients += other.gradients;
        self.compared += other.compared;
        self.deep += other.deep;
        self.refusals.extend(other.refusals);
        self.panics.extend(other.panics);
        self.failures.extend(other.failures);
    }
}

/// Values of every argument: rows per category, width per argument.
fn arguments(
    p: &Program,
    m: usize,
    n: usize,
    rng: &mut StdRng,
) -> Option<Vec<(Vec<f64>, usize, usize)>> {
    let mut sym_width: HashMap<keops_ir::SymId, usize> = HashMap::new();
    let mut out = Vec::new();
    for a in &p.args {
        for s in a.dim.syms() {
            let w = rng.random_range(1..4);
            sym_width.entry(s).or_insert(w);
        }
        let w = a
            .dim
            .subst(&|s| sym_width.get(&s).map(|w| keops_ir::Dim::known(*w)))
            .as_known()?;
        if w > 64 {
            return None;
        }
        let rows = match a.rows() {
            Cat::I => m,
            Cat::J => n,
            _ => 1,
        };
        let data = (0..rows * w).map(|_| rng.random_range(-2.0..2.0)).collect();
        out.push((data, rows, w));
    }
    Some(out)
}

fn as_arrays<R: Real>(args: &[(Vec<R>, usize, usize)]) -> Vec<Array<'_, R>> {
    args.iter().map(|(d, r, w)| Array::new(d, *r, *w)).collect()
}

/// A reduction step computed by a lowered kernel run by the scalar interpreter.
fn lowered_step<R: Real>(
    s: BackendStep<'_, '_, R>,
    expand: bool,
) -> keops_ir::error::Result<Option<Output<R>>> {
    let Step::Reduce(r) = s.step else {
        return Ok(None);
    };
    let k = lower_reduction(s.program, r, SumMode::Plain)?;
    let k: LoweredKernel = if expand {
        expand_math(
            &k,
            if R::NAME == "f32" {
                Precision::F32
            } else {
                Precision::F64
            },
        )
    } else {
        k
    };
    let (rows, others) = match r.out_rows {
        Cat::I => (s.m, s.n),
        _ => (s.n, s.m),
    };
    let mut inputs = Vec::new();
    for input in &k.inputs {
        inputs.push((s.data(input.source)?, input.cat, input.dim));
    }
    let mut values = Vec::new();
    let mut indices = Vec::new();
    let takes_weight = r.kind.id().spec().weight != keops_ir::reduction::Weight::None;
    for o in 0..rows {
        let mut acc = k.hooks.init.run::<R>(&[]);
        for t in 0..others {
            let mut params = Vec::new();
            for ((data, _), cat, dim) in &inputs {
                let row = if *cat == r.out_rows {
                    o
                } else if *cat == Cat::P {
                    0
                } else {
                    t
                };
                params.extend(data[row * dim..(row + 1) * dim].iter().map(|x| Val::F(*x)));
            }
            let vals = k.formula.run(&params);
            let mut a = acc.clone();
            a.extend(vals[..k.fdim].iter().copied());
            if takes_weight && r.weight.is_some() {
                a.extend(vals[k.fdim..k.fdim + k.gdim].iter().copied());
            }
            while a.len() + 1 < k.hooks.accumulate.params.len() {
                a.push(Val::F(R::one()));
            }
            a.push(Val::I(t as u64));
            acc = k.hooks.accumulate.run(&a);
        }
        let out = k.hooks.finalize.run(&acc);
        let (v, i) = out.split_at(k.hooks.out_values);
        values.extend(v.iter().map(|x| x.f()));
        indices.extend(i.iter().map(|x| x.i()));
    }
    Ok(Some(Output {
        rows,
        vdim: k.hooks.out_values,
        values,
        idim: k.hooks.out_indices,
        indices,
    }))
}

/// Equal up to rounding: both NaN, equal (infinities), or close.
fn agree(a: &Output<f64>, b: &Output<f64>, rel: f64) -> Result<(), String> {
    if a.rows != b.rows || a.vdim != b.vdim || a.idim != b.idim {
        return Err(format!(
            "shapes differ: {}x{}+{} vs {}x{}+{}",
            a.rows, a.vdim, a.idim, b.rows, b.vdim, b.idim
        ));
    }
    // Selections may break ties differently only if values differ by rounding: compare
    // values, and indices where the values are unambiguous.
    for (k, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
        let ok = (x.is_nan() && y.is_nan())
            || x == y
            || (x - y).abs() <= rel * x.abs().max(y.abs()).max(1.0);
        if !ok {
            return Err(format!("value {k}: {x} vs {y}"));
        }
    }
    Ok(())
}

/// Whether two correct evaluations of a formula agree to rounding: not when it uses an
/// operation whose value jumps (rounding, signs, steps, modulo, comparisons, masks,
/// indices, splines) or, for its gradients, one whose derivative jumps (`Abs`, `ReLU`,
/// `Clamp`, `Max`, `Min`, ...), nor with constants at the edge of the floats: there one
/// rounding more or less may flip a result, and only the absence of panics is checked.
/// Reduction names do not matter (a selection picks one of the terms).
fn smooth(formula: &str, gradient: bool) -> bool {
    const JUMPS: &[&str] = &[
        "Mod(",
        "Sign(",
        "Step(",
        "Floor(",
        "Round(",
        "DiffClampInt(",
        "IfElse(",
        "LessThan(",
        "LessOrEqual(",
        "Equal(",
        "NotEqual(",
        "ArgMax(",
        "ArgMin(",
        "MaxMask(",
        "MinMask(",
        "OneHot(",
        "BSpline(",
        "<",
        ">",
        "==",
        "!=",
        "1e300",
        "1e-300",
        "1e999",
        "1e3000",
    ];
    const KINKS: &[&str] = &[
        "Abs(",
        "ReLU(",
        "Clamp(",
        "ClampInt(",
        "Max(",
        "Min(",
        "Sqrt(",
        "Rsqrt(",
        "Norm2(",
        "Normalize(",
        "ComplexAbs(",
        "ComplexAngle(",
        "Atan2(",
        "Pow(",
        "Powf(",
        "Log(",
        "XLogX(",
        "Inv(",
        "/",
        "Asin(",
        "Acos(",
    ];
    let body = reduced_formula(formula);
    let jumps = JUMPS.iter().any(|j| body.contains(j));
    let kinks = gradient && KINKS.iter().any(|k| body.contains(k));
    !(jumps || kinks)
}

/// The text after the declarations (the part a reduction's name does not belong to is
/// found by the reduction's opening parenthesis).
fn reduced_formula(text: &str) -> &str {
    let last = text.rsplit(';').next().unwrap_or(text);
    last.find('(').map_or(last, |k| &last[k..])
}

fn run_one(text: &str, rng: &mut StdRng, t: &mut Tally) -> Result<(), String> {
    let Ok(p) = Program::parse(text) else {
        return Ok(());
    };
    t.parsed += 1;
    let canonical = p.canonical().map_err(|e| format!("canonical: {e}"))?;
    Program::parse(&p.to_string()).map_err(|e| format!("text form `{p}` does not parse: {e}"))?;
    let mut programs = vec![(p.clone(), "forward".to_string())];
    for pos in 0..p.args.len().min(3) {
        if let Ok(g) = p.grad(pos, "e_fuzz") {
            t.gradients += 1;
            programs.push((g, format!("gradient wrt {pos}")));
        }
    }
    let (m, n) = (rng.random_range(0..4), rng.random_range(0..4));
    let opts = EvalOptions {
        m: Some(m),
        n: Some(n),
        ..EvalOptions::default()
    };
    for (q, what) in &programs {
        let Some(args) = arguments(q, m, n, rng) else {
            continue;
        };
        let arrays = as_arrays(&args);
        let Ok(reference) = q.evaluate(&arrays, &opts) else {
            continue;
        };
        t.evaluated += 1;
        let args32: Vec<(Vec<f32>, usize, usize)> = args
            .iter()
            .map(|(d, r, w)| (d.iter().map(|x| *x as f32).collect(), *r, *w))
            .collect();
        let _ = q.evaluate(&as_arrays(&args32), &opts);
        let compare = smooth(text, *what != "forward");
        if *what == "forward" {
            match canonical.evaluate(&arrays, &opts) {
                Ok(c) => {
                    if compare {
                        agree(&reference, &c, 1e-9)
                            .map_err(|e| format!("canonical vs original: {e}"))?;
                        t.compared += 1;
                    }
                }
                // The known limit of the text form (docs/reliability.md): where an
                // operation simplified away had fixed a width that a broadcast then
                // used, the text asks two generic widths to be equal. A refusal, named.
                Err(e)
                    if e.kind == keops_ir::ErrorKind::Input
                        && e.message.contains("violate a condition") =>
                {
                    t.refusals.push(text.to_string());
                }
                Err(e) => return Err(format!("the canonical program fails: {e}")),
            }
        }
        for expand in [false, true] {
            match q.evaluate_with(&arrays, &opts, &mut |s| lowered_step(s, expand)) {
                Ok(l) => {
                    t.lowered += 1;
                    if compare {
                        agree(&reference, &l, 1e-6).map_err(|e| {
                            format!("{what}: lowered (expand {expand}) vs reference: {e}")
                        })?;
                        t.compared += 1;
                    }
                }
                // A documented limit of the compiled paths (the size of the lowered
                // code): a typed refusal, not a failure.
                Err(e) if e.kind == keops_ir::ErrorKind::Limit => {}
                Err(e) => return Err(format!("{what}: lowered (expand {expand}) fails: {e}")),
            }
            let _ = q.evaluate_with(&as_arrays(&args32), &opts, &mut |s| lowered_step(s, expand));
        }
    }
    Ok(())
}

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Tries inputs of one stream until `quota` inputs or the deadline.
fn fuzz_worker(seed: u64, quota: u64, deadline: Instant) -> Tally {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
        alias: false,
    };
    let mut eval_rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut t = Tally::default();
    while t.inputs < quota && (t.inputs % 64 != 0 || Instant::now() < deadline) {
        let text = match g.rng.random_range(0..1000) {
            0..200 => g.soup(),
            200..600 => g.program(),
            600..999 => g.mutation(),
            _ => {
                t.deep += 1;
                g.deep()
            }
        };
        t.inputs += 1;
        let mut local = Tally::default();
        match catch_unwind(AssertUnwindSafe(|| {
            run_one(&text, &mut eval_rng, &mut local)
        })) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => t.failures.push((text, e)),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                t.panics.push((text, msg));
            }
        }
        t.add(local);
    }
    t
}

#[test]
fn generated_inputs_never_panic_and_valid_formulas_agree() {
    let seconds: f64 = env("KEOPS_FUZZ_SECONDS").unwrap_or(3.0);
    let max_inputs: u64 = env("KEOPS_FUZZ_INPUTS").unwrap_or(u64::MAX);
    let seed: u64 = env("KEOPS_FUZZ_SEED").unwrap_or(0x6b65_6f70_735f_7273);
    let threads: u64 = env("KEOPS_FUZZ_THREADS").unwrap_or(1).max(1);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    // The panic hook is the process's: silenced while the workers run, restored after.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // Each worker on a spawned thread's default stack (2 MiB), as a service's worker
    // would have, with its own stream of inputs (seed + worker number).
    let workers: Vec<_> = (0..threads)
        .map(|w| {
            let (seed, quota) = (seed.wrapping_add(w), max_inputs.div_ceil(threads));
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || fuzz_worker(seed, quota, deadline))
                .expect("spawn a fuzz thread")
        })
        .collect();
    let mut tally = Tally::default();
    for w in workers {
        tally.add(w.join().expect("a fuzz thread itself does not panic"));
    }
    drop(std::panic::take_hook());
    std::panic::set_hook(hook);
    println!(
        "fuzz seed {seed:#x}: {} inputs ({} deep), {} parsed, {} evaluations, {} lowered runs, {} gradients, {} results compared, {} widths refused by the text form, {} panics, {} failures",
        tally.inputs,
        tally.deep,
        tally.parsed,
        tally.evaluated,
        tally.lowered,
        tally.gradients,
        tally.compared,
        tally.refusals.len(),
        tally.panics.len(),
        tally.failures.len()
    );
    for r in tally.refusals.iter().take(3) {
        println!("  refused by the text form: `{r}`");
    }
    let show = |v: &[(String, String)]| {
        v.iter()
            .take(12)
            .map(|(text, e)| {
                let short: String = text.chars().take(300).collect();
                format!("  `{short}`\n    -> {e}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        tally.panics.is_empty() && tally.failures.is_empty(),
        "{} panics:\n{}\n{} failures:\n{}",
        tally.panics.len(),
        show(&tally.panics),
        tally.failures.len(),
        show(&tally.failures)
    );
}
