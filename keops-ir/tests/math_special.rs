//! Special values of the math library's expansions, as exact expectations (same bits,
//! or both NaN) in f32 and f64: NaN, infinities, signed zeros, the cases of C99
//! Annex F, and exact results (powers of two, halves of round).

mod math_util;

use keops_ir::Real;
use keops_ir::lower::SOp;
use math_util::{Expanded, same};
use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;
/// 3 pi/4 rounded to f64.
const PI3O4: f64 = 2.356194490192345;

fn check1<R: Real>(op: SOp, cases: &[(f64, f64)]) {
    let mut e = Expanded::<R>::new(op, 1);
    for &(x, want) in cases {
        let (x, want) = (R::of(x), R::of(want));
        let got = e.f1(x);
        assert!(
            same(got, want),
            "{op:?}({x:?}) = {got:?}, want {want:?} ({})",
            R::NAME
        );
    }
}

fn check2<R: Real>(op: SOp, cases: &[(f64, f64, f64)]) {
    let mut e = Expanded::<R>::new(op, 2);
    for &(x, y, want) in cases {
        let (x, y, want) = (R::of(x), R::of(y), R::of(want));
        let got = e.f2(x, y);
        assert!(
            same(got, want),
            "{op:?}({x:?}, {y:?}) = {got:?}, want {want:?} ({})",
            R::NAME
        );
    }
}

fn both1(op: SOp, cases: &[(f64, f64)]) {
    check1::<f32>(op, cases);
    check1::<f64>(op, cases);
}

fn both2(op: SOp, cases: &[(f64, f64, f64)]) {
    check2::<f32>(op, cases);
    check2::<f64>(op, cases);
}

#[test]
fn exp_specials() {
    both1(
        SOp::Exp,
        &[
            (NAN, NAN),
            (-INF, 0.0),
            (INF, INF),
            (0.0, 1.0),
            (-0.0, 1.0),
            (1000.0, INF),
            (-1000.0, 0.0),
            (1e-30, 1.0),
            (-1e-30, 1.0),
        ],
    );
    // Overflow and gradual underflow at the precision's thresholds.
    check1::<f32>(SOp::Exp, &[(89.0, INF), (-104.0, 0.0)]);
    check1::<f64>(SOp::Exp, &[(709.8, INF), (-745.2, 0.0)]);
    let mut e = Expanded::<f32>::new(SOp::Exp, 1);
    let sub = e.f1(-100.0);
    assert!(
        sub > 0.0 && sub < f32::MIN_POSITIVE,
        "exp(-100) = {sub:e} in f32"
    );
    let mut e = Expanded::<f64>::new(SOp::Exp, 1);
    let sub = e.f1(-740.0);
    assert!(sub > 0.0 && sub < f64::MIN_POSITIVE, "exp(-740) = {sub:e}");
}

#[test]
fn log_specials() {
    both1(
        SOp::Log,
        &[
            (NAN, NAN),
            (0.0, -INF),
            (-0.0, -INF),
            (-1.0, NAN),
            (-INF, NAN),
            (-1e-30, NAN),
            (INF, INF),
            (1.0, 0.0),
        ],
    );
    // Subnormals are accurate (not -inf, not the log of a normal number).
    let mut e = Expanded::<f32>::new(SOp::Log, 1);
    let v = e.f1(f32::from_bits(1)) as f64;
    let want = -149.0 * std::f64::consts::LN_2;
    assert!(
        (v - want).abs() <= 2f64.powi(-17),
        "log(2^-149) = {v} in f32"
    );
    let mut e = Expanded::<f64>::new(SOp::Log, 1);
    let v = e.f1(f64::from_bits(1));
    // -1074 ln 2 = -744.44007192138126231410729844608163..., ulp 2^-43.
    let want = -744.440_071_921_381_3;
    assert!((v - want).abs() <= 2f64.powi(-43), "log(2^-1074) = {v}");
}

