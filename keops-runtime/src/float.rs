//! The float types kernels run in.

use crate::cpu::{self, CpuOptions, CpuReduce, ReduceArgs};
use crate::error::Result;
use crate::gather::{self, CpuGather, GatherArgs};
use keops_ir::eval::Output;

/// f32 or f64: the element types of keops-rs kernels.
#[diagnostic::on_unimplemented(
    message = "keops kernels compute in f32 or f64, not `{Self}`",
    label = "the elements of the arguments must be f32 or f64"
)]
pub trait KeopsFloat:
    keops_ir::Real + Send + Sync + Copy + Default + std::fmt::Debug + 'static
{
    /// Lanes processed together by the CPU kernels (one AVX-512 register, or two AVX2).
    const LANES: usize;

    /// Runs a generated kernel (which is compiled for both f32 and f64) in this precision.
    fn cpu_reduce<K: CpuReduce<f32> + CpuReduce<f64>>(
        k: &K,
        a: &ReduceArgs<'_, Self>,
        o: &CpuOptions,
    ) -> Result<Output<Self>>;

    /// Runs a generated gather kernel in this precision.
    fn cpu_gather<K: CpuGather<f32> + CpuGather<f64>>(
        k: &K,
        a: &GatherArgs<'_, Self>,
    ) -> Result<Output<Self>>;

    /// `s` as `f32` values when `Self` is `f32` (for copies straight from device buffers).
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]>;

    /// `s` as `f64` values when `Self` is `f64`.
    fn as_f64_mut(s: &mut [Self]) -> Option<&mut [f64]>;
}

impl KeopsFloat for f32 {
    const LANES: usize = 16;
    fn cpu_reduce<K: CpuReduce<f32> + CpuReduce<f64>>(
        k: &K,
        a: &ReduceArgs<'_, Self>,
        o: &CpuOptions,
    ) -> Result<Output<Self>> {
        cpu::reduce::<f32, K>(k, a, o)
    }
    fn cpu_gather<K: CpuGather<f32> + CpuGather<f64>>(
        k: &K,
        a: &GatherArgs<'_, Self>,
    ) -> Result<Output<Self>> {
        gather::gather::<f32, K>(k, a)
    }
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    fn as_f64_mut(_: &mut [f32]) -> Option<&mut [f64]> {
        None
    }
}

impl KeopsFloat for f64 {
    const LANES: usize = 8;
    fn cpu_reduce<K: CpuReduce<f32> + CpuReduce<f64>>(
        k: &K,
        a: &ReduceArgs<'_, Self>,
        o: &CpuOptions,
    ) -> Result<Output<Self>> {
        cpu::reduce::<f64, K>(k, a, o)
    }
    fn cpu_gather<K: CpuGather<f32> + CpuGather<f64>>(
        k: &K,
        a: &GatherArgs<'_, Self>,
    ) -> Result<Output<Self>> {
        gather::gather::<f64, K>(k, a)
    }
    fn as_f32_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
    fn as_f64_mut(s: &mut [f64]) -> Option<&mut [f64]> {
        Some(s)
    }
}
