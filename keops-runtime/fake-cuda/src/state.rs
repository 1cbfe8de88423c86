//! The device model, in safe Rust: devices and their primary contexts, each thread's
//! context stack, device memory, modules, functions, streams and events, with the rules
//! of the driver that [`crate::ffi`] exposes.
//!
//! Everything runs in order and synchronously (each stream's work is done when the call
//! returns, which CUDA's semantics allow), so streams and events only need to be valid.

use crate::codes::*;
use keops_ptx_interp::{Fault, GlobalMemory, PtxModule};
use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::ThreadId;

/// A failed call: its `CUresult` code and why (logged with `KEOPS_FAKE_CUDA_LOG=1`; the
/// JIT error log of a module that does not load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CuError {
    /// The `CUresult` value.
    pub code: u32,
    /// What was wrong.
    pub why: String,
}

/// The result of a call of the model.
pub type CuResult<T> = Result<T, CuError>;

/// `Err` with `code` and `why`.
pub fn fail<T>(code: u32, why: impl Into<String>) -> CuResult<T> {
    Err(CuError {
        code,
        why: why.into(),
    })
}

/// The model's configuration (from the environment at `cuInit`, see [`Config::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of devices.
    pub devices: usize,
    /// Bytes of memory of each device.
    pub memory: u64,
    /// Print every failed call to stderr.
    pub log_errors: bool,
    /// The launch (counted from 1 in the process) that faults with an illegal address
    /// instead of running: to test how a lost context is handled.
    pub fault_at_launch: Option<u64>,
}

impl Default for Config {
    /// One device of 2 GiB, errors not logged.
    fn default() -> Config {
        Config {
            devices: 1,
            memory: 2 << 30,
            log_errors: false,
            fault_at_launch: None,
        }
    }
}

impl Config {
    /// Most devices the model accepts.
    pub const MAX_DEVICES: usize = 64;

    /// The configuration from the process's environment.
    pub fn from_env() -> Result<Config, String> {
        Config::parse(|name| std::env::var(name).ok())
    }

    /// The configuration from the variables `var` returns: `KEOPS_FAKE_CUDA_DEVICES`
    /// (device count, default 1), `KEOPS_FAKE_CUDA_MEMORY` (bytes per device, default
    /// 2 GiB), `KEOPS_FAKE_CUDA_LOG` (non-empty and not `0`: log every failed call),
    /// `KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH` (the launch, from 1, that faults instead of running).
    pub fn parse(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let number = |name: &str| {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("{name}={v:?} is not a non-negative integer"))
                })
                .transpose()
        };
        let mut c = Config::default();
        if let Some(n) = number("KEOPS_FAKE_CUDA_DEVICES")? {
            if n > Config::MAX_DEVICES as u64 {
                return Err(format!(
                    "KEOPS_FAKE_CUDA_DEVICES={n}: at most {} devices",
                    Config::MAX_DEVICES
                ));
            }
            c.devices = n as usize;
        }
        if let Some(m) = number("KEOPS_FAKE_CUDA_MEMORY")? {
            c.memory = m;
        }
        c.log_errors = var("KEOPS_FAKE_CUDA_LOG").is_some_and(|v| !v.is_empty() && v != "0");
        c.fault_at_launch = number("KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH")?;
        Ok(c)
    }
}

/// The device's name.
pub const DEVICE_NAME: &str = "keops-rs fake CUDA device (CPU model, not a GPU)";

/// The driver version reported (CUDA 12.8).
pub const DRIVER_VERSION: i32 = 12080;

/// `CU_DEVICE_ATTRIBUTE_MAX`: attributes from 0 up to this are valid.
const DEVICE_ATTRIBUTE_MAX: i32 = 144;

