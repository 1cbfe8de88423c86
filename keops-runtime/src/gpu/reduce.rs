//! Reduction steps on the GPU backend: the macro's [`StepCall`]s run on a device through
//! the driver, or in the SIMT interpreter ([`crate::Backend::Emulated`]), with the module
//! the macro embedded or one regenerated for the call's widths.

use crate::error::{KeopsError, Result};
use crate::gpu::driver;
use crate::gpu::exec::{self, Device, InputData, SimtDevice, Transfers};
use crate::gpu::memory::Resident;
use crate::gpu::resident::DeviceArray;
use crate::gpu::step::{
    EMULATED_DEVICE, EMULATED_MEMORY, GpuStep, Key, ModuleRef, cached, check_sources,
    chosen_backend, copy_inputs, kernel_options, precision, record,
};
use crate::kernel::KeopsFloat;
use crate::options::{Backend, Options};
use crate::out::{Dest, Direct};
use crate::view::View;
use keops_gpu_kernels::module::{
    GpuReduction, compile_reduction, embedded_variant, kernel_prefix, reduction_kernels_of,
};
use keops_gpu_kernels::scheme::{KernelOptions, ReductionKernels};
use keops_ir::Step;
use keops_ir::eval::Output;
use keops_ir::graph::Cat;
use keops_ir::lower::Precision;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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
    mut dest: Option<&mut Dest<'_, T>>,
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
        Backend::Gpu(device) => Some(on_gpu(call, options, device, into)?),
        Backend::Emulated => Some(emulate(call, options, into)?),
        _ => None,
    };
    record(used, ran.as_ref().map(|r| r.transfers).unwrap_or_default());
    Ok(ran.map(|r| {
        if r.in_place
            && let Some(d) = dest
        {
            d.set_written();
        }
        r.output
    }))
}

/// Runs a reduction step on GPU `index` (writing the values into `into`, see
/// [`run_module`]).
fn on_gpu<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
    index: usize,
    into: Option<Direct<'_, T>>,
) -> Result<Ran<T>> {
    let dev = driver::device(index)?;
    let module = module_for(call, options)?;
    let m = module.get();
    let entries: Vec<&str> = m
        .chunks
        .iter()
        .flat_map(|c| [&*c.reduce, &*c.merge])
        .collect();
    driver::with_module(&dev, &m.ptx, &entries, |d| {
        run_module(d, m, call, options, into)
    })
}

/// What a device run of a step gives back.
struct Ran<T> {
    /// The output (without values when they were written in place).
    output: Output<T>,
    /// Bytes copied.
    transfers: Transfers,
    /// The values went into the output's device array or host rows.
    in_place: bool,
}

/// Runs a step's module on `dev`: the inputs checked and copied row-major (device arrays
/// on `dev` read in place), the output values written into `into`'s device copy when it
/// can take them (see [`in_place_target`]), or downloaded into its host rows when they
/// have the output's shape.
fn run_module<D: Device, T: KeopsFloat>(
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

/// Regenerated kernels: the IR (for the emulated backend) and the PTX module.
struct Generated {
    kernels: ReductionKernels,
    module: GpuReduction,
}

/// The step's kernels for these widths, generated at first use and cached.
fn generated(
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

/// The module to run: the embedded one when the macro generated it, else regenerated.
fn module_for<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
) -> Result<ModuleRef<GpuReduction, Generated>> {
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

impl AsRef<GpuReduction> for Generated {
    fn as_ref(&self) -> &GpuReduction {
        &self.module
    }
}

/// Output rows and reduced rows of a module's reduction.
fn sizes(m: &GpuReduction, call_m: usize, call_n: usize) -> (usize, usize) {
    match m.out_rows {
        Cat::J => (call_n, call_m),
        _ => (call_m, call_n),
    }
}

/// Checks the inputs against the module and copies them row-major (what a device, or the
/// interpreter, reads), except device copies that `on_device` says are on the device.
fn contiguous<'d, T: KeopsFloat>(
    m: &GpuReduction,
    call: &StepCall<'_, 'd, T>,
    on_device: impl Fn(&Resident) -> bool,
) -> Result<Vec<InputData<'d, T>>> {
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
    let mut dev = SimtDevice::new(g.kernels.kernels(), p, EMULATED_DEVICE, EMULATED_MEMORY);
    run_module(&mut dev, &g.module, call, options, into)
}
