//! The GPU backend: reduction steps of generated kernels run as PTX on a device (through
//! cudarc, loading the driver at run time), or as the same kernels in the SIMT
//! interpreter ([`crate::Backend::Emulated`]).
//!
//! The `keops!` macro describes each reduction step by a [`GpuStep`]: the PTX modules it
//! embedded (when every width is known at compile time) and how to regenerate them (the
//! formula text, the gradient taken, the step's position), which is what kernels with
//! generic widths and the emulated backend do at first use; the results are cached.

#[allow(unsafe_code)]
pub mod driver;
mod exec;
mod gather;
mod resident;

pub use exec::Transfers;
pub use gather::{GatherCall, GpuGatherStep, gather_step};
pub use keops_gpu_kernels::gather::GpuGather;
pub use resident::{DeviceArray, Resident};

use crate::KeopsFloat;
use crate::error::{InputError, InputGroup, KeopsError, Result};
use crate::options::{Backend, Options};
use crate::out::Direct;
use crate::view::View;
use keops_gpu_kernels::launch::DeviceLimits;
pub use keops_gpu_kernels::module::{ChunkMeta, GpuInput, GpuReduction, InputSource};
use keops_gpu_kernels::module::{
    compile_reduction, embedded_variant, kernel_prefix, reduction_kernels_of,
};
use keops_gpu_kernels::scheme::{KernelOptions, ReductionKernels};
use keops_ir::eval::Output;
use keops_ir::graph::Cat;
use keops_ir::lower::Precision;
use keops_ir::{Program, Step};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A reduction step (or, with `M` = [`GpuGather`], a gather step: [`GpuGatherStep`]) of a
/// generated kernel, as the `keops!` macro describes it.
#[derive(Debug)]
pub struct GpuStep<M: 'static = GpuReduction> {
    /// The step's kernels in the variants of [`keops_gpu_kernels::module::variants`]
    /// (f32, f32 with `fast_math`, f64, and for f32 sums, with f64 accumulation; gathers:
    /// [`keops_gpu_kernels::gather::gather_variants`]), when the macro could generate
    /// them (every width known).
    pub kernels: Option<&'static [M]>,
    /// The forward program's text (it parses back into the program the macro compiled).
    pub formula: &'static str,
    /// The gradient taken: argument position and cotangent name.
    pub grad: Option<(usize, &'static str)>,
    /// Position of the step in the (gradient) program.
    pub step: usize,
    /// Sources of the kernel inputs, in the order of the inputs passed at run time.
    pub sources: &'static [InputSource],
}

/// What the generated code passes for a call: the step, the widths of the program's
/// arguments, the inputs (in [`GpuStep::sources`] order) and the sizes.
pub struct StepCall<'a, 'd, T> {
    /// The step.
    pub step: &'static GpuStep,
    /// Widths of every argument of the (gradient) program.
    pub widths: &'a [usize],
    /// The kernel inputs.
    pub inputs: &'a [View<'d, T>],
    /// Number of i rows.
    pub m: usize,
    /// Number of j rows.
    pub n: usize,
}

fn precision<T: KeopsFloat>() -> Precision {
    if T::BITS == 32 {
        Precision::F32
    } else {
        Precision::F64
    }
}

/// Runs a reduction step on the backend the options choose; `Ok(None)` when it is the
/// CPU (the generated code then runs its CPU kernel).
pub fn reduce_step<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
) -> Result<Option<Output<T>>> {
    reduce_step_into(call, options, None)
}

/// [`reduce_step`] for the last step of an `eval_into` call: when `dest` is a
/// [`DeviceArray`] on the device the step runs on, the kernel writes the output values
/// there in place (nothing is copied back) and `dest` records it.
pub fn reduce_step_into<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
    mut dest: Option<&mut crate::out::Dest<'_, T>>,
) -> Result<Option<Output<T>>> {
    let used = chosen_backend(options)?;
    // The output's device array when it lives where the step runs, or contiguous host
    // rows to download into.
    let into = dest
        .as_deref_mut()
        .filter(|_| used != Backend::Cpu)
        .and_then(|d| d.direct())
        .filter(|t| match t {
            Direct::Device(a) => a.backend() == used,
            Direct::Host { .. } => true,
        });
    let ran = match used {
        Backend::Gpu(device) => Some(driver::reduce(call, options, device, into)?),
        Backend::Emulated => Some(emulate(call, options, into)?),
        _ => None,
    };
    LAST_BACKEND.with(|b| b.set(Some(used)));
    let transfers = ran.as_ref().map(|r| r.transfers).unwrap_or_default();
    LAST_TRANSFERS.with(|t| t.set(transfers));
    Ok(ran.map(|r| {
        if r.in_place
            && let Some(d) = dest
        {
            d.set_written();
        }
        r.output
    }))
}

