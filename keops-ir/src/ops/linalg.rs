//! Linear algebra on vectors read as row-major matrices and tensors: matrix-vector
//! products, outer products, tensor contractions (`TensorDot`) and Kronecker products.
//!
//! Conventions (KeOps 2.3):
//! - `MatVecMult(A, v)`: `A` is `n x p` with `p = dim(v)`, `out[i] = sum_k A[i p + k] v[k]`.
//! - `VecMatMult(v, A)`: `A` is `p x n` with `p = dim(v)`, `out[i] = sum_k v[k] A[k n + i]`.
//! - `TensorProd(f, g)`: `out[k dim(g) + l] = f[k] g[l]`.
//! - `TensorDot(f, g, dimsf, dimsg, contf, contg[, permute])`: numpy's `tensordot` of the
//!   row-major tensors `f` (shape `dimsf`) and `g` (shape `dimsg`), contracting axis
//!   `contf[t]` of `f` with axis `contg[t]` of `g`. The result's axes are the kept axes of
//!   `f` then those of `g` (each in increasing order); with `permute`, kept axis `k` is
//!   moved to position `permute[k]` of the result (keopscore's convention, the inverse of
//!   numpy's `transpose` argument).
//! - `Kron(f, g, dimsf, dimsg)`: `np.kron` of two tensors of the same rank, as a
//!   `TensorDot` without contraction that interleaves the axes of `f` and `g`.

use super::{Call, DimCx, DimResult, LowerArgs, VecArgs};
use crate::builder::Builder;
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{NodeId, Param};
use crate::lower::{Lower, Reg};
use crate::ops::Op;
use crate::real::Real;

// ---------------------------------------------------------------- tensor shapes

/// A shape, written as in the formula text: `(2, 3)`.
fn shape_text(s: &[usize]) -> String {
    let items: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("({})", items.join(", "))
}

/// A list parameter written as in the formula text.
fn list_text(s: &[i64]) -> String {
    let items: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("({})", items.join(", "))
}

/// Product of the entries, or an error when it overflows.
fn product(s: &[usize]) -> DimResult<usize> {
    s.iter()
        .try_fold(1usize, |p, d| p.checked_mul(*d))
        .ok_or_else(|| format!("the shape {} is too large", shape_text(s)))
}

/// A shape parameter: every entry at least 1.
fn shape_param(v: &[i64], what: &str) -> DimResult<Vec<usize>> {
    v.iter()
        .map(|d| usize::try_from(*d).ok().filter(|d| *d >= 1))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| format!("{what} {} must have entries of at least 1", list_text(v)))
}

/// An axis list parameter: distinct axes of a tensor of rank `rank`.
fn axes_param(v: &[i64], rank: usize, what: &str) -> DimResult<Vec<usize>> {
    let mut out = Vec::with_capacity(v.len());
    for a in v {
        let ax = usize::try_from(*a).ok().filter(|ax| *ax < rank).ok_or_else(|| {
            format!("{what} {} names the axis {a}, but the tensor has {rank} axes (valid axes are 0 to {})", list_text(v), rank as i64 - 1)
        })?;
        if out.contains(&ax) {
            return Err(format!("{what} {} names the axis {ax} twice", list_text(v)));
        }
        out.push(ax);
    }
    Ok(out)
}

/// Row-major flat index of a multi-index.
fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (i, d)| acc * d + i)
}

/// Multi-index of a row-major flat index.
fn unravel(mut flat: usize, shape: &[usize], idx: &mut [usize]) {
    for (i, d) in idx.iter_mut().zip(shape).rev() {
        *i = flat % d;
        flat /= d;
    }
}

/// The validated parameters of a `TensorDot`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TensorDotSpec {
    dimsf: Vec<usize>,
    dimsg: Vec<usize>,
    contf: Vec<usize>,
    contg: Vec<usize>,
    /// Kept axes of `f`, increasing.
    keepf: Vec<usize>,
    /// Kept axes of `g`, increasing.
    keepg: Vec<usize>,
    /// Kept axis `k` (those of `f`, then those of `g`) goes to result axis `perm[k]`.
    perm: Vec<usize>,
}

