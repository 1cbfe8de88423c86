//! A reduction's GPU code as the runtime loads it: one PTX module holding every kernel of
//! the reduction (the reduction and merge kernels of each chunk), and what launching them
//! requires (inputs, output widths, accumulator sizes, shared memory per tile row).
//!
//! The data is `Cow<'static, _>` so that the `keops!` macro embeds it as constants
//! (borrowed) while kernels with generic widths, generated at first use, own theirs.

use crate::ptx;
use crate::scheme::{ChunkKernels, KernelOptions, ReductionKernels, reduction_kernels};
use keops_ir::graph::{Cat, VarSource};
use keops_ir::lower::{KernelInput, Precision, SumMode, lower_reduction};
use keops_ir::program::Reduce;
use keops_ir::reduction::ReductionKind;
use keops_ir::{Error, ErrorKind, Program};
use std::borrow::Cow;
use std::fmt::Write;

/// Where a kernel input's data comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum InputSource {
    /// The user's argument at this position.
    Arg(usize),
    /// The output of an earlier step of the program.
    Buffer(usize),
}

/// One pointer parameter of the kernels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GpuInput {
    /// Its data.
    pub source: InputSource,
    /// Its indexing.
    pub cat: Cat,
    /// Its width.
    pub dim: usize,
}

impl GpuInput {
    /// A Rust constant expression of this value (see [`GpuReduction::rust_const`]).
    pub fn rust_const(&self, ir: &str, gpu: &str) -> String {
        let src = match self.source {
            InputSource::Arg(a) => format!("Arg({a})"),
            InputSource::Buffer(b) => format!("Buffer({b})"),
        };
        format!(
            "{gpu}::GpuInput {{ source: {gpu}::InputSource::{src}, cat: {ir}::Cat::{}, dim: {} }}",
            cat_path(self.cat),
            self.dim
        )
    }
}

/// The kernels of one chunk of output columns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    /// Entry name of the reduction kernel (both schemes).
    pub reduce: Cow<'static, str>,
    /// Entry name of the 2D scheme's merge kernel.
    pub merge: Cow<'static, str>,
    /// Bytes of shared memory per staged tile row.
    pub shared_per_row: u64,
    /// Floats of the accumulator (per row of the 2D partials).
    pub acc_floats: usize,
    /// Indices of the accumulator (per row of the 2D partials).
    pub acc_indices: usize,
}

impl ChunkMeta {
    fn of(c: &ChunkKernels) -> ChunkMeta {
        ChunkMeta {
            reduce: Cow::Owned(c.reduce.name.clone()),
            merge: Cow::Owned(c.merge.name.clone()),
            shared_per_row: c.reduce.shared_per_row,
            acc_floats: c.acc_floats,
            acc_indices: c.acc_indices,
        }
    }
}

/// A reduction compiled for the GPU, in one precision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GpuReduction {
    /// The PTX module.
    pub ptx: Cow<'static, str>,
    /// Float type of the data.
    pub precision: Precision,
    /// Whether the approximate math instructions are used (see [`crate::fast_math`]).
    pub fast_math: bool,
    /// Output indexing (the other index is reduced).
    pub out_rows: Cat,
    /// Output values per row.
    pub out_values: usize,
    /// Output indices per row.
    pub out_indices: usize,
    /// Pointer parameters, in order.
    pub inputs: Cow<'static, [GpuInput]>,
    /// Chunks of output columns, each its own kernels.
    pub chunks: Cow<'static, [ChunkMeta]>,
}

/// Entry names are `keops_s{step}_c{chunk}_{reduce|merge}`: unique within a module.
pub fn kernel_prefix(step: usize) -> String {
    format!("keops_s{step}")
}

/// The kernels of reduction `r` of an instantiated program.
pub fn reduction_kernels_of(
    p: &Program,
    r: &Reduce,
    precision: Precision,
    opts: &KernelOptions,
    prefix: &str,
) -> Result<ReductionKernels, Error> {
    let k = lower_reduction(p, r, SumMode::Plain)?;
    Ok(reduction_kernels(&k, precision, opts, prefix))
}