/// The backend a call runs on: the options' choice, `Auto` resolved (the GPU when one
/// is usable).
fn chosen_backend(options: &Options) -> Result<Backend> {
    Ok(match options.backend()? {
        Backend::Auto if !driver::available() => Backend::Cpu,
        Backend::Auto => Backend::Gpu(0),
        b => b,
    })
}

/// What a device run of a step gives back.
pub(crate) struct Ran<T> {
    /// The output (without values when they were written in place).
    pub(crate) output: Output<T>,
    /// Bytes copied.
    pub(crate) transfers: Transfers,
    /// The values went into the output's device array or host rows.
    pub(crate) in_place: bool,
}

/// Runs a step's module on `dev`: the inputs checked and copied row-major (device arrays
/// on `dev` read in place), the output values written into `into`'s device copy when it
/// can take them (see [`in_place_target`]), or downloaded into its host rows when they
/// have the output's shape.
pub(crate) fn run_module<D: exec::Device, T: KeopsFloat>(
    dev: &mut D,
    m: &GpuReduction,
    call: &StepCall<'_, '_, T>,
    options: &Options,
    into: Option<Direct<'_, T>>,
) -> Result<Ran<T>> {
    let data = contiguous(m, call, |r| dev.holds(r))?;
    let (n_outer, n_inner) = sizes(m, call.m, call.n);
    let (into, host) = match into {
        Some(Direct::Device(a)) => (in_place_target(m, n_outer, a), None),
        Some(Direct::Host { data, rows, cols })
            if rows == n_outer && cols == m.out_values && cols > 0 =>
        {
            (None, Some(data))
        }
        _ => (None, None),
    };
    let in_place = into.is_some() || host.is_some();
    let (output, transfers) = exec::run(
        dev,
        m,
        &data,
        n_outer,
        n_inner,
        &options.gpu.plan,
        options.gpu.memory_limit,
        into,
        host,
    )?;
    Ok(Ran {
        output,
        transfers,
        in_place,
    })
}

/// The device copy of `into` when the module's output can be written there in place
/// (values only, as many rows and the same width).
fn in_place_target<'a, T>(
    m: &GpuReduction,
    n_outer: usize,
    into: &'a mut DeviceArray<T>,
) -> Option<&'a mut Resident> {
    let fits = into.rows() == n_outer && into.cols() == m.out_values && m.out_indices == 0;
    if fits { into.resident_mut() } else { None }
}

/// Bytes copied between host and device by the last reduction (or gather: see
/// [`gather_step`]) of this thread (zero when it ran on the CPU): how to check that a
/// [`DeviceArray`] was read in place.
pub fn last_transfers() -> Transfers {
    LAST_TRANSFERS.with(|t| t.get())
}

thread_local! {
    static LAST_BACKEND: std::cell::Cell<Option<Backend>> = const { std::cell::Cell::new(None) };
    static LAST_TRANSFERS: std::cell::Cell<Transfers> = const {
        std::cell::Cell::new(Transfers { uploaded: 0, downloaded: 0 })
    };
}

/// The backend that ran the last reduction (or gather, the last step of some selection
/// gradients: see [`gather_step`]) of this thread (`None` before any): how to check where
/// a call ran (with [`Backend::Auto`], the GPU when one is usable).
pub fn last_backend() -> Option<Backend> {
    LAST_BACKEND.with(|b| b.get())
}

/// Key of the regenerated kernels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) formula: &'static str,
    pub(crate) grad: Option<(usize, &'static str)>,
    pub(crate) step: usize,
    pub(crate) widths: Vec<usize>,
    pub(crate) precision: Precision,
    pub(crate) opts: KernelOptions,
}

/// Regenerated kernels: the IR (for the emulated backend) and the PTX module.
pub(crate) struct Generated {
    pub(crate) kernels: ReductionKernels,
    pub(crate) module: GpuReduction,
}