impl TensorDotSpec {
    fn new(params: &[Param]) -> DimResult<TensorDotSpec> {
        let list = |k: usize| params.get(k).map(Param::list).unwrap_or_default();
        let dimsf = shape_param(&list(0), "the shape of the first tensor")?;
        let dimsg = shape_param(&list(1), "the shape of the second tensor")?;
        let contf = axes_param(
            &list(2),
            dimsf.len(),
            "the contracted axes of the first tensor",
        )?;
        let contg = axes_param(
            &list(3),
            dimsg.len(),
            "the contracted axes of the second tensor",
        )?;
        if contf.len() != contg.len() {
            return Err(format!(
                "the lists of contracted axes have different lengths: {} for the first tensor, {} for the second",
                shape_text(&contf),
                shape_text(&contg)
            ));
        }
        for (a, b) in contf.iter().zip(&contg) {
            if dimsf[*a] != dimsg[*b] {
                return Err(format!(
                    "axis {a} of the first tensor (shape {}) has size {} but is contracted with axis {b} of the second (shape {}), of size {}",
                    shape_text(&dimsf),
                    dimsf[*a],
                    shape_text(&dimsg),
                    dimsg[*b]
                ));
            }
        }
        let keepf: Vec<usize> = (0..dimsf.len()).filter(|a| !contf.contains(a)).collect();
        let keepg: Vec<usize> = (0..dimsg.len()).filter(|a| !contg.contains(a)).collect();
        let nk = keepf.len() + keepg.len();
        let perm = match params.get(4) {
            None => (0..nk).collect(),
            Some(p) => {
                let raw = p.list();
                let perm: Option<Vec<usize>> =
                    raw.iter().map(|x| usize::try_from(*x).ok()).collect();
                let ok = perm.as_ref().is_some_and(|perm| {
                    let mut sorted = perm.clone();
                    sorted.sort_unstable();
                    sorted == (0..nk).collect::<Vec<_>>()
                });
                match perm {
                    Some(perm) if ok => perm,
                    _ => {
                        return Err(format!(
                            "the permutation {} must list each of the {nk} result axes 0 to {} once",
                            list_text(&raw),
                            nk as i64 - 1
                        ));
                    }
                }
            }
        };
        let spec = TensorDotSpec {
            dimsf,
            dimsg,
            contf,
            contg,
            keepf,
            keepg,
            perm,
        };
        product(&spec.dimsf)?;
        product(&spec.dimsg)?;
        product(&spec.out_shape())?;
        Ok(spec)
    }

    /// Sizes of the kept axes, those of `f` then those of `g`.
    fn keep_dims(&self) -> Vec<usize> {
        self.keepf
            .iter()
            .map(|a| self.dimsf[*a])
            .chain(self.keepg.iter().map(|a| self.dimsg[*a]))
            .collect()
    }

    /// Shape of the result.
    fn out_shape(&self) -> Vec<usize> {
        let keep = self.keep_dims();
        let mut out = vec![0; keep.len()];
        for (k, d) in keep.iter().enumerate() {
            out[self.perm[k]] = *d;
        }
        out
    }

    /// Sizes of the contracted axes, in the order of `contf`.
    fn cont_dims(&self) -> Vec<usize> {
        self.contf.iter().map(|a| self.dimsf[*a]).collect()
    }

    /// Calls `visit(o, i, j)` for every product `f[i] g[j]` summed into result coordinate
    /// `o`: result coordinates in increasing order, then the contraction multi-index in
    /// row-major order (last contracted axis fastest).
    fn for_each_term(&self, mut visit: impl FnMut(usize, usize, usize)) {
        let out_shape = self.out_shape();
        let cont = self.cont_dims();
        let nkf = self.keepf.len();
        let (mut oidx, mut cidx) = (vec![0; out_shape.len()], vec![0; cont.len()]);
        let (mut fidx, mut gidx) = (vec![0; self.dimsf.len()], vec![0; self.dimsg.len()]);
        let (n_out, n_cont) = (
            out_shape.iter().product::<usize>(),
            cont.iter().product::<usize>(),
        );
        for o in 0..n_out {
            unravel(o, &out_shape, &mut oidx);
            for (k, ax) in self.keepf.iter().enumerate() {
                fidx[*ax] = oidx[self.perm[k]];
            }
            for (k, ax) in self.keepg.iter().enumerate() {
                gidx[*ax] = oidx[self.perm[nkf + k]];
            }
            for c in 0..n_cont {
                unravel(c, &cont, &mut cidx);
                for (t, (af, ag)) in self.contf.iter().zip(&self.contg).enumerate() {
                    fidx[*af] = cidx[t];
                    gidx[*ag] = cidx[t];
                }
                visit(o, ravel(&fidx, &self.dimsf), ravel(&gidx, &self.dimsg));
            }
        }
    }
}

/// The parameters of a `TensorDot` (the permutation left out when it is the identity).
fn tensordot_params(
    dimsf: &[usize],
    dimsg: &[usize],
    contf: &[usize],
    contg: &[usize],
    perm: &[usize],
) -> Vec<Param> {
    let list = |v: &[usize]| Param::List(v.iter().map(|x| *x as i64).collect());
    let mut p = vec![list(dimsf), list(dimsg), list(contf), list(contg)];
    if perm.iter().enumerate().any(|(k, x)| k != *x) {
        p.push(list(perm));
    }
    p
}

// ---------------------------------------------------------------- dimensions

/// Output dimension of a matrix-vector product: `dim(matrix) / dim(vector)`.
fn dim_quotient(cx: &mut DimCx<'_>, mat: usize, vec: usize) -> DimResult<Dim> {
    let (dm, dv) = (cx.arg(mat), cx.arg(vec));
    let not_multiple = |m: &Dim| {
        format!("the matrix has dimension {m}, not a multiple of the vector's dimension {dv}")
    };
    if let (Some(m), Some(v)) = (dm.as_known(), dv.as_known()) {
        if v == 0 || m % v != 0 {
            return Err(not_multiple(&dm));
        }
        return Ok(Dim::known(m / v));
    }
    // Symbolic: a fresh dimension n with n * dim(vector) = dim(matrix).
    let n = Dim::sym(cx.solver.fresh());
    cx.solver
        .unify(&n.mul(&dv), &dm)
        .map_err(|m| not_multiple(&m.right))?;
    Ok(cx.solver.resolve(&n))
}