/// Compiles reduction `r` of an instantiated program (every width known).
pub fn compile_reduction(
    p: &Program,
    r: &Reduce,
    precision: Precision,
    opts: &KernelOptions,
    prefix: &str,
) -> Result<GpuReduction, Error> {
    let rk = reduction_kernels_of(p, r, precision, opts, prefix)?;
    let mut g = gpu_reduction(&rk)?;
    g.fast_math = opts.fast_math && precision == Precision::F32;
    Ok(g)
}

/// The PTX module and launch data of reduction kernels.
pub fn gpu_reduction(rk: &ReductionKernels) -> Result<GpuReduction, Error> {
    let kernels: Vec<_> = rk.kernels().cloned().collect();
    for k in &kernels {
        k.verify(rk.precision)
            .map_err(|e| Error::new(ErrorKind::Limit, format!("internal: {e}")))?;
    }
    let ptx = ptx::module(&kernels)
        .map_err(|e| Error::new(ErrorKind::Limit, format!("internal: {e}")))?;
    let inputs = gpu_inputs(&rk.inputs)?;
    Ok(GpuReduction {
        ptx: Cow::Owned(ptx),
        precision: rk.precision,
        fast_math: false,
        out_rows: rk.out_rows,
        out_values: rk.out_values,
        out_indices: rk.out_indices,
        inputs: Cow::Owned(inputs),
        chunks: Cow::Owned(rk.chunks.iter().map(ChunkMeta::of).collect()),
    })
}

/// The pointer parameters of kernels reading `inputs` (each an argument or a buffer).
pub fn gpu_inputs(inputs: &[KernelInput]) -> Result<Vec<GpuInput>, Error> {
    inputs
        .iter()
        .map(|i| {
            let source = match i.source {
                VarSource::Arg(a) => InputSource::Arg(a),
                VarSource::Buffer(b) => InputSource::Buffer(b),
                VarSource::Temp => {
                    return Err(Error::new(
                        ErrorKind::Limit,
                        "internal: a kernel reads a placeholder variable",
                    ));
                }
            };
            Ok(GpuInput {
                source,
                cat: i.cat,
                dim: i.dim,
            })
        })
        .collect()
}

/// Every reduction step of an instantiated program, compiled (`None` for the other steps).
pub fn compile_program(
    p: &Program,
    precision: Precision,
    opts: &KernelOptions,
) -> Result<Vec<Option<GpuReduction>>, Error> {
    p.steps
        .iter()
        .enumerate()
        .map(|(s, step)| match step {
            keops_ir::Step::Reduce(r) => {
                compile_reduction(p, r, precision, opts, &kernel_prefix(s)).map(Some)
            }
            _ => Ok(None),
        })
        .collect()
}

pub(crate) fn cat_path(c: Cat) -> &'static str {
    match c {
        Cat::I => "I",
        Cat::J => "J",
        Cat::P => "P",
        Cat::Temp => "Temp",
    }
}

impl GpuReduction {
    /// A Rust constant expression of this value, for the `keops!` macro's expansion:
    /// `ir` is the path of `keops_ir` and `gpu` that of this crate's `module` in the
    /// expansion's context.
    pub fn rust_const(&self, ir: &str, gpu: &str) -> String {
        let mut s = String::new();
        let prec = match self.precision {
            Precision::F32 => "F32",
            Precision::F64 => "F64",
        };
        let _ = write!(
            s,
            "{gpu}::GpuReduction {{ ptx: ::std::borrow::Cow::Borrowed({:?}), precision: {ir}::lower::Precision::{prec}, fast_math: {}, out_rows: {ir}::Cat::{}, out_values: {}, out_indices: {}, inputs: ::std::borrow::Cow::Borrowed(&[",
            self.ptx,
            self.fast_math,
            cat_path(self.out_rows),
            self.out_values,
            self.out_indices
        );
        for i in self.inputs.iter() {
            s.push_str(&i.rust_const(ir, gpu));
            s.push_str(", ");
        }
        s.push_str("]), chunks: ::std::borrow::Cow::Borrowed(&[");
        for c in self.chunks.iter() {
            let _ = write!(
                s,
                "{gpu}::ChunkMeta {{ reduce: ::std::borrow::Cow::Borrowed({:?}), merge: ::std::borrow::Cow::Borrowed({:?}), shared_per_row: {}, acc_floats: {}, acc_indices: {} }}, ",
                c.reduce, c.merge, c.shared_per_row, c.acc_floats, c.acc_indices
            );
        }
        s.push_str("]) }");
        s
    }
}

