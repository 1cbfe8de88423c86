//! Gather steps on a device: the gradients of Min, Max and KMin reductions, summed over
//! the selected pairs only (see [`keops_gpu_kernels::gather`]).
//!
//! The host sums the cotangent sources into one weight per index slot and, when the
//! output is indexed by the selected index, builds the inverted lists of the selections
//! (which owner slots chose each row: the kernel then needs no atomics and sums in a
//! fixed order). When the data does not fit in the memory a call may use, the output rows
//! go in pieces (see [`keops_gpu_kernels::gather`] for what each piece holds); when not
//! even one row fits beside the data every piece needs, the gather runs on the CPU (it
//! costs `K` formula evaluations per row, where a reduction costs `N`).

use crate::error::{InputError, InputGroup, KeopsError, Result, Shape};
use crate::gpu::driver;
use crate::gpu::exec::{self, Device, InputData, SimtDevice, Transfers, allocation};
use crate::gpu::resident::{fetch_stale, with_fetched};
use crate::gpu::step::{
    EMULATED_DEVICE, EMULATED_MEMORY, GpuStep, Key, ModuleRef, cached, check_sources,
    chosen_backend, copy_inputs, kernel_options, precision, record,
};
use crate::kernel::KeopsFloat;
use crate::options::{Backend, Options};
use crate::view::{View, check_shape};
use keops_gpu_kernels::gather::{GpuGather, compile_gather, embedded_gather, inverted_lists};
use keops_gpu_kernels::kir::Kernel;
use keops_ir::eval::Output;
use keops_ir::graph::Cat;
use keops_ir::{INDEX_NONE, Step};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// A gather step of a generated gradient, as the `keops!` macro describes it.
pub type GpuGatherStep = GpuStep<GpuGather>;

/// What the generated code passes for a gather: the step, the widths of the program's
/// arguments, the kernel inputs (in [`GpuGatherStep::sources`] order), the selections,
/// the cotangent sources of the slot weights (with whether each is one row broadcast)
/// and the sizes.
pub struct GatherCall<'a, 'd, T> {
    /// The step.
    pub step: &'static GpuGatherStep,
    /// Widths of every argument of the gradient program.
    pub widths: &'a [usize],
    /// The kernel inputs.
    pub inputs: &'a [View<'d, T>],
    /// The selections: their index part, `slots` per owner row.
    pub indices: &'a Output<T>,
    /// Cotangent sources summed into the slot weights.
    pub weights: &'a [(View<'d, T>, bool)],
    /// Number of i rows.
    pub m: usize,
    /// Number of j rows.
    pub n: usize,
}

/// Runs a gather step on the backend the options choose; `Ok(None)` when that is the
/// CPU, or when not even one output row fits in the device memory the call may use
/// beside the data every piece needs (the generated code then runs its CPU kernel, and
/// [`last_backend`](crate::gpu::last_backend) says `Cpu`).
pub fn gather_step<T: KeopsFloat>(
    call: &GatherCall<'_, '_, T>,
    options: &Options,
) -> Result<Option<Output<T>>> {
    let used = chosen_backend(options)?;
    let ran = match used {
        Backend::Gpu(device) => on_gpu(call, options, device)?,
        Backend::Emulated => emulate(call, options)?,
        _ => None,
    };
    let (backend, transfers) = match &ran {
        Some((_, t)) => (used, *t),
        None => (Backend::Cpu, Transfers::default()),
    };
    record(backend, transfers);
    Ok(ran.map(|(out, _)| out))
}

/// Runs a gather step on GPU `index` (`None` when not even one output row fits: see
/// [`run_module`]).
fn on_gpu<T: KeopsFloat>(
    call: &GatherCall<'_, '_, T>,
    options: &Options,
    index: usize,
) -> Result<Option<(Output<T>, Transfers)>> {
    let dev = driver::device(index)?;
    let module = module_for(call, options)?;
    let m = module.get();
    driver::with_module(&dev, &m.ptx, &[&m.entry], |d| {
        run_module(d, m, call, options)
    })
}

/// A regenerated gather: the kernel (for the emulated backend) and its module.
struct GeneratedGather {
    kernel: Kernel,
    module: GpuGather,
}