/// Device attributes (`CU_DEVICE_ATTRIBUTE_*` value, value) of an H100 SXM; the others
/// are 0 (among them managed memory and host-mapped memory, which the model lacks).
const ATTRIBUTES: &[(i32, i32)] = &[
    (1, 1024),           // MAX_THREADS_PER_BLOCK
    (2, 1024),           // MAX_BLOCK_DIM_X
    (3, 1024),           // MAX_BLOCK_DIM_Y
    (4, 64),             // MAX_BLOCK_DIM_Z
    (5, i32::MAX),       // MAX_GRID_DIM_X
    (6, 65535),          // MAX_GRID_DIM_Y
    (7, 65535),          // MAX_GRID_DIM_Z
    (8, SHARED_DEFAULT), // MAX_SHARED_MEMORY_PER_BLOCK
    (9, 65536),          // TOTAL_CONSTANT_MEMORY
    (10, 32),            // WARP_SIZE
    (11, i32::MAX),      // MAX_PITCH
    (12, 65536),         // MAX_REGISTERS_PER_BLOCK
    (13, 1_980_000),     // CLOCK_RATE (kHz)
    (16, 132),           // MULTIPROCESSOR_COUNT
    (31, 1),             // CONCURRENT_KERNELS
    (36, 2_619_000),     // MEMORY_CLOCK_RATE (kHz)
    (37, 5120),          // GLOBAL_MEMORY_BUS_WIDTH
    (38, 52_428_800),    // L2_CACHE_SIZE
    (39, 2048),          // MAX_THREADS_PER_MULTIPROCESSOR
    (41, 1),             // UNIFIED_ADDRESSING
    (75, 9),             // COMPUTE_CAPABILITY_MAJOR
    (76, 0),             // COMPUTE_CAPABILITY_MINOR
    (81, 233_472),       // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
    (82, 65536),         // MAX_REGISTERS_PER_MULTIPROCESSOR
    (97, SHARED_OPTIN),  // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    (106, 32),           // MAX_BLOCKS_PER_MULTIPROCESSOR
    (111, 1024),         // RESERVED_SHARED_MEMORY_PER_BLOCK
    (115, 1),            // MEMORY_POOLS_SUPPORTED: cudarc then uses cuMemAllocAsync/FreeAsync
];

/// `MAX_SHARED_MEMORY_PER_BLOCK`: a function's dynamic shared memory limit until
/// `cuFuncSetAttribute` raises it.
const SHARED_DEFAULT: i32 = 49152;
/// `MAX_SHARED_MEMORY_PER_BLOCK_OPTIN`: the most `cuFuncSetAttribute` accepts.
const SHARED_OPTIN: i32 = 232_448;

/// Handle kinds, in the top byte of every handle: never null, never one kind for another.
const KIND: u64 = 0xFF << 56;
const CONTEXT: u64 = 0xC1 << 56;
const MODULE: u64 = 0xC2 << 56;
const FUNCTION: u64 = 0xC3 << 56;
const STREAM: u64 = 0xC4 << 56;
const EVENT: u64 = 0xC5 << 56;

/// The context handle of device `d` (its primary context's, the same at every retain).
fn context_handle(d: usize) -> u64 {
    CONTEXT | (d as u64 + 1)
}

/// Device addresses start here and only grow: a freed address is never reused, so a use
/// after free is always detected.
const BASE_ADDRESS: u64 = 0x7f00_0000_0000;
/// Alignment of allocations, and the granularity they are counted in.
const ALIGN: u64 = 256;
/// Unmapped bytes after each allocation: an access past an allocation's end faults
/// rather than landing in the next one.
const GAP: u64 = 1 << 20;
/// New allocations hold this byte (NaN in every float width, a huge index): device
/// memory is not initialized, and a kernel reading what nothing wrote should show it.
const UNINIT: u8 = 0xFF;

#[derive(Debug, Default)]
struct Device {
    /// Retain count of the primary context: 0 when inactive.
    retained: u32,
    /// Bytes allocated (counted in units of [`ALIGN`]).
    used: u64,
    /// The sticky error of a kernel fault: (code, message), until the context is
    /// destroyed.
    lost: Option<(u32, String)>,
}

#[derive(Debug)]
struct Allocation {
    device: usize,
    bytes: Vec<u8>,
    charged: u64,
}

#[derive(Debug)]
struct Module {
    device: usize,
    ptx: PtxModule,
    /// `.version` as `CU_FUNC_ATTRIBUTE_PTX_VERSION` gives it (major * 10 + minor).
    ptx_version: i32,
    /// Functions handed out, by name (the same handle each time).
    functions: HashMap<String, u64>,
}

#[derive(Debug)]
struct Function {
    module: u64,
    device: usize,
    name: String,
    params: usize,
    registers: i32,
    max_dynamic_shared: i32,
    carveout: i32,
}

/// The whole driver state.
#[derive(Debug)]
pub struct State {
    config: Config,
    devices: Vec<Device>,
    memory: BTreeMap<u64, Allocation>,
    /// Freed allocations (base, bytes), to name a use after free in error messages.
    freed: BTreeMap<u64, u64>,
    next_address: u64,
    modules: HashMap<u64, Module>,
    functions: HashMap<u64, Function>,
    /// Created streams and events: the device of their context.
    streams: HashMap<u64, usize>,
    events: HashMap<u64, usize>,
    next_id: u64,
    /// Each thread's context stack (devices; the last is current).
    current: HashMap<ThreadId, Vec<usize>>,
    launches: u64,
}

