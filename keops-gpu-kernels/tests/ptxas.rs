//! Every PTX module the test suite generates, assembled by NVIDIA's `ptxas` for sm_70,
//! sm_80 and sm_90: every operation (forward and gradient kernels, f32 and f64), every
//! reduction (also with `fast_math`), the examples' kernels and the wide (chunked) formulas. Fails on any ptxas
//! error, and on register spills for formulas of dimension at most 100; prints registers
//! and spill bytes per kernel group (the whole table goes to `ptxas-report.txt` in
//! Cargo's test temporary folder).
//!
//! ptxas comes from the PyPI wheel `nvidia-cuda-nvcc-cu12` (it runs without a GPU):
//! `scripts/install-ptxas.sh` installs it and prints its path. The test looks for
//! `$KEOPS_PTXAS`, then `ptxas` on the `PATH`, then `.venv-ptxas` at the workspace root;
//! without one it is skipped with a message, unless `KEOPS_REQUIRE_PTXAS=1` (set by CI),
//! which turns the absence into a failure. `KEOPS_PTXAS_ONLY=wide,examples` restricts
//! the run to the groups whose names start so.

#[path = "../../keops-ir/tests/common/mod.rs"]
mod common;
#[path = "../../keops-ir/tests/op_cases/mod.rs"]
mod op_cases;

use common::ij_program_text;
use keops_gpu_kernels::gather::{gather_kernel, gather_variants};
use keops_gpu_kernels::kir::Kernel;
use keops_gpu_kernels::module::{reduction_kernels_of, variants};
use keops_gpu_kernels::ptx;
use keops_ir::lower::Precision;
use keops_ir::{Program, Step};
use op_cases::{GradKind, grad_cases, value_cases};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const ARCHS: [&str; 3] = ["sm_70", "sm_80", "sm_90"];

fn find_ptxas() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEOPS_PTXAS") {
        return Some(PathBuf::from(p));
    }
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(Path::new("ptxas")) {
        return Some(PathBuf::from("ptxas"));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join(".venv-ptxas/bin/ptxas");
    works(&venv).then_some(venv)
}

/// A group of kernels assembled as one module per precision.
struct Group {
    name: &'static str,
    /// Whether spills fail the test (formulas of dimension at most 100).
    no_spills: bool,
    /// Whether the f32 kernels are also generated with `fast_math`.
    fast: bool,
    kernels: BTreeMap<&'static str, Vec<Kernel>>,
    /// Kernel name prefix -> the program it comes from.
    legend: Vec<(String, String)>,
    /// Programs already added (the value cases repeat formulas at other points).
    seen: std::collections::HashSet<String>,
}

impl Group {
    fn new(name: &'static str, no_spills: bool) -> Group {
        Group {
            name,
            no_spills,
            fast: false,
            kernels: BTreeMap::new(),
            legend: Vec::new(),
            seen: Default::default(),
        }
    }

    /// Adds the kernels of every reduction of `text` (all widths declared) and of its
    /// gradients with respect to every argument, when `grads`.
    fn add(&mut self, text: &str, grads: bool) -> Result<(), String> {
        if !self.seen.insert(format!("{text} {grads}")) {
            return Ok(());
        }
        let p = Program::parse(text).map_err(|e| format!("{text}: {e}"))?;
        let mut programs = vec![(p.clone(), text.to_string())];
        if grads {
            for pos in 0..p.args.len() {
                let g = p
                    .grad(pos, "cot")
                    .map_err(|e| format!("{text}, gradient {pos}: {e}"))?;
                programs.push((g, format!("gradient {pos} of {text}")));
            }
        }
        for (prog, what) in programs {
            let widths: Vec<usize> = prog
                .args
                .iter()
                .map(|a| a.dim.as_known().unwrap_or(1))
                .collect();
            let prog = prog
                .instantiate(&widths)
                .map_err(|e| format!("{text}: {e}"))?;
            for (s, step) in prog.steps.iter().enumerate() {
                if let Step::Gather(g) = step {
                    for (precision, opts) in gather_variants()
                        .into_iter()
                        .filter(|(_, o)| self.fast || !o.fast_math)
                    {
                        let key = match (precision, opts.fast_math) {
                            (Precision::F64, _) => "f64",
                            (_, false) => "f32",
                            (_, true) => "f32-fast",
                        };
                        let list = self.kernels.entry(key).or_default();
                        let name = format!("k{}_s{s}_gather", list.len());
                        self.legend.push((format!("{key} {name}"), what.clone()));
                        let (kernel, _) = gather_kernel(&prog, g, precision, &opts, &name)
                            .map_err(|e| format!("{text}: {e}"))?;
                        list.push(kernel);
                    }
                    continue;
                }
                let Step::Reduce(r) = step else { continue };
                // Every variant the macro embeds (f64 accumulation for sums).
                for (precision, opts) in variants(r.kind)
                    .into_iter()
                    .filter(|(_, o)| self.fast || !o.fast_math)
                {
                    let key = match (precision, opts.fast_math, opts.f64_accumulation) {
                        (Precision::F64, _, _) => "f64",
                        (_, false, false) => "f32",
                        (_, true, false) => "f32-fast",
                        (_, false, true) => "f32-f64acc",
                        (_, true, true) => "f32-fast-f64acc",
                    };
                    let list = self.kernels.entry(key).or_default();
                    let prefix = format!("k{}_s{s}", list.len());
                    self.legend.push((format!("{key} {prefix}"), what.clone()));
                    let rk = reduction_kernels_of(&prog, r, precision, &opts, &prefix)
                        .map_err(|e| format!("{text}: {e}"))?;
                    list.extend(rk.kernels().cloned());
                }
            }
        }
        Ok(())
    }
}

