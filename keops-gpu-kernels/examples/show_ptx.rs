//! Prints the PTX module of every reduction of a formula (and of its gradients).
//!
//! `cargo run -p keops-gpu-kernels --example show_ptx -- [--f64] [--fast-math] [--f64-acc] [--grad N] "x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))"`

use keops_gpu_kernels::module::compile_program;
use keops_gpu_kernels::scheme::KernelOptions;
use keops_ir::Program;
use keops_ir::lower::Precision;

fn main() {
    let mut precision = Precision::F32;
    let mut grad = None;
    let mut fast_math = false;
    let mut f64_accumulation = false;
    let mut text = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--f64" => precision = Precision::F64,
            "--fast-math" => fast_math = true,
            "--f64-acc" => f64_accumulation = true,
            "--grad" => grad = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => text = Some(a),
        }
    }
    let Some(text) = text else {
        eprintln!("usage: show_ptx [--f64] [--fast-math] [--f64-acc] [--grad N] FORMULA");
        std::process::exit(2);
    };
    let run = || -> Result<(), String> {
        let mut p = Program::parse(&text).map_err(|e| e.to_string())?;
        if let Some(pos) = grad {
            p = p.grad(pos, "cot").map_err(|e| e.to_string())?;
        }
        let widths: Vec<usize> = p
            .args
            .iter()
            .map(|a| a.dim.as_known().unwrap_or(1))
            .collect();
        let p = p.instantiate(&widths).map_err(|e| e.to_string())?;
        for (s, r) in compile_program(
            &p,
            precision,
            &KernelOptions {
                fast_math,
                f64_accumulation,
            },
        )
        .map_err(|e| e.to_string())?
        .into_iter()
        .enumerate()
        {
            if let Some(r) = r {
                println!("// ===== step {s}: {} chunk(s)\n{}", r.chunks.len(), r.ptx);
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
