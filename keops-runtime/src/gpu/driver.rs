//! The CUDA driver, through cudarc with dynamic loading: nothing CUDA is needed to build,
//! and a binary starts on any machine; `libcuda` is looked for at the first GPU call.
//! This is the only module of the runtime with `unsafe` code.
//!
//! Per device: one context and stream, the device's launch limits, and the PTX modules
//! loaded so far (each module once per context). A reduction uploads its inputs, runs
//! every chunk's kernels with the plan of [`keops_gpu_kernels::launch::plan`] (the 2D
//! scheme when the output rows alone do not fill the device), and downloads the outputs;
//! when the data does not fit in device memory, the output rows and the reduced rows are
//! processed in pieces (partial accumulators of the pieces merged by the merge kernel).

use super::{ModuleRef, StepCall, contiguous, module_for, sizes};
use crate::KeopsFloat;
use crate::error::{KeopsError, Result};
use crate::options::Options;
use cudarc::driver::sys;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DriverError,
    LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use keops_gpu_kernels::launch::{DeviceLimits, PlanOptions, Scheme, plan};
use keops_gpu_kernels::module::GpuReduction;
use keops_ir::eval::Output;
use keops_ir::lower::Precision;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// An error of the GPU backend, with what the driver said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// `libcuda` could not be loaded: no NVIDIA driver on this machine.
    #[error(
        "no NVIDIA driver: libcuda could not be loaded; install the NVIDIA driver, or run on the CPU (Backend::Cpu or Auto)"
    )]
    NoDriver,
    /// The driver loaded but there is no such device.
    #[error("no GPU with index {index}: the driver reports {count} device(s)")]
    NoDevice {
        /// The index asked for.
        index: usize,
        /// Devices present.
        count: usize,
    },
    /// A driver call failed.
    #[error("CUDA error {name} (code {code}) in {call}: {description}")]
    Driver {
        /// The driver function.
        call: &'static str,
        /// `CUresult` value.
        code: u32,
        /// Its name (`CUDA_ERROR_...`).
        name: String,
        /// The driver's description.
        description: String,
    },
    /// The driver's JIT compiler rejected a generated module (a keops-rs bug).
    #[error("the driver rejected a generated PTX module ({name}); its log:\n{log}")]
    Jit {
        /// The `CUresult` name.
        name: String,
        /// The JIT compiler's error log.
        log: String,
    },
    /// Device memory ran out even for the smallest pieces.
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
}

impl From<GpuError> for KeopsError {
    fn from(e: GpuError) -> Self {
        KeopsError::Gpu(e)
    }
}

fn driver_error(call: &'static str, e: DriverError) -> GpuError {
    let name = e
        .error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0));
    let description = e
        .error_string()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        return GpuError::OutOfMemory(format!("{call}: {description}"));
    }
    GpuError::Driver {
        call,
        code: e.0 as u32,
        name,
        description,
    }
}

/// Whether the driver loads and reports at least one device (checked once).
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| device_count().is_ok_and(|n| n > 0))
}

/// Number of devices; [`GpuError::NoDriver`] without `libcuda`.
pub fn device_count() -> Result<usize, GpuError> {
    // SAFETY: only tries to open the library by its names (libloading); cudarc would
    // panic on its first call without it, so this check comes first.
    if !unsafe { sys::is_culib_present() } {
        return Err(GpuError::NoDriver);
    }
    // SAFETY: the library is present; cuInit may be called any number of times.
    unsafe { sys::cuInit(0) }
        .result()
        .map_err(|e| driver_error("cuInit", e))?;
    CudaContext::device_count()
        .map(|n| n.max(0) as usize)
        .map_err(|e| driver_error("cuDeviceGetCount", e))
}

/// A device in use: context, stream, limits, loaded modules.
pub struct Device {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Launch limits from the device's properties.
    pub limits: DeviceLimits,
    /// The device's name.
    pub name: String,
    modules: Mutex<HashMap<(usize, usize, u64), Arc<Loaded>>>,
}

/// A loaded module and its functions by name.
struct Loaded {
    _module: Arc<CudaModule>,
    functions: HashMap<String, CudaFunction>,
}

