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

/// `x as i32` (toward zero, saturating, NaN to 0) in a form LLVM vectorizes: the
/// saturating `as` is kept scalar by LLVM, which made vectorized math functions
/// (range reductions convert floats to integers) fall back to scalar code.
#[inline(always)]
pub fn cvt_int_f32(x: f32) -> i32 {
    // The largest f32 below 2^31 is 2^31 - 128; clamping to it and to -2^31 keeps the
    // value representable, and NaN is replaced first.
    let c = if x.is_nan() {
        0.0
    } else {
        x.clamp(-2_147_483_648.0, 2_147_483_520.0)
    };
    // SAFETY: `c` is finite and within i32's range, the condition of `to_int_unchecked`.
    let i = unsafe { c.to_int_unchecked::<i32>() };
    // 2^31 itself saturates to i32::MAX, as `as` does.
    if x >= 2_147_483_648.0 { i32::MAX } else { i }
}

/// `x as i64` for f64, vectorizable (see [`cvt_int_f32`]).
#[inline(always)]
pub fn cvt_int_f64(x: f64) -> i64 {
    let c = if x.is_nan() {
        0.0
    } else {
        x.clamp(-9_223_372_036_854_775_808.0, 9_223_372_036_854_774_784.0)
    };
    // SAFETY: `c` is finite and within i64's range, the condition of `to_int_unchecked`.
    let i = unsafe { c.to_int_unchecked::<i64>() };
    if x >= 9_223_372_036_854_775_808.0 {
        i64::MAX
    } else {
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_as_casts() {
        for x in [
            0.0f32,
            -0.0,
            1.5,
            -1.5,
            2.5e9,
            -2.5e9,
            2_147_483_520.0,
            2_147_483_648.0,
            -2_147_483_648.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            123456.7,
        ] {
            assert_eq!(cvt_int_f32(x), x as i32, "{x}");
        }
        for x in [
            0.0f64,
            -3.7,
            1e19,
            -1e19,
            9.2e18,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9_223_372_036_854_775_808.0,
        ] {
            assert_eq!(cvt_int_f64(x), x as i64, "{x}");
        }
    }
}
