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

/// The kernel variants the `keops!` macro embeds for a reduction, in order: f32, f32
/// with `fast_math`, f64, then, for reductions with tile sums (`GpuFlags::tile_sums`, where it changes the kernels), f32 and
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
    if kind.spec().gpu.tile_sums {
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
