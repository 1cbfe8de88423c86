//! Running a reduction's kernels on a device, whatever the device: the CUDA driver
//! ([`super::driver`]) or the SIMT interpreter ([`SimtDevice`]). Upload, launch plan per
//! chunk (1D or 2D scheme), merge, download; and when the data does not fit in the device
//! memory the call may use, pieces: output rows in pieces (each its own outputs), and
//! reduced rows in pieces whose partial accumulators the merge kernel combines (the
//! reduction kernel's index offset keeps the selected indices global).

use crate::error::{InputError, KeopsError, Result};
use crate::gpu::memory::{Placement, Resident};
use crate::kernel::KeopsFloat;
use keops_gpu_kernels::kir::Kernel;
use keops_gpu_kernels::launch::{DeviceLimits, PlanOptions, Scheme, plan};
use keops_gpu_kernels::module::GpuReduction;
use keops_gpu_kernels::simt::{GlobalMemory, Launch, launch};
use keops_ir::eval::Output;
use keops_ir::graph::Cat;
use keops_ir::lower::Precision;
use std::collections::HashMap;

/// What the executor needs from a device. Buffers are addressed by their device address.
pub(crate) trait Device {
    /// A device allocation (freed when dropped).
    type Buf;
    /// Launch limits.
    fn limits(&self) -> DeviceLimits;
    /// Device memory free for this call, in bytes.
    fn free_memory(&self) -> Result<u64>;
    /// A copy of `data` (in the module's precision).
    fn upload<T: KeopsFloat>(&mut self, data: &[T]) -> Result<Self::Buf>;
    /// A copy of `data` (u64: selected indices, inverted lists).
    fn upload_u64(&mut self, data: &[u64]) -> Result<Self::Buf>;
    /// `n` zeroed floats of precision `p`, or u64 when `p` is `None`.
    fn zeros(&mut self, p: Option<Precision>, n: usize) -> Result<Self::Buf>;
    /// The device address of a buffer.
    fn ptr(&self, b: &Self::Buf) -> u64;
    /// Launches kernel `name` (u64 parameters; `grid` = blocks along x and y).
    fn launch(
        &mut self,
        name: &str,
        grid: (u64, u64),
        block: u64,
        shared: u64,
        params: &[u64],
    ) -> Result<()>;
    /// Waits for the launches so far.
    fn sync(&mut self) -> Result<()>;
    /// The first `n` floats of a buffer.
    fn download<T: KeopsFloat>(&mut self, b: &Self::Buf, n: usize) -> Result<Vec<T>>;
    /// The first `out.len()` floats of a buffer, into `out`.
    fn download_into<T: KeopsFloat>(&mut self, b: &Self::Buf, out: &mut [T]) -> Result<()> {
        let values = self.download::<T>(b, out.len())?;
        out.copy_from_slice(&values);
        Ok(())
    }
    /// The first `n` u64 of a buffer.
    fn download_u64(&mut self, b: &Self::Buf, n: usize) -> Result<Vec<u64>>;
    /// Whether `r` lives on this device (then [`Device::map`] gives its address).
    fn holds(&self, r: &Resident) -> bool;
    /// The device address of a device copy that lives here.
    fn map(&mut self, r: &Resident) -> Result<u64>;
    /// Makes what kernels wrote at `addr` (where [`Device::map`] mapped `r`) the contents
    /// of `r` (a real device wrote it in place already).
    fn store(&mut self, r: &mut Resident, addr: u64) -> Result<()>;
}

/// An input of a call: rows copied from the host, or a device copy already on the device.
pub(crate) enum InputData<'a, T> {
    /// Row-major values, to upload.
    Host(Vec<T>),
    /// A [`DeviceArray`](super::DeviceArray)'s copy on this device, read in place.
    Resident(&'a Resident),
}