#[test]
fn sin_cos_specials() {
    both1(
        SOp::Sin,
        &[
            (NAN, NAN),
            (INF, NAN),
            (-INF, NAN),
            (0.0, 0.0),
            (-0.0, -0.0),
            (1e-30, 1e-30),
            (-1e-30, -1e-30),
        ],
    );
    check1::<f32>(SOp::Sin, &[(-1e-40, -1e-40), (1e-45, 1e-45)]);
    check1::<f64>(SOp::Sin, &[(-1e-310, -1e-310), (5e-324, 5e-324)]);
    both1(
        SOp::Cos,
        &[
            (NAN, NAN),
            (INF, NAN),
            (-INF, NAN),
            (0.0, 1.0),
            (-0.0, 1.0),
            (1e-30, 1.0),
        ],
    );
    // Huge arguments: finite and within [-1, 1] (the accuracy bound is for |x| < 2^20
    // in f32, 2^48 in f64).
    for op in [SOp::Sin, SOp::Cos] {
        let mut e = Expanded::<f32>::new(op, 1);
        for x in [f32::MAX, -f32::MAX, 1e30, 3.0e9, 1e7] {
            let v = e.f1(x);
            assert!(v.abs() <= 1.0, "{op:?}({x:e}) = {v} in f32");
        }
        let mut e = Expanded::<f64>::new(op, 1);
        for x in [f64::MAX, -f64::MAX, 1e300, 1e22, 1e16] {
            let v = e.f1(x);
            assert!(v.abs() <= 1.0, "{op:?}({x:e}) = {v}");
        }
    }
}

#[test]
fn asin_acos_atan_specials() {
    both1(
        SOp::Asin,
        &[
            (NAN, NAN),
            (0.0, 0.0),
            (-0.0, -0.0),
            (1.0, FRAC_PI_2),
            (-1.0, -FRAC_PI_2),
            (1.5, NAN),
            (-2.0, NAN),
            (INF, NAN),
            (-INF, NAN),
            (1e-30, 1e-30),
            (-1e-30, -1e-30),
        ],
    );
    check1::<f32>(SOp::Asin, &[(1.0000001, NAN), (-1.0000001, NAN)]);
    check1::<f64>(SOp::Asin, &[(1.0000000000000002, NAN)]);
    both1(
        SOp::Acos,
        &[
            (NAN, NAN),
            (1.0, 0.0),
            (-1.0, PI),
            (0.0, FRAC_PI_2),
            (-0.0, FRAC_PI_2),
            (1.5, NAN),
            (-2.0, NAN),
            (INF, NAN),
            (-INF, NAN),
        ],
    );
    both1(
        SOp::Atan,
        &[
            (NAN, NAN),
            (0.0, 0.0),
            (-0.0, -0.0),
            (INF, FRAC_PI_2),
            (-INF, -FRAC_PI_2),
            (1e300, FRAC_PI_2),
            (1.0, FRAC_PI_4),
            (-1.0, -FRAC_PI_4),
            (1e-30, 1e-30),
            (-1e-30, -1e-30),
        ],
    );
    check1::<f64>(SOp::Atan, &[(5e-324, 5e-324), (-1e-310, -1e-310)]);
}

/// C99 F.9.1.4.
#[test]
fn atan2_specials() {
    both2(
        SOp::Atan2,
        &[
            (0.0, -0.0, PI),
            (-0.0, -0.0, -PI),
            (0.0, 0.0, 0.0),
            (-0.0, 0.0, -0.0),
            (0.0, -1.0, PI),
            (-0.0, -1.0, -PI),
            (0.0, 1.0, 0.0),
            (-0.0, 1.0, -0.0),
            (-1.0, 0.0, -FRAC_PI_2),
            (-1.0, -0.0, -FRAC_PI_2),
            (1.0, 0.0, FRAC_PI_2),
            (1.0, -0.0, FRAC_PI_2),
            (1.0, -INF, PI),
            (-1.0, -INF, -PI),
            (1.0, INF, 0.0),
            (-1.0, INF, -0.0),
            (INF, 1.0, FRAC_PI_2),
            (-INF, 1.0, -FRAC_PI_2),
            (INF, -1e30, FRAC_PI_2),
            (INF, -INF, PI3O4),
            (-INF, -INF, -PI3O4),
            (INF, INF, FRAC_PI_4),
            (-INF, INF, -FRAC_PI_4),
            (0.0, INF, 0.0),
            (0.0, -INF, PI),
            (INF, 0.0, FRAC_PI_2),
            (NAN, 1.0, NAN),
            (1.0, NAN, NAN),
            (NAN, NAN, NAN),
            (INF, NAN, NAN),
            (NAN, 0.0, NAN),
            (1.0, 1.0, FRAC_PI_4),
            (-1.0, -1.0, -PI3O4),
            (1e30, 1e30, FRAC_PI_4),
            (1e-30, 1e-30, FRAC_PI_4),
        ],
    );
    check2::<f64>(
        SOp::Atan2,
        &[
            (f64::MAX, f64::MAX, FRAC_PI_4),
            (5e-324, 5e-324, FRAC_PI_4),
            (-5e-324, -5e-324, -PI3O4),
            (5e-324, 1.0, 5e-324),
            (f64::MAX, -f64::MAX, PI3O4),
        ],
    );
    check2::<f32>(
        SOp::Atan2,
        &[
            (f32::MAX as f64, f32::MAX as f64, FRAC_PI_4),
            (1e-45, 1e-45, FRAC_PI_4),
            (1e-45, 1.0, 1e-45),
        ],
    );
}

