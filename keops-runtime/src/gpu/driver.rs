//! The CUDA driver, through cudarc with dynamic loading: nothing CUDA is needed to build,
//! and a binary starts on any machine; `libcuda` is looked for at the first GPU call.
//! This is the only module of the runtime with `unsafe` code.
//!
//! Per device: one context and stream, the device's launch limits, and the PTX modules
//! loaded so far (each module once per context). A step (a reduction or a gather) runs
//! in `with_module`: its module loaded, the device held for the call, the device-generic
//! executor uploads the inputs, runs every chunk's kernels with the plan of
//! [`keops_gpu_kernels::launch::plan`] (the 2D scheme when the output rows alone do not
//! fill the device), and downloads the outputs; when the data does not fit in device
//! memory, the output rows and the reduced rows are processed in pieces (partial
//! accumulators of the pieces merged by the merge kernel).

pub use crate::error::GpuError;
use crate::error::{KeopsError, Result};
use crate::gpu::exec::Device;
use crate::gpu::memory::{Buffer, Placement, Resident};
use crate::kernel::KeopsFloat;
use cudarc::driver::sys;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, DevicePtr, DriverError, LaunchConfig,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use keops_gpu_kernels::launch::DeviceLimits;
use keops_ir::lower::Precision;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Errors after which the context is unusable ("sticky" errors: a kernel fault).
fn loses_context(e: &DriverError) -> bool {
    use sys::CUresult::*;
    matches!(
        e.0,
        CUDA_ERROR_ILLEGAL_ADDRESS
            | CUDA_ERROR_LAUNCH_TIMEOUT
            | CUDA_ERROR_LAUNCH_FAILED
            | CUDA_ERROR_HARDWARE_STACK_ERROR
            | CUDA_ERROR_ILLEGAL_INSTRUCTION
            | CUDA_ERROR_MISALIGNED_ADDRESS
            | CUDA_ERROR_INVALID_ADDRESS_SPACE
            | CUDA_ERROR_INVALID_PC
            | CUDA_ERROR_ECC_UNCORRECTABLE
            | CUDA_ERROR_ASSERT
    )
}

/// Errors of loading a module that come from the JIT compiler (its log says why).
fn is_jit_error(e: &DriverError) -> bool {
    use sys::CUresult::*;
    matches!(
        e.0,
        CUDA_ERROR_INVALID_PTX
            | CUDA_ERROR_INVALID_IMAGE
            | CUDA_ERROR_NO_BINARY_FOR_GPU
            | CUDA_ERROR_UNSUPPORTED_PTX_VERSION
            | CUDA_ERROR_JIT_COMPILER_NOT_FOUND
            | CUDA_ERROR_SHARED_OBJECT_INIT_FAILED
    )
}

/// Whether the driver loads and device 0 opens (checked once) and is still usable: what
/// [`Backend::Auto`] runs on. A device that is present but cannot be opened (exclusive
/// mode, a MIG parent without compute instance) leaves Auto on the CPU, and so does a
/// device whose context a kernel fault destroyed (the call that faulted returned the
/// error; `Backend::Gpu(0)` keeps returning [`GpuError::ContextLost`]).
///
/// [`Backend::Auto`]: crate::Backend::Auto
pub fn available() -> bool {
    static OPENED: OnceLock<bool> = OnceLock::new();
    *OPENED.get_or_init(|| device_count().is_ok_and(|n| n > 0) && device(0).is_ok())
        && device(0).is_ok()
}

/// Number of devices; [`GpuError::NoDriver`] without `libcuda`.
pub fn device_count() -> Result<usize, GpuError> {
    // SAFETY: only tries to open the library by its names (libloading); cudarc would
    // panic on its first call without it, so this check comes first.
    if !unsafe { sys::is_culib_present() } {
        return Err(GpuError::NoDriver);
    }
    // SAFETY: the library is present; cuInit may be called any number of times.
    match unsafe { sys::cuInit(0) }.result() {
        // A driver without visible devices (CUDA_VISIBLE_DEVICES="", no GPU).
        Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => return Ok(0),
        r => r.map_err(|e| driver_error("cuInit", e))?,
    }
    CudaContext::device_count()
        .map(|n| n.max(0) as usize)
        .map_err(|e| driver_error("cuDeviceGetCount", e))
}