/// The program of a step, as the macro compiled it (the forward program `formula`, or
/// its gradient `grad`), instantiated for `widths`.
pub(crate) fn program(
    formula: &str,
    grad: Option<(usize, &str)>,
    widths: &[usize],
) -> Result<Program> {
    let p = Program::parse(formula)?;
    let p = match grad {
        Some((pos, cot)) => keops_ir::emit::api::gradient_program(&p, pos, cot)?,
        None => p,
    };
    Ok(p.instantiate(widths)?)
}

/// The step's kernels for these widths, generated at first use and cached.
pub(crate) fn generated(
    step: &'static GpuStep,
    widths: &[usize],
    p: Precision,
    opts: KernelOptions,
) -> Result<Arc<Generated>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<Generated>>>> = OnceLock::new();
    cached(&CACHE, step, widths, p, opts, |prog| {
        let Some(Step::Reduce(r)) = prog.steps.get(step.step) else {
            return Err(KeopsError::internal(format!(
                "step {} of `{}` is not a reduction",
                step.step, step.formula
            )));
        };
        let prefix = kernel_prefix(step.step);
        let kernels = reduction_kernels_of(&prog, r, p, &opts, &prefix)?;
        let module = compile_reduction(&prog, r, p, &opts, &prefix)?;
        check_sources(step.formula, &module.inputs, step.sources)?;
        Ok(Generated { kernels, module })
    })
}

/// The kernels of `step` for these widths, precision and options in `cache`, made by
/// `make` from the step's program at first use. A panic of the code generator (a keops-rs
/// bug) is this call's error, not the caller's panic.
pub(crate) fn cached<M, V>(
    cache: &'static OnceLock<Mutex<HashMap<Key, Arc<V>>>>,
    step: &'static GpuStep<M>,
    widths: &[usize],
    precision: Precision,
    opts: KernelOptions,
    make: impl FnOnce(Program) -> Result<V>,
) -> Result<Arc<V>> {
    let key = Key {
        formula: step.formula,
        grad: step.grad,
        step: step.step,
        widths: widths.to_vec(),
        precision,
        opts,
    };
    let cache = cache.get_or_init(Default::default);
    if let Some(v) = cache
        .lock()
        .map_err(|_| KeopsError::internal("the kernel cache is poisoned"))?
        .get(&key)
    {
        return Ok(v.clone());
    }
    let formula = key.formula;
    let make = || make(program(step.formula, step.grad, widths)?);
    let v = std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).unwrap_or_else(|_| {
        Err(KeopsError::internal(format!(
            "the GPU code generator panicked on `{formula}` (a keops-rs bug: please report it)"
        )))
    })?;
    let v = Arc::new(v);
    cache
        .lock()
        .map_err(|_| KeopsError::internal("the kernel cache is poisoned"))?
        .insert(key, v.clone());
    Ok(v)
}

/// Checks that regenerated kernels read the inputs the macro passes.
pub(crate) fn check_sources(
    formula: &str,
    inputs: &[GpuInput],
    expected: &[InputSource],
) -> Result<()> {
    let sources: Vec<InputSource> = inputs.iter().map(|i| i.source).collect();
    if sources != expected {
        return Err(KeopsError::internal(format!(
            "the regenerated kernel of `{formula}` reads {sources:?}, the macro's read {expected:?}"
        )));
    }
    Ok(())
}

/// The code generation options of a call's kernels in precision `p` (those that only
/// apply to f32 kernels dropped in f64).
fn kernel_options(p: Precision, options: &Options) -> KernelOptions {
    let f32 = p == Precision::F32;
    KernelOptions {
        fast_math: options.fast_math && f32,
        f64_accumulation: options.f64_accumulation && f32,
    }
}

/// The module to run: the embedded one when the macro generated it, else regenerated.
pub(crate) fn module_for<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
) -> Result<ModuleRef> {
    let p = precision::<T>();
    let opts = kernel_options(p, options);
    if let Some(k) = call
        .step
        .kernels
        .and_then(|k| embedded_variant(k, p, &opts))
    {
        return Ok(ModuleRef::Static(k));
    }
    Ok(ModuleRef::Generated(generated(
        call.step,
        call.widths,
        p,
        opts,
    )?))
}

