//! The exported driver API: thin `extern "C"` wrappers over one global [`State`], under
//! the symbol names cudarc loads (`_v2` where the driver's header maps a name to one).
//!
//! Every function follows the CUDA driver API's contract: the pointers it is given are
//! null or valid for the reads and writes that function documents (host buffers of the
//! sizes given, `kernelParams` with one pointer per kernel parameter, each to a `u64`).
//! Null output pointers are `CUDA_ERROR_INVALID_VALUE`; outputs are written only on
//! success. Handles are opaque values (never dereferenced), checked against the model.
#![allow(non_snake_case)] // the driver's names
#![allow(clippy::missing_safety_doc)] // the contract is the module's, above

use crate::codes::*;
use crate::state::{Config, CuError, CuResult, State, fail};
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

/// An opaque handle (`CUcontext`, `CUmodule`, `CUfunction`, `CUstream`, `CUevent`).
pub type Handle = *mut c_void;

/// The model; `None` until `cuInit`.
static STATE: Mutex<Option<Result<State, CuError>>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Result<State, CuError>>> {
    // A panic is caught before it can poison the lock (see `run`).
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

fn handle(h: u64) -> Handle {
    std::ptr::without_provenance_mut(h as usize)
}

fn raw(h: Handle) -> u64 {
    h.addr() as u64
}

/// Runs `f` on the model: `CUDA_ERROR_NOT_INITIALIZED` before `cuInit`; a panic of the
/// model is `CUDA_ERROR_UNKNOWN` rather than an abort of the process.
fn run<T>(call: &str, f: impl FnOnce(&mut State) -> CuResult<T>) -> Result<T, CuError> {
    let mut guard = lock();
    let Some(Ok(state)) = guard.as_mut() else {
        return fail(
            CUDA_ERROR_NOT_INITIALIZED,
            "cuInit was not called, or failed",
        );
    };
    let log = state.config().log_errors;
    let r = catch_unwind(AssertUnwindSafe(|| f(state))).unwrap_or_else(|panic| {
        let msg = crate::state::panic_message(&*panic);
        fail(CUDA_ERROR_UNKNOWN, format!("internal error: {msg}"))
    });
    if let Err(e) = &r
        && (log || e.code == CUDA_ERROR_UNKNOWN)
    {
        let name = name(e.code).map_or("?".into(), |n| n.to_string_lossy());
        eprintln!("keops-fake-cuda: {call}: {name}: {}", e.why);
    }
    r
}

/// The `CUresult` of `r`, calling `write` with the value on success.
fn done<T>(r: Result<T, CuError>, write: impl FnOnce(T)) -> u32 {
    match r {
        Ok(v) => {
            write(v);
            CUDA_SUCCESS
        }
        Err(e) => e.code,
    }
}

/// A call without outputs.
fn status(call: &str, f: impl FnOnce(&mut State) -> CuResult<()>) -> u32 {
    done(run(call, f), drop)
}

/// A call with one output, written through `out` on success.
unsafe fn output<T>(call: &str, out: *mut T, f: impl FnOnce(&mut State) -> CuResult<T>) -> u32 {
    let r = run(call, |s| {
        nonnull(out)?;
        f(s)
    });
    // SAFETY: `out` is not null (checked above) and valid for a write (the contract).
    done(r, |v| unsafe { out.write(v) })
}

fn nonnull<T>(p: *const T) -> CuResult<()> {
    match p.is_null() {
        true => fail(CUDA_ERROR_INVALID_VALUE, "null pointer argument"),
        false => Ok(()),
    }
}

// ---- Initialization, version, errors ----

/// `cuInit`: builds the model from the environment at the first call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuInit(flags: c_uint) -> u32 {
    if flags != 0 {
        return CUDA_ERROR_INVALID_VALUE;
    }
    let mut guard = lock();
    let state = guard.get_or_insert_with(|| {
        let config = Config::from_env().or_else(|why| {
            eprintln!("keops-fake-cuda: cuInit: {why}");
            fail(CUDA_ERROR_INVALID_VALUE, why)
        });
        config.and_then(State::new)
    });
    state.as_ref().map_or_else(|e| e.code, |_| CUDA_SUCCESS)
}

/// `cuDriverGetVersion`: 12080 (CUDA 12.8); needs no `cuInit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> u32 {
    if version.is_null() {
        return CUDA_ERROR_INVALID_VALUE;
    }
    // SAFETY: not null, valid for a write (the contract).
    unsafe { version.write(crate::state::DRIVER_VERSION) };
    CUDA_SUCCESS
}