impl State {
    /// A driver with `config`'s devices (`CUDA_ERROR_NO_DEVICE` without any).
    pub fn new(config: Config) -> CuResult<State> {
        if config.devices == 0 {
            return fail(CUDA_ERROR_NO_DEVICE, "KEOPS_FAKE_CUDA_DEVICES=0");
        }
        Ok(State {
            devices: (0..config.devices).map(|_| Device::default()).collect(),
            config,
            memory: BTreeMap::new(),
            freed: BTreeMap::new(),
            next_address: BASE_ADDRESS,
            modules: HashMap::new(),
            functions: HashMap::new(),
            streams: HashMap::new(),
            events: HashMap::new(),
            next_id: 1,
            current: HashMap::new(),
            launches: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Kernel launches so far (those that ran, faulted or not).
    pub fn launches(&self) -> u64 {
        self.launches
    }

    fn new_handle(&mut self, kind: u64) -> u64 {
        self.next_id += 1;
        kind | self.next_id
    }

    // ---- Devices ----

    /// Number of devices.
    pub fn device_count(&self) -> i32 {
        self.devices.len() as i32
    }

    /// The device of ordinal `ordinal` (`CUdevice` is the ordinal).
    pub fn device(&self, ordinal: i32) -> CuResult<usize> {
        match usize::try_from(ordinal) {
            Ok(d) if d < self.devices.len() => Ok(d),
            _ => fail(
                CUDA_ERROR_INVALID_DEVICE,
                format!("device {ordinal}: there are {}", self.devices.len()),
            ),
        }
    }

    /// Device attribute `attr` (a `CU_DEVICE_ATTRIBUTE_*` value).
    pub fn attribute(&self, attr: i32, ordinal: i32) -> CuResult<i32> {
        self.device(ordinal)?;
        if !(0..DEVICE_ATTRIBUTE_MAX).contains(&attr) {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                format!("no device attribute {attr}"),
            );
        }
        Ok(ATTRIBUTES.iter().find(|a| a.0 == attr).map_or(0, |a| a.1))
    }

    /// Bytes of memory of a device.
    pub fn total_memory(&self, ordinal: i32) -> CuResult<u64> {
        self.device(ordinal)?;
        Ok(self.config.memory)
    }

    // ---- Primary contexts and the context stacks ----

    /// Retains the primary context of a device (activating it): its handle, the same
    /// every time.
    pub fn primary_retain(&mut self, ordinal: i32) -> CuResult<u64> {
        let d = self.device(ordinal)?;
        self.devices[d].retained += 1;
        Ok(context_handle(d))
    }

    /// Releases the primary context of a device; the last release destroys it (its
    /// memory, modules, streams, events and sticky error).
    pub fn primary_release(&mut self, ordinal: i32) -> CuResult<()> {
        let d = self.device(ordinal)?;
        let dev = &mut self.devices[d];
        if dev.retained == 0 {
            return fail(
                CUDA_ERROR_INVALID_CONTEXT,
                format!("the primary context of device {d} is not retained"),
            );
        }
        dev.retained -= 1;
        if dev.retained == 0 {
            self.destroy(d);
        }
        Ok(())
    }

    /// Destroys everything of the primary context of a device, as the last release does,
    /// but keeps it retained (the way to recover from a sticky error).
    pub fn primary_reset(&mut self, ordinal: i32) -> CuResult<()> {
        let d = self.device(ordinal)?;
        self.destroy(d);
        Ok(())
    }

    /// Whether the primary context of a device is active (retained).
    pub fn primary_active(&self, ordinal: i32) -> CuResult<bool> {
        Ok(self.devices[self.device(ordinal)?].retained > 0)
    }

    fn destroy(&mut self, d: usize) {
        let (memory, freed) = (&mut self.memory, &mut self.freed);
        memory.retain(|base, a| {
            if a.device == d {
                freed.insert(*base, a.bytes.len() as u64);
            }
            a.device != d
        });
        self.modules.retain(|_, m| m.device != d);
        self.functions.retain(|_, f| f.device != d);
        self.streams.retain(|_, s| *s != d);
        self.events.retain(|_, e| *e != d);
        self.devices[d].used = 0;
        self.devices[d].lost = None;
    }

    /// The device of a context handle, whose context must be active.
    fn context_of(&self, handle: u64) -> CuResult<usize> {
        let d = match handle & KIND {
            CONTEXT => ((handle & !KIND) as usize).wrapping_sub(1),
            _ => usize::MAX,
        };
        match self.devices.get(d) {
            None => fail(
                CUDA_ERROR_INVALID_CONTEXT,
                format!("{handle:#x} is not a context"),
            ),
            Some(dev) if dev.retained == 0 => fail(
                CUDA_ERROR_INVALID_CONTEXT,
                format!("the primary context of device {d} is not retained (released?)"),
            ),
            Some(_) => Ok(d),
        }
    }

    fn stack(&mut self) -> &mut Vec<usize> {
        self.current.entry(std::thread::current().id()).or_default()
    }

    /// The calling thread's current context, if any.
    pub fn current_context(&self) -> Option<u64> {
        let stack = self.current.get(&std::thread::current().id())?;
        stack.last().map(|d| context_handle(*d))
    }

    /// Makes `handle` the calling thread's current context (replacing the top of its
    /// stack); 0 unbinds the current one.
    pub fn set_current(&mut self, handle: u64) -> CuResult<()> {
        if handle == 0 {
            self.stack().pop();
            return Ok(());
        }
        let d = self.context_of(handle)?;
        let stack = self.stack();
        match stack.last_mut() {
            Some(top) => *top = d,
            None => stack.push(d),
        }
        Ok(())
    }

    /// Pushes `handle` on the calling thread's context stack.
    pub fn push_current(&mut self, handle: u64) -> CuResult<()> {
        let d = self.context_of(handle)?;
        self.stack().push(d);
        Ok(())
    }

    /// Pops the calling thread's current context.
    pub fn pop_current(&mut self) -> CuResult<u64> {
        match self.stack().pop() {
            Some(d) => Ok(context_handle(d)),
            None => fail(CUDA_ERROR_INVALID_CONTEXT, "no current context to pop"),
        }
    }

    /// The device of the calling thread's current context: every call on a context goes
    /// through here, so that a thread without one gets `CUDA_ERROR_INVALID_CONTEXT` and
    /// a lost context its sticky error.
    pub fn context(&self) -> CuResult<usize> {
        let Some(handle) = self.current_context() else {
            return fail(
                CUDA_ERROR_INVALID_CONTEXT,
                "no current context on this thread (cuCtxSetCurrent was not called on it)",
            );
        };
        let d = self.context_of(handle)?;
        match &self.devices[d].lost {
            Some((code, msg)) => fail(*code, format!("the context was lost earlier: {msg}")),
            None => Ok(d),
        }
    }

    /// Waits for the current context's work: its sticky error if it has one.
    pub fn synchronize(&self) -> CuResult<()> {
        self.context().map(drop)
    }

    /// The device of the current context.
    pub fn context_device(&self) -> CuResult<i32> {
        self.context().map(|d| d as i32)
    }

    // ---- Streams and events ----

    /// Checks that `stream` can be used in the context of device `d`: the null stream,
    /// `CU_STREAM_LEGACY` (1), `CU_STREAM_PER_THREAD` (2), or a live stream of `d`.
    fn check_stream(&self, d: usize, stream: u64) -> CuResult<()> {
        if stream <= 2 {
            return Ok(());
        }
        owned_by(&self.streams, "stream", stream, d)
    }

    fn check_event(&self, d: usize, event: u64) -> CuResult<()> {
        owned_by(&self.events, "event", event, d)
    }

    /// A new stream in the current context (`flags`: `CU_STREAM_DEFAULT` or
    /// `CU_STREAM_NON_BLOCKING`).
    pub fn stream_create(&mut self, flags: u32) -> CuResult<u64> {
        let d = self.context()?;
        if flags > 1 {
            return fail(CUDA_ERROR_INVALID_VALUE, format!("stream flags {flags:#x}"));
        }
        let s = self.new_handle(STREAM);
        self.streams.insert(s, d);
        Ok(s)
    }

    /// Destroys a created stream.
    pub fn stream_destroy(&mut self, stream: u64) -> CuResult<()> {
        let d = self.context()?;
        if stream <= 2 {
            return fail(
                CUDA_ERROR_INVALID_HANDLE,
                "the default streams cannot be destroyed",
            );
        }
        self.check_stream(d, stream)?;
        self.streams.remove(&stream);
        Ok(())
    }

    /// Waits for a stream (or makes it wait for an event): its work is done already, but
    /// the handles must be valid and the context not lost.
    pub fn stream_synchronize(&self, stream: u64, event: Option<u64>) -> CuResult<()> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        match event {
            Some(event) => self.check_event(d, event),
            None => Ok(()),
        }
    }

    /// A new event in the current context.
    pub fn event_create(&mut self, flags: u32) -> CuResult<u64> {
        let d = self.context()?;
        // CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS
        if flags & !7 != 0 {
            return fail(CUDA_ERROR_INVALID_VALUE, format!("event flags {flags:#x}"));
        }
        let e = self.new_handle(EVENT);
        self.events.insert(e, d);
        Ok(e)
    }

    /// Records, synchronizes or queries an event (`stream`: where it is recorded, 0
    /// otherwise): the work is done already, the handles must be valid.
    pub fn event_check(&self, event: u64, stream: u64) -> CuResult<()> {
        let d = self.context()?;
        self.check_event(d, event)?;
        self.check_stream(d, stream)
    }

    /// Destroys an event.
    pub fn event_destroy(&mut self, event: u64) -> CuResult<()> {
        let d = self.context()?;
        self.check_event(d, event)?;
        self.events.remove(&event);
        Ok(())
    }

    // ---- Memory ----

    /// (free, total) bytes of the current context's device.
    pub fn memory_info(&self) -> CuResult<(u64, u64)> {
        let d = self.context()?;
        let total = self.config.memory;
        Ok((total - self.devices[d].used, total))
    }

    /// A new allocation of `bytes` in the current context (ordered on `stream`).
    pub fn alloc(&mut self, bytes: usize, stream: u64) -> CuResult<u64> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        if bytes == 0 {
            return fail(CUDA_ERROR_INVALID_VALUE, "allocation of 0 bytes");
        }
        let total = self.config.memory;
        let free = total - self.devices[d].used;
        let charged = (bytes as u64).checked_next_multiple_of(ALIGN);
        let Some(charged) = charged.filter(|c| *c <= free) else {
            return fail(
                CUDA_ERROR_OUT_OF_MEMORY,
                format!("{bytes} bytes asked, {free} of {total} free on device {d}"),
            );
        };
        let mut data = Vec::new();
        if data.try_reserve_exact(bytes).is_err() {
            return fail(
                CUDA_ERROR_OUT_OF_MEMORY,
                format!("{bytes} bytes: the host has not enough memory to model them"),
            );
        }
        data.resize(bytes, UNINIT);
        let base = self.next_address;
        self.next_address = (base + charged + GAP).next_multiple_of(ALIGN);
        self.memory.insert(
            base,
            Allocation {
                device: d,
                bytes: data,
                charged,
            },
        );
        self.devices[d].used += charged;
        Ok(base)
    }