pub(super) fn dim_matvec(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    dim_quotient(cx, 0, 1)
}

pub(super) fn dim_vecmat(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    dim_quotient(cx, 1, 0)
}

pub(super) fn dim_tensorprod(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    Ok(cx.arg(0).mul(&cx.arg(1)))
}

pub(super) fn dim_tensordot(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    let s = TensorDotSpec::new(cx.params)?;
    let (pf, pg) = (product(&s.dimsf)?, product(&s.dimsg)?);
    cx.expect(
        0,
        &Dim::known(pf),
        &format!("the first tensor (shape {})", shape_text(&s.dimsf)),
    )?;
    cx.expect(
        1,
        &Dim::known(pg),
        &format!("the second tensor (shape {})", shape_text(&s.dimsg)),
    )?;
    Ok(Dim::known(product(&s.out_shape())?))
}

// ---------------------------------------------------------------- values

/// `sum_k a_k b_k` summed left to right from the first product (as [`Lower::dot`]).
fn dot<R: Real>(mut terms: impl Iterator<Item = (R, R)>) -> R {
    match terms.next() {
        None => R::zero(),
        Some((a, b)) => terms.fold(a * b, |s, (x, y)| s + x * y),
    }
}

pub(super) fn matvec<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (m, v) = (a.args[0], a.args[1]);
    let p = v.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot((0..p).map(|k| (m[i * p + k], v[k])));
    }
}

pub(super) fn vecmat<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (v, m) = (a.args[0], a.args[1]);
    let n = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot(v.iter().enumerate().map(|(k, vk)| (*vk, m[k * n + i])));
    }
}

pub(super) fn tensorprod<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let (f, g) = (a.args[0], a.args[1]);
    let q = g.len();
    for (k, o) in out.iter_mut().enumerate() {
        *o = f[k / q] * g[k % q];
    }
}

pub(super) fn tensordot<R: Real>(a: &VecArgs<'_, R>, out: &mut [R]) {
    let Ok(s) = TensorDotSpec::new(a.params) else {
        out.fill(R::nan());
        return;
    };
    let (f, g) = (a.args[0], a.args[1]);
    let mut last = usize::MAX;
    s.for_each_term(|o, i, j| {
        let p = f[i] * g[j];
        out[o] = if o == last { out[o] + p } else { p };
        last = o;
    });
}

// ---------------------------------------------------------------- lowering

pub(super) fn l_matvec(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (m, v) = (&a.args[0], &a.args[1]);
    let p = v.len();
    (0..a.out_dim)
        .map(|i| l.dot(&m[i * p..(i + 1) * p], v))
        .collect()
}

pub(super) fn l_vecmat(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (v, m) = (&a.args[0], &a.args[1]);
    let n = a.out_dim;
    (0..n)
        .map(|i| {
            let col: Vec<Reg> = (0..v.len()).map(|k| m[k * n + i]).collect();
            l.dot(v, &col)
        })
        .collect()
}

pub(super) fn l_tensorprod(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let (f, g) = (&a.args[0], &a.args[1]);
    let q = g.len();
    (0..a.out_dim).map(|k| l.mul(f[k / q], g[k % q])).collect()
}

pub(super) fn l_tensordot(l: &mut Lower, a: &LowerArgs<'_>) -> Vec<Reg> {
    let Ok(s) = TensorDotSpec::new(a.params) else {
        return vec![l.cst(f64::NAN); a.out_dim];
    };
    let (f, g) = (&a.args[0], &a.args[1]);
    let mut terms: Vec<Vec<Reg>> = vec![Vec::new(); a.out_dim];
    s.for_each_term(|o, i, j| {
        let p = l.mul(f[i], g[j]);
        terms[o].push(p);
    });
    terms.iter().map(|t| l.sum(t)).collect()
}

// ---------------------------------------------------------------- derivatives

/// Records that `n` has dimension `want` (what the derivative rule knows, and the
/// dimension rule of a matrix-vector product may not have inferred).
fn with_dim(b: &mut Builder<'_>, n: NodeId, want: &Dim, what: &str) -> Result<NodeId> {
    let d = b.dim(n);
    b.dims.unify(&d, want).map_err(|m| {
        Error::new(
            ErrorKind::Dimension,
            format!(
                "{what}: the gradient has dimension {}, the argument {}",
                m.left, m.right
            ),
        )
    })?;
    Ok(n)
}

pub(super) fn d_matvec(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (m, v) = (c.args[0], c.args[1]);
    if k == 0 {
        // d/dA[i p + k] = e[i] v[k]
        b.f2(Op::TensorProd, e, v)
    } else {
        // d/dv[k] = sum_i e[i] A[i p + k]
        let g = b.f2(Op::VecMatMult, e, m)?;
        let dv = b.dim(v);
        with_dim(b, g, &dv, "MatVecMult")
    }
}

pub(super) fn d_vecmat(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (v, m) = (c.args[0], c.args[1]);
    if k == 0 {
        // d/dv[k] = sum_i A[k n + i] e[i]
        let g = b.f2(Op::MatVecMult, m, e)?;
        let dv = b.dim(v);
        with_dim(b, g, &dv, "VecMatMult")
    } else {
        // d/dA[k n + i] = v[k] e[i]
        b.f2(Op::TensorProd, v, e)
    }
}

