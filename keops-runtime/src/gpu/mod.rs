//! The GPU backend: reduction steps of generated kernels run as PTX on a device (through
//! cudarc, loading the driver at run time), or as the same kernels in the SIMT
//! interpreter ([`crate::Backend::Emulated`]).
//!
//! The `keops!` macro describes each reduction step by a [`GpuStep`]: the PTX modules it
//! embedded (when every width is known at compile time) and how to regenerate them (the
//! formula text, the gradient taken, the step's position), which is what kernels with
//! generic widths and the emulated backend do at first use; the results are cached.
//!
//! The submodules, from the bottom up: `memory` (definitions of device allocations and
//! copies), `exec` (the device-generic executor and the emulated device), [`driver`]
//! (the CUDA driver), `resident` ([`DeviceArray`]), `step` (what reductions and gathers
//! share), `reduce` and `gather` (the steps). This module only re-exports them: they
//! import each other by their own paths, downwards.

#[allow(unsafe_code)]
pub mod driver;
pub(crate) mod exec;
mod gather;
pub(crate) mod memory;
mod reduce;
pub(crate) mod resident;
mod step;

pub use exec::Transfers;
pub use gather::{GatherCall, GpuGatherStep, gather_step};
pub use keops_gpu_kernels::gather::GpuGather;
pub use keops_gpu_kernels::module::{ChunkMeta, GpuInput, GpuReduction, InputSource};
pub use memory::Resident;
pub use reduce::{StepCall, reduce_step, reduce_step_into};
pub use resident::DeviceArray;
pub use step::{GpuStep, last_backend, last_transfers};
