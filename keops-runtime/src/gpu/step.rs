//! What reduction and gather steps share on the GPU backend: the step descriptors the
//! macro embeds ([`GpuStep`]), the backend a call runs on and what it records, the cache
//! of regenerated kernels, and the inputs' checks and copies.

use crate::error::{InputGroup, KeopsError, Result};
use crate::gpu::driver;
use crate::gpu::exec::{InputData, Transfers};
use crate::gpu::memory::Resident;
use crate::kernel::KeopsFloat;
use crate::options::{Backend, Options};
use crate::view::{View, check_shape};
use keops_gpu_kernels::launch::DeviceLimits;
use keops_gpu_kernels::module::{GpuInput, GpuReduction, InputSource};
use keops_gpu_kernels::scheme::KernelOptions;
use keops_ir::Program;
use keops_ir::lower::Precision;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A reduction step (or, with `M` = [`GpuGather`](crate::gpu::GpuGather), a gather step:
/// [`GpuGatherStep`](crate::gpu::GpuGatherStep)) of a generated kernel, as the `keops!`
/// macro describes it.
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

/// The precision of kernels computing in `T`.
pub(crate) fn precision<T: KeopsFloat>() -> Precision {
    if T::BITS == 32 {
        Precision::F32
    } else {
        Precision::F64
    }
}

/// The backend a call runs on: the options' choice, `Auto` resolved (the GPU when one
/// is usable).
pub(crate) fn chosen_backend(options: &Options) -> Result<Backend> {
    Ok(match options.backend()? {
        Backend::Auto if !driver::available() => Backend::Cpu,
        Backend::Auto => Backend::Gpu(0),
        b => b,
    })
}

/// Bytes copied between host and device by the last reduction (or gather: see
/// [`gather_step`](crate::gpu::gather_step)) of this thread (zero when it ran on the
/// CPU): how to check that a [`DeviceArray`](crate::gpu::DeviceArray) was read in place.
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
/// gradients: see [`gather_step`](crate::gpu::gather_step)) of this thread (`None` before
/// any): how to check where a call ran (with [`Backend::Auto`], the GPU when one is
/// usable).
pub fn last_backend() -> Option<Backend> {
    LAST_BACKEND.with(|b| b.get())
}

/// Records where this thread's last reduction or gather ran and what it copied (for
/// [`last_backend`] and [`last_transfers`]).
pub(crate) fn record(backend: Backend, transfers: Transfers) {
    LAST_BACKEND.with(|b| b.set(Some(backend)));
    LAST_TRANSFERS.with(|t| t.set(transfers));
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

/// The program of a step, as the macro compiled it (the forward program `formula`, or
/// its gradient `grad`), instantiated for `widths`.
pub(crate) fn program(
    formula: &str,
    grad: Option<(usize, &str)>,
    widths: &[usize],
) -> Result<Program> {
    let p = Program::parse(formula)?;
    let p = match grad {
        Some((pos, cot)) => p.gradient_program(pos, cot)?,
        None => p,
    };
    Ok(p.instantiate(widths)?)
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
pub(crate) fn kernel_options(p: Precision, options: &Options) -> KernelOptions {
    let f32 = p == Precision::F32;
    KernelOptions {
        fast_math: options.fast_math && f32,
        f64_accumulation: options.f64_accumulation && f32,
    }
}

/// A module embedded by the macro or regenerated (`G`: the regenerated kernels, which
/// hold the module `M`).
pub(crate) enum ModuleRef<M: 'static, G> {
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

/// Checks views against their expected `(rows, width)` and copies them row-major, except
/// device copies that `on_device` says are on the device.
pub(crate) fn copy_inputs<'d, T: KeopsFloat>(
    views: &[View<'d, T>],
    shapes: &[(usize, usize)],
    on_device: impl Fn(&Resident) -> bool,
) -> Result<Vec<InputData<'d, T>>> {
    let group = InputGroup::Step;
    views
        .iter()
        .zip(shapes)
        .enumerate()
        .map(|(index, (v, &(rows, dim)))| {
            check_shape(v, group, index, rows, dim)?;
            if let Some(r) = v.resident().filter(|r| on_device(r) && r.describes(v)) {
                return Ok(InputData::Resident(r));
            }
            Ok(InputData::Host(match v.fetch_stale()? {
                Some(values) => values,
                None => v.to_row_major("a copy of an input")?,
            }))
        })
        .collect()
}

/// The device the emulated backend pretends to be.
pub(crate) const EMULATED_DEVICE: DeviceLimits = DeviceLimits::H100;

/// Its memory (the interpreter's allocations live in host memory).
pub(crate) const EMULATED_MEMORY: u64 = 1 << 30;
