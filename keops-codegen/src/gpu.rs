//! The GPU kernels of a step as the `keops!` macro embeds them: the PTX modules that
//! `keops-gpu-kernels` generates, written as Rust constants of the runtime's types.

use keops_gpu_kernels::gather::{GpuGather, compile_gather, gather_variants};
use keops_gpu_kernels::module::{
    GpuInput, GpuReduction, InputSource, compile_reduction, kernel_prefix, variants,
};
use keops_ir::graph::Cat;
use keops_ir::lower::Precision;
use keops_ir::program::{Gather, Reduce};
use keops_ir::{Error, Program};
use std::fmt::Write;

/// Where a kernel's GPU code comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GpuKernels {
    /// The PTX is generated at expansion time and embedded in the binary.
    Embedded,
    /// The PTX is generated at the first GPU call (the `embed-ptx` feature off).
    AtFirstUse,
}

fn cat_path(c: Cat) -> &'static str {
    match c {
        Cat::I => "I",
        Cat::J => "J",
        Cat::P => "P",
        Cat::Temp => "Temp",
    }
}

fn precision_path(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "F32",
        Precision::F64 => "F64",
    }
}

/// A Rust constant expression of an input: `ir` is the path of `keops_ir` and `gpu` that
/// of the runtime's `gpu` module in the expansion.
fn input_const(i: &GpuInput, ir: &str, gpu: &str) -> String {
    let src = match i.source {
        InputSource::Arg(a) => format!("Arg({a})"),
        InputSource::Buffer(b) => format!("Buffer({b})"),
    };
    format!(
        "{gpu}::GpuInput {{ source: {gpu}::InputSource::{src}, cat: {ir}::Cat::{}, dim: {} }}",
        cat_path(i.cat),
        i.dim
    )
}

/// A Rust constant expression of a compiled reduction (see [`input_const`]).
fn reduction_const(g: &GpuReduction, ir: &str, gpu: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{gpu}::GpuReduction {{ ptx: ::std::borrow::Cow::Borrowed({:?}), precision: {ir}::lower::Precision::{}, fast_math: {}, out_rows: {ir}::Cat::{}, out_values: {}, out_indices: {}, inputs: ::std::borrow::Cow::Borrowed(&[",
        g.ptx,
        precision_path(g.precision),
        g.fast_math,
        cat_path(g.out_rows),
        g.out_values,
        g.out_indices
    );
    for i in g.inputs.iter() {
        s.push_str(&input_const(i, ir, gpu));
        s.push_str(", ");
    }
    s.push_str("]), chunks: ::std::borrow::Cow::Borrowed(&[");
    for c in g.chunks.iter() {
        let _ = write!(
            s,
            "{gpu}::ChunkMeta {{ reduce: ::std::borrow::Cow::Borrowed({:?}), merge: ::std::borrow::Cow::Borrowed({:?}), shared_per_row: {}, acc_floats: {}, acc_indices: {} }}, ",
            c.reduce, c.merge, c.shared_per_row, c.acc_floats, c.acc_indices
        );
    }
    s.push_str("]) }");
    s
}

/// A Rust constant expression of a compiled gather (see [`input_const`]).
fn gather_const(g: &GpuGather, ir: &str, gpu: &str) -> String {
    let mut s = format!(
        "{gpu}::GpuGather {{ ptx: ::std::borrow::Cow::Borrowed({:?}), entry: ::std::borrow::Cow::Borrowed({:?}), precision: {ir}::lower::Precision::{}, fast_math: {}, owner: {ir}::Cat::{}, to_owner: {}, slots: {}, slot_dim: {}, out_dim: {}, inputs: ::std::borrow::Cow::Borrowed(&[",
        g.ptx,
        g.entry,
        precision_path(g.precision),
        g.fast_math,
        cat_path(g.owner),
        g.to_owner,
        g.slots,
        g.slot_dim,
        g.out_dim
    );
    for i in g.inputs.iter() {
        s.push_str(&input_const(i, ir, gpu));
        s.push_str(", ");
    }
    s.push_str("]) }");
    s
}

/// The kernels of reduction `r` (step `step` of an instantiated program) for each of
/// the variants `keops-gpu-kernels` lists, as a Rust expression of type
/// `Option<&'static [{rt}::gpu::GpuReduction]>` (`None` when left to the first use).
pub fn reduction_kernels(
    p: &Program,
    r: &Reduce,
    step: usize,
    rt: &str,
    mode: GpuKernels,
) -> Result<String, Error> {
    if mode == GpuKernels::AtFirstUse {
        return Ok("None".to_string());
    }
    let prefix = kernel_prefix(step);
    let (ir, gpu) = (format!("{rt}::ir"), format!("{rt}::gpu"));
    let parts = variants(r.kind)
        .into_iter()
        .map(|(precision, opts)| {
            compile_reduction(p, r, precision, &opts, &prefix)
                .map(|g| reduction_const(&g, &ir, &gpu))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(format!("Some(&[{}])", parts.join(", ")))
}

/// The kernels of gather `g` (step `step` of an instantiated program) in each of
/// the variants `keops-gpu-kernels` lists, as a Rust expression of type
/// `Option<&'static [{rt}::gpu::GpuGather]>` (`None` when left to the first use).
pub fn gather_kernels(
    p: &Program,
    g: &Gather,
    step: usize,
    rt: &str,
    mode: GpuKernels,
) -> Result<String, Error> {
    if mode == GpuKernels::AtFirstUse {
        return Ok("None".to_string());
    }
    let (ir, gpu) = (format!("{rt}::ir"), format!("{rt}::gpu"));
    let mut s = String::from("Some(&[");
    for (precision, opts) in gather_variants() {
        let (_, m) = compile_gather(p, g, precision, &opts, step)?;
        let _ = write!(s, "{}, ", gather_const(&m, &ir, &gpu));
    }
    s.push_str("])");
    Ok(s)
}
