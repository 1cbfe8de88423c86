//! Device memory as the rest of the runtime names it: the driver's allocations
//! ([`Buffer`]) and the device copies of device arrays ([`Resident`], which a
//! [`View`](crate::View) may carry). Definitions only, importing nothing of the crate, so
//! that views stay at the bottom of the crate's layers; the code that allocates, copies
//! and reads is in [`crate::gpu::driver`] and [`crate::gpu::resident`].

use cudarc::driver::CudaSlice;

/// The device copy of a [`DeviceArray`](crate::gpu::DeviceArray), as kernel calls see it
/// through a [`View`](crate::View) (its methods that read views or the device are defined
/// with [`DeviceArray`](crate::gpu::DeviceArray)'s).
pub struct Resident {
    pub(crate) copy: Placement,
    /// Shape and float width of the copy: a view is read from it only if it shows all of
    /// it (see [`Resident::describes`]).
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) bits: u32,
    /// A kernel wrote the device copy since the host copy was made: host reads must
    /// fetch the values from the device.
    pub(crate) host_stale: bool,
}

/// Where a device copy lives.
pub(crate) enum Placement {
    /// On a GPU.
    Gpu {
        /// The device index.
        device: usize,
        /// The allocation (f32 or f64, as the array's element type).
        buf: Buffer,
    },
    /// In the emulated device: the bytes the interpreter's memory maps at each call.
    Emulated(Vec<u8>),
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.copy {
            Placement::Gpu { device, .. } => write!(f, "Resident(Gpu({device}))"),
            Placement::Emulated(b) => write!(f, "Resident(Emulated, {} bytes)", b.len()),
        }
    }
}

impl Resident {
    /// Whether the values exist on the device only (a kernel wrote them there).
    pub fn host_stale(&self) -> bool {
        self.host_stale
    }
}

/// A device allocation made by [`crate::gpu::driver`].
pub(crate) enum Buffer {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    U64(CudaSlice<u64>),
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // cudarc frees a slice on its stream without making the context current: a
        // `DeviceArray` dropped on another thread would leak its memory and leave an
        // error for the next call. Bind it first (the slice is freed right after).
        let ctx = match self {
            Buffer::F32(s) => s.context(),
            Buffer::F64(s) => s.context(),
            Buffer::U64(s) => s.context(),
        };
        let _ = ctx.bind_to_thread();
    }
}