/// Writes the static string `s` of `error` through `out`.
unsafe fn error_text(s: Option<&'static CStr>, out: *mut *const c_char) -> u32 {
    match s {
        Some(s) if !out.is_null() => {
            // SAFETY: not null, valid for a write (the contract); `s` is static.
            unsafe { out.write(s.as_ptr()) };
            CUDA_SUCCESS
        }
        _ => CUDA_ERROR_INVALID_VALUE,
    }
}

/// `cuGetErrorName`: `CUDA_ERROR_...` of a code the model returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorName(error: u32, out: *mut *const c_char) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { error_text(name(error), out) }
}

/// `cuGetErrorString`: the driver's description of a code the model returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuGetErrorString(error: u32, out: *mut *const c_char) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { error_text(description(error), out) }
}

/// The number of kernel launches so far (not a CUDA function: for tests).
#[unsafe(no_mangle)]
pub extern "C" fn keops_fake_cuda_launches() -> u64 {
    match &*lock() {
        Some(Ok(state)) => state.launches(),
        _ => 0,
    }
}

// ---- Devices ----

/// `cuDeviceGetCount`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output("cuDeviceGetCount", count, |s| Ok(s.device_count())) }
}

/// `cuDeviceGet`: the device is its ordinal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output("cuDeviceGet", device, |s| Ok(s.device(ordinal)? as c_int)) }
}

/// `cuDeviceGetName`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: c_int) -> u32 {
    let r = run("cuDeviceGetName", |s| {
        nonnull(name)?;
        s.device(dev)?;
        match usize::try_from(len) {
            Ok(len) if len > 0 => Ok(len),
            _ => fail(
                CUDA_ERROR_INVALID_VALUE,
                format!("name buffer of {len} bytes"),
            ),
        }
    });
    done(r, |len| {
        let text = crate::state::DEVICE_NAME.as_bytes();
        let n = text.len().min(len - 1);
        // SAFETY: `name` is not null and valid for `len` > n bytes of writes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), name.cast::<u8>(), n);
            name.add(n).write(0);
        }
    })
}

/// `cuDeviceGetAttribute`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceGetAttribute(value: *mut c_int, attr: c_int, dev: c_int) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output("cuDeviceGetAttribute", value, |s| s.attribute(attr, dev)) }
}

/// `cuDeviceTotalMem_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: c_int) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        output("cuDeviceTotalMem_v2", bytes, |s| {
            Ok(s.total_memory(dev)? as usize)
        })
    }
}

/// `cuDeviceComputeCapability`: 9.0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDeviceComputeCapability(
    major: *mut c_int,
    minor: *mut c_int,
    dev: c_int,
) -> u32 {
    let r = run("cuDeviceComputeCapability", |s| {
        nonnull(major)?;
        nonnull(minor)?;
        Ok((s.attribute(75, dev)?, s.attribute(76, dev)?))
    });
    // SAFETY: both not null, valid for writes (the contract).
    done(r, |(a, b)| unsafe {
        major.write(a);
        minor.write(b);
    })
}

// ---- Primary contexts and the context stack ----

/// `cuDevicePrimaryCtxRetain`: the same handle at every call; does not bind it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut Handle, dev: c_int) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        output("cuDevicePrimaryCtxRetain", ctx, |s| {
            s.primary_retain(dev).map(handle)
        })
    }
}

/// `cuDevicePrimaryCtxRelease_v2`: the last release destroys the context's resources.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: c_int) -> u32 {
    status("cuDevicePrimaryCtxRelease_v2", |s| s.primary_release(dev))
}

/// `cuDevicePrimaryCtxReset_v2`: destroys the context's resources and sticky error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxReset_v2(dev: c_int) -> u32 {
    status("cuDevicePrimaryCtxReset_v2", |s| s.primary_reset(dev))
}

/// `cuDevicePrimaryCtxGetState`: flags 0, whether it is retained.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuDevicePrimaryCtxGetState(
    dev: c_int,
    flags: *mut c_uint,
    active: *mut c_int,
) -> u32 {
    let r = run("cuDevicePrimaryCtxGetState", |s| {
        nonnull(flags)?;
        nonnull(active)?;
        s.primary_active(dev)
    });
    // SAFETY: both not null, valid for writes (the contract).
    done(r, |a| unsafe {
        flags.write(0);
        active.write(a as c_int);
    })
}

/// `cuCtxGetCurrent`: null when the thread has none.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetCurrent(ctx: *mut Handle) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        output("cuCtxGetCurrent", ctx, |s| {
            Ok(handle(s.current_context().unwrap_or(0)))
        })
    }
}