/// The step's kernel for these widths, generated at first use and cached.
fn generated(
    step: &'static GpuGatherStep,
    widths: &[usize],
    opts: keops_gpu_kernels::scheme::KernelOptions,
    p: keops_ir::lower::Precision,
) -> Result<Arc<GeneratedGather>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Arc<GeneratedGather>>>> = OnceLock::new();
    cached(&CACHE, step, widths, p, opts, |prog| {
        let Some(Step::Gather(g)) = prog.steps.get(step.step) else {
            return Err(KeopsError::internal(format!(
                "step {} of the gradient of `{}` is not a gather",
                step.step, step.formula
            )));
        };
        let (kernel, module) = compile_gather(&prog, g, p, &opts, step.step)?;
        check_sources(step.formula, &module.inputs, step.sources)?;
        Ok(GeneratedGather { kernel, module })
    })
}

/// The module to run: the embedded one when the macro generated it, else regenerated.
fn module_for<T: KeopsFloat>(
    call: &GatherCall<'_, '_, T>,
    options: &Options,
) -> Result<ModuleRef<GpuGather, GeneratedGather>> {
    let p = precision::<T>();
    let opts = kernel_options(p, options);
    if let Some(m) = call.step.kernels.and_then(|k| embedded_gather(k, p, &opts)) {
        return Ok(ModuleRef::Static(m));
    }
    Ok(ModuleRef::Generated(generated(
        call.step,
        call.widths,
        opts,
        p,
    )?))
}

impl AsRef<GpuGather> for GeneratedGather {
    fn as_ref(&self) -> &GpuGather {
        &self.module
    }
}

/// Runs the step's kernel in the SIMT interpreter, as the device driver would.
fn emulate<T: KeopsFloat>(
    call: &GatherCall<'_, '_, T>,
    options: &Options,
) -> Result<Option<(Output<T>, Transfers)>> {
    let p = precision::<T>();
    let opts = kernel_options(p, options);
    let g = generated(call.step, call.widths, opts, p)?;
    // The embedded module must be what the interpreter runs.
    if let Some(k) = call.step.kernels
        && embedded_gather(k, p, &opts) != Some(&g.module)
    {
        return Err(KeopsError::internal(format!(
            "the embedded PTX of a gather of `{}` differs from the regenerated one",
            call.step.formula
        )));
    }
    let mut dev = SimtDevice::new(
        std::iter::once(&g.kernel),
        p,
        EMULATED_DEVICE,
        EMULATED_MEMORY,
    );
    run_module(&mut dev, &g.module, call, options)
}

/// Output rows of a gather: the owner's, or the other index's.
fn sizes(m: &GpuGather, call_m: usize, call_n: usize) -> (usize, usize) {
    match m.owner {
        Cat::I => (call_m, call_n),
        _ => (call_n, call_m),
    }
}