    /// Frees the allocation starting at `ptr` (ordered on `stream`).
    pub fn free(&mut self, ptr: u64, stream: u64) -> CuResult<()> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        let Some(a) = self.memory.remove(&ptr) else {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                format!("free of {ptr:#x}: {}", self.outside(ptr, 1)),
            );
        };
        self.devices[a.device].used -= a.charged;
        self.freed.insert(ptr, a.bytes.len() as u64);
        Ok(())
    }

    /// The bytes `n` bytes at `addr` refer to, which must lie in one live allocation
    /// (of any device: addresses are unified).
    fn range(&mut self, addr: u64, n: usize) -> CuResult<&mut [u8]> {
        match find(&self.memory, addr, n) {
            Some((base, offset, _)) => Ok(bytes_mut(&mut self.memory, base, offset, n)),
            None => fail(CUDA_ERROR_INVALID_VALUE, self.outside(addr, n)),
        }
    }

    /// Why `n` bytes at `addr` are not in one live allocation, for messages.
    fn outside(&self, addr: u64, n: usize) -> String {
        outside(&self.memory, &self.freed, addr, n)
    }

    /// Sets `n` bytes at `dst` to `value`.
    pub fn memset(&mut self, dst: u64, value: u8, n: usize, stream: u64) -> CuResult<()> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        if n > 0 {
            self.range(dst, n)?.fill(value);
        }
        Ok(())
    }

    /// Copies `data` to `dst`.
    pub fn write(&mut self, dst: u64, data: &[u8], stream: u64) -> CuResult<()> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        if !data.is_empty() {
            self.range(dst, data.len())?.copy_from_slice(data);
        }
        Ok(())
    }

    /// The `n` bytes at `src` (to be copied to the host).
    pub fn read(&mut self, src: u64, n: usize, stream: u64) -> CuResult<&[u8]> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        if n == 0 {
            return Ok(&[]);
        }
        Ok(self.range(src, n)?)
    }

    /// Copies `n` bytes from `src` to `dst` (device to device; the ranges may overlap).
    pub fn copy(&mut self, dst: u64, src: u64, n: usize, stream: u64) -> CuResult<()> {
        let d = self.context()?;
        self.check_stream(d, stream)?;
        if n > 0 {
            let data = self.range(src, n)?.to_vec();
            self.range(dst, n)?.copy_from_slice(&data);
        }
        Ok(())
    }

    // ---- Modules and functions ----

    /// Loads a module from its image (PTX text without the NUL) in the current context;
    /// a JIT error's `why` is the error log.
    pub fn load_module(&mut self, image: &[u8]) -> CuResult<u64> {
        let d = self.context()?;
        if image.starts_with(b"\x7fELF") {
            return fail(
                CUDA_ERROR_INVALID_IMAGE,
                "a cubin: keops-fake-cuda runs PTX text only",
            );
        }
        let Ok(text) = std::str::from_utf8(image) else {
            return fail(
                CUDA_ERROR_INVALID_IMAGE,
                "the image is neither PTX text nor a cubin",
            );
        };
        let ptx = PtxModule::parse(text).or_else(|e| {
            fail(
                CUDA_ERROR_INVALID_PTX,
                format!("ptxas fatal (keops-fake-cuda): {e}"),
            )
        })?;
        let ptx_version = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(".version "))
            .and_then(|v| v.trim().split_once('.'))
            .and_then(|(a, b)| Some(a.parse::<i32>().ok()? * 10 + b.parse::<i32>().ok()?))
            .unwrap_or(0);
        let m = self.new_handle(MODULE);
        let module = Module {
            device: d,
            ptx,
            ptx_version,
            functions: HashMap::new(),
        };
        self.modules.insert(m, module);
        Ok(m)
    }

    /// The module of handle `m`, which must belong to the current context (device `d`).
    fn module(&mut self, d: usize, m: u64) -> CuResult<&mut Module> {
        match self.modules.get_mut(&m) {
            Some(module) if module.device == d => Ok(module),
            Some(module) => fail(
                CUDA_ERROR_INVALID_HANDLE,
                format!(
                    "module {m:#x} belongs to the context of device {}, the current one is device {d}'s",
                    module.device
                ),
            ),
            None => fail(
                CUDA_ERROR_INVALID_HANDLE,
                format!("{m:#x} is not a loaded module"),
            ),
        }
    }

    /// Unloads a module of the current context (its functions become invalid).
    pub fn unload_module(&mut self, m: u64) -> CuResult<()> {
        let d = self.context()?;
        self.module(d, m)?;
        self.modules.remove(&m);
        self.functions.retain(|_, f| f.module != m);
        Ok(())
    }

    /// The function `name` of module `m` (the same handle each time).
    pub fn get_function(&mut self, m: u64, name: &str) -> CuResult<u64> {
        let d = self.context()?;
        let next = self.next_id + 1;
        let module = self.module(d, m)?;
        if let Some(f) = module.functions.get(name) {
            return Ok(*f);
        }
        let Some(kernel) = module.ptx.kernel(name) else {
            return fail(
                CUDA_ERROR_NOT_FOUND,
                format!(
                    "no kernel `{name}` in the module (it has {:?})",
                    module.ptx.kernel_names()
                ),
            );
        };
        let function = Function {
            module: m,
            device: d,
            name: name.to_string(),
            params: kernel.param_count(),
            registers: kernel.register_count().min(255) as i32,
            max_dynamic_shared: SHARED_DEFAULT,
            carveout: -1,
        };
        let f = FUNCTION | next;
        module.functions.insert(name.to_string(), f);
        self.next_id = next;
        self.functions.insert(f, function);
        Ok(f)
    }

    fn function(&self, f: u64) -> CuResult<&Function> {
        match self.functions.get(&f) {
            Some(function) => Ok(function),
            None => fail(
                CUDA_ERROR_INVALID_HANDLE,
                format!("{f:#x} is not a function of a loaded module"),
            ),
        }
    }

    /// Function attribute `attr` (a `CU_FUNC_ATTRIBUTE_*` value).
    pub fn function_attribute(&self, f: u64, attr: i32) -> CuResult<i32> {
        self.context()?;
        let func = self.function(f)?;
        Ok(match attr {
            0 => 1024,           // MAX_THREADS_PER_BLOCK
            1..=3 => 0,          // SHARED_SIZE_BYTES, CONST_SIZE_BYTES, LOCAL_SIZE_BYTES
            4 => func.registers, // NUM_REGS
            5 => self.modules.get(&func.module).map_or(0, |m| m.ptx_version),
            6 => 90,                      // BINARY_VERSION
            7 => 0,                       // CACHE_MODE_CA
            8 => func.max_dynamic_shared, // MAX_DYNAMIC_SHARED_SIZE_BYTES
            9 => func.carveout,           // PREFERRED_SHARED_MEMORY_CARVEOUT
            10..=15 => 0,                 // cluster attributes
            _ => {
                return fail(
                    CUDA_ERROR_INVALID_VALUE,
                    format!("no function attribute {attr}"),
                );
            }
        })
    }

    /// Sets function attribute `attr`: the dynamic shared memory limit (up to the
    /// opt-in limit) or the shared memory carveout; the others are read-only.
    pub fn set_function_attribute(&mut self, f: u64, attr: i32, value: i32) -> CuResult<()> {
        self.context()?;
        self.function(f)?;
        let range = match attr {
            8 => 0..=SHARED_OPTIN,
            9 => -1..=100,
            _ => {
                return fail(
                    CUDA_ERROR_INVALID_VALUE,
                    format!("function attribute {attr} cannot be set"),
                );
            }
        };
        if !range.contains(&value) {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                format!("function attribute {attr}: {value} is outside {range:?}"),
            );
        }
        if let Some(func) = self.functions.get_mut(&f) {
            match attr {
                8 => func.max_dynamic_shared = value,
                _ => func.carveout = value,
            }
        }
        Ok(())
    }

    /// Launches function `f` on `stream` and runs it to completion; `params` gives the
    /// kernel's parameters from their count. A kernel fault loses the context: the
    /// launch itself succeeds (it would be asynchronous on a GPU), every later call on
    /// the context fails with the fault's sticky code.
    pub fn launch(
        &mut self,
        f: u64,
        grid: [u32; 3],
        block: [u32; 3],
        shared: u32,
        stream: u64,
        params: impl FnOnce(usize) -> CuResult<Vec<u64>>,
    ) -> CuResult<()> {
        let d = self.context()?;
        let func = self.function(f)?;
        let (module, name, count, limit) = (
            func.module,
            func.name.clone(),
            func.params,
            func.max_dynamic_shared,
        );
        if func.device != d {
            return fail(
                CUDA_ERROR_INVALID_HANDLE,
                format!(
                    "function `{name}` belongs to the context of device {}, the current one is device {d}'s",
                    func.device
                ),
            );
        }
        self.check_stream(d, stream)?;
        let threads: u64 = block.iter().map(|b| *b as u64).product();
        if block.contains(&0)
            || block[0] > 1024
            || block[1] > 1024
            || block[2] > 64
            || threads > 1024
        {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                format!("block {block:?}: at most 1024 threads, (1024, 1024, 64) per dimension"),
            );
        }
        if grid.contains(&0) || grid[0] > i32::MAX as u32 || grid[1] > 65535 || grid[2] > 65535 {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                format!("grid {grid:?}: from 1 to (2^31 - 1, 65535, 65535)"),
            );
        }
        if i64::from(shared) > i64::from(limit) {
            return fail(
                CUDA_ERROR_INVALID_VALUE,
                format!(
                    "{shared} bytes of dynamic shared memory for `{name}`, above its CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES ({limit}; raise it with cuFuncSetAttribute)"
                ),
            );
        }
        let params = params(count)?;
        let Some(kernel) = self.modules.get(&module).and_then(|m| m.ptx.kernel(&name)) else {
            return fail(CUDA_ERROR_INVALID_HANDLE, "the function's module is gone");
        };
        self.launches += 1;
        let mut memory = KernelMemory {
            memory: &mut self.memory,
            freed: &self.freed,
            device: d,
        };
        let run = if self.config.fault_at_launch == Some(self.launches) {
            Ok(Err(Fault::IllegalAddress(format!(
                "injected at launch {} (KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH)",
                self.launches
            ))))
        } else {
            catch_unwind(AssertUnwindSafe(|| {
                kernel.launch(grid, block, shared as usize, &params, &mut memory)
            }))
        };
        let fault = match run {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(fault)) => fault,
            Err(panic) => Fault::InvalidLaunch(format!(
                "the PTX interpreter panicked: {}",
                panic_message(&*panic)
            )),
        };
        let code = match fault {
            Fault::IllegalAddress(_) => CUDA_ERROR_ILLEGAL_ADDRESS,
            Fault::MisalignedAddress(_) => CUDA_ERROR_MISALIGNED_ADDRESS,
            Fault::IllegalInstruction(_) => CUDA_ERROR_ILLEGAL_INSTRUCTION,
            Fault::InvalidLaunch(_) => CUDA_ERROR_LAUNCH_FAILED,
        };
        let msg = format!(
            "kernel `{name}` (grid {grid:?}, block {block:?}, {shared} bytes of shared memory): {fault}"
        );
        let code_name = crate::codes::name(code).map_or("?".into(), |n| n.to_string_lossy());
        eprintln!(
            "keops-fake-cuda: {msg}\nkeops-fake-cuda: the context of device {d} is lost: every later call on it returns {code_name}"
        );
        self.devices[d].lost = Some((code, msg));
        Ok(())
    }
}

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".into(),
    }
}

