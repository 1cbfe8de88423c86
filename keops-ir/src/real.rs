//! The floating-point types formulas are evaluated in (f32 and f64), and the functions
//! of the operation table in both precisions (the reference values of [`crate::ops`]).

use crate::graph::Param;
use num_traits::{Float, FloatConst};
use std::fmt::{Debug, Display};

/// A floating-point scalar type the reference evaluator and the lowered-form
/// interpreter run in: `f32` or `f64`.
pub trait Real: Float + FloatConst + Debug + Display + Default + Send + Sync + 'static {
    /// Name of the type, as in Rust (`"f32"`, `"f64"`).
    const NAME: &'static str;
    /// Converts from f64, rounding to nearest.
    fn of(x: f64) -> Self;
    /// Converts to f64 exactly.
    fn f64(self) -> f64;
    /// Width of the float in bits (32 or 64).
    const BITS: u32;
    /// The bits, as a signed integer sign-extended to 64 bits.
    fn to_bits_i64(self) -> i64;
    /// The float with the low `BITS` bits of `b`.
    fn from_bits_i64(b: i64) -> Self;
    /// Wraps an integer to `BITS` bits (sign-extended).
    fn wrap(i: i64) -> i64;
    /// Truncation toward zero to an integer of `BITS` bits, saturating, NaN to 0.
    fn to_int_sat(self) -> i64;
    /// Rounds to the nearest integer, ties to even.
    fn round_even(self) -> Self;
    /// The version of a unary scalar function in this precision.
    fn s1(f: &Scalar1) -> fn(&[Param], Self) -> Self;
    /// The version of a binary scalar function in this precision.
    fn s2(f: &Scalar2) -> fn(&[Param], Self, Self) -> Self;
    /// The version of a ternary scalar function in this precision.
    fn s3(f: &Scalar3) -> fn(&[Param], Self, Self, Self) -> Self;
    /// The version of a vector function in this precision.
    fn vf(f: &VectorFn) -> fn(&VecArgs<'_, Self>, &mut [Self]);
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    const BITS: u32 = 64;
    fn to_bits_i64(self) -> i64 {
        self.to_bits() as i64
    }
    fn from_bits_i64(b: i64) -> Self {
        f64::from_bits(b as u64)
    }
    fn wrap(i: i64) -> i64 {
        i
    }
    fn to_int_sat(self) -> i64 {
        self as i64
    }
    fn round_even(self) -> Self {
        self.round_ties_even()
    }
    fn s1(f: &Scalar1) -> fn(&[Param], Self) -> Self {
        f.f64
    }
    fn s2(f: &Scalar2) -> fn(&[Param], Self, Self) -> Self {
        f.f64
    }
    fn s3(f: &Scalar3) -> fn(&[Param], Self, Self, Self) -> Self {
        f.f64
    }
    fn vf(f: &VectorFn) -> fn(&VecArgs<'_, Self>, &mut [Self]) {
        f.f64
    }
    fn of(x: f64) -> Self {
        x
    }
    fn f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    const BITS: u32 = 32;
    fn to_bits_i64(self) -> i64 {
        self.to_bits() as i32 as i64
    }
    fn from_bits_i64(b: i64) -> Self {
        f32::from_bits(b as u32)
    }
    fn wrap(i: i64) -> i64 {
        i as i32 as i64
    }
    fn to_int_sat(self) -> i64 {
        self as i32 as i64
    }
    fn round_even(self) -> Self {
        self.round_ties_even()
    }
    fn s1(f: &Scalar1) -> fn(&[Param], Self) -> Self {
        f.f32
    }
    fn s2(f: &Scalar2) -> fn(&[Param], Self, Self) -> Self {
        f.f32
    }
    fn s3(f: &Scalar3) -> fn(&[Param], Self, Self, Self) -> Self {
        f.f32
    }
    fn vf(f: &VectorFn) -> fn(&VecArgs<'_, Self>, &mut [Self]) {
        f.f32
    }
    fn of(x: f64) -> Self {
        x as f32
    }
    fn f64(self) -> f64 {
        self as f64
    }
}

/// Scalar function for element-wise operations, in both precisions.
#[derive(Copy, Clone)]
pub struct Scalar1 {
    /// f64 version.
    pub f64: fn(&[Param], f64) -> f64,
    /// f32 version.
    pub f32: fn(&[Param], f32) -> f32,
}
/// Binary scalar function.
#[derive(Copy, Clone)]
pub struct Scalar2 {
    /// f64 version.
    pub f64: fn(&[Param], f64, f64) -> f64,
    /// f32 version.
    pub f32: fn(&[Param], f32, f32) -> f32,
}
/// Ternary scalar function.
#[derive(Copy, Clone)]
pub struct Scalar3 {
    /// f64 version.
    pub f64: fn(&[Param], f64, f64, f64) -> f64,
    /// f32 version.
    pub f32: fn(&[Param], f32, f32, f32) -> f32,
}

/// Arguments of a vector evaluation.
pub struct VecArgs<'a, R> {
    /// Argument values.
    pub args: &'a [&'a [R]],
    /// Parameters.
    pub params: &'a [Param],
}

impl<R> VecArgs<'_, R> {
    /// Integer parameter `k`.
    pub fn int(&self, k: usize) -> i64 {
        self.params.get(k).map(Param::int).unwrap_or(0)
    }
    /// List parameter `k`.
    pub fn list(&self, k: usize) -> Vec<i64> {
        self.params.get(k).map(Param::list).unwrap_or_default()
    }
}

/// A vector function: fills the output from the arguments.
#[derive(Copy, Clone)]
pub struct VectorFn {
    /// f64 version.
    pub f64: fn(&VecArgs<'_, f64>, &mut [f64]),
    /// f32 version.
    pub f32: fn(&VecArgs<'_, f32>, &mut [f32]),
}