/// C99 F.9.4.4.
#[test]
fn powf_specials() {
    both2(
        SOp::Powf,
        &[
            // pow(x, ±0) = 1 for any x, even NaN.
            (NAN, 0.0, 1.0),
            (NAN, -0.0, 1.0),
            (INF, 0.0, 1.0),
            (-INF, -0.0, 1.0),
            (0.0, 0.0, 1.0),
            (-3.0, 0.0, 1.0),
            // pow(+1, y) = 1 for any y, even NaN.
            (1.0, NAN, 1.0),
            (1.0, INF, 1.0),
            (1.0, -INF, 1.0),
            (1.0, 1e30, 1.0),
            // pow(-1, ±inf) = 1.
            (-1.0, INF, 1.0),
            (-1.0, -INF, 1.0),
            // pow(±0, y): y < 0 odd integer ±inf, other y < 0 +inf, y > 0 odd integer
            // ±0, other y > 0 +0.
            (0.0, -3.0, INF),
            (-0.0, -3.0, -INF),
            (0.0, -2.0, INF),
            (-0.0, -2.0, INF),
            (-0.0, -0.5, INF),
            (0.0, -INF, INF),
            (-0.0, -INF, INF),
            (0.0, 3.0, 0.0),
            (-0.0, 3.0, -0.0),
            (-0.0, 2.0, 0.0),
            (-0.0, 0.5, 0.0),
            (-0.0, INF, 0.0),
            (0.0, INF, 0.0),
            // Finite negative base, non-integer exponent.
            (-2.0, 0.5, NAN),
            (-8.0, 1.0 / 3.0, NAN),
            (-1.5, 2.5, NAN),
            (-1.0, 0.5, NAN),
            // pow(x, ±inf).
            (0.5, -INF, INF),
            (-0.5, -INF, INF),
            (2.0, -INF, 0.0),
            (-2.0, -INF, 0.0),
            (0.5, INF, 0.0),
            (-0.5, INF, 0.0),
            (2.0, INF, INF),
            (-2.0, INF, INF),
            // pow(±inf, y).
            (-INF, -3.0, -0.0),
            (-INF, -2.0, 0.0),
            (-INF, -0.5, 0.0),
            (-INF, 3.0, -INF),
            (-INF, 2.0, INF),
            (-INF, 0.5, INF),
            (INF, -1.0, 0.0),
            (INF, -0.5, 0.0),
            (INF, 0.5, INF),
            (INF, 2.0, INF),
            // NaN otherwise.
            (NAN, 1.0, NAN),
            (NAN, INF, NAN),
            (2.0, NAN, NAN),
            (-1.0, NAN, NAN),
            (0.0, NAN, NAN),
            (INF, NAN, NAN),
            // Negative base with integer exponent keeps the sign when odd.
            (-2.0, 3.0, -8.0),
            (-2.0, 2.0, 4.0),
            (-2.0, -1.0, -0.5),
            (-0.5, -3.0, -8.0),
            (2.0, 10.0, 1024.0),
            (2.0, -1.0, 0.5),
            (4.0, 0.5, 2.0),
            (2.0, 1024.0, INF),
            (-2.0, 1025.0, -INF),
            (10.0, -400.0, 0.0),
            (-10.0, -401.0, -0.0),
        ],
    );
    check2::<f32>(
        SOp::Powf,
        &[(2.0, -149.0, 1e-45), (2.0, 127.0, 2f64.powi(127))],
    );
    check2::<f64>(
        SOp::Powf,
        &[(2.0, -1074.0, 5e-324), (2.0, 1023.0, 2f64.powi(1023))],
    );
}