/// What ptxas said about one entry.
#[derive(Default, Clone, Debug)]
struct Stats {
    registers: u64,
    spill_stores: u64,
    spill_loads: u64,
    stack: u64,
}

/// Parses `ptxas -v` output: per entry, registers, stack frame and spills.
fn parse_stats(log: &str) -> BTreeMap<String, Stats> {
    let mut out: BTreeMap<String, Stats> = BTreeMap::new();
    let mut current = String::new();
    let num = |s: &str, before: &str| -> u64 {
        s.split(before)
            .next()
            .and_then(|t| t.split_whitespace().last())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    };
    for line in log.lines() {
        if let Some(rest) = line.split("Function properties for ").nth(1) {
            current = rest.trim().to_string();
        } else if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            current = rest.split('\'').next().unwrap_or("").to_string();
        } else if line.contains("bytes spill stores") {
            let e = out.entry(current.clone()).or_default();
            e.stack = num(line, "bytes stack frame");
            e.spill_stores = num(line, "bytes spill stores");
            e.spill_loads = num(line, "bytes spill loads");
        } else if line.contains("Used ") && line.contains(" registers") {
            let e = out.entry(current.clone()).or_default();
            e.registers = line
                .split("Used ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
        }
    }
    out
}

fn groups() -> Result<Vec<Group>, String> {
    let mut ops = Group::new("operations (values and gradients)", true);
    for c in value_cases() {
        ops.add(&ij_program_text(c.formula, &c.dims()), false)?;
    }
    for c in grad_cases().iter().filter(|c| c.kind == GradKind::Fd) {
        ops.add(&ij_program_text(c.formula, &c.dims()), true)?;
    }
    let mut reductions = Group::new("reductions", true);
    reductions.fast = true;
    for red in [
        "Sum_Reduction({F}, {A})",
        "Min_Reduction({F}, {A})",
        "Max_Reduction({F}, {A})",
        "ArgMin_Reduction({F}, {A})",
        "ArgMax_Reduction({F}, {A})",
        "Min_ArgMin_Reduction({F}, {A})",
        "Max_ArgMax_Reduction({F}, {A})",
        "KMin_Reduction({F}, 10, {A})",
        "ArgKMin_Reduction({F}, 10, {A})",
        "KMin_ArgKMin_Reduction({F}, 10, {A})",
        "LogSumExp_Reduction({F}, {A})",
        "LogSumExp_Reduction({F}, {A}, Exp(x - y))",
        "SumSoftMaxWeight_Reduction({F}, {A}, Concat(y, x * y))",
    ] {
        for axis in ["0", "1"] {
            let text = format!(
                "x = Vi(3); y = Vj(3); {}",
                red.replace("{F}", "-SqDist(x, y)").replace("{A}", axis)
            );
            reductions.add(&text, true)?;
        }
    }
    let mut examples = Group::new("examples and common kernels", true);
    examples.fast = true;
    for text in [
        // examples/gaussian_conv.rs
        "x_i: 3; y_j: 3; b_j: 1; g: 1; Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)",
        // examples/gradient_descent.rs
        "x_i: 2; y_j: 2; b_j: 1; g: 1; Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)",
        // examples/kmeans.rs
        "x_i: 2; c_j: 2; Min_ArgMin_j(SqDist(x_i, c_j))",
        "x_i: 2; l_i: 1; k_j: 1; Sum_i(Equal(l_i, k_j) * Concat(x_i, 1))",
        // examples/knn.rs
        "x_i: 3; y_j: 3; ArgKMin_j(SqDist(x_i, y_j), 10)",
        // D = 100, the largest dimension that must not spill
        "x = Vi(100); y = Vj(100); b = Vj(1); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
        "x = Vi(3); y = Vj(3); b = Vj(100); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
        "x = Vi(100); y = Vj(100); LogSumExp_Reduction(-SqDist(x, y), 0)",
    ] {
        examples.add(text, true)?;
    }
    let mut wide = Group::new("wide formulas (D = 300 to 1000, chunked)", false);
    for (text, grads) in [
        (
            "x = Vi(3); y = Vj(3); b = Vj(300); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
            true,
        ),
        (
            "x = Vi(300); y = Vj(300); Sum_Reduction(Scalprod(x, y), 0)",
            true,
        ),
        ("x = Vi(500); y = Vj(500); Sum_Reduction(x - y, 0)", false),
        // The gradients of D = 1000 formulas are left out of the test for its time: each
        // of their 32 chunks holds the whole 1000-term squared distance (PTX of 20 MB).
        (
            "x = Vi(1000); y = Vj(1000); b = Vj(1); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
            false,
        ),
        (
            "x = Vi(3); y = Vj(3); b = Vj(1000); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
            false,
        ),
    ] {
        wide.add(text, grads)?;
    }
    Ok(vec![ops, reductions, examples, wide])
}

