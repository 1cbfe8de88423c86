//! # keops-gpu-kernels: PTX for keops-rs reductions, generated without a CUDA toolkit
//!
//! From the compiler's lowered form (math functions expanded for the precision), this
//! crate builds kernels in a small kernel IR ([`kir`]) following KeOps' reduction schemes
//! ([`scheme`]: the 1D tiled scheme and the 2D scheme with a merge kernel), prints them as
//! PTX ([`ptx`], one instruction per IR instruction), and runs the same IR on the CPU in
//! the SIMT model ([`simt`]: grid, blocks, threads, shared memory, barriers), so that the
//! kernels' logic is tested on machines without a GPU. (The printed PTX itself is run by
//! the PTX interpreter of the test-only crate `keops-ptx-interp`, which the SIMT tests
//! plug into [`simt::run_reduction_on`] as a [`simt::Launcher`].)

pub mod fast_math;
pub mod gather;
pub mod kir;
pub mod launch;
pub mod module;
pub mod ptx;
pub mod scheme;
pub mod simt;
