//! Stage 5: emitters. [`rust`] writes the CPU kernels the `keops!` macro embeds; the PTX
//! emitter lives in `keops-gpu-kernels`.

pub mod api;
pub mod expand;
pub mod generic;
pub mod rust;