/// Bytes copied between host and device by a call.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    /// Host to device: inputs (device-resident inputs are not copied).
    pub uploaded: u64,
    /// Device to host: outputs.
    pub downloaded: u64,
}

/// The alignment of device allocations (CUDA's: 256 bytes), to which each one is rounded
/// up in the count.
pub(crate) const ALLOCATION_STEP: u64 = 256;

pub(crate) fn allocation(bytes: u64) -> u64 {
    bytes.max(1).div_ceil(ALLOCATION_STEP) * ALLOCATION_STEP
}

/// The device memory a call may use: 80% of the free memory (the driver's own
/// allocations need some), or the limit when it is lower.
pub(crate) fn budget<D: Device>(dev: &D, memory_limit: Option<u64>) -> Result<u64> {
    let free = dev.free_memory()?;
    Ok(memory_limit.unwrap_or(u64::MAX).min(free / 10 * 8))
}

/// What sizes a call's device memory: the module, its inputs, and how it is launched.
pub(crate) struct Footprint<'a> {
    /// The module.
    pub m: &'a GpuReduction,
    /// Bytes per float.
    pub fsize: u64,
    /// Per input: already on the device (read in place, nothing allocated).
    pub in_place: &'a [bool],
    /// The output values go into a device array (nothing allocated).
    pub out_in_place: bool,
    /// Output rows.
    pub n_outer: u64,
    /// Reduced rows.
    pub n_inner: u64,
    /// The device's launch limits.
    pub limits: DeviceLimits,
    /// Launch tuning.
    pub tuning: &'a PlanOptions,
}

impl Footprint<'_> {
    /// Device bytes allocated at once with pieces of `outer` output rows and `inner`
    /// reduced rows: parameters, the inputs' rows, outputs, and the partial accumulators
    /// of the chunk that needs most (chunks run one after the other), as the launch plan
    /// will slice them; each allocation rounded up to [`ALLOCATION_STEP`].
    pub(crate) fn bytes(&self, outer: u64, inner: u64) -> u64 {
        let m = self.m;
        let split = inner < self.n_inner;
        let mut total = 0;
        for (i, in_place) in m.inputs.iter().zip(self.in_place) {
            let rows = if *in_place {
                continue;
            } else if i.cat == Cat::P {
                1
            } else if i.cat == m.out_rows {
                outer
            } else if split {
                inner
            } else {
                self.n_inner
            };
            total += allocation(rows * i.dim as u64 * self.fsize);
        }
        if !self.out_in_place {
            total += allocation(outer * m.out_values as u64 * self.fsize);
        }
        total += allocation(outer * m.out_indices as u64 * 8);
        let partials = m.chunks.iter().map(|c| {
            let planned = plan(c.shared_per_row, outer, inner, &self.limits, self.tuning);
            let slices = match planned.map(|lp| lp.scheme) {
                Ok(Scheme::TwoD { slices, .. }) => slices,
                _ => 1,
            };
            let (_, slots) = partial_slots(slices, split);
            allocation(slots * outer * c.acc_floats as u64 * self.fsize)
                + allocation(slots * outer * c.acc_indices as u64 * 8)
        });
        total + partials.max().unwrap_or(0)
    }
}

/// Slices of each reduced piece and slots of partial accumulators per output row, for a
/// plan of `slices` slices, the reduced index split into pieces or not.
///
/// With several pieces of the reduced index, every piece writes partials (a second, empty
/// slice makes a one-slice piece write them too). Slot 0 holds the pieces merged so far:
/// the first piece writes from slot 0, the next ones after it, and after each piece the
/// merge kernel folds its slices into slot 0 (the last piece's merge finalizes). The
/// partials take `(1 + slices) * rows` accumulators whatever the number of pieces; none
/// in the 1D scheme without pieces.
fn partial_slots(slices: u64, split: bool) -> (u64, u64) {
    let piece_slices = if split { slices.max(2) } else { slices };
    let slots = if piece_slices > 1 {
        piece_slices + u64::from(split)
    } else {
        0
    };
    (piece_slices, slots)
}