/// The device with this index, opened at first use.
pub fn device(index: usize) -> Result<Arc<Device>, GpuError> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<Device>>>> = OnceLock::new();
    let devices = DEVICES.get_or_init(Default::default);
    let mut devices = devices.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = devices.get(&index) {
        return Ok(d.clone());
    }
    let count = device_count()?;
    if index >= count {
        return Err(GpuError::NoDevice { index, count });
    }
    let ctx = CudaContext::new(index).map_err(|e| driver_error("cuDevicePrimaryCtxRetain", e))?;
    let attr = |a: sys::CUdevice_attribute| -> Result<u64, GpuError> {
        ctx.attribute(a)
            .map(|v| v.max(0) as u64)
            .map_err(|e| driver_error("cuDeviceGetAttribute", e))
    };
    use sys::CUdevice_attribute::*;
    let limits = DeviceLimits {
        multiprocessors: attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        max_block: attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK)?,
        shared_default: attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK)?,
        shared_optin: attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?,
    };
    let name = ctx.name().unwrap_or_else(|_| format!("GPU {index}"));
    let stream = ctx.default_stream();
    let d = Arc::new(Device {
        ctx,
        stream,
        limits,
        name,
        modules: Mutex::new(HashMap::new()),
    });
    devices.insert(index, d.clone());
    Ok(d)
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

impl Device {
    /// The module of `m`, loaded once per context.
    fn load(&self, m: &GpuReduction) -> Result<Arc<Loaded>, GpuError> {
        let key = (m.ptx.as_ptr() as usize, m.ptx.len(), hash(&m.ptx));
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = modules.get(&key) {
            return Ok(l.clone());
        }
        let module = match self.ctx.load_module(Ptx::from_src(m.ptx.to_string())) {
            Ok(module) => module,
            Err(e) => return Err(self.jit_log(&m.ptx, e)),
        };
        let mut functions = HashMap::new();
        for c in m.chunks.iter() {
            for name in [&c.reduce, &c.merge] {
                let f = module
                    .load_function(name)
                    .map_err(|e| driver_error("cuModuleGetFunction", e))?;
                functions.insert(name.to_string(), f);
            }
        }
        let l = Arc::new(Loaded {
            _module: module,
            functions,
        });
        modules.insert(key, l.clone());
        Ok(l)
    }

    /// Loads `ptx` again with an error log buffer, to report what the JIT compiler said.
    fn jit_log(&self, ptx: &str, first: DriverError) -> GpuError {
        let name = first
            .error_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(src) = std::ffi::CString::new(ptx) else {
            return GpuError::Jit {
                name,
                log: "the module contains a NUL byte".into(),
            };
        };
        let mut log = vec![0u8; 16384];
        let mut options = [
            sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER,
            sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
        ];
        let mut values: [*mut std::ffi::c_void; 2] =
            [log.as_mut_ptr().cast(), log.len() as *mut std::ffi::c_void];
        let mut module: sys::CUmodule = std::ptr::null_mut();
        if self.ctx.bind_to_thread().is_ok() {
            // SAFETY: `src` is a NUL-terminated image that outlives the call; the two
            // options point to a writable buffer of the size given (passed by value, as
            // the driver API specifies for the size option); `module` is a valid out
            // pointer, unloaded below if the load unexpectedly succeeds.
            let r = unsafe {
                sys::cuModuleLoadDataEx(
                    &mut module,
                    src.as_ptr().cast(),
                    2,
                    options.as_mut_ptr(),
                    values.as_mut_ptr(),
                )
            };
            if r == sys::CUresult::CUDA_SUCCESS && !module.is_null() {
                // SAFETY: the module was just loaded by this thread's context.
                unsafe { sys::cuModuleUnload(module) };
            }
        }
        let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
        GpuError::Jit {
            name,
            log: String::from_utf8_lossy(&log[..end]).into_owned(),
        }
    }

    fn upload<T: KeopsFloat>(&self, data: &[T]) -> Result<Buffer, GpuError> {
        let r = if T::BITS == 32 {
            let v: Vec<f32> = data.iter().map(|x| x.f64() as f32).collect();
            self.stream.clone_htod(&v[..]).map(Buffer::F32)
        } else {
            let v: Vec<f64> = data.iter().map(|x| x.f64()).collect();
            self.stream.clone_htod(&v[..]).map(Buffer::F64)
        };
        r.map_err(|e| driver_error("cuMemcpyHtoD", e))
    }