/// Runs a gather module on `dev` (see [`gather_step`]), in pieces of output rows when
/// needed: `None` when not even one row fits.
fn run_module<D: Device, T: KeopsFloat>(
    dev: &mut D,
    m: &GpuGather,
    call: &GatherCall<'_, '_, T>,
    options: &Options,
) -> Result<Option<(Output<T>, Transfers)>> {
    let (n_owner, n_other) = sizes(m, call.m, call.n);
    if call.inputs.len() != m.inputs.len() {
        return Err(KeopsError::internal(format!(
            "{} inputs for a gather reading {}",
            call.inputs.len(),
            m.inputs.len()
        )));
    }
    let shapes: Vec<(usize, usize)> = m
        .inputs
        .iter()
        .map(|i| match i.cat {
            Cat::P => (1, i.dim),
            c if c == m.owner => (n_owner, i.dim),
            _ => (n_other, i.dim),
        })
        .collect();
    let data = copy_inputs(call.inputs, &shapes, |r| dev.holds(r))?;
    let sel = call.indices;
    let (expected, got) = (Shape::new(n_owner, m.slots), Shape::new(sel.rows, sel.idim));
    if got != expected {
        return Err(InputError::Selections { expected, got }.into());
    }
    if sel.indices.len() != n_owner * m.slots {
        return Err(KeopsError::internal(format!(
            "selections of {} rows of {} indices hold {} indices",
            sel.rows,
            sel.idim,
            sel.indices.len()
        )));
    }
    let weights = slot_weights(call.weights, n_owner, m.slots)?;
    // The indices select rows of the other index (the inverted lists rely on it).
    if let Some(&index) = sel
        .indices
        .iter()
        .find(|j| **j != INDEX_NONE && **j >= n_other as u64)
    {
        let rows = n_other;
        return Err(InputError::SelectedIndex { index, rows }.into());
    }
    let lists = if m.to_owner {
        None
    } else {
        Some(inverted_lists(&sel.indices, n_other).map_err(KeopsError::internal)?)
    };
    let n_out = if m.to_owner { n_owner } else { n_other };
    let fsize = (T::BITS / 8) as u64;
    let od = m.out_dim;
    let mut transfers = Transfers::default();
    let mut values: Vec<T> = Vec::new();
    values
        .try_reserve_exact(n_out * od)
        .map_err(|_| KeopsError::OutOfMemory(format!("{} output values", n_out * od)))?;
    values.resize(n_out * od, T::zero());
    let output = |values| Output {
        rows: n_out,
        vdim: od,
        values,
        idim: 0,
        indices: Vec::new(),
    };
    if n_out == 0 || od == 0 {
        return Ok(Some((output(values), transfers)));
    }
    let (starts, entries) = match &lists {
        Some((s, e)) => (s.as_slice(), e.as_slice()),
        None => (&[][..], &[][..]),
    };

    // Output rows go in pieces with the inputs indexed like them (and, when the output is
    // the owner's, their indices and weights); the rest is on the device whole.
    let out_cat = if m.to_owner {
        m.owner
    } else {
        m.owner.transposed()
    };
    let in_pieces: Vec<bool> = m.inputs.iter().map(|i| i.cat == out_cat).collect();
    let host_len = |d: &InputData<'_, T>| match d {
        InputData::Host(v) => v.len() as u64,
        InputData::Resident(_) => 0,
    };
    let slots = sel.indices.len() as u64;
    let mut fixed: u64 = data
        .iter()
        .zip(&in_pieces)
        .filter(|(_, p)| !**p)
        .map(|(d, _)| allocation(host_len(d) * fsize))
        .sum();
    if !m.to_owner {
        fixed += allocation(slots * 8) + allocation(slots * fsize);
    }
    // Widths of the inputs whose piece rows are copied from the host.
    let piece_host: Vec<u64> = m
        .inputs
        .iter()
        .zip(&data)
        .zip(&in_pieces)
        .filter(|((_, d), p)| **p && matches!(d, InputData::Host(_)))
        .map(|((i, _), _)| i.dim as u64)
        .collect();
    // A piece's allocations (its rows of each of those, indices or starts, weights or
    // entries, the output), each rounded up.
    fixed += (piece_host.len() as u64 + 3) * exec::ALLOCATION_STEP;
    let row_floats = piece_host.iter().sum::<u64>() + od as u64;
    let row_bytes = |t: usize| -> u64 {
        row_floats * fsize
            + if m.to_owner {
                m.slots as u64 * (8 + fsize)
            } else {
                8 + (starts[t + 1] - starts[t]) * 8
            }
    };
    let budget = exec::budget(dev, options.gpu.memory_limit)?;
    let pieces = match budget.checked_sub(fixed) {
        Some(room) => split_rows(n_out, room, row_bytes),
        None => None,
    };
    // Not even one row with the rest: the CPU.
    let Some(pieces) = pieces else {
        return Ok(None);
    };

    // What stays for all pieces: device arrays (mapped once), whole inputs, and for the
    // inverted lists the indices and weights.
    let mut kept = Vec::new();
    let mut base: Vec<u64> = Vec::with_capacity(data.len());
    for (d, p) in data.iter().zip(&in_pieces) {
        base.push(match d {
            InputData::Resident(r) => dev.map(r)?,
            InputData::Host(v) if !*p => {
                transfers.uploaded += v.len() as u64 * fsize;
                let b = dev.upload(v)?;
                let ptr = dev.ptr(&b);
                kept.push(b);
                ptr
            }
            InputData::Host(_) => 0,
        });
    }
    let whole_lists = if m.to_owner {
        None
    } else {
        transfers.uploaded += slots * (8 + fsize);
        let i = dev.upload_u64(&sel.indices)?;
        let w = dev.upload(&weights)?;
        let ptrs = (dev.ptr(&i), dev.ptr(&w));
        kept.extend([i, w]);
        Some(ptrs)
    };
    let block = GATHER_BLOCK.min(dev.limits().max_block).max(1);
    for (r0, r1) in pieces {
        let rows = r1 - r0;
        let mut bufs = Vec::new();
        let mut upload = |dev: &mut D, v: &[T]| -> Result<u64> {
            transfers.uploaded += v.len() as u64 * fsize;
            let b = dev.upload(v)?;
            let ptr = dev.ptr(&b);
            bufs.push(b);
            Ok(ptr)
        };
        let mut inputs = Vec::with_capacity(data.len());
        for (((d, p), i), at) in data.iter().zip(&in_pieces).zip(m.inputs.iter()).zip(&base) {
            inputs.push(match d {
                _ if !*p => *at,
                InputData::Resident(_) => at + (r0 * i.dim) as u64 * fsize,
                InputData::Host(v) => upload(dev, &v[r0 * i.dim..r1 * i.dim])?,
            });
        }
        let (indices, weights_ptr, lists, offset) = match whole_lists {
            None => {
                let w = upload(dev, &weights[r0 * m.slots..r1 * m.slots])?;
                let i = &sel.indices[r0 * m.slots..r1 * m.slots];
                (i, w, (&[][..], Vec::new()), 0)
            }
            Some((_, w)) => {
                let (e0, e1) = (starts[r0] as usize, starts[r1] as usize);
                let local: Vec<u64> = starts[r0..=r1].iter().map(|s| s - starts[r0]).collect();
                (&[][..], w, (&entries[e0..e1], local), r0 as u64)
            }
        };
        let mut upload_u64 = |v: &[u64]| -> Result<u64> {
            transfers.uploaded += v.len() as u64 * 8;
            let b = dev.upload_u64(v)?;
            let ptr = dev.ptr(&b);
            bufs.push(b);
            Ok(ptr)
        };
        let index_ptr = match whole_lists {
            None => upload_u64(indices)?,
            Some((i, _)) => i,
        };
        let starts_ptr = upload_u64(&lists.1)?;
        let entries_ptr = upload_u64(lists.0)?;
        let out_buf = dev.zeros(Some(m.precision), rows * od)?;
        let mut params = vec![
            rows as u64,
            dev.ptr(&out_buf),
            index_ptr,
            weights_ptr,
            starts_ptr,
            entries_ptr,
            offset,
        ];
        params.extend(inputs);
        dev.launch(
            &m.entry,
            ((rows as u64).div_ceil(block), 1),
            block,
            0,
            &params,
        )?;
        dev.sync()?;
        dev.download_into(&out_buf, &mut values[r0 * od..r1 * od])?;
        transfers.downloaded += (rows * od) as u64 * fsize;
    }
    Ok(Some((output(values), transfers)))
}