/// Rows of output and of the reduced index per piece, so that a piece's allocations fit
/// in `budget` bytes; an error when even one row of each does not.
pub(crate) fn pieces(f: &Footprint<'_>, budget: u64) -> Result<(u64, u64)> {
    let m = f.m;
    let width = |outer: bool| -> u64 {
        m.inputs
            .iter()
            .filter(|i| (i.cat == m.out_rows) == outer && i.cat != Cat::P)
            .map(|i| i.dim as u64 * f.fsize)
            .sum()
    };
    // Which index to halve: the one whose rows take more.
    let out_row = m.out_values as u64 * f.fsize + m.out_indices as u64 * 8 + width(true);
    let in_row = width(false);
    let (mut outer, mut inner) = (f.n_outer.max(1), f.n_inner.max(1));
    loop {
        let need = f.bytes(outer, inner);
        if need <= budget {
            return Ok((outer, inner));
        }
        if outer == 1 && inner == 1 {
            return Err(KeopsError::OutOfMemory(format!(
                "this reduction needs {need} bytes of GPU memory with a single row of each index (parameters, a row of each variable, outputs, partial accumulators); {budget} bytes are available to it"
            )));
        }
        if (outer * out_row >= inner * in_row && outer > 1) || inner == 1 {
            outer = outer.div_ceil(2);
        } else {
            inner = inner.div_ceil(2);
        }
    }
}