    fn zeros(&self, p: Precision, n: usize) -> Result<Buffer, GpuError> {
        let n = n.max(1);
        match p {
            Precision::F32 => self.stream.alloc_zeros::<f32>(n).map(Buffer::F32),
            Precision::F64 => self.stream.alloc_zeros::<f64>(n).map(Buffer::F64),
        }
        .map_err(|e| driver_error("cuMemAlloc", e))
    }

    fn zeros_u64(&self, n: usize) -> Result<Buffer, GpuError> {
        self.stream
            .alloc_zeros::<u64>(n.max(1))
            .map(Buffer::U64)
            .map_err(|e| driver_error("cuMemAlloc", e))
    }

    fn ptr(&self, b: &Buffer) -> u64 {
        match b {
            Buffer::F32(s) => s.device_ptr(&self.stream).0,
            Buffer::F64(s) => s.device_ptr(&self.stream).0,
            Buffer::U64(s) => s.device_ptr(&self.stream).0,
        }
    }

    fn download<T: KeopsFloat>(&self, b: &Buffer, n: usize) -> Result<Vec<T>, GpuError> {
        let r = match b {
            Buffer::F32(s) => self
                .stream
                .clone_dtoh(s)
                .map(|v| v.into_iter().take(n).map(|x| T::of(x as f64)).collect()),
            Buffer::F64(s) => self
                .stream
                .clone_dtoh(s)
                .map(|v| v.into_iter().take(n).map(T::of).collect()),
            Buffer::U64(_) => {
                return Err(GpuError::OutOfMemory(
                    "internal: float download of an index buffer".into(),
                ));
            }
        };
        r.map_err(|e| driver_error("cuMemcpyDtoH", e))
    }

    fn download_u64(&self, b: &Buffer, n: usize) -> Result<Vec<u64>, GpuError> {
        match b {
            Buffer::U64(s) => self
                .stream
                .clone_dtoh(s)
                .map(|mut v| {
                    v.truncate(n);
                    v
                })
                .map_err(|e| driver_error("cuMemcpyDtoH", e)),
            _ => Err(GpuError::OutOfMemory(
                "internal: index download of a float buffer".into(),
            )),
        }
    }

    /// Launches `f` with u64 parameters.
    fn launch(
        &self,
        f: &CudaFunction,
        grid: (u64, u64),
        block: u64,
        shared: u64,
        params: &[u64],
    ) -> Result<(), GpuError> {
        let too_big = |what: &str, v: u64, max: u64| {
            GpuError::OutOfMemory(format!(
                "launch of {what} {v} beyond the device's limit {max}"
            ))
        };
        let gx = u32::try_from(grid.0)
            .ok()
            .filter(|g| *g < 1 << 31)
            .ok_or_else(|| too_big("grid x", grid.0, (1 << 31) - 1))?;
        let gy = u32::try_from(grid.1)
            .ok()
            .filter(|g| *g <= 65535)
            .ok_or_else(|| too_big("grid y", grid.1, 65535))?;
        if shared > self.limits.shared_default {
            f.set_attribute(
                sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                shared as i32,
            )
            .map_err(|e| driver_error("cuFuncSetAttribute", e))?;
        }
        let cfg = LaunchConfig {
            grid_dim: (gx, gy, 1),
            block_dim: (block as u32, 1, 1),
            shared_mem_bytes: shared as u32,
        };
        let mut b = self.stream.launch_builder(f);
        for p in params {
            b.arg(p);
        }
        // SAFETY: every generated kernel takes exactly these u64 parameters (sizes, and
        // pointers to live device allocations of the sizes the kernel indexes: the caller
        // allocated them from the same sizes); the launch configuration respects the
        // device's limits (checked above and by the launch plan), and the stream is
        // synchronized before any of the allocations is dropped or read back.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| driver_error("cuLaunchKernel", e))
    }

    fn sync(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(|e| driver_error("cuStreamSynchronize", e))
    }

    /// Free and total device memory, in bytes.
    pub fn memory(&self) -> Result<(usize, usize), GpuError> {
        self.ctx
            .mem_get_info()
            .map_err(|e| driver_error("cuMemGetInfo", e))
    }
}

/// A device allocation.
enum Buffer {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    U64(CudaSlice<u64>),
}

