//! The rows of the operation table, written once, and the part of them the bottom layer
//! needs: the [`Op`] enum with each operation's name, signature, arity and parameter
//! kinds.
//!
//! The rows are an "X-macro": `op_rows!(callback)` hands the whole list to a callback
//! macro. This module expands it with `op_enum!`, which keeps the names, signatures,
//! arities and parameter kinds and drops each row's `=> kind` expression (only parsed
//! here, never resolved); the table, [`crate::ops`], expands it with `op_table!`, which
//! builds [`OPS`](crate::ops::OPS) from the same rows. The paths in a `macro_rules!`
//! expansion resolve where it is expanded, so the kind expressions name the row functions
//! (`ew::exp`, ...) and the table's helpers in `ops/mod.rs`, where they are imported.
//! That way the formula graph, the parser's checks and the lowered form can name
//! operations without importing the table, which sits above the formula builder.
//!
//! This module imports nothing of the crate.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Kind of an integer parameter.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// One integer.
    Int,
    /// A list of integers `(a, b, ...)`.
    List,
    /// An optional trailing list.
    OptList,
}

/// Every row of the operation table, handed to `$callback!`: the variant (and name in
/// both syntaxes) with its documentation, the signature, the arity (`; kinds` of the
/// integer parameters), then `=> kind`, the row's [`OpKind`](crate::ops::OpKind).
macro_rules! op_rows {
    ($callback:ident) => {
        $callback! {
            // ---- arithmetic
            /// `f + g`
            Add "Add(f, g)" (2) => elementwise(s2!(ew::add), Lowering::Binary(ew::l_add), Rule(ew::d_add), true, Zeros::None, Print::Infix("+", 3)),
            /// `f - g`
            Subtract "Subtract(f, g)" (2) => elementwise(s2!(ew::sub), Lowering::Binary(ew::l_sub), Rule(ew::d_sub), true, Zeros::None, Print::Infix("-", 3)),
            /// `f * g`
            Mult "Mult(f, g)" (2) => elementwise(s2!(ew::mul), Lowering::Binary(ew::l_mul), Rule(ew::d_mul), true, Zeros::Any, Print::Infix("*", 4)),
            /// `f / g`
            Divide "Divide(f, g)" (2) => elementwise(s2!(ew::div), Lowering::Binary(ew::l_div), Rule(ew::d_div), true, Zeros::First, Print::Infix("/", 4)),
            /// `-f`
            Minus "Minus(f)" (1) => elementwise(s1!(ew::neg), Lowering::Unary(ew::l_neg), Rule(ew::d_neg), true, Zeros::First, Print::Prefix("-")),
            /// `1 / f`
            Inv "Inv(f)" (1) => elementwise(s1!(ew::inv), Lowering::Unary(ew::l_inv), Rule(ew::d_inv), true, Zeros::None, Print::Call),
            // ---- powers
            /// `f * f`
            Square "Square(f)" (1) => elementwise(s1!(ew::square), Lowering::Unary(ew::l_square), Rule(ew::d_square), true, Zeros::First, Print::Call),
            /// Square root.
            Sqrt "Sqrt(f)" (1) => elementwise(s1!(ew::sqrt), Lowering::Unary(ew::l_sqrt), Rule(ew::d_sqrt), true, Zeros::None, Print::Call),
            /// `1 / sqrt(f)`, with `Rsqrt(0) = 0`.
            Rsqrt "Rsqrt(f)" (1) => elementwise(s1!(ew::rsqrt), Lowering::Unary(ew::l_rsqrt), Rule(ew::d_rsqrt), true, Zeros::None, Print::Call),
            /// `f` to an integer power.
            Pow "Pow(f, m: int)" (1; Int) => elementwise(s1!(ew::pow), Lowering::Unary(ew::l_pow), Rule(ew::d_pow), true, Zeros::None, Print::Call),
            /// `f` to the power `g`.
            Powf "Powf(f, g)" (2) => elementwise(s2!(ew::powf), Lowering::Binary(ew::l_powf), Rule(ew::d_powf), true, Zeros::None, Print::Call),
            // ---- exp / log
            /// Exponential.
            Exp "Exp(f)" (1) => elementwise(s1!(ew::exp), Lowering::Unary(ew::l_exp), Rule(ew::d_exp), true, Zeros::None, Print::Call),
            /// Natural logarithm.
            Log "Log(f)" (1) => elementwise(s1!(ew::log), Lowering::Unary(ew::l_log), Rule(ew::d_log), true, Zeros::None, Print::Call),
            /// `f log f`, 0 at 0.
            XLogX "XLogX(f)" (1) => elementwise(s1!(ew::xlogx), Lowering::Unary(ew::l_xlogx), Rule(ew::d_xlogx), true, Zeros::None, Print::Call),
            // ---- trigonometry
            /// Sine.
            Sin "Sin(f)" (1) => elementwise(s1!(ew::sin), Lowering::Unary(ew::l_sin), Rule(ew::d_sin), true, Zeros::First, Print::Call),
            /// Cosine.
            Cos "Cos(f)" (1) => elementwise(s1!(ew::cos), Lowering::Unary(ew::l_cos), Rule(ew::d_cos), true, Zeros::None, Print::Call),
            /// `sin(f) / f`, 1 at 0.
            SinXDivX "SinXDivX(f)" (1) => elementwise(s1!(ew::sinxdivx), Lowering::Unary(ew::l_sinxdivx), Rule(ew::d_sinxdivx), true, Zeros::None, Print::Call),
            /// Arc sine.
            Asin "Asin(f)" (1) => elementwise(s1!(ew::asin), Lowering::Unary(ew::l_asin), Rule(ew::d_asin), true, Zeros::First, Print::Call),
            /// Arc cosine.
            Acos "Acos(f)" (1) => elementwise(s1!(ew::acos), Lowering::Unary(ew::l_acos), Rule(ew::d_acos), true, Zeros::None, Print::Call),
            /// Arc tangent.
            Atan "Atan(f)" (1) => elementwise(s1!(ew::atan), Lowering::Unary(ew::l_atan), Rule(ew::d_atan), true, Zeros::First, Print::Call),
            /// `atan2(f, g)`: angle of the point (g, f).
            Atan2 "Atan2(f, g)" (2) => elementwise(s2!(ew::atan2), Lowering::Binary(ew::l_atan2), Rule(ew::d_atan2), true, Zeros::None, Print::Call),
            // ---- piecewise
            /// Absolute value.
            Abs "Abs(f)" (1) => elementwise(s1!(ew::abs), Lowering::Unary(ew::l_abs), Rule(ew::d_abs), true, Zeros::First, Print::Call),
            /// `max(f, 0)`.
            ReLU "ReLU(f)" (1) => elementwise(s1!(ew::relu), Lowering::Unary(ew::l_relu), Rule(ew::d_relu), true, Zeros::First, Print::Call),
            /// `f` clamped to `[a, b]`.
            Clamp "Clamp(f, a, b)" (3) => elementwise(s3!(ew::clamp), Lowering::Ternary(ew::l_clamp), Rule(ew::d_clamp), true, Zeros::None, Print::Call),
            /// `f` clamped to the integer interval `[a, b]`.
            ClampInt "ClampInt(f, a: int, b: int)" (1; Int, Int) => elementwise(s1!(ew::clampint), Lowering::Unary(ew::l_clampint), Rule(ew::d_clampint), true, Zeros::None, Print::Call),
            /// `x - n floor((x - d) / n)`.
            Mod "Mod(x, n, d)" (3) => elementwise(s3!(ew::modulo), Lowering::Ternary(ew::l_mod), Rule(ew::d_mod), true, Zeros::None, Print::Call),
            // ---- piecewise constant (zero gradient)
            /// -1, 0 or 1.
            Sign "Sign(f)" (1) => elementwise(s1!(ew::sign), Lowering::Unary(ew::l_sign), Deriv::Zero, true, Zeros::First, Print::Call),
            /// 0 if `f < 0`, else 1.
            Step "Step(f)" (1) => elementwise(s1!(ew::step), Lowering::Unary(ew::l_step), Deriv::Zero, true, Zeros::None, Print::Call),
            /// Floor.
            Floor "Floor(f)" (1) => elementwise(s1!(ew::floor), Lowering::Unary(ew::l_floor), Deriv::Zero, true, Zeros::First, Print::Call),
            /// `f` rounded to `d` decimals.
            Round "Round(f, d: int)" (1; Int) => elementwise(s1!(ew::round), Lowering::Unary(ew::l_round), Deriv::Zero, true, Zeros::First, Print::Call),
            /// 1 where `a <= f <= b`, else 0 (derivative of ClampInt).
            DiffClampInt "DiffClampInt(f, a: int, b: int)" (1; Int, Int) => elementwise(s1!(ew::diffclampint), Lowering::Unary(ew::l_diffclampint), Deriv::Zero, true, Zeros::None, Print::Call),
            // ---- conditional and comparisons
            /// `a` where `c >= 0`, else `b`.
            IfElse "IfElse(c, a, b)" (3) => elementwise(s3!(ew::ifelse), Lowering::Ternary(ew::l_ifelse), Rule(ew::d_ifelse), true, Zeros::None, Print::Call),
            /// 1 where `f < g`, else 0.
            LessThan "LessThan(f, g)" (2) => elementwise(s2!(ew::less_than), Lowering::Binary(ew::l_less_than), Deriv::Zero, true, Zeros::None, Print::Infix("<", 1)),
            /// 1 where `f <= g`, else 0.
            LessOrEqual "LessOrEqual(f, g)" (2) => elementwise(s2!(ew::less_or_equal), Lowering::Binary(ew::l_less_or_equal), Deriv::Zero, true, Zeros::None, Print::Infix("<=", 1)),
            /// 1 where `f == g`, else 0.
            Equal "Equal(f, g)" (2) => elementwise(s2!(ew::equal), Lowering::Binary(ew::l_equal), Deriv::Zero, true, Zeros::None, Print::Infix("==", 1)),
            /// 1 where `f != g`, else 0.
            NotEqual "NotEqual(f, g)" (2) => elementwise(s2!(ew::not_equal), Lowering::Binary(ew::l_not_equal), Deriv::Zero, true, Zeros::None, Print::Infix("!=", 1)),
            // ---- reductions inside formulas
            /// Sum of the coordinates.
            Sum "Sum(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::sum), Lowering::Vector(vc::l_sum), Rule(vc::d_sum), Zeros::First), AnyWidth::Fold(FoldTerm::X, FoldOutput::Sum)),
            /// Largest coordinate.
            Max "Max(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::max), Lowering::Vector(vc::l_max), Rule(vc::d_max), Zeros::None), AnyWidth::Extreme(Extreme::Largest, ExtremeOutput::Value)),
            /// Smallest coordinate.
            Min "Min(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::min), Lowering::Vector(vc::l_min), Rule(vc::d_min), Zeros::None), AnyWidth::Extreme(Extreme::Smallest, ExtremeOutput::Value)),
            /// Index of the largest coordinate, as a float.
            ArgMax "ArgMax(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::argmax), Lowering::Vector(vc::l_argmax), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Largest, ExtremeOutput::Index)),
            /// Index of the smallest coordinate, as a float.
            ArgMin "ArgMin(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::argmin), Lowering::Vector(vc::l_argmin), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Smallest, ExtremeOutput::Index)),
            /// One-hot vector of the first largest coordinate (the gradient mask of Max).
            MaxMask "MaxMask(f)" (1) => on_any_width(prim(vc::dim_same, vf!(vc::max_mask), Lowering::Vector(vc::l_max_mask), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Largest, ExtremeOutput::Mask)),
            /// One-hot vector of the first smallest coordinate (the gradient mask of Min).
            MinMask "MinMask(f)" (1) => on_any_width(prim(vc::dim_same, vf!(vc::min_mask), Lowering::Vector(vc::l_min_mask), Deriv::Zero, Zeros::None), AnyWidth::Extreme(Extreme::Smallest, ExtremeOutput::Mask)),
            // ---- norms and distances
            /// Squared Euclidean norm.
            SqNorm2 "SqNorm2(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::sqnorm2), Lowering::Vector(vc::l_sqnorm2), Rule(vc::d_sqnorm2), Zeros::First), AnyWidth::Fold(FoldTerm::XX, FoldOutput::Sum)),
            /// Euclidean norm.
            Norm2 "Norm2(f)" (1) => on_any_width(prim(vc::dim_one, vf!(vc::norm2), Lowering::Vector(vc::l_norm2), Rule(vc::d_norm2), Zeros::First), AnyWidth::Fold(FoldTerm::XX, FoldOutput::Sqrt)),
            /// `f / |f|` (0 for f = 0).
            Normalize "Normalize(f)" (1) => on_any_width(prim(vc::dim_same, vf!(vc::normalize), Lowering::Vector(vc::l_normalize), Rule(vc::d_normalize), Zeros::First), AnyWidth::Fold(FoldTerm::XX, FoldOutput::Normalized)),
            /// Squared Euclidean distance.
            SqDist "SqDist(f, g)" (2) => on_any_width(prim(vc::dim_pair, vf!(vc::sqdist), Lowering::Vector(vc::l_sqdist), Rule(vc::d_sqdist), Zeros::None), AnyWidth::Fold(FoldTerm::DiffSquared, FoldOutput::Sum)),
            /// Scalar product, also written `f | g`.
            Scalprod "Scalprod(f, g)" (2) => OpKind::Prim(Prim { dim: vc::dim_pair, deriv: Rule(vc::d_scalprod), eval: vf!(vc::scalprod), lower: Lowering::Vector(vc::l_scalprod), fold: true, zeros: Zeros::Any, print: Print::Infix("|", 2), any_width: AnyWidth::Fold(FoldTerm::XY, FoldOutput::Sum) }),
            /// Weighted squared norm: `s` isotropic (dim 1), diagonal (dim f) or full (dim f^2).
            WeightedSqNorm "WeightedSqNorm(s, f)" (2) => OpKind::Expand(vc::x_weighted_sqnorm),
            /// `WeightedSqNorm(s, f - g)`.
            WeightedSqDist "WeightedSqDist(s, f, g)" (3) => OpKind::Expand(vc::x_weighted_sqdist),
            /// `s |f|^2` with `s` scalar.
            SqNormIso "SqNormIso(s, f)" (2) => OpKind::Expand(vc::x_sqnorm_iso),
            /// `sum_k s_k f_k^2`.
            SqNormDiag "SqNormDiag(s, f)" (2) => OpKind::Expand(vc::x_sqnorm_diag),
            /// `sum_kl s_kl f_k f_l` (s row-major).
            SymSqNorm "SymSqNorm(s, f)" (2) => OpKind::Expand(vc::x_sym_sqnorm),
            // ---- indexing
            /// Coordinate `m` of `f`.
            Elem "Elem(f, m: int)" (1; Int) => on_any_width(prim(ix::dim_elem, vf!(ix::elem), Lowering::Vector(ix::l_elem), Rule(ix::d_elem), Zeros::First), AnyWidth::Elem),
            /// The vector of dimension `n` with `f` at coordinate `m`, zeros elsewhere.
            ElemT "ElemT(f, n: int, m: int)" (1; Int, Int) => prim(ix::dim_elemt, vf!(ix::elemt), Lowering::Vector(ix::l_elemt), Rule(ix::d_elemt), Zeros::First),
            /// Coordinates `start .. start + d` of `f`.
            Extract "Extract(f, start: int, d: int)" (1; Int, Int) => on_any_width(prim(ix::dim_extract, vf!(ix::extract), Lowering::Vector(ix::l_extract), Rule(ix::d_extract), Zeros::First), AnyWidth::Extract),
            /// `f` placed at `start` in a zero vector of dimension `D`.
            ExtractT "ExtractT(f, start: int, D: int)" (1; Int, Int) => on_any_width(prim(ix::dim_extractt, vf!(ix::extractt), Lowering::Vector(ix::l_extractt), Rule(ix::d_extractt), Zeros::First), AnyWidth::ExtractT),
            /// Concatenation.
            Concat "Concat(f, g)" (2) => prim(ix::dim_concat, vf!(ix::concat), Lowering::Vector(ix::l_concat), Rule(ix::d_concat), Zeros::None),
            /// One-hot encoding of the rounded scalar `f` in dimension `D`.
            OneHot "OneHot(f, D: int)" (1; Int) => prim(ix::dim_onehot, vf!(ix::onehot), Lowering::Vector(ix::l_onehot), Deriv::Zero, Zeros::None),
            /// The scalar `f` repeated `d` times (adjoint of Sum).
            SumT "SumT(f, d: int)" (1; Int) => prim(ix::dim_sumt, vf!(ix::sumt), Lowering::Vector(ix::l_sumt), Rule(ix::d_sumt), Zeros::First),
            // ---- linear algebra
            /// Row-major matrix `A` (n x p) times vector `v` (p).
            MatVecMult "MatVecMult(A, v)" (2) => prim(la::dim_matvec, vf!(la::matvec), Lowering::Vector(la::l_matvec), Rule(la::d_matvec), Zeros::Any),
            /// Vector `v` (p) times row-major matrix `A` (p x n).
            VecMatMult "VecMatMult(v, A)" (2) => prim(la::dim_vecmat, vf!(la::vecmat), Lowering::Vector(la::l_vecmat), Rule(la::d_vecmat), Zeros::Any),
            /// Outer product, row-major.
            TensorProd "TensorProd(f, g)" (2) => prim(la::dim_tensorprod, vf!(la::tensorprod), Lowering::Vector(la::l_tensorprod), Rule(la::d_tensorprod), Zeros::Any),
            /// Tensor contraction (numpy `tensordot`), with an optional permutation of the result axes.
            TensorDot "TensorDot(f, g, dimsf, dimsg, contf, contg[, permute])" (2; List, List, List, List, OptList) => prim(la::dim_tensordot, vf!(la::tensordot), Lowering::Vector(la::l_tensordot), Rule(la::d_tensordot), Zeros::Any),
            /// Kronecker product of two tensors of the same rank.
            Kron "Kron(f, g, dimsf, dimsg)" (2; List, List) => OpKind::Expand(la::x_kron),
            // ---- complex numbers (interleaved re, im)
            /// Real parts.
            ComplexReal "ComplexReal(f)" (1) => prim(cx::dim_half, vf!(cx::real), Lowering::Vector(cx::l_real), Rule(cx::d_real), Zeros::First),
            /// Imaginary parts.
            ComplexImag "ComplexImag(f)" (1) => prim(cx::dim_half, vf!(cx::imag), Lowering::Vector(cx::l_imag), Rule(cx::d_imag), Zeros::First),
            /// Real vector to complex.
            Real2Complex "Real2Complex(f)" (1) => prim(cx::dim_double, vf!(cx::real2complex), Lowering::Vector(cx::l_real2complex), Rule(cx::d_real2complex), Zeros::First),
            /// Imaginary vector to complex.
            Imag2Complex "Imag2Complex(f)" (1) => prim(cx::dim_double, vf!(cx::imag2complex), Lowering::Vector(cx::l_imag2complex), Rule(cx::d_imag2complex), Zeros::First),
            /// Complex conjugate.
            Conj "Conj(f)" (1) => prim(cx::dim_even, vf!(cx::conj), Lowering::Vector(cx::l_conj), Rule(cx::d_conj), Zeros::First),
            /// Complex sum (broadcasting a single complex number).
            ComplexAdd "ComplexAdd(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::add), Lowering::Vector(cx::l_add), Rule(cx::d_add), Zeros::None),
            /// Complex difference.
            ComplexSubtract "ComplexSubtract(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::sub), Lowering::Vector(cx::l_sub), Rule(cx::d_sub), Zeros::None),
            /// Complex product.
            ComplexMult "ComplexMult(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::mul), Lowering::Vector(cx::l_mul), Rule(cx::d_mul), Zeros::Any),
            /// Complex quotient.
            ComplexDivide "ComplexDivide(f, g)" (2) => prim(cx::dim_broadcast2, vf!(cx::div), Lowering::Vector(cx::l_div), Rule(cx::d_div), Zeros::First),
            /// Complex exponential.
            ComplexExp "ComplexExp(f)" (1) => prim(cx::dim_even, vf!(cx::exp), Lowering::Vector(cx::l_exp), Rule(cx::d_exp), Zeros::None),
            /// `exp(i f)` for a real vector `f`.
            ComplexExp1j "ComplexExp1j(f)" (1) => prim(cx::dim_double, vf!(cx::exp1j), Lowering::Vector(cx::l_exp1j), Rule(cx::d_exp1j), Zeros::None),
            /// Moduli.
            ComplexAbs "ComplexAbs(f)" (1) => prim(cx::dim_half, vf!(cx::abs), Lowering::Vector(cx::l_abs), Rule(cx::d_abs), Zeros::First),
            /// Squared moduli.
            ComplexSquareAbs "ComplexSquareAbs(f)" (1) => prim(cx::dim_half, vf!(cx::square_abs), Lowering::Vector(cx::l_square_abs), Rule(cx::d_square_abs), Zeros::First),
            /// Arguments (angles).
            ComplexAngle "ComplexAngle(f)" (1) => OpKind::Expand(cx::x_angle),
            /// Sum of the complex coordinates.
            ComplexSum "ComplexSum(f)" (1) => prim(cx::dim_two, vf!(cx::sum), Lowering::Vector(cx::l_sum), Rule(cx::d_sum), Zeros::First),
            /// One complex number repeated to dimension `d`.
            ComplexSumT "ComplexSumT(f, d: int)" (1; Int) => prim(cx::dim_sumt, vf!(cx::sumt), Lowering::Vector(cx::l_sumt), Rule(cx::d_sumt), Zeros::First),
            /// Real scalar times complex vector.
            ComplexRealScal "ComplexRealScal(f, g)" (2) => prim(cx::dim_realscal, vf!(cx::realscal), Lowering::Vector(cx::l_realscal), Rule(cx::d_realscal), Zeros::Any),
            // ---- calculus (rewritten symbolically)
            /// Reverse mode: `[d_v f]^T e`.
            Grad "Grad(f, v, e)" (3) => OpKind::Expand(calc::x_grad),
            /// Forward mode: `[d_v f] u`.
            Diff "Diff(f, v, u)" (3) => OpKind::Expand(calc::x_diff),
            /// Sum of second derivatives of a scalar `f`.
            Laplacian "Laplacian(f, v)" (2) => OpKind::Expand(calc::x_laplacian),
            /// Trace of the Jacobian of `f` (dimension of v) with respect to `v`.
            Divergence "Divergence(f, v)" (2) => OpKind::Expand(calc::x_divergence),
            /// Jacobian matrix (transposed, row-major: d(f) blocks of d(v)).
            GradMatrix "GradMatrix(f, v)" (2) => OpKind::Expand(calc::x_gradmatrix),
            /// Trace of a linear map `f` of `v`.
            TraceOperator "TraceOperator(f, v)" (2) => OpKind::Expand(calc::x_trace),
            // ---- splines and sequences
            /// B-spline basis functions of `order` at scalar `x` over `knots`.
            BSpline "BSpline(knots, x, order: int)" (2; Int) => prim(sp::dim_bspline, vf!(sp::bspline), Lowering::Vector(sp::l_bspline), Undefined("BSpline has no derivative rule (KeOps 2.3 has none either)"), Zeros::None),
            /// Soft dynamic time warping with squared Euclidean cost between sequences `x` and `y`.
            SoftDTW_SqDist "SoftDTW_SqDist(x, y, gamma)" (3) => prim(sp::dim_softdtw, vf!(sp::softdtw), Lowering::Vector(sp::l_softdtw), Rule(sp::d_softdtw), Zeros::None),
            /// Gradient of SoftDTW_SqDist with respect to (x, y), concatenated.
            GradSoftDTW_SqDist "GradSoftDTW_SqDist(x, y, gamma)" (3) => prim(sp::dim_grad_softdtw, vf!(sp::grad_softdtw), Lowering::Vector(sp::l_grad_softdtw), Undefined("second derivatives of SoftDTW_SqDist are not implemented"), Zeros::None),
        }
    };
}
pub(crate) use op_rows;