/// The kernel variants the `keops!` macro embeds for a reduction, in order: f32, f32
/// with `fast_math`, f64, then, for f32 sums only (where it changes the kernels), f32 and
/// f32 with `fast_math` with `f64_accumulation`. [`variant_index`] gives the position.
pub fn variants(kind: ReductionKind) -> Vec<(Precision, KernelOptions)> {
    let opts = |fast_math, f64_accumulation| KernelOptions {
        fast_math,
        f64_accumulation,
    };
    let mut v = vec![
        (Precision::F32, opts(false, false)),
        (Precision::F32, opts(true, false)),
        (Precision::F64, opts(false, false)),
    ];
    if kind == ReductionKind::Sum {
        v.push((Precision::F32, opts(false, true)));
        v.push((Precision::F32, opts(true, true)));
    }
    v
}

/// Position of a variant in [`variants`]' list (options that have no effect in f64
/// ignored); a position past a reduction's list (f64 accumulation of a reduction that is
/// not a sum) means that the options change nothing: see [`embedded_variant`].
pub fn variant_index(p: Precision, opts: &KernelOptions) -> usize {
    match (p, opts.fast_math, opts.f64_accumulation) {
        (Precision::F64, _, _) => 2,
        (Precision::F32, fast, false) => fast as usize,
        (Precision::F32, fast, true) => 3 + fast as usize,
    }
}

/// The embedded kernels of a variant, from a list built by [`variants`].
pub fn embedded_variant<'a>(
    list: &'a [GpuReduction],
    p: Precision,
    opts: &KernelOptions,
) -> Option<&'a GpuReduction> {
    list.get(variant_index(p, opts)).or_else(|| {
        // Past the list: not a sum, whose kernels f64 accumulation does not change.
        let plain = KernelOptions {
            f64_accumulation: false,
            ..*opts
        };
        list.get(variant_index(p, &plain))
    })
}

/// The `keops!` macro's GPU code generator (`keops_ir::emit::api::GpuEmbed`): the kernels
/// of reduction `r` (step `step` of an instantiated program) for each of [`variants`], as
/// a Rust expression `Some(&[{rt}::gpu::GpuReduction; _])`.
pub fn embed_reduction(p: &Program, r: &Reduce, step: usize, rt: &str) -> Result<String, Error> {
    let prefix = kernel_prefix(step);
    let (ir, gpu) = (format!("{rt}::ir"), format!("{rt}::gpu"));
    let parts = variants(r.kind)
        .into_iter()
        .map(|(precision, opts)| {
            compile_reduction(p, r, precision, &opts, &prefix).map(|g| g.rust_const(&ir, &gpu))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(format!("Some(&[{}])", parts.join(", ")))
}

/// The `keops!` macro's GPU hook when PTX is not embedded (the `embed-ptx` feature off):
/// the kernels are generated at their first GPU use instead.
pub fn defer_reduction(_: &Program, _: &Reduce, _: usize, _: &str) -> Result<String, Error> {
    Ok("None".to_string())
}

/// The `keops!` macro's GPU code generator with the PTX embedded in the expansion.
pub const EMBED: keops_ir::emit::api::GpuEmbed = keops_ir::emit::api::GpuEmbed {
    reduction: embed_reduction,
    gather: crate::gather::embed_gather,
};

/// The `keops!` macro's GPU code generator leaving the PTX to run time (the `embed-ptx`
/// feature off).
pub const DEFER: keops_ir::emit::api::GpuEmbed = keops_ir::emit::api::GpuEmbed {
    reduction: defer_reduction,
    gather: crate::gather::defer_gather,
};