/// The name of device `index` as the driver reports it (opens the device at first use):
/// with [`crate::last_backend`], says which GPU a call ran on.
pub fn device_name(index: usize) -> Result<String, GpuError> {
    Ok(device(index)?.name.clone())
}

/// A device in use: context, stream, limits, loaded modules.
pub struct GpuDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Launch limits from the device's properties.
    pub limits: DeviceLimits,
    /// The device's name.
    pub name: String,
    modules: Mutex<HashMap<(usize, usize, u64), Arc<Loaded>>>,
    index: usize,
    /// The error that destroyed the context, if one did.
    lost: Mutex<Option<String>>,
    /// Held by each reduction or gather for its whole run (see [`with_module`]).
    calls: Mutex<()>,
}

/// A loaded module and its functions by name, with the most threads per block each
/// allows (its registers may make it fewer than the device's limit).
struct Loaded {
    _module: Arc<CudaModule>,
    functions: HashMap<String, (CudaFunction, u64)>,
}

/// The device with this index, opened at first use.
pub fn device(index: usize) -> Result<Arc<GpuDevice>, GpuError> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<GpuDevice>>>> = OnceLock::new();
    let devices = DEVICES.get_or_init(Default::default);
    let mut devices = devices.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = devices.get(&index) {
        d.usable()?;
        return Ok(d.clone());
    }
    let count = device_count()?;
    if index >= count {
        return Err(GpuError::NoDevice { index, count });
    }
    let ctx = CudaContext::new(index)
        .map_err(|e| driver_error("cuDeviceGet / cuDevicePrimaryCtxRetain", e))?;
    // SAFETY: every allocation, copy, launch and free of this context goes through its
    // one stream (`default_stream` below), in order: no use can overlap another stream's,
    // so cudarc's per-allocation events (two per allocation) are not needed.
    unsafe { ctx.disable_event_tracking() };
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
    let d = Arc::new(GpuDevice {
        ctx,
        stream,
        limits,
        name,
        modules: Mutex::new(HashMap::new()),
        index,
        lost: Mutex::new(None),
        calls: Mutex::new(()),
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

impl GpuDevice {
    /// [`GpuError::ContextLost`] once a kernel fault destroyed the context.
    fn usable(&self) -> Result<(), GpuError> {
        match &*self.lost.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(first) => Err(GpuError::ContextLost {
                index: self.index,
                first: first.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The error of a driver call on this device; an error that destroys the context
    /// makes later calls fail with [`GpuError::ContextLost`].
    fn fail(&self, call: &'static str, e: DriverError) -> GpuError {
        let lost = loses_context(&e);
        let err = driver_error(call, e);
        if lost {
            let mut l = self.lost.lock().unwrap_or_else(|p| p.into_inner());
            l.get_or_insert_with(|| err.to_string());
        }
        err
    }

    /// The module `ptx` with its kernels `entries`, loaded once per context.
    fn load(&self, ptx: &str, entries: &[&str]) -> Result<Arc<Loaded>, GpuError> {
        let key = (ptx.as_ptr() as usize, ptx.len(), hash(ptx));
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = modules.get(&key) {
            return Ok(l.clone());
        }
        if ptx.contains('\0') {
            return Err(GpuError::Jit {
                name: "CUDA_ERROR_INVALID_PTX".into(),
                log: "internal: the generated module contains a NUL byte".into(),
            });
        }
        let module = match self.ctx.load_module(Ptx::from_src(ptx.to_string())) {
            Ok(module) => module,
            Err(e) if is_jit_error(&e) => return Err(self.jit_log(ptx, e)),
            Err(e) => return Err(self.fail("cuModuleLoadData", e)),
        };
        let mut functions = HashMap::new();
        for name in entries {
            let f = module
                .load_function(name)
                .map_err(|e| self.fail("cuModuleGetFunction", e))?;
            // Dynamic shared memory up to the opt-in limit, set once here (the
            // kernels have no static shared memory): setting it at each launch would
            // race between threads launching the same kernel with other sizes.
            if self.limits.shared_optin > self.limits.shared_default {
                self.ctx
                    .bind_to_thread()
                    .map_err(|e| self.fail("cuCtxSetCurrent", e))?;
                f.set_attribute(
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    i32::try_from(self.limits.shared_optin).unwrap_or(i32::MAX),
                )
                .map_err(|e| self.fail("cuFuncSetAttribute", e))?;
            }
            let max_threads = f
                .max_threads_per_block()
                .map_err(|e| self.fail("cuFuncGetAttribute", e))?;
            functions.insert(name.to_string(), (f, max_threads.max(1) as u64));
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
        if end == 0 {
            // The load with a log did not fail the same way: not the JIT compiler's doing.
            return driver_error("cuModuleLoadData", first);
        }
        GpuError::Jit {
            name,
            log: String::from_utf8_lossy(&log[..end]).into_owned(),
        }
    }

    /// Launches `f` (which takes at most `max_threads` threads per block) with u64
    /// parameters.
    fn launch(
        &self,
        (f, max_threads): &(CudaFunction, u64),
        grid: (u64, u64),
        block: u64,
        shared: u64,
        params: &[u64],
    ) -> Result<(), GpuError> {
        let beyond = |what: &str, v: u64, max: u64| {
            GpuError::Launch(format!("{what} {v} beyond the device's limit {max}"))
        };
        let gx = u32::try_from(grid.0)
            .ok()
            .filter(|g| *g < 1 << 31)
            .ok_or_else(|| beyond("grid x", grid.0, (1 << 31) - 1))?;
        let gy = u32::try_from(grid.1)
            .ok()
            .filter(|g| *g <= 65535)
            .ok_or_else(|| beyond("grid y", grid.1, 65535))?;
        let max_block = self.limits.max_block.min(*max_threads);
        let bx = u32::try_from(block)
            .ok()
            .filter(|b| *b as u64 <= max_block)
            .ok_or_else(|| {
                GpuError::Launch(format!(
                    "block of {block} threads: this kernel allows at most {max_block} (its registers and the device's limit); use a smaller PlanOptions::block"
                ))
            })?;
        if shared > self.limits.shared_optin.max(self.limits.shared_default) {
            return Err(beyond("shared memory", shared, self.limits.shared_optin));
        }
        let cfg = LaunchConfig {
            grid_dim: (gx, gy, 1),
            block_dim: (bx, 1, 1),
            shared_mem_bytes: shared as u32,
        };
        let mut b = self.stream.launch_builder(f);
        for p in params {
            b.arg(p);
        }
        // SAFETY: every generated kernel takes exactly these u64 parameters (sizes, and
        // addresses of live device allocations of the sizes the kernel indexes: the
        // executor allocated them from the same sizes, or they are device arrays whose
        // shape and element type `Resident::describes` matched against the call's view);
        // grid, block (within the kernel's own limit) and shared memory (within the
        // attribute set at load) are checked above; the executor synchronizes the stream
        // before any allocation is read back, and frees are ordered on the same stream.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| self.fail("cuLaunchKernel", e))
    }

    fn sync(&self) -> Result<(), GpuError> {
        self.stream
            .synchronize()
            .map_err(|e| self.fail("cuStreamSynchronize", e))
    }

    /// Free and total device memory, in bytes.
    pub fn memory(&self) -> Result<(usize, usize), GpuError> {
        self.ctx
            .mem_get_info()
            .map_err(|e| driver_error("cuMemGetInfo", e))
    }
}

/// A device with a module loaded, as the executor sees it ([`with_module`]).
pub(crate) struct Ready<'a> {
    dev: &'a GpuDevice,
    index: usize,
    loaded: &'a Loaded,
}

impl Device for Ready<'_> {
    type Buf = Buffer;

    fn limits(&self) -> DeviceLimits {
        self.dev.limits
    }

    fn free_memory(&self) -> Result<u64> {
        Ok(self.dev.memory()?.0 as u64)
    }

    fn upload<T: KeopsFloat>(&mut self, data: &[T]) -> Result<Buffer> {
        Ok(upload_to(self.dev, data)?)
    }

    fn zeros(&mut self, p: Option<Precision>, n: usize) -> Result<Buffer> {
        let (stream, n) = (&self.dev.stream, n.max(1));
        let r = match p {
            Some(Precision::F32) => stream.alloc_zeros::<f32>(n).map(Buffer::F32),
            Some(Precision::F64) => stream.alloc_zeros::<f64>(n).map(Buffer::F64),
            None => stream.alloc_zeros::<u64>(n).map(Buffer::U64),
        };
        Ok(r.map_err(|e| self.dev.fail("cuMemAlloc", e))?)
    }

    fn ptr(&self, b: &Buffer) -> u64 {
        let stream = &self.dev.stream;
        match b {
            Buffer::F32(s) => s.device_ptr(stream).0,
            Buffer::F64(s) => s.device_ptr(stream).0,
            Buffer::U64(s) => s.device_ptr(stream).0,
        }
    }

    fn launch(
        &mut self,
        name: &str,
        grid: (u64, u64),
        block: u64,
        shared: u64,
        params: &[u64],
    ) -> Result<()> {
        let f = self
            .loaded
            .functions
            .get(name)
            .ok_or_else(|| GpuError::Jit {
                name: "CUDA_ERROR_NOT_FOUND".into(),
                log: format!("internal: no kernel `{name}` in the module"),
            })?;
        Ok(self.dev.launch(f, grid, block, shared, params)?)
    }

    fn sync(&mut self) -> Result<()> {
        Ok(self.dev.sync()?)
    }

    fn download<T: KeopsFloat>(&mut self, b: &Buffer, n: usize) -> Result<Vec<T>> {
        download_from(self.dev, b, n)
    }

    fn download_into<T: KeopsFloat>(&mut self, b: &Buffer, out: &mut [T]) -> Result<()> {
        let (dev, n) = (self.dev, out.len());
        let stream = &dev.stream;
        // Straight into the caller's rows when the buffer holds `T`s, else converted.
        let direct = match b {
            _ if n == 0 => return Ok(()),
            Buffer::F32(s) if s.len() >= n => {
                T::as_f32_mut(&mut *out).map(|o| stream.memcpy_dtoh(&s.slice(..n), o))
            }
            Buffer::F64(s) if s.len() >= n => {
                T::as_f64_mut(&mut *out).map(|o| stream.memcpy_dtoh(&s.slice(..n), o))
            }
            _ => None,
        };
        match direct {
            Some(r) => {
                r.map_err(|e| dev.fail("cuMemcpyDtoH", e))?;
                // Copies to pageable memory may return before they complete.
                Ok(dev.sync()?)
            }
            None => {
                out.copy_from_slice(&download_from::<T>(dev, b, n)?);
                Ok(())
            }
        }
    }

    fn holds(&self, r: &Resident) -> bool {
        matches!(r.copy, Placement::Gpu { device, .. } if device == self.index)
    }

    fn map(&mut self, r: &Resident) -> Result<u64> {
        match &r.copy {
            Placement::Gpu { device, buf } if *device == self.index => Ok(self.ptr(buf)),
            _ => Err(KeopsError::internal(
                "a device copy of another device passed to a GPU call",
            )),
        }
    }

    fn store(&mut self, _: &mut Resident, _: u64) -> Result<()> {
        // The kernels wrote the device copy itself.
        Ok(())
    }

    fn upload_u64(&mut self, data: &[u64]) -> Result<Buffer> {
        let stream = &self.dev.stream;
        let r = if data.is_empty() {
            stream.alloc_zeros::<u64>(1)
        } else {
            stream.clone_htod(data)
        };
        Ok(Buffer::U64(
            r.map_err(|e| self.dev.fail("cuMemcpyHtoD", e))?,
        ))
    }

    fn download_u64(&mut self, b: &Buffer, n: usize) -> Result<Vec<u64>> {
        match b {
            _ if n == 0 => Ok(Vec::new()),
            Buffer::U64(s) => {
                let dev = self.dev;
                let v = dev
                    .stream
                    .clone_dtoh(&s.slice(..n.min(s.len())))
                    .map_err(|e| dev.fail("cuMemcpyDtoH", e))?;
                // Copies to pageable memory may return before they complete.
                dev.sync()?;
                Ok(v)
            }
            _ => Err(KeopsError::internal("index download of a float buffer")),
        }
    }
}

/// A new device allocation holding `data`, in the precision of `T` (one zero when `data`
/// is empty: the driver's allocations of 0 bytes are not specified).
fn upload_to<T: KeopsFloat>(dev: &GpuDevice, data: &[T]) -> Result<Buffer, GpuError> {
    let stream = &dev.stream;
    let r = match (T::BITS, data.is_empty()) {
        (32, true) => stream.alloc_zeros::<f32>(1).map(Buffer::F32),
        (_, true) => stream.alloc_zeros::<f64>(1).map(Buffer::F64),
        (32, false) => {
            let v: Vec<f32> = data.iter().map(|x| x.f64() as f32).collect();
            stream.clone_htod(&v[..]).map(Buffer::F32)
        }
        (_, false) => {
            let v: Vec<f64> = data.iter().map(|x| x.f64()).collect();
            stream.clone_htod(&v[..]).map(Buffer::F64)
        }
    };
    r.map_err(|e| dev.fail("cuMemcpyHtoD", e))
}

/// The first `n` floats of a float buffer, copied to the host.
fn download_from<T: KeopsFloat>(dev: &GpuDevice, b: &Buffer, n: usize) -> Result<Vec<T>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let stream = &dev.stream;
    let r = match b {
        Buffer::F32(s) => stream
            .clone_dtoh(&s.slice(..n.min(s.len())))
            .map(|v| v.into_iter().map(|x| T::of(x as f64)).collect()),
        Buffer::F64(s) => stream
            .clone_dtoh(&s.slice(..n.min(s.len())))
            .map(|v| v.into_iter().map(T::of).collect()),
        Buffer::U64(_) => {
            return Err(KeopsError::internal("float download of an index buffer"));
        }
    };
    let values = r.map_err(|e| dev.fail("cuMemcpyDtoH", e))?;
    // Copies to pageable memory may return before they complete.
    dev.sync()?;
    Ok(values)
}

/// The first `n` values of a [`DeviceArray`](super::DeviceArray)'s device copy.
pub(crate) fn download_resident<T: KeopsFloat>(
    index: usize,
    buf: &Buffer,
    n: usize,
) -> Result<Vec<T>> {
    let dev = device(index)?;
    download_from(&dev, buf, n)
}

/// A copy of `data` on device `index`, for a [`DeviceArray`](super::DeviceArray).
pub(crate) fn upload_resident<T: KeopsFloat>(index: usize, data: &[T]) -> Result<Buffer> {
    let dev = device(index)?;
    let buf = upload_to(&dev, data)?;
    dev.sync()?;
    Ok(buf)
}

/// Writes `data` over a device copy made by [`upload_resident`] (same length).
pub(crate) fn write_resident<T: KeopsFloat>(
    index: usize,
    buf: &mut Buffer,
    data: &[T],
) -> Result<()> {
    let dev = device(index)?;
    let stream = &dev.stream;
    let r = match buf {
        // An empty array's copy is one padding element: nothing to write.
        Buffer::F32(_) | Buffer::F64(_) if data.is_empty() => return Ok(()),
        Buffer::F32(s) if s.len() == data.len() => {
            let v: Vec<f32> = data.iter().map(|x| x.f64() as f32).collect();
            stream.memcpy_htod(&v[..], s)
        }
        Buffer::F64(s) if s.len() == data.len() => {
            let v: Vec<f64> = data.iter().map(|x| x.f64()).collect();
            stream.memcpy_htod(&v[..], s)
        }
        _ => {
            return Err(KeopsError::internal(
                "a device copy written with values of another type or length",
            ));
        }
    };
    r.map_err(|e| dev.fail("cuMemcpyHtoD", e))?;
    Ok(dev.sync()?)
}

/// Runs `f` on device `dev` with the module `ptx` (its kernels `entries`) loaded, holding
/// the device for the whole call: reductions and gathers run one at a time per device
/// (they share its one stream, so the GPU ran them one after the other anyway, and each
/// sizes its pieces from the memory free when it starts, which a concurrent call would
/// take).
pub(crate) fn with_module<R>(
    dev: &GpuDevice,
    ptx: &str,
    entries: &[&str],
    f: impl FnOnce(&mut Ready<'_>) -> Result<R>,
) -> Result<R> {
    let loaded = dev.load(ptx, entries)?;
    let _one_at_a_time = dev.calls.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut Ready {
        dev,
        index: dev.index,
        loaded: &loaded,
    })
}