pub(super) fn d_tensorprod(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let (f, g) = (c.args[0], c.args[1]);
    let (out, want) = if k == 0 {
        // d/df[k] = sum_l e[k q + l] g[l]
        (b.f2(Op::MatVecMult, e, g)?, b.dim(f))
    } else {
        // d/dg[l] = sum_k f[k] e[k q + l]
        (b.f2(Op::VecMatMult, f, e)?, b.dim(g))
    };
    with_dim(b, out, &want, "TensorProd")
}

/// One tensor of a `TensorDot`, as seen by its derivative.
struct Side<'s> {
    dims: &'s [usize],
    keep: &'s [usize],
    cont: &'s [usize],
    /// Where its kept axes sit in the list of kept axes (f's, then g's).
    kept: std::ops::Range<usize>,
}

pub(super) fn d_tensordot(b: &mut Builder<'_>, c: &Call, e: NodeId, k: usize) -> Result<NodeId> {
    let s = TensorDotSpec::new(&c.params)
        .map_err(|m| Error::new(ErrorKind::Differentiation, format!("TensorDot: {m}")))?;
    let nkf = s.keepf.len();
    let f = Side {
        dims: &s.dimsf,
        keep: &s.keepf,
        cont: &s.contf,
        kept: 0..nkf,
    };
    let g = Side {
        dims: &s.dimsg,
        keep: &s.keepg,
        cont: &s.contg,
        kept: nkf..s.perm.len(),
    };
    let (this, other, other_node) = if k == 0 {
        (f, g, c.args[1])
    } else {
        (g, f, c.args[0])
    };
    // The cotangent of this tensor contracts the axes of e that hold the other tensor's
    // kept axes with those axes of the other tensor. What is left: the axes of e holding
    // this tensor's kept axes (by increasing position in e), then the other tensor's
    // contracted axes (increasing); the permutation sends each to its axis in this tensor.
    let cont_e: Vec<usize> = other.kept.map(|q| s.perm[q]).collect();
    let mut own: Vec<(usize, usize)> = this
        .kept
        .clone()
        .map(|q| (s.perm[q], this.keep[q - this.kept.start]))
        .collect();
    own.sort_unstable();
    let mut cont: Vec<(usize, usize)> = other
        .cont
        .iter()
        .copied()
        .zip(this.cont.iter().copied())
        .collect();
    cont.sort_unstable();
    let perm: Vec<usize> = own.iter().chain(&cont).map(|(_, ax)| *ax).collect();
    let params = tensordot_params(&s.out_shape(), other.dims, &cont_e, other.keep, &perm);
    b.op(Op::TensorDot, &[e, other_node], params)
}

// ---------------------------------------------------------------- sugar

pub(super) fn x_kron(b: &mut Builder<'_>, a: &[NodeId], p: &[Param]) -> Result<NodeId> {
    let err = |m: String| Error::new(ErrorKind::Dimension, format!("Kron: {m}"));
    let (lf, lg) = (
        p.first().map(Param::list).unwrap_or_default(),
        p.get(1).map(Param::list).unwrap_or_default(),
    );
    if lf.len() != lg.len() {
        return Err(err(format!(
            "the tensors must have the same number of axes: the first has shape {} ({} axes), the second {} ({} axes)",
            list_text(&lf),
            lf.len(),
            list_text(&lg),
            lg.len()
        ))
        .help("give both shapes with as many entries, padding with 1, e.g. Kron(f, g, (1, 3), (2, 2))"));
    }
    let dimsf = shape_param(&lf, "the shape of the first tensor").map_err(err)?;
    let dimsg = shape_param(&lg, "the shape of the second tensor").map_err(err)?;
    for (n, shape, which) in [(a[0], &dimsf, "first"), (a[1], &dimsg, "second")] {
        let want = Dim::known(product(shape).map_err(err)?);
        let d = b.dim(n);
        b.dims.unify(&d, &want).map_err(|m| {
            err(format!(
                "the {which} tensor (shape {}) must have dimension {}, found {}",
                shape_text(shape),
                m.right,
                m.left
            ))
        })?;
    }
    // Axis i of f goes to result axis 2i, axis i of g to 2i + 1: the result has shape
    // (f0, g0, f1, g1, ...), i.e. (f0 g0, f1 g1, ...) row-major.
    let r = dimsf.len();
    let perm: Vec<usize> = (0..r)
        .map(|i| 2 * i)
        .chain((0..r).map(|i| 2 * i + 1))
        .collect();
    b.op(
        Op::TensorDot,
        &a[..2],
        tensordot_params(&dimsf, &dimsg, &[], &[], &perm),
    )
}

// ---------------------------------------------------------------- tests

#[cfg(test)]
pub(in crate::ops) mod tests {
    use super::*;
    use crate::Program;
    use crate::eval::{Array, EvalOptions};
    use crate::graph::VarSource;
    use crate::lower::{Val, lower_formula};

    /// A deterministic pseudo-random sequence in [-1, 1).
    pub(in crate::ops) struct Rng(u64);
    impl Rng {
        pub(in crate::ops) fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(in crate::ops) fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
        pub(in crate::ops) fn vec(&mut self, n: usize) -> Vec<f64> {
            (0..n).map(|_| self.next()).collect()
        }
    }