/// `cuCtxSetCurrent`: replaces the top of the thread's stack; null unbinds.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxSetCurrent(ctx: Handle) -> u32 {
    status("cuCtxSetCurrent", |s| s.set_current(raw(ctx)))
}

/// `cuCtxPushCurrent_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxPushCurrent_v2(ctx: Handle) -> u32 {
    status("cuCtxPushCurrent_v2", |s| s.push_current(raw(ctx)))
}

/// `cuCtxPopCurrent_v2`: `ctx` may be null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxPopCurrent_v2(ctx: *mut Handle) -> u32 {
    let r = run("cuCtxPopCurrent_v2", |s| s.pop_current());
    done(r, |h| {
        if !ctx.is_null() {
            // SAFETY: not null, valid for a write (the contract).
            unsafe { ctx.write(handle(h)) };
        }
    })
}

/// `cuCtxSynchronize`: the context's sticky error, if any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxSynchronize() -> u32 {
    status("cuCtxSynchronize", |s| s.synchronize())
}

/// `cuCtxGetDevice`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuCtxGetDevice(device: *mut c_int) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output("cuCtxGetDevice", device, |s| s.context_device()) }
}

// ---- Memory ----

/// `cuMemGetInfo_v2`: (free, total) of the current context's device.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> u32 {
    let r = run("cuMemGetInfo_v2", |s| {
        nonnull(free)?;
        nonnull(total)?;
        s.memory_info()
    });
    // SAFETY: both not null, valid for writes (the contract).
    done(r, |(f, t)| unsafe {
        free.write(f as usize);
        total.write(t as usize);
    })
}

/// `cuMemAlloc_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAlloc_v2(ptr: *mut u64, bytes: usize) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output("cuMemAlloc_v2", ptr, |s| s.alloc(bytes, 0)) }
}

/// `cuMemAllocAsync` (done at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemAllocAsync(ptr: *mut u64, bytes: usize, stream: Handle) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { output("cuMemAllocAsync", ptr, |s| s.alloc(bytes, raw(stream))) }
}

/// `cuMemFree_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemFree_v2(ptr: u64) -> u32 {
    status("cuMemFree_v2", |s| s.free(ptr, 0))
}

/// `cuMemFreeAsync` (done at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemFreeAsync(ptr: u64, stream: Handle) -> u32 {
    status("cuMemFreeAsync", |s| s.free(ptr, raw(stream)))
}

/// `cuMemsetD8_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemsetD8_v2(dst: u64, value: u8, n: usize) -> u32 {
    status("cuMemsetD8_v2", |s| s.memset(dst, value, n, 0))
}

/// `cuMemsetD8Async` (done at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemsetD8Async(dst: u64, value: u8, n: usize, stream: Handle) -> u32 {
    status("cuMemsetD8Async", |s| s.memset(dst, value, n, raw(stream)))
}

/// Host to device copy of `n` bytes.
unsafe fn htod(call: &str, dst: u64, src: *const c_void, n: usize, stream: Handle) -> u32 {
    status(call, |s| {
        let data = match n {
            0 => &[][..],
            _ => {
                nonnull(src)?;
                // SAFETY: not null, valid for `n` bytes of reads (the contract).
                unsafe { std::slice::from_raw_parts(src.cast::<u8>(), n) }
            }
        };
        s.write(dst, data, raw(stream))
    })
}

/// Device to host copy of `n` bytes.
unsafe fn dtoh(call: &str, dst: *mut c_void, src: u64, n: usize, stream: Handle) -> u32 {
    status(call, |s| {
        if n > 0 {
            nonnull(dst)?;
        }
        let bytes = s.read(src, n, raw(stream))?;
        // SAFETY: `dst` is valid for `n` bytes of writes (the contract; possibly
        // uninitialized memory, hence a raw copy) and is host memory, not the model's.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), n) };
        Ok(())
    })
}

/// `cuMemcpyHtoD_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, n: usize) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { htod("cuMemcpyHtoD_v2", dst, src, n, handle(0)) }
}

/// `cuMemcpyHtoDAsync_v2` (done at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    n: usize,
    stream: Handle,
) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { htod("cuMemcpyHtoDAsync_v2", dst, src, n, stream) }
}

/// `cuMemcpyDtoH_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, n: usize) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { dtoh("cuMemcpyDtoH_v2", dst, src, n, handle(0)) }
}

/// `cuMemcpyDtoHAsync_v2` (done at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    n: usize,
    stream: Handle,
) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { dtoh("cuMemcpyDtoHAsync_v2", dst, src, n, stream) }
}