/// Why `n` bytes at `addr` are not in one live allocation (or, for a free, not the start
/// of one), for messages: where they are from the nearest allocation below, live or
/// freed.
fn outside(
    memory: &BTreeMap<u64, Allocation>,
    freed: &BTreeMap<u64, u64>,
    addr: u64,
    n: usize,
) -> String {
    let live = memory.range(..=addr).next_back();
    let live = live.map(|(b, a)| (*b, a.bytes.len() as u64, false));
    let dead = freed.range(..=addr).next_back();
    let dead = dead.map(|(b, len)| (*b, *len, true));
    let what = format!("{n} bytes at {addr:#x}");
    let Some((base, len, was_freed)) = live.into_iter().chain(dead).max_by_key(|x| x.0) else {
        return format!("{what}: below every allocation");
    };
    let (end, alloc_end) = (addr.saturating_add(n as u64), base + len);
    let alloc = match was_freed {
        true => format!("the allocation at {base:#x} ({len} bytes, freed)"),
        false => format!("the allocation at {base:#x} ({len} bytes)"),
    };
    if addr >= alloc_end {
        format!("{what}: {} bytes past the end of {alloc}", addr - alloc_end)
    } else if was_freed {
        format!("{what}: in {alloc}")
    } else if end > alloc_end {
        format!(
            "{what}: runs {} bytes past the end of {alloc}",
            end - alloc_end
        )
    } else {
        format!("{what}: {} bytes into {alloc}, not its start", addr - base)
    }
}