/// Runs every chunk of `m` on `dev`; `data` holds the inputs, in module order. With
/// `into`, the output values are written in place into that device copy (which holds
/// `n_outer` rows of `m.out_values`, on this device) and not downloaded; with `host_out`
/// (as many values), they are downloaded into it: the returned output then has no
/// values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<D: Device, T: KeopsFloat>(
    dev: &mut D,
    m: &GpuReduction,
    data: &[InputData<'_, T>],
    n_outer: usize,
    n_inner: usize,
    tuning: &PlanOptions,
    memory_limit: Option<u64>,
    mut into: Option<&mut Resident>,
    mut host_out: Option<&mut [T]>,
) -> Result<(Output<T>, Transfers)> {
    let p = m.precision;
    let fsize = (T::BITS / 8) as u64;
    let (nv, ni) = (m.out_values, m.out_indices);
    let mut values: Vec<T> = Vec::new();
    let mut indices: Vec<u64> = Vec::new();
    if host_out.as_ref().is_some_and(|h| h.len() != n_outer * nv)
        || (host_out.is_some() && into.is_some())
    {
        return Err(KeopsError::internal(
            "an output buffer of another size, or two outputs",
        ));
    }
    if host_out.is_none() {
        values
            .try_reserve_exact(n_outer * nv)
            .map_err(|_| KeopsError::OutOfMemory(format!("{} output values", n_outer * nv)))?;
    }
    indices
        .try_reserve_exact(n_outer * ni)
        .map_err(|_| KeopsError::OutOfMemory(format!("{} output indices", n_outer * ni)))?;
    let mut transfers = Transfers::default();
    if n_outer == 0 {
        let out = Output {
            rows: 0,
            vdim: nv,
            values,
            idim: ni,
            indices,
        };
        return Ok((out, transfers));
    }
    let out_base = match into.as_deref_mut() {
        Some(r) => {
            // The host copy no longer holds the values, whatever happens below.
            r.host_stale = true;
            Some(dev.map(r)?)
        }
        None => None,
    };
    // Device copies already there are read in place (at the piece's first row).
    let mut mapped: Vec<Option<u64>> = Vec::with_capacity(data.len());
    for d in data {
        mapped.push(match d {
            InputData::Resident(r) => Some(dev.map(r)?),
            InputData::Host(_) => None,
        });
    }
    let host = |k: usize| -> &[T] {
        match &data[k] {
            InputData::Host(v) => v,
            InputData::Resident(_) => &[],
        }
    };
    let budget = budget(dev, memory_limit)?;
    let limits = dev.limits();
    let in_place: Vec<bool> = mapped.iter().map(Option::is_some).collect();
    let footprint = Footprint {
        m,
        fsize,
        in_place: &in_place,
        out_in_place: out_base.is_some(),
        n_outer: n_outer as u64,
        n_inner: n_inner as u64,
        limits,
        tuning,
    };
    let (outer_piece, inner_piece) = pieces(&footprint, budget)?;
    let (outer_piece, inner_piece) = (outer_piece as usize, inner_piece as usize);
    let is_outer = |c: Cat| c == m.out_rows;
    let is_inner = |c: Cat| c != m.out_rows && c != Cat::P;
    let inner_whole = inner_piece >= n_inner;
    let pieces_inner = if inner_whole {
        1
    } else {
        n_inner.div_ceil(inner_piece)
    };
    // Parameters and, when they fit whole, the reduced variables stay for all pieces.
    let mut resident: Vec<Option<D::Buf>> = Vec::with_capacity(data.len());
    for (k, i) in m.inputs.iter().enumerate() {
        let keep = i.cat == Cat::P || (is_inner(i.cat) && inner_whole);
        resident.push(if keep && mapped[k].is_none() {
            transfers.uploaded += host(k).len() as u64 * fsize;
            Some(dev.upload(host(k))?)
        } else {
            None
        });
    }
    let mut r0 = 0;
    while r0 < n_outer {
        let r1 = (r0 + outer_piece).min(n_outer);
        let rows = r1 - r0;
        let vbuf = match out_base {
            Some(_) => None,
            None => Some(dev.zeros(Some(p), rows * nv)?),
        };
        let vptr = match (&vbuf, out_base) {
            (Some(b), _) => dev.ptr(b),
            (None, base) => base.unwrap_or(0) + (r0 * nv) as u64 * fsize,
        };
        let ibuf = dev.zeros(None, rows * ni)?;
        let mut outer_bufs: Vec<Option<D::Buf>> = Vec::new();
        for (k, i) in m.inputs.iter().enumerate() {
            outer_bufs.push(if is_outer(i.cat) && mapped[k].is_none() {
                let rows = &host(k)[r0 * i.dim..r1 * i.dim];
                transfers.uploaded += rows.len() as u64 * fsize;
                Some(dev.upload(rows)?)
            } else {
                None
            });
        }
        for chunk in m.chunks.iter() {
            let piece_rows = inner_piece.min(n_inner) as u64;
            let lp = plan(
                chunk.shared_per_row,
                rows as u64,
                piece_rows,
                &limits,
                tuning,
            )
            .map_err(InputError::LaunchPlan)?;
            let (slices, slice) = match lp.scheme {
                Scheme::OneD => (1, piece_rows.max(1)),
                Scheme::TwoD { slices, slice } => (slices, slice),
            };
            let (piece_slices, slots) = partial_slots(slices, pieces_inner > 1);
            let two_d = piece_slices > 1;
            let partial_rows = slots as usize * rows;
            let pf = dev.zeros(Some(p), partial_rows * chunk.acc_floats)?;
            let pi = dev.zeros(None, partial_rows * chunk.acc_indices)?;
            let (pf_ptr, pi_ptr) = (dev.ptr(&pf), dev.ptr(&pi));
            for piece in 0..pieces_inner {
                let j0 = piece * inner_piece;
                let j1 = if inner_whole {
                    n_inner
                } else {
                    ((piece + 1) * inner_piece).min(n_inner)
                };
                let mut piece_bufs: Vec<Option<D::Buf>> = Vec::new();
                for (k, i) in m.inputs.iter().enumerate() {
                    let upload = !inner_whole && is_inner(i.cat) && mapped[k].is_none();
                    piece_bufs.push(if upload {
                        let rows = &host(k)[j0 * i.dim..j1 * i.dim];
                        transfers.uploaded += rows.len() as u64 * fsize;
                        Some(dev.upload(rows)?)
                    } else {
                        None
                    });
                }
                let mut params = vec![
                    rows as u64,
                    (j1 - j0) as u64,
                    vptr,
                    dev.ptr(&ibuf),
                    lp.tile_rows,
                    j0 as u64,
                ];
                for (k, i) in m.inputs.iter().enumerate() {
                    if let Some(base) = mapped[k] {
                        let first_row = if is_outer(i.cat) {
                            r0
                        } else if is_inner(i.cat) {
                            j0
                        } else {
                            0
                        };
                        params.push(base + (first_row * i.dim) as u64 * fsize);
                        continue;
                    }
                    let b = resident[k]
                        .as_ref()
                        .or(outer_bufs[k].as_ref())
                        .or(piece_bufs[k].as_ref());
                    params.push(b.map(|b| dev.ptr(b)).unwrap_or(0));
                }
                // The piece's rows in `slices` slices; a padding slice stays empty.
                let slice_len = if pieces_inner > 1 {
                    ((j1 - j0) as u64).div_ceil(slices).max(1)
                } else {
                    slice
                };
                let first_slot = u64::from(piece > 0);
                let off = first_slot * rows as u64;
                params.extend([
                    pf_ptr + off * chunk.acc_floats as u64 * fsize,
                    pi_ptr + off * chunk.acc_indices as u64 * 8,
                    slice_len,
                ]);
                let grid_y = if two_d { piece_slices } else { 1 };
                dev.launch(
                    &chunk.reduce,
                    (lp.grid_x, grid_y),
                    lp.block,
                    lp.shared_bytes,
                    &params,
                )?;
                if two_d {
                    let last = piece + 1 == pieces_inner;
                    let mut params = vec![
                        rows as u64,
                        n_inner as u64,
                        vptr,
                        dev.ptr(&ibuf),
                        lp.tile_rows,
                        0,
                    ];
                    params.extend(std::iter::repeat_n(0, m.inputs.len()));
                    params.extend([pf_ptr, pi_ptr, first_slot + piece_slices, u64::from(last)]);
                    dev.launch(&chunk.merge, (lp.grid_x, 1), lp.block, 0, &params)?;
                }
                // The piece's inputs are freed when `piece_bufs` drops: finish first.
                dev.sync()?;
            }
        }
        if let Some(b) = &vbuf {
            match host_out.as_deref_mut() {
                Some(h) => dev.download_into(b, &mut h[r0 * nv..r1 * nv])?,
                None => values.extend(dev.download::<T>(b, rows * nv)?),
            }
            transfers.downloaded += (rows * nv) as u64 * fsize;
        }
        indices.extend(dev.download_u64(&ibuf, rows * ni)?);
        transfers.downloaded += (rows * ni) as u64 * 8;
        r0 = r1;
    }
    if let (Some(r), Some(addr)) = (into, out_base) {
        dev.store(r, addr)?;
    }
    let out = Output {
        rows: n_outer,
        vdim: nv,
        values,
        idim: ni,
        indices,
    };
    Ok((out, transfers))
}