/// Consecutive pieces `[start, end)` of `n` rows, each at most `room` bytes by `cost`
/// (greedy: as many rows as fit); `None` when one row alone exceeds it.
fn split_rows(n: usize, room: u64, cost: impl Fn(usize) -> u64) -> Option<Vec<(usize, usize)>> {
    let mut pieces = Vec::new();
    let (mut start, mut used) = (0, 0u64);
    for t in 0..n {
        let c = cost(t);
        if c > room {
            return None;
        }
        if used + c > room {
            pieces.push((start, t));
            (start, used) = (t, 0);
        }
        used += c;
    }
    pieces.push((start, n));
    Some(pieces)
}

/// Threads per block of gather launches (one per output row; the kernels use few
/// registers, so every device runs this many).
const GATHER_BLOCK: u64 = 256;

/// The per-slot weights: the sum of the cotangent sources, `[owner rows][slots]`.
fn slot_weights<T: KeopsFloat>(
    sources: &[(View<'_, T>, bool)],
    n_owner: usize,
    slots: usize,
) -> Result<Vec<T>> {
    let views: Vec<View<'_, T>> = sources.iter().map(|(v, _)| *v).collect();
    let fetched = fetch_stale(&views)?;
    let views = with_fetched(&views, &fetched)?;
    let mut w = vec![T::zero(); n_owner * slots];
    for (k, (v, (_, broadcast))) in views.iter().zip(sources).enumerate() {
        let rows = if *broadcast { 1 } else { n_owner };
        check_shape(v, InputGroup::Cotangents, k, rows, slots)?;
        for (r, row) in w.chunks_mut(slots.max(1)).enumerate() {
            let src = if *broadcast { 0 } else { r };
            for (c, x) in row.iter_mut().enumerate() {
                *x = *x + v.at(src, c);
            }
        }
    }
    Ok(w)
}