/// A module embedded by the macro or regenerated (`G`: the regenerated kernels, which
/// hold the module `M`).
pub(crate) enum ModuleRef<M: 'static = GpuReduction, G = Generated> {
    Static(&'static M),
    Generated(Arc<G>),
}

impl<M, G: AsRef<M>> ModuleRef<M, G> {
    pub(crate) fn get(&self) -> &M {
        match self {
            ModuleRef::Static(m) => m,
            ModuleRef::Generated(g) => (**g).as_ref(),
        }
    }
}

impl AsRef<GpuReduction> for Generated {
    fn as_ref(&self) -> &GpuReduction {
        &self.module
    }
}

/// Output rows and reduced rows of a module's reduction.
pub(crate) fn sizes(m: &GpuReduction, call_m: usize, call_n: usize) -> (usize, usize) {
    match m.out_rows {
        Cat::J => (call_n, call_m),
        _ => (call_m, call_n),
    }
}

/// Checks the inputs against the module and copies them row-major (what a device, or the
/// interpreter, reads), except device copies that `on_device` says are on the device.
pub(crate) fn contiguous<'d, T: KeopsFloat>(
    m: &GpuReduction,
    call: &StepCall<'_, 'd, T>,
    on_device: impl Fn(&Resident) -> bool,
) -> Result<Vec<exec::InputData<'d, T>>> {
    if call.inputs.len() != m.inputs.len() {
        return Err(KeopsError::internal(format!(
            "{} inputs for a kernel reading {}",
            call.inputs.len(),
            m.inputs.len()
        )));
    }
    let (n_outer, n_inner) = sizes(m, call.m, call.n);
    let shapes: Vec<(usize, usize)> = m
        .inputs
        .iter()
        .map(|i| match i.cat {
            Cat::P => (1, i.dim),
            c if c == m.out_rows => (n_outer, i.dim),
            _ => (n_inner, i.dim),
        })
        .collect();
    copy_inputs(call.inputs, &shapes, on_device)
}

/// Checks views against their expected `(rows, width)` and copies them row-major, except
/// device copies that `on_device` says are on the device.
pub(crate) fn copy_inputs<'d, T: KeopsFloat>(
    views: &[View<'d, T>],
    shapes: &[(usize, usize)],
    on_device: impl Fn(&Resident) -> bool,
) -> Result<Vec<exec::InputData<'d, T>>> {
    let group = InputGroup::Step;
    views
        .iter()
        .zip(shapes)
        .enumerate()
        .map(|(index, (v, &(rows, dim)))| {
            if v.cols != dim {
                let (expected, got) = (dim, v.cols);
                return Err(InputError::InputWidth {
                    group,
                    index,
                    expected,
                    got,
                }
                .into());
            }
            if v.rows != rows {
                let (expected, got) = (rows, v.rows);
                return Err(InputError::InputRows {
                    group,
                    index,
                    expected,
                    got,
                }
                .into());
            }
            if let Some(r) = v.resident.filter(|r| on_device(r) && r.describes(v)) {
                return Ok(exec::InputData::Resident(r));
            }
            Ok(exec::InputData::Host(match v.fetch_stale()? {
                Some(values) => values,
                None => v.to_row_major("a copy of an input")?,
            }))
        })
        .collect()
}

/// The device the emulated backend pretends to be.
const EMULATED_DEVICE: DeviceLimits = DeviceLimits::H100;

/// Its memory (the interpreter's allocations live in host memory).
const EMULATED_MEMORY: u64 = 1 << 30;

/// Runs the step's kernels in the SIMT interpreter, as the device driver would.
fn emulate<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
    into: Option<Direct<'_, T>>,
) -> Result<Ran<T>> {
    let p = precision::<T>();
    let opts = kernel_options(p, options);
    let g = generated(call.step, call.widths, p, opts)?;
    // The embedded module must be what the interpreter runs.
    if let Some(k) = call.step.kernels
        && embedded_variant(k, p, &opts) != Some(&g.module)
    {
        return Err(KeopsError::internal(format!(
            "the embedded PTX of `{}` differs from the regenerated one",
            call.step.formula
        )));
    }
    let mut dev = exec::SimtDevice::new(g.kernels.kernels(), p, EMULATED_DEVICE, EMULATED_MEMORY);
    run_module(&mut dev, &g.module, call, options, into)
}