/// C `pown`.
#[test]
fn powi_specials() {
    both1(
        SOp::PowI(0),
        &[(NAN, 1.0), (INF, 1.0), (0.0, 1.0), (-0.0, 1.0), (-3.0, 1.0)],
    );
    both1(
        SOp::PowI(1),
        &[(-0.0, -0.0), (NAN, NAN), (-INF, -INF), (3.0, 3.0)],
    );
    both1(
        SOp::PowI(-1),
        &[(-0.0, -INF), (0.0, INF), (-INF, -0.0), (4.0, 0.25)],
    );
    both1(
        SOp::PowI(2),
        &[(-0.0, 0.0), (-INF, INF), (-3.0, 9.0), (NAN, NAN)],
    );
    both1(
        SOp::PowI(3),
        &[
            (-0.0, -0.0),
            (0.0, 0.0),
            (-INF, -INF),
            (INF, INF),
            (NAN, NAN),
            (-2.0, -8.0),
            (1e300, INF),
            (-1e300, -INF),
            (1e-300, 0.0),
            (-1e-300, -0.0),
        ],
    );
    both1(
        SOp::PowI(-3),
        &[
            (0.0, INF),
            (-0.0, -INF),
            (INF, 0.0),
            (-INF, -0.0),
            (NAN, NAN),
            (2.0, 0.125),
            (-2.0, -0.125),
            (1e300, 0.0),
            (-1e-300, -INF),
        ],
    );
    both1(
        SOp::PowI(-2),
        &[
            (0.0, INF),
            (-0.0, INF),
            (-INF, 0.0),
            (-2.0, 0.25),
            (NAN, NAN),
        ],
    );
    both1(SOp::PowI(4), &[(-2.0, 16.0), (-0.0, 0.0), (-INF, INF)]);
    both1(
        SOp::PowI(10),
        &[(2.0, 1024.0), (-2.0, 1024.0), (0.5, 1.0 / 1024.0)],
    );
    both1(SOp::PowI(-10), &[(2.0, 1.0 / 1024.0), (-0.0, INF)]);
    check1::<f32>(SOp::PowI(-149), &[(2.0, 1e-45)]);
    check1::<f64>(SOp::PowI(-1074), &[(2.0, 5e-324)]);
    check1::<f64>(
        SOp::PowI(1023),
        &[(2.0, 2f64.powi(1023)), (-2.0, -2f64.powi(1023))],
    );
    check1::<f32>(SOp::PowI(i32::MIN), &[(1.0, 1.0), (2.0, 0.0), (-1.0, 1.0)]);
    check1::<f64>(SOp::PowI(i32::MAX), &[(1.0, 1.0), (-1.0, -1.0), (1.5, INF)]);
}

#[test]
fn round_specials() {
    both1(
        SOp::Round,
        &[
            (0.0, 0.0),
            (-0.0, -0.0),
            (0.3, 0.0),
            (-0.3, -0.0),
            (0.5, 1.0),
            (-0.5, -1.0),
            (1.5, 2.0),
            (2.5, 3.0),
            (-2.5, -3.0),
            (-2.4, -2.0),
            (-2.6, -3.0),
            (INF, INF),
            (-INF, -INF),
            (NAN, NAN),
            (1e30, 1e30),
            (-1e30, -1e30),
        ],
    );
    check1::<f32>(
        SOp::Round,
        &[
            (0.49999997, 0.0),
            (-0.49999997, -0.0),
            (8388607.5, 8388608.0),
            (-8388607.5, -8388608.0),
            (8388609.0, 8388609.0),
            (16777215.0, 16777215.0),
        ],
    );
    check1::<f64>(
        SOp::Round,
        &[
            (0.49999999999999994, 0.0),
            (-0.49999999999999994, -0.0),
            (4503599627370495.5, 4503599627370496.0),
            (-4503599627370495.5, -4503599627370496.0),
            (4503599627370497.0, 4503599627370497.0),
            (9007199254740991.0, 9007199254740991.0),
        ],
    );
}

#[test]
fn rsqrt_recip_specials() {
    both1(
        SOp::Rsqrt,
        &[
            (0.0, INF),
            (-0.0, -INF),
            (-1.0, NAN),
            (-INF, NAN),
            (INF, 0.0),
            (NAN, NAN),
            (4.0, 0.5),
            (0.25, 2.0),
        ],
    );
    both1(
        SOp::Recip,
        &[
            (0.0, INF),
            (-0.0, -INF),
            (INF, 0.0),
            (-INF, -0.0),
            (NAN, NAN),
            (4.0, 0.25),
            (-0.5, -2.0),
        ],
    );
}