/// Runs a reduction step on device `index`.
pub(crate) fn reduce<T: KeopsFloat>(
    call: &StepCall<'_, '_, T>,
    options: &Options,
    index: usize,
) -> Result<Output<T>> {
    let dev = device(index)?;
    let module: ModuleRef = module_for(call, options.fast_math)?;
    let m = module.get();
    let loaded = dev.load(m)?;
    let data = contiguous(m, call)?;
    let (n_outer, n_inner) = sizes(m, call.m, call.n);
    let out = run(&dev, &loaded, m, &data, n_outer, n_inner, &options.gpu)?;
    Ok(out)
}

/// Rows of output and of the reduced index per piece, so that a piece's data fits in
/// the free device memory (with a margin for the runtime's own allocations).
fn pieces(m: &GpuReduction, fsize: u64, n_outer: u64, n_inner: u64, free: u64) -> (u64, u64) {
    let budget = free / 10 * 8;
    let width = |outer: bool| -> u64 {
        m.inputs
            .iter()
            .filter(|i| (i.cat == m.out_rows) == outer && i.cat != keops_ir::graph::Cat::P)
            .map(|i| i.dim as u64 * fsize)
            .sum()
    };
    let acc: u64 = m
        .chunks
        .iter()
        .map(|c| c.acc_floats as u64 * fsize + c.acc_indices as u64 * 8)
        .max()
        .unwrap_or(0);
    let out_row = m.out_values as u64 * fsize + m.out_indices as u64 * 8 + 2 * acc + width(true);
    let in_row = width(false);
    let (mut outer, mut inner) = (n_outer.max(1), n_inner.max(1));
    while outer * out_row + inner * in_row > budget && (outer > 1 || inner > 1) {
        if outer * out_row >= inner * in_row && outer > 1 {
            outer = outer.div_ceil(2);
        } else {
            inner = inner.div_ceil(2);
        }
    }
    (outer, inner)
}