    /// `aliases` declares every variable as `Vi`; evaluates `Sum_Reduction(formula, 0)`
    /// for one row i and one j, i.e. the formula itself, with the reference evaluator.
    pub(in crate::ops) fn eval1<R: Real>(
        aliases: &str,
        formula: &str,
        inputs: &[Vec<R>],
    ) -> Vec<R> {
        let text = format!("{aliases} Sum_Reduction({formula}, 0)");
        let p = Program::parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let arrays: Vec<Array<'_, R>> = inputs.iter().map(|v| Array::new(v, 1, v.len())).collect();
        let opts = EvalOptions {
            n: Some(1),
            ..EvalOptions::default()
        };
        p.evaluate(&arrays, &opts)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"))
            .values
    }

    /// Like [`eval1`], running the lowered formula block instead.
    pub(in crate::ops) fn lower1<R: Real>(
        aliases: &str,
        formula: &str,
        inputs: &[Vec<R>],
    ) -> Vec<R> {
        let text = format!("{aliases} Sum_Reduction({formula}, 0)");
        let p = Program::parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let widths: Vec<usize> = inputs.iter().map(Vec::len).collect();
        let p = p.instantiate(&widths).unwrap();
        let r = p.reductions().next().unwrap();
        let mut l = Lower::new();
        let (block, ins) = lower_formula(&mut l, &p.graph, &[r.formula]).unwrap();
        let mut args = Vec::new();
        for k in &ins {
            let VarSource::Arg(pos) = k.source else {
                panic!("unexpected input {k:?}")
            };
            args.extend(inputs[pos].iter().map(|x| Val::F(*x)));
        }
        block.run(&args).into_iter().map(|v| v.f()).collect()
    }

