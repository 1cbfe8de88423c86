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
use crate::lower::builder::Lower;
use crate::lower::scalar::Reg;
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
    let (f, g) = (cx.arg(0), cx.arg(1));
    let d = f.checked_mul(&g).unwrap_or_else(Dim::overflowed);
    cx.width(d)
}

/// The number of products `f[i] g[j]` a `TensorDot` sums (0 when its parameters are
/// invalid: its dimension rule reports them); `None` when it overflows.
pub(super) fn tensordot_terms(params: &[Param]) -> Option<usize> {
    let Ok(s) = TensorDotSpec::new(params) else {
        return Some(0);
    };
    product(&s.out_shape())
        .ok()?
        .checked_mul(product(&s.cont_dims()).ok()?)
}

/// The number of entries of a shape parameter whose entries are all at least 1 (`None`
/// otherwise: [`shape_param`] says what is wrong), checked against
/// [`crate::limits::MAX_WIDTH`].
fn shape_width(cx: &mut DimCx<'_>, k: usize, which: &str) -> DimResult<()> {
    let shape = cx.list(k);
    let entries: Option<Vec<usize>> = shape
        .iter()
        .map(|d| usize::try_from(*d).ok().filter(|d| *d >= 1))
        .collect();
    let Some(entries) = entries else {
        return Ok(());
    };
    let n = entries.iter().try_fold(1usize, |p, d| p.checked_mul(*d));
    cx.width(n.map_or_else(Dim::overflowed, Dim::known))
        .map(|_| ())
        .map_err(|m| format!("the shape {} of the {which} tensor: {m}", list_text(&shape)))
}

pub(super) fn dim_tensordot(cx: &mut DimCx<'_>) -> DimResult<Dim> {
    shape_width(cx, 0, "first")?;
    shape_width(cx, 1, "second")?;
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
    let out = cx.width(Dim::known(product(&s.out_shape())?))?;
    cx.work(tensordot_terms(cx.params), || {
        format!(
            "the contraction of the shapes {} and {}",
            shape_text(&s.dimsf),
            shape_text(&s.dimsg)
        )
    })?;
    Ok(out)
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
    for shape in [&dimsf, &dimsg] {
        let n = shape.iter().try_fold(1usize, |p, d| p.checked_mul(*d));
        if n.is_none_or(|n| n > crate::limits::MAX_WIDTH) {
            return Err(Error::new(
                ErrorKind::Limit,
                format!(
                    "Kron: the shape {} has {} entries, past the limit {}",
                    shape_text(shape),
                    n.map_or("more than 2^64".to_string(), |n| n.to_string()),
                    crate::limits::MAX_WIDTH
                ),
            ));
        }
    }
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
