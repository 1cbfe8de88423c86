//! Polynomial coefficients and split constants of the math library.
//!
//! Every polynomial is a minimax approximation found by the Remez exchange algorithm
//! in 60-digit arithmetic, then rounded to the precision: `scripts/math_coeffs.py`
//! derives them all (and prints these arrays); the comments give the approximated
//! function, the interval, and the maximum weighted error after rounding (the weight
//! makes it the relative error of the function served). Split constants are sums of
//! floats, each the rounding of what the previous ones leave, so that `k * hi` stays
//! exact (with a fused multiply-add) and `hi + lo` carries twice the precision.

#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

use std::f32::consts as c32;
use std::f64::consts as c64;

// ---------------------------------------------------------------- exp

/// exp(r) = 1 + r + r^2 P(r), |r| <= 0.3467 (ln2/2 and the rounding slack of the
/// reduction); relative error of exp 2^-28.0.
pub const EXP_F32: [f32; 5] = [0.49999994, 0.16666521, 0.04166839, 0.008368735, 0.001381456];
/// As [`EXP_F32`], relative error 2^-60.3.
pub const EXP_F64: [f64; 11] = [
    0.5,
    0.16666666666666682,
    0.041666666666666095,
    0.008333333333316999,
    0.0013888888889116112,
    0.00019841269896471084,
    2.4801586926028793e-05,
    2.755723477283178e-06,
    2.7557582133583063e-07,
    2.5112068498101042e-08,
    2.0826598326060823e-09,
];

// ---------------------------------------------------------------- log

/// log(m) = 2s + s z Q(z), s = (m-1)/(m+1), z = s^2 <= 0.02944 (m in [sqrt(1/2),
/// sqrt(2)]): Q(z) ~ (2 atanh(s)/s - 2)/z; relative error of log(m) 2^-30.1.
pub const LOG_F32: [f32; 3] = [0.66666776, 0.3997754, 0.29871854];
/// As [`LOG_F32`], relative error 2^-58.9.
pub const LOG_F64: [f64; 7] = [
    0.6666666666666734,
    0.39999999999414343,
    0.2857142874246905,
    0.22222198564133744,
    0.1818356483054384,
    0.15314036818475682,
    0.14796095042771262,
];

/// The double-word logarithm of `pow`: log(m) = 2s + 2s^3/3 + s^5 W(z), z = s^2 <=
/// 0.02944; relative error of log(m) 2^-38.6.
pub const LOG_DW_F32: [f32; 4] = [0.39999998, 0.28571874, 0.22185008, 0.19467951];
/// As [`LOG_DW_F32`], relative error 2^-66.3.
pub const LOG_DW_F64: [f64; 8] = [
    0.3999999999999998,
    0.2857142857144511,
    0.22222222217536655,
    0.1818181887029095,
    0.1538455687261947,
    0.13336317356879202,
    0.11674819759671934,
    0.11989002824113931,
];

// ---------------------------------------------------------------- sin, cos

/// sin(r) = r + r^3 S(z), z = r^2, |r| <= 0.9 (pi/4 and the slack of the rounded
/// quadrant, up to |x| = 2^20 in f32); relative error of sin 2^-27.5.
pub const SIN_F32: [f32; 4] = [-0.16666667, 0.008333324, -0.00019837891, 2.7063656e-06];
/// As [`SIN_F32`], relative error 2^-57.0.
pub const SIN_F64: [f64; 7] = [
    -0.16666666666666666,
    0.008333333333333278,
    -0.00019841269841210825,
    2.7557319194397744e-06,
    -2.50521004400175e-08,
    1.6057869662630298e-10,
    -7.55708109943209e-13,
];

/// cos(r) = 1 - z/2 + z^2 C(z), z = r^2, |r| <= 0.9; relative error of cos 2^-29.1.
pub const COS_F32: [f32; 3] = [0.04166662, -0.0013886152, 2.4316283e-05];
/// As [`COS_F32`], relative error 2^-59.4.
pub const COS_F64: [f64; 6] = [
    0.041666666666666276,
    -0.0013888888888825622,
    2.4801587263093347e-05,
    -2.755730767767604e-07,
    2.0874924768725423e-09,
    -1.1323064806848756e-11,
];