/// `cuMemcpyDtoD_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoD_v2(dst: u64, src: u64, n: usize) -> u32 {
    status("cuMemcpyDtoD_v2", |s| s.copy(dst, src, n, 0))
}

/// `cuMemcpyDtoDAsync_v2` (done at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuMemcpyDtoDAsync_v2(dst: u64, src: u64, n: usize, stream: Handle) -> u32 {
    status("cuMemcpyDtoDAsync_v2", |s| s.copy(dst, src, n, raw(stream)))
}

// ---- Modules and functions ----

/// `CU_JIT_INFO_LOG_BUFFER`, `CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES`,
/// `CU_JIT_ERROR_LOG_BUFFER`, `CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES`.
const JIT_INFO_LOG: c_int = 3;
const JIT_INFO_LOG_SIZE: c_int = 4;
const JIT_ERROR_LOG: c_int = 5;
const JIT_ERROR_LOG_SIZE: c_int = 6;

/// Writes `text` into the log buffer of option `buffer` whose size is option `size` (by
/// value in the pointer slot), truncated and NUL-terminated; the size option becomes the
/// bytes written, as the driver reports it.
unsafe fn write_log(
    options: &[c_int],
    values: *mut *mut c_void,
    buffer: c_int,
    size: c_int,
    text: &str,
) {
    let (Some(b), Some(z)) = (
        options.iter().position(|o| *o == buffer),
        options.iter().position(|o| *o == size),
    ) else {
        return;
    };
    // SAFETY: `values` has one slot per option (the contract).
    let (buf, cap) = unsafe {
        (
            values.add(b).read().cast::<u8>(),
            values.add(z).read().addr(),
        )
    };
    if buf.is_null() || cap == 0 {
        return;
    }
    let n = text.len().min(cap - 1);
    // SAFETY: the buffer is valid for `cap` > n bytes of writes (the contract), and the
    // size slot is writable.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n);
        buf.add(n).write(0);
        values.add(z).write(std::ptr::without_provenance_mut(n));
    }
}

/// Loads a module from a NUL-terminated PTX image, with JIT options.
unsafe fn load_module(
    call: &str,
    module: *mut Handle,
    image: *const c_void,
    count: c_uint,
    options: *mut c_int,
    values: *mut *mut c_void,
) -> u32 {
    let options: &[c_int] = match count {
        0 => &[],
        _ if options.is_null() || values.is_null() => return CUDA_ERROR_INVALID_VALUE,
        // SAFETY: `options` holds `count` options (the contract).
        n => unsafe { std::slice::from_raw_parts(options, n as usize) },
    };
    let r = run(call, |s| {
        nonnull(module)?;
        nonnull(image)?;
        // SAFETY: `image` is a NUL-terminated PTX text (the contract).
        let bytes = unsafe { CStr::from_ptr(image.cast::<c_char>()) }.to_bytes();
        s.load_module(bytes)
    });
    let log = match &r {
        Err(e) if [CUDA_ERROR_INVALID_PTX, CUDA_ERROR_INVALID_IMAGE].contains(&e.code) => &e.why,
        _ => "",
    };
    // SAFETY: `values` has a slot per option, the log buffers are valid for their sizes.
    unsafe {
        write_log(options, values, JIT_ERROR_LOG, JIT_ERROR_LOG_SIZE, log);
        write_log(options, values, JIT_INFO_LOG, JIT_INFO_LOG_SIZE, "");
    }
    // SAFETY: not null (checked in `run`), valid for a write (the contract).
    done(r, |m| unsafe { module.write(handle(m)) })
}

/// `cuModuleLoadData`: a NUL-terminated PTX text, run by the interpreter.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadData(module: *mut Handle, image: *const c_void) -> u32 {
    let null = std::ptr::null_mut();
    // SAFETY: forwarded contract, no options.
    unsafe { load_module("cuModuleLoadData", module, image, 0, null, null.cast()) }
}

/// `cuModuleLoadDataEx`: as `cuModuleLoadData`, the error log written into
/// `CU_JIT_ERROR_LOG_BUFFER` if given (other options are ignored).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleLoadDataEx(
    module: *mut Handle,
    image: *const c_void,
    count: c_uint,
    options: *mut c_int,
    values: *mut *mut c_void,
) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { load_module("cuModuleLoadDataEx", module, image, count, options, values) }
}

/// `cuModuleUnload`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleUnload(module: Handle) -> u32 {
    status("cuModuleUnload", |s| s.unload_module(raw(module)))
}

