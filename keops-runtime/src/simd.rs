//! Running generated kernel bodies with the widest SIMD instructions the CPU has.
//!
//! Generated kernels are written as loops over fixed-size lane arrays; LLVM vectorizes
//! them for the target features of the function they are compiled in. [`dispatch`]
//! inlines a kernel body into a function compiled for AVX-512 or AVX2+FMA when the
//! running CPU supports it (checked at run time), else runs it as compiled. This is the
//! only `unsafe` of the CPU path.

/// A kernel body to run; `run` must be `#[inline(always)]` so that it is compiled inside
/// the feature-specific function that calls it.
pub trait Kernel {
    /// Runs the body.
    fn run(self);
}

/// Runs `k` with the best SIMD instruction set available.
#[inline]
pub fn dispatch<K: Kernel>(k: K) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports every feature `run_avx512` is compiled with
            // (checked just above), which is the only requirement of calling it.
            unsafe { run_avx512(k) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above, for AVX2 and FMA.
            unsafe { run_avx2(k) };
            return;
        }
    }
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma,bmi2")]
unsafe fn run_avx512<K: Kernel>(k: K) {
    k.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(k: K) {
    k.run()
}

/// `L` consecutive values of `s` from `off` (zeros past the end: the tail lanes of a
/// tile are masked by the kernel).
#[inline(always)]
pub fn load<T: Copy + Default, const L: usize>(s: &[T], off: usize) -> [T; L] {
    let mut out = [T::default(); L];
    if let Some(src) = s.get(off..off + L) {
        out.copy_from_slice(src);
    } else if let Some(src) = s.get(off..) {
        out[..src.len()].copy_from_slice(src);
    }
    out
}

/// The `L` values of `s` from `off`, by reference (read in place by the vectorized lane
/// loop). The CPU driver lays tiles out with a stride that is a multiple of `L`, so a
/// chunk never runs past the buffer; doing so would be a bug of the driver, not bad input.
#[inline(always)]
pub fn chunk<T, const L: usize>(s: &[T], off: usize) -> &[T; L] {
    match s
        .get(off..off + L)
        .and_then(|c| <&[T; L]>::try_from(c).ok())
    {
        Some(c) => c,
        None => panic!(
            "keops-rs internal error: tile chunk {off}..{} outside a buffer of {}",
            off + L,
            s.len()
        ),
    }
}