    /// The lowered block gives exactly the reference values, in f64 and f32.
    pub(in crate::ops) fn check_lowering(aliases: &str, formula: &str, inputs: &[Vec<f64>]) {
        let want = eval1(aliases, formula, inputs);
        let got = lower1(aliases, formula, inputs);
        assert_eq!(got.len(), want.len(), "{formula}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w || (g.is_nan() && w.is_nan()),
                "{formula}: lowered {got:?}, reference {want:?}"
            );
        }
        let inputs32: Vec<Vec<f32>> = inputs
            .iter()
            .map(|v| v.iter().map(|x| *x as f32).collect())
            .collect();
        let want = eval1(aliases, formula, &inputs32);
        let got = lower1(aliases, formula, &inputs32);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w || (g.is_nan() && w.is_nan()),
                "{formula} (f32): lowered {got:?}, reference {want:?}"
            );
        }
    }

    /// `Grad(formula, var, e)` against central finite differences of `<formula, e>`,
    /// `var` being the input at position `pos`.
    pub(in crate::ops) fn check_grad(
        aliases: &str,
        formula: &str,
        var: &str,
        pos: usize,
        inputs: &[Vec<f64>],
        tol: f64,
    ) {
        let value = eval1(aliases, formula, inputs);
        let e = Rng::new(99).vec(value.len());
        let grad_aliases = format!("{aliases} cot = Vi({});", value.len());
        let mut grad_inputs = inputs.to_vec();
        grad_inputs.push(e.clone());
        let grad_formula = format!("Grad({formula}, {var}, cot)");
        let grad = eval1(&grad_aliases, &grad_formula, &grad_inputs);
        assert_eq!(grad.len(), inputs[pos].len());
        let h = 1e-6;
        for (c, g) in grad.iter().enumerate() {
            let mut plus = inputs.to_vec();
            plus[pos][c] += h;
            let mut minus = inputs.to_vec();
            minus[pos][c] -= h;
            let fp: f64 = eval1(aliases, formula, &plus)
                .iter()
                .zip(&e)
                .map(|(a, b)| a * b)
                .sum();
            let fm: f64 = eval1(aliases, formula, &minus)
                .iter()
                .zip(&e)
                .map(|(a, b)| a * b)
                .sum();
            let fd = (fp - fm) / (2.0 * h);
            assert!(
                (g - fd).abs() <= tol * (1.0 + fd.abs()),
                "{grad_formula}: coordinate {c}: {g} vs finite difference {fd}"
            );
        }
        // The gradient formula lowers to the same values.
        check_lowering(&grad_aliases, &grad_formula, &grad_inputs);
    }

    /// The error message of a formula that must not check.
    pub(in crate::ops) fn error_of(text: &str) -> String {
        match Program::parse(text) {
            Ok(_) => panic!("{text} was accepted"),
            Err(e) => format!("{e:?}"),
        }
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
    }

    #[test]
    fn matvec_vecmat_tensorprod_by_hand() {
        // A = [[1, 2, 3], [4, 5, 6]], v = (1, -1, 2)
        let a = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let al = "A = Vi(6); v = Vi(3); w = Vi(2);";
        let ins = vec![a.clone(), vec![1.0, -1.0, 2.0], vec![2.0, -1.0]];
        assert_eq!(eval1(al, "MatVecMult(A, v)", &ins), vec![5.0, 11.0]);
        // w A = 2 (1, 2, 3) - (4, 5, 6)
        assert_eq!(eval1(al, "VecMatMult(w, A)", &ins), vec![-2.0, -1.0, 0.0]);
        assert_eq!(
            eval1(al, "TensorProd(w, v)", &ins),
            vec![2.0, -2.0, 4.0, -1.0, 1.0, -2.0]
        );
        // A read as 3 x 2 by a vector of dimension 2: [[1, 2], [3, 4], [5, 6]] (2, -1)
        assert_eq!(eval1(al, "MatVecMult(A, w)", &ins), vec![0.0, 2.0, 4.0]);
    }

    #[test]
    fn matvec_dimension_errors() {
        let m = error_of("A = Vi(7); v = Vi(2); Sum_Reduction(MatVecMult(A, v), 0)");
        assert!(
            m.contains("the matrix has dimension 7, not a multiple of the vector's dimension 2"),
            "{m}"
        );
        let m = error_of("A = Vi(7); v = Vi(2); Sum_Reduction(VecMatMult(v, A), 0)");
        assert!(
            m.contains("VecMatMult") && m.contains("not a multiple"),
            "{m}"
        );
    }

    #[test]
    fn symbolic_dimensions_are_inferred() {
        // v_j declared, A_i not: A has 2 n coordinates, n fixed by the width given.
        let p = Program::parse("A_i; v_j: 2; Sum_j(MatVecMult(A_i, v_j))").unwrap();
        assert_eq!(
            (p.arg_position("A"), p.arg_position("v")),
            (Some(0), Some(1))
        );
        let q = p.instantiate(&[6, 2]).unwrap();
        assert_eq!(q.output_info().values.as_known(), Some(3));
        assert!(p.instantiate(&[7, 2]).is_err());
        // TensorDot fixes the widths of its arguments.
        let p = Program::parse("Sum_j(TensorDot(a_i, b_j, (2, 3), (3, 2), (1,), (0,)))").unwrap();
        assert_eq!(p.args[0].dim.as_known(), Some(6));
        assert_eq!(p.args[1].dim.as_known(), Some(6));
        assert_eq!(p.output_info().values.as_known(), Some(4));
        // Kron too.
        let p = Program::parse("Sum_j(Kron(a_i, b_j, (2, 2), (1, 3)))").unwrap();
        assert_eq!(p.args[0].dim.as_known(), Some(4));
        assert_eq!(p.args[1].dim.as_known(), Some(3));
        assert_eq!(p.output_info().values.as_known(), Some(12));
        // TensorProd: the product of the widths, and its gradients.
        let p = Program::parse("Sum_j(TensorProd(a_i, b_j))").unwrap();
        let q = p.instantiate(&[2, 3]).unwrap();
        assert_eq!(q.output_info().values.as_known(), Some(6));
        for pos in 0..2 {
            let g = p.grad(pos, "e").unwrap();
            let x = [1.0, 2.0];
            let y = [3.0, 4.0, 5.0];
            let e = [1.0, 0.0, 0.0, 0.0, 0.0, 2.0];
            let arrays = [
                Array::new(&x[..], 1, 2),
                Array::new(&y[..], 1, 3),
                Array::new(&e[..], 1, 6),
            ];
            let out = g.evaluate(&arrays, &EvalOptions::default()).unwrap();
            // <e, x (x) y> = x0 y0 + 2 x1 y2
            let want = if pos == 0 {
                vec![3.0, 10.0]
            } else {
                vec![1.0, 0.0, 4.0]
            };
            assert_eq!(out.values, want, "gradient {pos}");
        }
    }

    #[test]
    fn linear_products_lower_like_their_values() {
        let mut rng = Rng::new(1);
        let ins = vec![rng.vec(6), rng.vec(2), rng.vec(3)];
        let al = "A = Vi(6); v = Vi(2); w = Vi(3);";
        for f in [
            "MatVecMult(A, v)",
            "MatVecMult(A, w)",
            "VecMatMult(v, A)",
            "VecMatMult(w, A)",
            "TensorProd(v, w)",
            "TensorProd(A, v)",
        ] {
            check_lowering(al, f, &ins);
        }
        // The parse-level example of the brief.
        let x = rng.vec(6);
        let v = rng.vec(2);
        let p = Program::parse("x = Vi(6); v = Vj(2); Sum_Reduction(MatVecMult(x, v), 0)").unwrap();
        let out = p
            .evaluate(
                &[Array::new(&x, 1, 6), Array::new(&v, 1, 2)],
                &EvalOptions::default(),
            )
            .unwrap();
        let want: Vec<f64> = (0..3)
            .map(|i| x[2 * i] * v[0] + x[2 * i + 1] * v[1])
            .collect();
        assert!(close(&out.values, &want), "{:?} vs {want:?}", out.values);
    }

    #[test]
    fn linear_products_gradients() {
        let mut rng = Rng::new(2);
        let ins = vec![rng.vec(6), rng.vec(2), rng.vec(3)];
        let al = "A = Vi(6); v = Vi(2); w = Vi(3);";
        check_grad(al, "MatVecMult(A, v)", "A", 0, &ins, 1e-7);
        check_grad(al, "MatVecMult(A, v)", "v", 1, &ins, 1e-7);
        check_grad(al, "VecMatMult(w, A)", "A", 0, &ins, 1e-7);
        check_grad(al, "VecMatMult(w, A)", "w", 2, &ins, 1e-7);
        check_grad(al, "TensorProd(v, w)", "v", 1, &ins, 1e-7);
        check_grad(al, "TensorProd(v, w)", "w", 2, &ins, 1e-7);
        // Nonlinear use: both arguments are the same variable.
        check_grad(al, "Exp(TensorProd(w, w) * 0.5)", "w", 2, &ins, 1e-6);
        check_grad(al, "MatVecMult(TensorProd(w, v), v)", "v", 1, &ins, 1e-6);
    }

    /// numpy's tensordot followed by keopscore's permutation, by brute force over all
    /// pairs of coordinates of f and g.
    fn tensordot_reference(
        f: &[f64],
        g: &[f64],
        dimsf: &[usize],
        dimsg: &[usize],
        contf: &[usize],
        contg: &[usize],
        perm: Option<&[usize]>,
    ) -> Vec<f64> {
        let keepf: Vec<usize> = (0..dimsf.len()).filter(|a| !contf.contains(a)).collect();
        let keepg: Vec<usize> = (0..dimsg.len()).filter(|a| !contg.contains(a)).collect();
        let keep_dims: Vec<usize> = keepf
            .iter()
            .map(|a| dimsf[*a])
            .chain(keepg.iter().map(|a| dimsg[*a]))
            .collect();
        let ident: Vec<usize> = (0..keep_dims.len()).collect();
        let perm = perm.unwrap_or(&ident);
        let mut out_shape = vec![0; keep_dims.len()];
        for (k, d) in keep_dims.iter().enumerate() {
            out_shape[perm[k]] = *d;
        }
        let mut out = vec![0.0; out_shape.iter().product()];
        let (mut fi, mut gi) = (vec![0; dimsf.len()], vec![0; dimsg.len()]);
        for (a, fa) in f.iter().enumerate() {
            unravel(a, dimsf, &mut fi);
            for (b, gb) in g.iter().enumerate() {
                unravel(b, dimsg, &mut gi);
                if contf.iter().zip(contg).any(|(x, y)| fi[*x] != gi[*y]) {
                    continue;
                }
                let keep: Vec<usize> = keepf
                    .iter()
                    .map(|x| fi[*x])
                    .chain(keepg.iter().map(|y| gi[*y]))
                    .collect();
                let mut oi = vec![0; keep.len()];
                for (k, v) in keep.iter().enumerate() {
                    oi[perm[k]] = *v;
                }
                out[ravel(&oi, &out_shape)] += fa * gb;
            }
        }
        out
    }

    #[test]
    fn tensordot_by_hand() {
        // [[1, 2, 3], [4, 5, 6]] @ [[7, 8], [9, 10], [11, 12]]
        let al = "a = Vi(6); b = Vi(6);";
        let ins = vec![
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        ];
        assert_eq!(
            eval1(al, "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,))", &ins),
            vec![58.0, 64.0, 139.0, 154.0]
        );
        assert_eq!(
            eval1(
                al,
                "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (1, 0))",
                &ins
            ),
            vec![58.0, 139.0, 64.0, 154.0]
        );
        // Contracting both axes: the Frobenius product with b read as 2 x 3.
        assert_eq!(
            eval1(al, "TensorDot(a, b, (2, 3), (2, 3), (0, 1), (0, 1))", &ins),
            vec![217.0]
        );
        // a (2 x 3) (x) c (4), kept axes (2, 3, 4) moved to positions (1, 2, 0):
        // out[l, i, j] = a[i, j] c[l], of shape (4, 2, 3).
        let al = "a = Vi(6); c = Vi(4);";
        let c = vec![1.0, 10.0, 100.0, 1000.0];
        let ins = vec![ins[0].clone(), c.clone()];
        let got = eval1(al, "TensorDot(a, c, (2, 3), (4,), (), (), (1, 2, 0))", &ins);
        let want: Vec<f64> = c
            .iter()
            .flat_map(|cl| ins[0].iter().map(move |x| x * cl))
            .collect();
        assert_eq!(got, want);
    }

    /// Shapes, contracted axes and permutation of a TensorDot.
    type Case<'a> = (
        &'a [usize],
        &'a [usize],
        &'a [usize],
        &'a [usize],
        Option<&'a [usize]>,
    );

    #[test]
    fn tensordot_matches_the_reference_loop() {
        let mut rng = Rng::new(3);
        let cases: &[Case<'_>] = &[
            (&[2, 3], &[3, 2], &[1], &[0], None),
            (&[2, 3], &[3, 2], &[1], &[0], Some(&[1, 0])),
            (&[2, 3, 4], &[4, 3], &[1, 2], &[1, 0], None),
            (&[2, 3, 4], &[4, 2, 5], &[2], &[0], Some(&[2, 0, 3, 1])),
            (&[2, 3, 4], &[4, 2, 5], &[0, 2], &[1, 0], Some(&[1, 0])),
            (&[3, 2], &[2, 4], &[], &[], Some(&[3, 1, 0, 2])),
            (&[2, 3], &[2, 3], &[1, 0], &[1, 0], None),
            (&[5], &[5], &[0], &[0], None),
            (&[], &[3, 2], &[], &[], None),
            (&[2], &[], &[], &[], None),
        ];
        for (dimsf, dimsg, contf, contg, perm) in cases {
            let (nf, ng) = (
                dimsf.iter().product::<usize>(),
                dimsg.iter().product::<usize>(),
            );
            let ins = vec![rng.vec(nf), rng.vec(ng)];
            let al = format!("f = Vi({nf}); g = Vi({ng});");
            let list = |v: &[usize]| {
                format!(
                    "({})",
                    v.iter().map(|x| format!("{x},")).collect::<String>()
                )
            };
            let mut formula = format!(
                "TensorDot(f, g, {}, {}, {}, {}",
                list(dimsf),
                list(dimsg),
                list(contf),
                list(contg)
            );
            if let Some(p) = perm {
                formula.push_str(&format!(", {}", list(p)));
            }
            formula.push(')');
            let want = tensordot_reference(&ins[0], &ins[1], dimsf, dimsg, contf, contg, *perm);
            let got = eval1(&al, &formula, &ins);
            assert!(close(&got, &want), "{formula}: {got:?} vs {want:?}");
            check_lowering(&al, &formula, &ins);
            check_grad(&al, &formula, "f", 0, &ins, 1e-7);
            check_grad(&al, &formula, "g", 1, &ins, 1e-7);
        }
    }

    #[test]
    fn tensordot_errors() {
        let al = "a = Vi(6); b = Vi(6);";
        let cases = [
            (
                "TensorDot(a, b, (2, 2), (3, 2), (1,), (1,))",
                "the first tensor (shape (2, 2)) must have dimension 4, found 6",
            ),
            (
                "TensorDot(a, b, (2, 3), (3, 2), (1,), (1,))",
                "has size 3 but is contracted with axis 1",
            ),
            (
                "TensorDot(a, b, (2, 3), (3, 2), (2,), (0,))",
                "names the axis 2",
            ),
            ("TensorDot(a, b, (2, 3), (3, 2), (1, 1), (0, 0))", "twice"),
            (
                "TensorDot(a, b, (2, 3), (3, 2), (1,), (0, 1))",
                "different lengths",
            ),
            (
                "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (0, 0))",
                "permutation",
            ),
            (
                "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (0, 1, 2))",
                "permutation",
            ),
            (
                "TensorDot(a, b, (2, 3), (3, 2), (1,), (0,), (-1, 0))",
                "permutation",
            ),
            ("TensorDot(a, b, (6, 0), (3, 2), (1,), (0,))", "at least 1"),
            ("TensorDot(a, b, (2, 3), (3, -2), (1,), (0,))", "at least 1"),
            ("Kron(a, b, (2, 3), (6,))", "same number of axes"),
            (
                "Kron(a, b, (2, 2), (3, 2))",
                "must have dimension 4, found 6",
            ),
        ];
        for (f, want) in cases {
            let m = error_of(&format!("{al} Sum_Reduction({f}, 0)"));
            assert!(m.contains(want), "{f}: {m}");
        }
    }

    #[test]
    fn kron_is_numpy_kron() {
        // np.kron([[1, 2], [3, 4]], [[0, 5], [6, 7]])
        let al = "a = Vi(4); b = Vi(4);";
        let ins = vec![vec![1.0, 2.0, 3.0, 4.0], vec![0.0, 5.0, 6.0, 7.0]];
        let want = vec![
            0.0, 5.0, 0.0, 10.0, //
            6.0, 7.0, 12.0, 14.0, //
            0.0, 15.0, 0.0, 20.0, //
            18.0, 21.0, 24.0, 28.0,
        ];
        assert_eq!(eval1(al, "Kron(a, b, (2, 2), (2, 2))", &ins), want);
        // Vectors: np.kron([1, 2], [1, 10, 100]).
        let al = "a = Vi(2); b = Vi(3);";
        let ins = vec![vec![1.0, 2.0], vec![1.0, 10.0, 100.0]];
        assert_eq!(
            eval1(al, "Kron(a, b, (2,), (3,))", &ins),
            vec![1.0, 10.0, 100.0, 2.0, 20.0, 200.0]
        );
        // Rank 3 against the definition kron[i0 D0 + j0, i1 D1 + j1, i2 D2 + j2] = a[i] b[j].
        let mut rng = Rng::new(4);
        let (da, db) = ([2usize, 1, 3], [3usize, 2, 2]);
        let ins = vec![rng.vec(6), rng.vec(12)];
        let al = "a = Vi(6); b = Vi(12);";
        let got = eval1(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", &ins);
        let shape: Vec<usize> = da.iter().zip(&db).map(|(x, y)| x * y).collect();
        let mut want = vec![0.0; 72];
        let (mut ia, mut ib) = ([0; 3], [0; 3]);
        for (p, x) in ins[0].iter().enumerate() {
            unravel(p, &da, &mut ia);
            for (q, y) in ins[1].iter().enumerate() {
                unravel(q, &db, &mut ib);
                let o: Vec<usize> = (0..3).map(|k| ia[k] * db[k] + ib[k]).collect();
                want[ravel(&o, &shape)] = x * y;
            }
        }
        assert_eq!(got, want);
        check_lowering(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", &ins);
        check_grad(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", "a", 0, &ins, 1e-7);
        check_grad(al, "Kron(a, b, (2, 1, 3), (3, 2, 2))", "b", 1, &ins, 1e-7);
    }
}