/// `cuModuleGetFunction`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuModuleGetFunction(
    function: *mut Handle,
    module: Handle,
    name: *const c_char,
) -> u32 {
    let f = |s: &mut State| {
        nonnull(name)?;
        // SAFETY: not null, NUL-terminated (the contract).
        let name = unsafe { CStr::from_ptr(name) }.to_str();
        let name = name.or_else(|_| fail(CUDA_ERROR_NOT_FOUND, "a kernel name not in UTF-8"))?;
        s.get_function(raw(module), name).map(handle)
    };
    // SAFETY: forwarded contract.
    unsafe { output("cuModuleGetFunction", function, f) }
}

/// `cuFuncGetAttribute`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuFuncGetAttribute(
    value: *mut c_int,
    attr: c_int,
    function: Handle,
) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        output("cuFuncGetAttribute", value, |s| {
            s.function_attribute(raw(function), attr)
        })
    }
}

/// `cuFuncSetAttribute`: `MAX_DYNAMIC_SHARED_SIZE_BYTES` (up to the opt-in limit) and
/// `PREFERRED_SHARED_MEMORY_CARVEOUT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuFuncSetAttribute(function: Handle, attr: c_int, value: c_int) -> u32 {
    status("cuFuncSetAttribute", |s| {
        s.set_function_attribute(raw(function), attr, value)
    })
}

/// `cuLaunchKernel`: runs the kernel to completion with the interpreter. `kernelParams`
/// only (`extra` must be null); every parameter is a `u64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuLaunchKernel(
    function: Handle,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    shared: c_uint,
    stream: Handle,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> u32 {
    let read_params = |count: usize| -> CuResult<Vec<u64>> {
        if count > 0 {
            nonnull(params)?;
        }
        (0..count)
            .map(|i| {
                // SAFETY: `params` holds one pointer per kernel parameter (the contract).
                let p = unsafe { params.add(i).read() };
                nonnull(p)?;
                // SAFETY: each parameter points to a `u64` (all of our kernels' are).
                Ok(unsafe { p.cast::<u64>().read_unaligned() })
            })
            .collect()
    };
    status("cuLaunchKernel", |s| {
        if !extra.is_null() {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                "`extra` is not supported by keops-fake-cuda: pass kernelParams",
            );
        }
        let grid = [grid_x, grid_y, grid_z];
        let block = [block_x, block_y, block_z];
        s.launch(raw(function), grid, block, shared, raw(stream), read_params)
    })
}

// ---- Streams and events ----

/// `cuStreamCreate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamCreate(stream: *mut Handle, flags: c_uint) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        output("cuStreamCreate", stream, |s| {
            s.stream_create(flags).map(handle)
        })
    }
}

/// `cuStreamDestroy_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamDestroy_v2(stream: Handle) -> u32 {
    status("cuStreamDestroy_v2", |s| s.stream_destroy(raw(stream)))
}

/// `cuStreamSynchronize`: the context's sticky error, if any.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamSynchronize(stream: Handle) -> u32 {
    status("cuStreamSynchronize", |s| {
        s.stream_synchronize(raw(stream), None)
    })
}

/// `cuStreamQuery`: always complete.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamQuery(stream: Handle) -> u32 {
    status("cuStreamQuery", |s| s.stream_synchronize(raw(stream), None))
}

/// `cuStreamWaitEvent`: the event is complete already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuStreamWaitEvent(stream: Handle, event: Handle, _flags: c_uint) -> u32 {
    status("cuStreamWaitEvent", |s| {
        s.stream_synchronize(raw(stream), Some(raw(event)))
    })
}

/// `cuEventCreate`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventCreate(event: *mut Handle, flags: c_uint) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        output("cuEventCreate", event, |s| {
            s.event_create(flags).map(handle)
        })
    }
}

/// `cuEventRecord`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventRecord(event: Handle, stream: Handle) -> u32 {
    status("cuEventRecord", |s| s.event_check(raw(event), raw(stream)))
}

/// `cuEventSynchronize`: the event is complete already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventSynchronize(event: Handle) -> u32 {
    status("cuEventSynchronize", |s| s.event_check(raw(event), 0))
}

/// `cuEventQuery`: always complete.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventQuery(event: Handle) -> u32 {
    status("cuEventQuery", |s| s.event_check(raw(event), 0))
}

/// `cuEventDestroy_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cuEventDestroy_v2(event: Handle) -> u32 {
    status("cuEventDestroy_v2", |s| s.event_destroy(raw(event)))
}