#[allow(clippy::too_many_arguments)]
fn run<T: KeopsFloat>(
    dev: &Device,
    loaded: &Loaded,
    m: &GpuReduction,
    data: &[Vec<T>],
    n_outer: usize,
    n_inner: usize,
    tuning: &PlanOptions,
) -> Result<Output<T>> {
    let p = m.precision;
    let fsize = (T::BITS / 8) as u64;
    let (nv, ni) = (m.out_values, m.out_indices);
    let mut values: Vec<T> = Vec::new();
    let mut indices: Vec<u64> = Vec::new();
    values
        .try_reserve_exact(n_outer * nv)
        .map_err(|_| KeopsError::OutOfMemory(format!("{} output values", n_outer * nv)))?;
    indices
        .try_reserve_exact(n_outer * ni)
        .map_err(|_| KeopsError::OutOfMemory(format!("{} output indices", n_outer * ni)))?;
    if n_outer == 0 {
        return Ok(Output {
            rows: 0,
            vdim: nv,
            values,
            idim: ni,
            indices,
        });
    }
    let (free, _) = dev.memory()?;
    let (outer_piece, inner_piece) = pieces(m, fsize, n_outer as u64, n_inner as u64, free as u64);
    let (outer_piece, inner_piece) = (outer_piece as usize, inner_piece as usize);
    let is_outer = |c: keops_ir::graph::Cat| c == m.out_rows;
    // Parameters and, when they fit whole, the reduced variables stay for all pieces.
    let inner_whole = inner_piece >= n_inner;
    let mut resident: Vec<Option<Buffer>> = Vec::with_capacity(data.len());
    for (i, d) in m.inputs.iter().zip(data) {
        let keep = i.cat == keops_ir::graph::Cat::P || (!is_outer(i.cat) && inner_whole);
        resident.push(if keep { Some(dev.upload(d)?) } else { None });
    }
    let mut r0 = 0;
    while r0 < n_outer {
        let r1 = (r0 + outer_piece).min(n_outer);
        let rows = r1 - r0;
        let vbuf = dev.zeros(p, rows * nv)?;
        let ibuf = dev.zeros_u64(rows * ni)?;
        let mut outer_bufs: Vec<Option<Buffer>> = Vec::new();
        for (i, d) in m.inputs.iter().zip(data) {
            outer_bufs.push(if is_outer(i.cat) {
                Some(dev.upload(&d[r0 * i.dim..r1 * i.dim])?)
            } else {
                None
            });
        }
        for chunk in m.chunks.iter() {
            let f_reduce = &loaded.functions[chunk.reduce.as_ref()];
            let f_merge = &loaded.functions[chunk.merge.as_ref()];
            let pieces_inner = n_inner.div_ceil(inner_piece.max(1)).max(1);
            let lp = plan(
                chunk.shared_per_row,
                rows as u64,
                inner_piece.min(n_inner) as u64,
                &dev.limits,
                tuning,
            )
            .map_err(|e| KeopsError::input(e.to_string()))?;
            let (slices, slice) = match lp.scheme {
                Scheme::OneD => (1, (inner_piece.min(n_inner) as u64).max(1)),
                Scheme::TwoD { slices, slice } => (slices, slice),
            };
            // With several pieces of the reduced index, each piece writes partials (a
            // second, empty slice makes a one-slice piece write them too) merged at the end.
            let piece_slices = if pieces_inner > 1 {
                slices.max(2)
            } else {
                slices
            };
            let total_slices = piece_slices * pieces_inner as u64;
            let two_d = total_slices > 1;
            let pf = dev.zeros(
                p,
                if two_d {
                    total_slices as usize * rows * chunk.acc_floats
                } else {
                    0
                },
            )?;
            let pi = dev.zeros_u64(if two_d {
                total_slices as usize * rows * chunk.acc_indices
            } else {
                0
            })?;
            let (pf_ptr, pi_ptr) = (dev.ptr(&pf), dev.ptr(&pi));
            for piece in 0..pieces_inner {
                let j0 = piece * inner_piece;
                let j1 = ((piece + 1) * inner_piece).min(n_inner);
                let piece_bufs: Vec<Option<Buffer>> = if inner_whole {
                    Vec::new()
                } else {
                    let mut v = Vec::new();
                    for (i, d) in m.inputs.iter().zip(data) {
                        let inner = !is_outer(i.cat) && i.cat != keops_ir::graph::Cat::P;
                        v.push(if inner {
                            Some(dev.upload(&d[j0 * i.dim..j1 * i.dim])?)
                        } else {
                            None
                        });
                    }
                    v
                };
                let mut params = vec![
                    rows as u64,
                    (j1 - j0) as u64,
                    dev.ptr(&vbuf),
                    dev.ptr(&ibuf),
                    lp.tile_rows,
                    j0 as u64,
                ];
                for k in 0..m.inputs.len() {
                    let b = resident[k]
                        .as_ref()
                        .or(outer_bufs[k].as_ref())
                        .or(piece_bufs.get(k).and_then(Option::as_ref));
                    params.push(b.map(|b| dev.ptr(b)).unwrap_or(0));
                }
                // The piece's rows in `slices` slices; a padding slice stays empty.
                let slice_len = if pieces_inner > 1 {
                    ((j1 - j0) as u64).div_ceil(slices).max(1)
                } else {
                    slice
                };
                let off = piece as u64 * piece_slices * rows as u64;
                params.extend([
                    pf_ptr + off * chunk.acc_floats as u64 * fsize,
                    pi_ptr + off * chunk.acc_indices as u64 * 8,
                    slice_len,
                ]);
                dev.launch(
                    f_reduce,
                    (lp.grid_x, if two_d { piece_slices } else { 1 }),
                    lp.block,
                    lp.shared_bytes,
                    &params,
                )?;
                if !inner_whole {
                    dev.sync()?;
                }
            }
            if two_d {
                let mut params = vec![
                    rows as u64,
                    n_inner as u64,
                    dev.ptr(&vbuf),
                    dev.ptr(&ibuf),
                    lp.tile_rows,
                    0,
                ];
                params.extend(std::iter::repeat_n(0, m.inputs.len()));
                params.extend([pf_ptr, pi_ptr, total_slices]);
                dev.launch(f_merge, (lp.grid_x, 1), lp.block, 0, &params)?;
            }
            dev.sync()?;
        }
        values.extend(dev.download::<T>(&vbuf, rows * nv)?);
        indices.extend(dev.download_u64(&ibuf, rows * ni)?);
        r0 = r1;
    }
    Ok(Output {
        rows: n_outer,
        vdim: nv,
        values,
        idim: ni,
        indices,
    })
}