/// The SIMT interpreter as a device: the emulated backend.
pub(crate) struct SimtDevice<'k> {
    mem: GlobalMemory,
    kernels: HashMap<&'k str, &'k Kernel>,
    precision: Precision,
    limits: DeviceLimits,
    /// Bytes the emulated device holds.
    capacity: u64,
}

impl<'k> SimtDevice<'k> {
    /// A device running these kernels of precision `precision`, with these limits and
    /// memory size.
    pub(crate) fn new(
        kernels: impl IntoIterator<Item = &'k Kernel>,
        precision: Precision,
        limits: DeviceLimits,
        capacity: u64,
    ) -> Self {
        let kernels = kernels.into_iter().map(|k| (k.name.as_str(), k)).collect();
        SimtDevice {
            mem: GlobalMemory::new(),
            kernels,
            precision,
            limits,
            capacity,
        }
    }
}

fn emulated(e: impl std::fmt::Display) -> KeopsError {
    KeopsError::Compile(keops_ir::Error::new(
        keops_ir::ErrorKind::Limit,
        format!("emulated GPU: {e}"),
    ))
}

impl Device for SimtDevice<'_> {
    type Buf = u64;
    fn limits(&self) -> DeviceLimits {
        self.limits
    }
    fn free_memory(&self) -> Result<u64> {
        Ok(self.capacity.saturating_sub(self.mem.allocated() as u64))
    }
    fn upload<T: KeopsFloat>(&mut self, data: &[T]) -> Result<u64> {
        Ok(self.mem.upload_floats(data))
    }
    fn upload_u64(&mut self, data: &[u64]) -> Result<u64> {
        Ok(self.mem.upload_u64(data))
    }
    fn zeros(&mut self, p: Option<Precision>, n: usize) -> Result<u64> {
        let size = match p {
            Some(Precision::F32) => 4,
            _ => 8,
        };
        Ok(self.mem.alloc(n * size))
    }
    fn ptr(&self, b: &u64) -> u64 {
        *b
    }
    fn launch(
        &mut self,
        name: &str,
        grid: (u64, u64),
        block: u64,
        shared: u64,
        params: &[u64],
    ) -> Result<()> {
        let k = self
            .kernels
            .get(name)
            .ok_or_else(|| emulated(format!("no kernel `{name}`")))?;
        let (p, lim) = (self.precision, self.limits);
        if shared > lim.shared_optin.max(lim.shared_default) {
            return Err(emulated(format!("{shared} bytes of shared memory")));
        }
        let l = Launch {
            grid: [grid.0, grid.1],
            block,
            shared_bytes: shared,
        };
        match p {
            Precision::F32 => launch::<f32>(k, p, l, params, &mut self.mem),
            Precision::F64 => launch::<f64>(k, p, l, params, &mut self.mem),
        }
        .map_err(emulated)
    }
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
    fn download<T: KeopsFloat>(&mut self, b: &u64, n: usize) -> Result<Vec<T>> {
        self.mem.download_floats::<T>(*b, n).map_err(emulated)
    }
    fn download_u64(&mut self, b: &u64, n: usize) -> Result<Vec<u64>> {
        self.mem.download_u64(*b, n).map_err(emulated)
    }
    fn holds(&self, r: &Resident) -> bool {
        matches!(r.copy, Placement::Emulated(_))
    }
    fn map(&mut self, r: &Resident) -> Result<u64> {
        // The interpreter's memory lives for one call: the device copy is mapped into it
        // (what a real device holds across calls, the emulated one rebuilds).
        match &r.copy {
            Placement::Emulated(bytes) => Ok(self.mem.upload_bytes(bytes)),
            Placement::Gpu { .. } => {
                Err(emulated("a GPU device copy passed to the emulated device"))
            }
        }
    }
    fn store(&mut self, r: &mut Resident, addr: u64) -> Result<()> {
        let written = self.mem.allocation_bytes(addr).map_err(emulated)?;
        match &mut r.copy {
            Placement::Emulated(bytes) if bytes.len() == written.len() => {
                bytes.copy_from_slice(written);
                Ok(())
            }
            _ => Err(emulated("an output stored into another device's copy")),
        }
    }
}