// ---------------------------------------------------------------- asin, acos

/// asin(u) = u + u^3 A(t), t = u^2 <= 1/4; twice the relative error of asin (the
/// reduction `pi/2 - 2 asin(sqrt((1-x)/2))` doubles it, relative to its result)
/// 2^-28.8.
pub const ASIN_F32: [f32; 6] = [
    0.1666666,
    0.07500504,
    0.044516955,
    0.031807724,
    0.0144385835,
    0.037516482,
];
/// As [`ASIN_F32`], 2^-58.2.
pub const ASIN_F64: [f64; 13] = [
    0.1666666666666676,
    0.07499999999970798,
    0.04464285717461344,
    0.030381942707723382,
    0.022372214988996327,
    0.017351611994549376,
    0.013980820727558043,
    0.01139891103916821,
    0.0107802583818026,
    0.0037063900667002837,
    0.021707488771023648,
    -0.02099911808467994,
    0.032628657116494965,
];

// ---------------------------------------------------------------- atan

/// atan(u) = u + u^3 T(z), z = u^2 <= 1/4; relative error of atan 2^-27.8.
pub const ATAN_F32: [f32; 6] = [
    -0.33333328,
    0.19999489,
    -0.14272079,
    0.10940983,
    -0.079840645,
    0.03872327,
];
/// As [`ATAN_F32`], relative error 2^-57.7.
pub const ATAN_F64: [f64; 12] = [
    -0.3333333333333298,
    0.19999999999903162,
    -0.1428571427639009,
    0.11111110659799632,
    -0.09090896248406674,
    0.07692073964527758,
    -0.06663811100786843,
    0.05858301921783234,
    -0.051220181395775395,
    0.041865365328023076,
    -0.02743543321202004,
    0.01011716570589697,
];

// ---------------------------------------------------------------- split constants

/// ln 2 = hi + lo.
pub const LN2_F32: [f32; 2] = [c32::LN_2, -1.9046542e-09];
/// ln 2 = hi + lo.
pub const LN2_F64: [f64; 2] = [c64::LN_2, 2.3190468138462996e-17];
/// pi/2 = c1 + c2 + c3 (Cody-Waite reduction of sin and cos).
pub const PIO2_F32: [f32; 3] = [c32::FRAC_PI_2, -4.371139e-08, -1.7151245e-15];
/// pi/2 = c1 + c2 + c3.
pub const PIO2_F64: [f64; 3] = [
    c64::FRAC_PI_2,
    6.123233995736766e-17,
    -1.4973849048591698e-33,
];
/// pi = hi + lo.
pub const PI_F32: [f32; 2] = [c32::PI, -8.742278e-08];
/// pi = hi + lo.
pub const PI_F64: [f64; 2] = [c64::PI, 1.2246467991473532e-16];
/// pi/4 = hi + lo.
pub const PIO4_F32: [f32; 2] = [c32::FRAC_PI_4, -2.1855694e-08];
/// pi/4 = hi + lo.
pub const PIO4_F64: [f64; 2] = [c64::FRAC_PI_4, 3.061616997868383e-17];
/// 3 pi/4 = hi + lo.
pub const PI3O4_F32: [f32; 2] = [2.3561945, -5.9624403e-09];
/// 3 pi/4 = hi + lo.
pub const PI3O4_F64: [f64; 2] = [2.356194490192345, 9.184850993605148e-17];
/// 2/3 = hi + lo.
pub const TWO_THIRDS_F32: [f32; 2] = [0.6666667, -1.9868216e-08];
/// 2/3 = hi + lo.
pub const TWO_THIRDS_F64: [f64; 2] = [0.6666666666666666, 3.700743415417188e-17];