#[test]
fn ptxas_assembles_every_generated_kernel_without_spills() {
    let Some(ptxas) = find_ptxas() else {
        let msg = "ptxas not found: set KEOPS_PTXAS, put ptxas on the PATH, or run scripts/install-ptxas.sh";
        if std::env::var("KEOPS_REQUIRE_PTXAS").is_ok_and(|v| v == "1") {
            panic!("{msg} (KEOPS_REQUIRE_PTXAS=1)");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ptxas");
    std::fs::create_dir_all(&dir).unwrap();
    let groups = groups().unwrap();
    let mut report = String::new();
    let mut failures = Vec::new();
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "| group | precision | arch | kernels | max registers | max spill bytes | max stack |"
    );
    let _ = writeln!(summary, "|---|---|---|---|---|---|---|");
    let only = std::env::var("KEOPS_PTXAS_ONLY").unwrap_or_default();
    for (g, group) in groups.iter().enumerate() {
        if !only.is_empty() && !only.split(',').any(|o| group.name.starts_with(o)) {
            continue;
        }
        for (key, what) in &group.legend {
            let _ = writeln!(report, "{} {key}: {what}", group.name);
        }
        for (prec, kernels) in &group.kernels {
            let module = ptx::module(kernels).unwrap_or_else(|e| panic!("{}: {e}", group.name));
            let file = dir.join(format!("group{g}_{prec}.ptx"));
            std::fs::write(&file, &module).unwrap();
            let runs: Vec<_> = ARCHS
                .iter()
                .map(|arch| {
                    let out = dir.join(format!("group{g}_{prec}_{arch}.cubin"));
                    let child = Command::new(&ptxas)
                        .args(["-v", "-arch", arch, "-o"])
                        .arg(&out)
                        .arg(&file)
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap_or_else(|e| panic!("cannot run {}: {e}", ptxas.display()));
                    (arch, child)
                })
                .collect();
            for (arch, child) in runs {
                let out = child.wait_with_output().unwrap();
                let log = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                if !out.status.success() {
                    let errors: Vec<&str> = log
                        .lines()
                        .filter(|l| !l.contains("ptxas info"))
                        .take(20)
                        .collect();
                    failures.push(format!(
                        "{} {prec} {arch}: ptxas failed on {}:\n{}",
                        group.name,
                        file.display(),
                        errors.join("\n")
                    ));
                    continue;
                }
                let stats = parse_stats(&log);
                if stats.len() != kernels.len() {
                    failures.push(format!(
                        "{} {prec} {arch}: ptxas reported {} kernels of {}",
                        group.name,
                        stats.len(),
                        kernels.len()
                    ));
                }
                let (mut regs, mut spill, mut stack) = (0, 0, 0);
                for (name, s) in &stats {
                    let _ = writeln!(
                        report,
                        "{} {prec} {arch} {name}: {} registers, {} bytes stack, {} + {} bytes spilled",
                        group.name, s.registers, s.stack, s.spill_stores, s.spill_loads
                    );
                    regs = regs.max(s.registers);
                    spill = spill.max(s.spill_stores + s.spill_loads);
                    stack = stack.max(s.stack);
                    if group.no_spills && s.spill_stores + s.spill_loads > 0 {
                        failures.push(format!(
                            "{} {prec} {arch} {name}: {} + {} bytes spilled ({} registers)",
                            group.name, s.spill_stores, s.spill_loads, s.registers
                        ));
                    }
                }
                let _ = writeln!(
                    summary,
                    "| {} | {prec} | {arch} | {} | {regs} | {spill} | {stack} |",
                    group.name,
                    stats.len()
                );
            }
        }
    }
    let report_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ptxas-report.txt");
    std::fs::write(&report_file, format!("{summary}\n{report}")).unwrap();
    println!("{summary}\nper-kernel report: {}", report_file.display());
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