/// The bottom layer's expansion of the rows: the enum and the signature columns.
macro_rules! op_enum {
    ($( $(#[$doc:meta])* $name:ident $sig:literal ($arity:expr $(; $($pk:ident),*)?) => $kind:expr, )*) => {
        /// An operation of the formula language (see the table in [`OPS`](crate::ops::OPS)).
        // Variant names are the formula language's names, `SoftDTW_SqDist` included.
        #[allow(non_camel_case_types)]
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $( $(#[$doc])* $name, )*
        }
        impl Op {
            /// Every operation, in table order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];
        }
        /// Names, indexed by [`Op`].
        const NAMES: &[&str] = &[$(stringify!($name)),*];
        /// Signatures, indexed by [`Op`].
        const SIGNATURES: &[&str] = &[$($sig),*];
        /// Numbers of formula arguments, indexed by [`Op`].
        const ARITIES: &[usize] = &[$($arity),*];
        /// Kinds of the integer parameters, indexed by [`Op`].
        const PARAMS: &[&[ParamKind]] = &[$(&[$($(ParamKind::$pk),*)?]),*];
    };
}

op_rows!(op_enum);

impl Op {
    /// Name in both syntaxes.
    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    /// Signature shown in arity errors and docs, e.g. `Pow(f, m: int)`.
    pub fn signature(self) -> &'static str {
        SIGNATURES[self as usize]
    }

    /// Number of formula arguments.
    pub fn arity(self) -> usize {
        ARITIES[self as usize]
    }

    /// Kinds of the integer parameters after the formula arguments.
    pub fn param_kinds(self) -> &'static [ParamKind] {
        PARAMS[self as usize]
    }

    /// Looks an operation up by name.
    pub fn from_name(name: &str) -> Option<Op> {
        static INDEX: OnceLock<HashMap<&'static str, Op>> = OnceLock::new();
        INDEX
            .get_or_init(|| Op::ALL.iter().map(|op| (op.name(), *op)).collect())
            .get(name)
            .copied()
    }

    /// The closest operation names, for "did you mean" hints.
    pub fn suggestions(name: &str) -> Vec<&'static str> {
        let lower = name.to_ascii_lowercase();
        let mut scored: Vec<(usize, &'static str)> = Op::ALL
            .iter()
            .map(|op| {
                (
                    edit_distance(&lower, &op.name().to_ascii_lowercase()),
                    op.name(),
                )
            })
            .filter(|(d, n)| *d <= 2.max(n.len() / 4))
            .collect();
        scored.sort();
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }
}

/// Levenshtein distance, for suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