#[cfg(test)]
mod tests {
    // The executor's items, named from the crate: a `super::` path here would read, to a
    // tool that checks the crate's imports file by file, as an import of `gpu` (the
    // parent of this file) instead of this module.
    use crate::gpu::exec::*;
    use keops_gpu_kernels::module::{ChunkMeta, GpuInput, InputSource};
    use keops_gpu_kernels::scheme::param::FIRST_INPUT;
    use std::borrow::Cow;

    fn module() -> GpuReduction {
        let input = |k, cat, dim| GpuInput {
            source: InputSource::Arg(k),
            cat,
            dim,
        };
        GpuReduction {
            ptx: Cow::Borrowed(""),
            precision: Precision::F64,
            fast_math: false,
            out_rows: Cat::I,
            out_values: 2,
            out_indices: 0,
            inputs: Cow::Owned(vec![
                input(0, Cat::I, 3),
                input(1, Cat::J, 3),
                input(2, Cat::J, 2),
            ]),
            chunks: Cow::Owned(vec![ChunkMeta {
                reduce: Cow::Borrowed("r"),
                merge: Cow::Borrowed("m"),
                shared_per_row: 40,
                acc_floats: 2,
                acc_indices: 0,
            }]),
        }
    }

    /// The footprint of `module()` with `n_outer` x `n_inner` rows, inputs on the host.
    fn footprint<'a>(
        m: &'a GpuReduction,
        n_outer: u64,
        n_inner: u64,
        tuning: &'a PlanOptions,
    ) -> Footprint<'a> {
        Footprint {
            m,
            fsize: 8,
            in_place: &[false; 3],
            out_in_place: false,
            n_outer,
            n_inner,
            limits: DeviceLimits::H100,
            tuning,
        }
    }

    #[test]
    fn pieces_fit_the_budget_and_cover_everything() {
        let (m, tuning) = (module(), PlanOptions::default());
        let f = footprint(&m, 300, 500, &tuning);
        assert_eq!(pieces(&f, u64::MAX).unwrap(), (300, 500));
        // Whole: x 300 x 24 bytes, y 500 x 24, b 500 x 16, outputs 300 x 16, no indices
        // (one padding element), each rounded up to 256 bytes; then the partials.
        let whole = 7_424 + 12_032 + 8_192 + 4_864 + 256;
        assert!(f.bytes(300, 500) >= whole);
        for budget in [8_000u64, 20_000, 50_000] {
            let (o, i) = pieces(&f, budget).unwrap();
            assert!(f.bytes(o, i) <= budget, "budget {budget}: pieces {o} x {i}");
            assert!(o >= 1 && i >= 1 && o <= 300 && i <= 500);
        }
        let (o, i) = pieces(&f, 8_000).unwrap();
        assert!(o < 300 && i < 500, "both indices split: {o} x {i}");
        // Device arrays read in place take nothing more.
        let in_place = footprint(&m, 300, 500, &tuning);
        let in_place = Footprint {
            in_place: &[false, true, true],
            ..in_place
        };
        assert!(in_place.bytes(300, 500) + 12_032 + 8_192 <= f.bytes(300, 500));
        // Not even one row of each fits: an error that says how much is needed.
        let e = pieces(&f, 1_200).unwrap_err();
        assert!(
            e.to_string().contains("with a single row of each index"),
            "{e}"
        );
    }

    /// A device that only records what the executor asks of it.
    #[derive(Default)]
    struct Recorder {
        /// Element counts of the float buffers made by `zeros` (outputs, partials).
        zeros: Vec<usize>,
        /// Parameters of the merge launches.
        merges: Vec<Vec<u64>>,
        reduces: usize,
    }

    impl Device for Recorder {
        type Buf = u64;
        fn limits(&self) -> DeviceLimits {
            DeviceLimits::H100
        }
        fn free_memory(&self) -> Result<u64> {
            Ok(1 << 40)
        }
        fn upload<T: KeopsFloat>(&mut self, _: &[T]) -> Result<u64> {
            Ok(0)
        }
        fn upload_u64(&mut self, _: &[u64]) -> Result<u64> {
            Ok(0)
        }
        fn zeros(&mut self, p: Option<Precision>, n: usize) -> Result<u64> {
            if p.is_some() {
                self.zeros.push(n);
            }
            Ok(0)
        }
        fn ptr(&self, _: &u64) -> u64 {
            0
        }
        fn launch(&mut self, name: &str, _: (u64, u64), _: u64, _: u64, p: &[u64]) -> Result<()> {
            match name {
                "m" => self.merges.push(p.to_vec()),
                _ => self.reduces += 1,
            }
            Ok(())
        }
        fn sync(&mut self) -> Result<()> {
            Ok(())
        }
        fn download<T: KeopsFloat>(&mut self, _: &u64, n: usize) -> Result<Vec<T>> {
            Ok(vec![T::zero(); n])
        }
        fn download_u64(&mut self, _: &u64, n: usize) -> Result<Vec<u64>> {
            Ok(vec![0; n])
        }
        fn holds(&self, _: &Resident) -> bool {
            false
        }
        fn map(&mut self, _: &Resident) -> Result<u64> {
            Ok(0)
        }
        fn store(&mut self, _: &mut Resident, _: u64) -> Result<()> {
            Ok(())
        }
    }

    /// Runs `module()` on a [`Recorder`] with `n_inner` reduced rows under a 2 MB budget:
    /// the recorder, and the number of reduced pieces and output pieces.
    fn record(n_outer: usize, n_inner: usize) -> (Recorder, usize, usize) {
        let m = module();
        let data = [
            InputData::Host(vec![0.0f64; n_outer * 3]),
            InputData::Host(vec![0.0; n_inner * 3]),
            InputData::Host(vec![0.0; n_inner * 2]),
        ];
        let mut dev = Recorder::default();
        let budget = 2_000_000;
        let opts = PlanOptions::default();
        let (out, _) = run(
            &mut dev,
            &m,
            &data,
            n_outer,
            n_inner,
            &opts,
            Some(budget),
            None,
            None,
        )
        .unwrap();
        assert_eq!(out.values.len(), n_outer * 2);
        let f = footprint(&m, n_outer as u64, n_inner as u64, &opts);
        let (outer, inner) = pieces(&f, budget).unwrap();
        (
            dev,
            n_inner.div_ceil(inner as usize),
            n_outer.div_ceil(outer as usize),
        )
    }

    #[test]
    fn partials_of_many_reduced_pieces_take_constant_memory() {
        // The reduced index in dozens of pieces: their partials are folded into slice 0
        // after each piece (one merge per piece, the last one finalizing), so the
        // partials buffer does not grow with the number of pieces.
        for n_outer in [2_000, 200_000] {
            let (small, pieces_small, _) = record(n_outer, 200_000);
            let (dev, pieces_inner, pieces_outer) = record(n_outer, 800_000);
            assert!(pieces_inner > 10, "{pieces_inner} reduced pieces");
            assert!(
                pieces_inner >= 3 * pieces_small,
                "{pieces_small} -> {pieces_inner}"
            );
            let largest = |r: &Recorder| r.zeros.iter().max().copied().unwrap();
            assert_eq!(largest(&dev), largest(&small), "{n_outer} output rows");
            assert_eq!(dev.reduces, pieces_inner * pieces_outer);
            assert_eq!(dev.merges.len(), pieces_inner * pieces_outer);
            // Merge parameters: slices to merge, then whether to finalize (last piece).
            let nparams = FIRST_INPUT + module().inputs.len() + 4;
            for (k, p) in dev.merges.iter().enumerate() {
                assert_eq!(p.len(), nparams);
                let piece = k % pieces_inner;
                let last = piece + 1 == pieces_inner;
                assert_eq!(p[nparams - 1], u64::from(last), "merge {k}");
                let first_slot = u64::from(piece > 0);
                assert!(p[nparams - 2] >= first_slot + 2, "merge {k}");
            }
        }
    }
}
