//! The float types kernels run in.

use num_traits::Float;

/// f32 or f64: the element types of keops-rs kernels.
pub trait KeopsFloat: Float + keops_ir::Real + Send + Sync + Copy + Default + std::fmt::Debug + 'static {
    /// Lanes processed together by the CPU kernels (one AVX-512 register, or two AVX2).
    const LANES: usize;
}

impl KeopsFloat for f32 {
    const LANES: usize = 16;
}

impl KeopsFloat for f64 {
    const LANES: usize = 8;
}
