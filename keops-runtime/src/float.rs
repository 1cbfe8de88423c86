//! The float types kernels run in: [`KeopsFloat`] (defined with the kernel interface,
//! below the CPU drivers, which are generic over it) implemented for f32 and f64, whose
//! methods run a generated kernel through the drivers instantiated in that precision.

use crate::cpu::{self, CpuOptions, CpuReduce, ReduceArgs};
use crate::error::Result;
use crate::gather::{self, CpuGather, GatherArgs};
use keops_ir::eval::Output;

pub use crate::kernel::KeopsFloat;

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