/// Global memory as a kernel of device `device` sees it: the live allocations of its
/// context (those of other devices are not mapped).
struct KernelMemory<'a> {
    memory: &'a mut BTreeMap<u64, Allocation>,
    freed: &'a BTreeMap<u64, u64>,
    device: usize,
}

impl KernelMemory<'_> {
    fn bytes(&mut self, addr: u64, n: usize, what: &str) -> Result<&mut [u8], Fault> {
        match find(self.memory, addr, n) {
            Some((base, offset, dev)) if dev == self.device => {
                Ok(bytes_mut(self.memory, base, offset, n))
            }
            Some((base, _, dev)) => Err(Fault::IllegalAddress(format!(
                "{what} of {n} bytes at {addr:#x}: in the allocation at {base:#x} of device {dev}, not mapped on device {}",
                self.device
            ))),
            None => Err(Fault::IllegalAddress(format!(
                "{what} of {}",
                outside(self.memory, self.freed, addr, n)
            ))),
        }
    }
}

/// The live allocation holding the `n` bytes at `addr` whole: (its base, the offset in
/// it, its device).
fn find(memory: &BTreeMap<u64, Allocation>, addr: u64, n: usize) -> Option<(u64, usize, usize)> {
    let (base, a) = memory.range(..=addr).next_back()?;
    let offset = usize::try_from(addr - base).ok()?;
    (offset.checked_add(n)? <= a.bytes.len()).then_some((*base, offset, a.device))
}

/// The bytes of a range [`find`] located.
fn bytes_mut(
    memory: &mut BTreeMap<u64, Allocation>,
    base: u64,
    offset: usize,
    n: usize,
) -> &mut [u8] {
    let bytes = memory
        .get_mut(&base)
        .map(|a| &mut a.bytes[offset..offset + n]);
    bytes.unwrap_or_default()
}

impl GlobalMemory for KernelMemory<'_> {
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Fault> {
        out.copy_from_slice(self.bytes(addr, out.len(), "read")?);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.bytes(addr, data.len(), "write")?.copy_from_slice(data);
        Ok(())
    }
}

/// `handle` (a `what`) is live in `owners` and belongs to device `d`'s context.
fn owned_by(owners: &HashMap<u64, usize>, what: &str, handle: u64, d: usize) -> CuResult<()> {
    match owners.get(&handle) {
        Some(&o) if o == d => Ok(()),
        Some(&o) => fail(
            CUDA_ERROR_INVALID_HANDLE,
            format!(
                "{what} {handle:#x} belongs to the context of device {o}, the current one is device {d}'s"
            ),
        ),
        None => fail(
            CUDA_ERROR_INVALID_HANDLE,
            format!("{handle:#x} is not a live {what}"),
        ),
    }
}
