//! # keops-fake-cuda: a CPU model of the CUDA driver API, for tests without a GPU
//!
//! Built as `libkeops_fake_cuda.so`, linked (or copied) as `libcuda.so` into a directory
//! on `LD_LIBRARY_PATH`, it is the driver that cudarc (with `dynamic-loading`) opens, so
//! that the runtime's real GPU code path runs end to end on any machine: contexts,
//! streams, allocations, copies, module loads, attributes and kernel launches, the
//! kernels being executed by the PTX interpreter of [`keops_ptx_interp`].
//!
//! It is a test device: it models the driver's rules strictly enough to catch the bugs
//! of a driver binding (a call without a current context, a wrong size, dynamic shared
//! memory above the function's attribute, a use after free, an out-of-bounds access, a
//! sticky error after a kernel fault), not the performance of a GPU.
//!
//! Configuration, read at the first `cuInit`:
//! - `KEOPS_FAKE_CUDA_DEVICES`: number of devices (default 1; 0: `cuInit` returns
//!   `CUDA_ERROR_NO_DEVICE`);
//! - `KEOPS_FAKE_CUDA_MEMORY`: bytes of memory per device (default 2 GiB);
//! - `KEOPS_FAKE_CUDA_LOG=1`: print every failed call and why to stderr (kernel faults
//!   are always printed).
//!
//! [`state`] is the model in safe Rust; [`ffi`] exports it under the driver's symbol
//! names; [`codes`] has the `CUresult` values.

pub mod codes;
pub mod ffi;
pub mod state;

#[cfg(test)]
mod tests;
