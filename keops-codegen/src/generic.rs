//! The CPU emitter for kernels whose widths are left to the caller (const generics).
//!
//! When the formula leaves a width undeclared, the macro cannot lower the whole formula to
//! scalars; it emits one piece of code per formula node instead, each node's value an
//! array `[T; D]`. A node whose width (and whose arguments' widths) are known is lowered
//! with its row of the operation table, as in the known-width emitter; a node of an
//! undeclared width `D` is a loop `for k in 0..D` around the lowering of one coordinate
//! (element-wise operations), or a fold (sums, norms, distances, extremes). Nodes that
//! depend only on the output row and the parameters are computed once per tile; the
//! others inside one loop over the lanes of a chunk, which LLVM vectorizes once `D` is a
//! constant after monomorphization. Reductions over an undeclared width run their
//! one-coordinate hooks in a loop over coordinates.

use crate::cpu::{at_least_as_good, expr, lanes, reg, rust_ty, zero};
use crate::paths::{self, Runtime};
use crate::tokens::{float, ident, int, num};
use keops_ir::dim::Dim;
use keops_ir::error::{Error, ErrorKind, Result};
use keops_ir::graph::{Cat, Graph, Node, NodeId, Param, VarId, VarSource};
use keops_ir::lower::{
    Block, Inst, KernelInput, Lower, Precision, Reg, SOp, SumMode, Ty, lower_hooks, lower_op,
};
use keops_ir::ops::{AnyWidth, Extreme, ExtremeOutput, FoldOutput, FoldTerm, Op};
use keops_ir::program::{Program, Reduce};
use keops_ir::reduction::{CpuTile, ReductionKind, Rule};
use proc_macro2::{Ident, TokenStream};
use quote::{ToTokens, format_ident, quote};
use std::collections::HashMap;

/// Rust expression of a dimension, with symbol `s` written `D{s}`: the polynomial as
/// keops-ir writes it (`3`, `D0`, `2*D0 + 1`), from its terms.
pub fn dim_expr(d: &Dim) -> TokenStream {
    let terms = d.terms();
    if terms.is_empty() {
        return num(0).into_token_stream();
    }
    let mut out = TokenStream::new();
    for (i, (c, symbols)) in terms.into_iter().enumerate() {
        if c < 0 {
            out.extend(quote!(-));
        } else if i > 0 {
            out.extend(quote!(+));
        }
        let a = num(c.unsigned_abs() as usize);
        if symbols.is_empty() {
            out.extend(quote!(#a));
            continue;
        }
        if c.unsigned_abs() != 1 {
            out.extend(quote!(#a *));
        }
        for (k, s) in symbols.iter().enumerate() {
            if k > 0 {
                out.extend(quote!(*));
            }
            let d = format_ident!("D{}", s.0);
            out.extend(quote!(#d));
        }
    }
    out
}

fn array_len(d: &Dim, what: &str) -> Result<TokenStream> {
    if d.as_known().is_some() || d.as_sym().is_some() {
        Ok(dim_expr(d))
    } else {
        Err(Error::new(
            ErrorKind::Dimension,
            format!("{what} has the width {d}, which generated code cannot hold in an array"),
        )
        .help("declare the widths of the variables involved (e.g. `x_i: 3`)"))
    }
}

/// A node's value in the generated code: an array `[T; dim]` named `name`.
#[derive(Clone)]
struct Value {
    name: Ident,
    dim: Dim,
    /// Whether it depends only on the output row and the parameters.
    uniform: bool,
}

impl Value {
    /// Component `k` (a Rust expression); a width-1 value broadcasts.
    fn at(&self, k: TokenStream) -> TokenStream {
        let name = &self.name;
        if self.dim.is(1) {
            quote!(#name[0])
        } else {
            quote!(#name[#k])
        }
    }
}

/// Writes scalar code: the hoisted part (once per tile) and the per-lane part.
struct Emitter<'r> {
    p: Precision,
    /// The runtime crate.
    rt: &'r Runtime,
    hoisted: TokenStream,
    lane: TokenStream,
}

/// Writes `let rX: T = expr;` statements for a block whose parameters are bound; returns
/// the block's results.
fn write_block(
    out: &mut TokenStream,
    b: &Block,
    tys: &[Ty],
    bind: &[TokenStream],
    p: Precision,
    rt: &Runtime,
) -> Vec<TokenStream> {
    for (param, e) in b.params.iter().zip(bind) {
        let r = reg(*param);
        out.extend(quote!(let #r = #e;));
    }
    write_insts(out, &b.insts, tys, p, rt);
    b.results
        .iter()
        .map(|r| reg(*r).into_token_stream())
        .collect()
}

fn write_insts(out: &mut TokenStream, insts: &[Inst], tys: &[Ty], p: Precision, rt: &Runtime) {
    for i in insts {
        let args: Vec<TokenStream> = i.args.iter().map(|a| reg(*a).into_token_stream()).collect();
        let ty = rust_ty(tys.get(i.dst.0 as usize).copied().unwrap_or(Ty::F), p);
        let (dst, e) = (reg(i.dst), expr(i.op, &args, p, rt));
        out.extend(quote!(let #dst: #ty = #e;));
    }
}

/// Lowers a node whose widths are all known, as in the known-width emitter: a block
/// with one parameter per component of each argument, math expanded for the precision.
/// (One coordinate of an element-wise operation is the node with every width 1.)
fn known_block(
    op: Op,
    params: &[Param],
    arg_dims: &[usize],
    out_dim: usize,
    p: Precision,
) -> Result<(Block, Vec<Ty>)> {
    let mut l = Lower::new();
    let args: Vec<Vec<Reg>> = arg_dims
        .iter()
        .map(|d| (0..*d).map(|_| l.param(Ty::F)).collect())
        .collect();
    let res = lower_op(&mut l, op, &args, params, out_dim)?;
    let all: Vec<Reg> = args.into_iter().flatten().collect();
    let b = l.finish(all, res);
    Ok(keops_ir::lower::expand_block_math(&l.tys, &b, p))
}

/// Emits the formula nodes under `roots`; returns the values of the roots.
/// `sources[v]` gives the expression of component `k` of variable `v`, and whether it
/// is uniform.
fn emit_formula(
    e: &mut Emitter<'_>,
    g: &Graph,
    roots: &[NodeId],
    sources: &HashMap<VarId, (TokenStream, bool)>,
) -> Result<Vec<Value>> {
    let mut vals: HashMap<NodeId, Value> = HashMap::new();
    let f = float(e.p);
    for n in g.topo(roots) {
        let dim = g.dim(n).clone();
        let name = format_ident!("n{}", n.0);
        let len = array_len(&dim, "a sub-expression")?;
        let (code, uniform) = match g.node(n) {
            Node::Var(v) => {
                let (src, uniform) = &sources[v];
                let from_fn = paths::array_from_fn();
                (
                    quote!(let #name: [#f; #len] = #from_fn(|k| #src);),
                    *uniform,
                )
            }
            Node::Const(b) => {
                let c = expr(SOp::Const(*b), &[], e.p, e.rt);
                (quote!(let #name: [#f; 1] = [#c];), true)
            }
            Node::Zero(_) => {
                let z = zero(Ty::F, e.p);
                (quote!(let #name: [#f; #len] = [#z; #len];), true)
            }
            Node::Op(op, args, params) => {
                let avals: Vec<Value> = args.iter().map(|a| vals[a].clone()).collect();
                let uniform = avals.iter().all(|a| a.uniform);
                (
                    op_code(*op, params, &avals, &dim, &name, &len, e.p, e.rt)?,
                    uniform,
                )
            }
        };
        if uniform {
            e.hoisted.extend(code);
        } else {
            e.lane.extend(code);
        }
        vals.insert(n, Value { name, dim, uniform });
    }
    Ok(roots.iter().map(|r| vals[r].clone()).collect())
}

/// Scalar code computing the array `name` of an operation node.
#[allow(clippy::too_many_arguments)]
fn op_code(
    op: Op,
    params: &[Param],
    args: &[Value],
    dim: &Dim,
    name: &Ident,
    len: &TokenStream,
    p: Precision,
    rt: &Runtime,
) -> Result<TokenStream> {
    let f = float(p);
    let prim = op.spec().prim().ok_or_else(|| {
        Error::new(
            ErrorKind::Limit,
            format!("{} should have been expanded", op.name()),
        )
    })?;
    let z = zero(Ty::F, p);
    let mut out = quote!(let mut #name: [#f; #len] = [#z; #len];);
    // Widths all known: lower the node as a whole.
    let known: Option<Vec<usize>> = args.iter().map(|a| a.dim.as_known()).collect();
    if let (Some(arg_dims), Some(out_dim)) = (known, dim.as_known()) {
        let (b, tys) = known_block(op, params, &arg_dims, out_dim, p)?;
        let bind: Vec<TokenStream> = args
            .iter()
            .zip(&arg_dims)
            .flat_map(|(a, d)| {
                let a = &a.name;
                (0..*d).map(move |k| {
                    let k = num(k);
                    quote!(#a[#k])
                })
            })
            .collect();
        let mut block = TokenStream::new();
        let res = write_block(&mut block, &b, &tys, &bind, p, rt);
        for (k, r) in res.iter().enumerate() {
            let k = num(k);
            block.extend(quote!(#name[#k] = #r;));
        }
        out.extend(quote!({ #block }));
        return Ok(out);
    }
    // The operation's form over an undeclared width, from its row of the table.
    let x = |k: TokenStream| args[0].at(k);
    let y = |k: TokenStream| args.get(1).map(|b| b.at(k)).unwrap_or_default();
    let n = dim_expr(&args[0].dim);
    match prim.any_width {
        AnyWidth::Elementwise => {
            // One coordinate's code in a loop over the undeclared width.
            let (b, tys) = known_block(op, params, &vec![1; args.len()], 1, p)?;
            let bind: Vec<TokenStream> = args.iter().map(|a| a.at(quote!(k))).collect();
            let mut body = TokenStream::new();
            let res = write_block(&mut body, &b, &tys, &bind, p, rt);
            let r0 = &res[0];
            out.extend(quote!(for k in 0..#len { #body #name[k] = #r0; }));
        }
        AnyWidth::Fold(term, output) => {
            let term = |k: TokenStream| match term {
                FoldTerm::X => x(k),
                FoldTerm::XX => {
                    let xk = x(k);
                    quote!((#xk * #xk))
                }
                FoldTerm::XY => {
                    let (xk, yk) = (x(k.clone()), y(k));
                    quote!((#xk * #yk))
                }
                FoldTerm::DiffSquared => {
                    let (xk, yk) = (x(k.clone()), y(k));
                    quote!(((#xk - #yk) * (#xk - #yk)))
                }
            };
            let (t0, tk) = (term(num(0).into_token_stream()), term(quote!(k)));
            out.extend(quote!(let mut s: #f = #t0; for k in 1..#n { s = s + #tk; }));
            out.extend(match output {
                FoldOutput::Sum => quote!(#name[0] = s;),
                FoldOutput::Sqrt => quote!(#name[0] = s.sqrt();),
                FoldOutput::Normalized => {
                    let xk = x(quote!(k));
                    quote! {
                        let r: #f = if s == 0.0 { 0.0 } else { 1.0 / s.sqrt() };
                        for k in 0..#n { #name[k] = #xk * r; }
                    }
                }
            });
        }
        AnyWidth::Extreme(extreme, output) => {
            // First extreme coordinate, as the scalar lowering (a NaN never wins).
            let (x0, xk) = (x(num(0).into_token_stream()), x(quote!(k)));
            let cmp = match extreme {
                Extreme::Largest => quote!(b < #xk),
                Extreme::Smallest => quote!(#xk < b),
            };
            out.extend(quote! {
                let mut b: #f = #x0; let mut p = 0usize;
                for k in 1..#n { if #cmp { b = #xk; p = k; } }
            });
            out.extend(match output {
                ExtremeOutput::Value => quote!(#name[0] = b;),
                ExtremeOutput::Index => quote!(#name[0] = p as #f;),
                ExtremeOutput::Mask => {
                    quote!(for k in 0..#n { #name[k] = if k == p { 1.0 } else { 0.0 }; })
                }
            });
        }
        AnyWidth::Elem => {
            let xe = x(int(params[0].int()));
            out.extend(quote!(#name[0] = #xe;));
        }
        AnyWidth::Extract => {
            let (s, d) = (int(params[0].int()), int(params[1].int()));
            let xs = x(quote!(#s + k));
            out.extend(quote!(for k in 0..#d { #name[k] = #xs; }));
        }
        AnyWidth::ExtractT => {
            let s = int(params[0].int());
            let xk = x(quote!(k));
            out.extend(quote!(for k in 0..#n { #name[#s + k] = #xk; }));
        }
        AnyWidth::No => {
            return Err(Error::new(
                ErrorKind::Dimension,
                format!(
                    "{} on an undeclared width is not supported by the CPU code generator",
                    op.name()
                ),
            )
            .help("declare the widths of the variables of this operation (e.g. `x_i: 3`)"));
        }
    }
    Ok(out)
}

/// A generated kernel for undeclared widths.
pub struct EmittedGeneric {
    /// `impl<const D..> CpuReduce<f32|f64> for Name<D..>`.
    pub code: TokenStream,
    /// Inputs in the order the driver binds them.
    pub inputs: Vec<KernelInput>,
}

/// Position in the accumulator of a one-coordinate hook register: base index, and whether
/// it repeats per coordinate.
type Slot = (TokenStream, bool);

/// How each register of the one-coordinate hooks maps to the accumulator of a reduction
/// over an undeclared width `n`, float registers first: the registers the coordinates
/// share ([`ReductionKind::shared_state`], e.g. LogSumExp's running maximum) hold one
/// value each, first; every other register holds one value per coordinate.
fn acc_layout(
    kind: ReductionKind,
    nf: usize,
    ni: usize,
    n: &TokenStream,
) -> (Vec<Slot>, Vec<Slot>) {
    let shared = kind.shared_state();
    // Register `q` after the `s` shared ones starts at `s + q * n`.
    let per_coordinate = |s: usize, q: usize| {
        let base = match (s, q) {
            (s, 0) if s > 0 => num(s).into_token_stream(),
            (0, q) => {
                let q = num(q);
                quote!(#q * #n)
            }
            (s, q) => {
                let (s, q) = (num(s), num(q));
                quote!(#s + #q * #n)
            }
        };
        (base, true)
    };
    let floats = (0..nf)
        .map(|k| {
            if k < shared {
                (num(k).into_token_stream(), false)
            } else {
                per_coordinate(shared, k - shared)
            }
        })
        .collect();
    let indices = (0..ni).map(|k| per_coordinate(0, k)).collect();
    (floats, indices)
}

/// Emits a kernel whose widths may be const generic parameters `D{sym}`.
pub fn emit_generic(
    p: &Program,
    r: &Reduce,
    name: &str,
    generics: &[String],
    runtime: &Runtime,
    prec: Precision,
) -> Result<EmittedGeneric> {
    let rt = runtime;
    let f = float(prec);
    let nl = num(lanes(prec));
    let g = &p.graph;
    let fdim = g.dim(r.formula).clone();
    let gdim = r.weight.map(|w| g.dim(w).clone()).unwrap_or_else(Dim::one);
    // The width the reduction loops over: F's for coordinate-wise reductions, G's for the
    // exponential ones (whose F is a scalar).
    let comp = if r.kind.needs_scalar_formula() {
        gdim.clone()
    } else {
        fdim.clone()
    };
    let n = array_len(&comp, "the reduced formula")?;
    let weighted = r.weight.is_some();
    let mut l = Lower::new();
    keops_ir::lower::check_hooks(r.kind, 1, 1)?;
    let hooks = lower_hooks(&mut l, r.kind, 1, 1, weighted, SumMode::Plain);
    let (hooks, htys) = keops_ir::lower::expand_hooks_math(&l.tys, &hooks, prec);
    let nf = hooks.acc.iter().filter(|t| **t == Ty::F).count();
    let ni = hooks.acc.len() - nf;
    let (lay_f, lay_i) = acc_layout(r.kind, nf, ni, &n);
    let total_f: Vec<TokenStream> = lay_f
        .iter()
        .map(|(_, pc)| {
            if *pc {
                n.clone()
            } else {
                num(1).into_token_stream()
            }
        })
        .collect();
    let total_f = if total_f.is_empty() {
        num(0).into_token_stream()
    } else {
        quote!(#(#total_f)+*)
    };
    let total_i = {
        let len = num(lay_i.len());
        quote!(#len * #n)
    };
    let zero_len = || num(0).into_token_stream();
    let slots = num(r.kind.slots());
    let selected = |yes: bool| {
        if yes { quote!(#slots * #n) } else { zero_len() }
    };
    let (ov, oi) = match r.kind.rule() {
        Rule::Sum | Rule::LogSumExp | Rule::SoftMaxWeight => (n.clone(), zero_len()),
        Rule::Select { output, .. } => (selected(output.values()), selected(output.indices())),
    };

    // Inputs, with the expression of their component `k`.
    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
    let mut inputs = Vec::new();
    let mut sources = HashMap::new();
    let (mut oo, mut io, mut po) = (zero_len(), zero_len(), zero_len());
    let (mut ow, mut iw, mut pw) = (Vec::new(), Vec::new(), Vec::new());
    let mut chunk_decls = TokenStream::new();
    for v in g.vars_of(&roots) {
        let info = g.var(v);
        let d = array_len(&info.dim, "a variable")?;
        let (src, uniform) = match info.cat {
            Cat::P => {
                let e = quote!(t.params[#po + k]);
                po = quote!(#po + #d);
                pw.push(d.clone());
                (e, true)
            }
            c if c == r.out_rows => {
                let e = quote!(t.outer[#oo + k]);
                oo = quote!(#oo + #d);
                ow.push(d.clone());
                (e, true)
            }
            _ => {
                // References to the chunk of each component, read in the lane loop.
                let (y, from_fn, chunk) = (
                    format_ident!("y{}", v.0),
                    paths::array_from_fn(),
                    rt.chunk(),
                );
                chunk_decls.extend(quote! {
                    let #y: [&[#f; L]; #d] = #from_fn(|k| #chunk::<#f, { L }>(t.inner, (#io + k) * t.stride + base));
                });
                io = quote!(#io + #d);
                iw.push(d.clone());
                (quote!(#y[k][l]), false)
            }
        };
        if matches!(info.source, VarSource::Temp) {
            return Err(Error::new(
                ErrorKind::Limit,
                "internal error: a placeholder variable reached code generation",
            ));
        }
        sources.insert(v, (src, uniform));
        inputs.push(KernelInput {
            var: v,
            cat: info.cat,
            source: info.source,
            dim: info.dim.as_known().unwrap_or(0),
        });
    }

    let gens: Vec<Ident> = generics.iter().map(|d| ident(d)).collect();
    let params = quote!(#(const #gens: usize),*);
    // Braced, so that a type of the caller's named like a width parameter is not taken.
    let args = quote!(#({ #gens }),*);
    let name = ident(name);
    let is_sum = r.kind.is_sum();

    // Position of hook register k for coordinate c in a row accumulator.
    let acc_at = |k: usize, c: &TokenStream, fa: &str, ia: &str| -> TokenStream {
        let ((base, pc), arr) = if k < nf {
            (&lay_f[k], ident(fa))
        } else {
            (&lay_i[k - nf], ident(ia))
        };
        if *pc {
            quote!(#arr[#base + #c])
        } else {
            quote!(#arr[#base])
        }
    };
    let (c, c0) = (quote!(c), num(0).into_token_stream());
    let shared: Vec<bool> = (0..hooks.acc.len())
        .map(|k| {
            if k < nf {
                !lay_f[k].1
            } else {
                !lay_i[k - nf].1
            }
        })
        .collect();

    // init: every coordinate from the one-coordinate init block.
    let mut init = TokenStream::new();
    let res = write_block(&mut init, &hooks.init, &htys, &[], prec, rt);
    for (k, v) in res.iter().enumerate() {
        let at = acc_at(k, &c, "acc_f", "acc_i");
        init.extend(quote!(#at = #v;));
    }

    // merge and finalize run the one-coordinate blocks per coordinate; shared registers
    // (LogSumExp's running maximum) are read from their one slot and written once.
    let a = hooks.acc.len();
    // Merges register `other(j)` of another accumulator into every coordinate `c` of
    // `acc_f` / `acc_i`.
    let merge_coordinates = |other: &dyn Fn(usize) -> TokenStream| -> TokenStream {
        // Shared registers are read before any coordinate rewrites them.
        let mut out = TokenStream::new();
        for k in (0..a).filter(|k| shared[*k]) {
            let (old, at) = (format_ident!("old{}", k), acc_at(k, &c0, "acc_f", "acc_i"));
            out.extend(quote!(let #old = #at;));
        }
        let bind: Vec<TokenStream> = (0..2 * a)
            .map(|k| {
                if k >= a {
                    other(k - a)
                } else if shared[k] {
                    format_ident!("old{}", k).into_token_stream()
                } else {
                    acc_at(k, &c, "acc_f", "acc_i")
                }
            })
            .collect();
        let mut body = TokenStream::new();
        let res = write_block(&mut body, &hooks.merge, &htys, &bind, prec, rt);
        for (k, v) in res.iter().enumerate() {
            let at = acc_at(k, &c, "acc_f", "acc_i");
            body.extend(quote!(#at = #v;));
        }
        out.extend(quote!(for c in 0..#n { #body }));
        out
    };
    let merge = merge_coordinates(&|j| acc_at(j, &c, "other_f", "other_i"));
    let bind: Vec<TokenStream> = (0..a).map(|k| acc_at(k, &c, "acc_f", "acc_i")).collect();
    let mut finalize = TokenStream::new();
    let res = write_block(&mut finalize, &hooks.finalize, &htys, &bind, prec, rt);
    let (mut kf, mut ki) = (0, 0);
    for (v, r) in res.iter().zip(&hooks.finalize.results) {
        if htys.get(r.0 as usize) == Some(&Ty::Idx) {
            let k = num(ki);
            finalize.extend(quote!(out_i[#k * #n + c] = #v;));
            ki += 1;
        } else {
            let k = num(kf);
            finalize.extend(quote!(out_f[#k * #n + c] = #v;));
            kf += 1;
        }
    }

    // tile
    // Selections test a chunk against the worst kept values before inserting it; the
    // other tiles accumulate every lane (no two-pass LogSumExp over undeclared widths).
    let order = match r.kind.spec().cpu_tile {
        CpuTile::Select => r.kind.order(),
        CpuTile::Lanes | CpuTile::TwoPassLogSumExp => None,
    };
    let k = r.kind.slots();
    let mut e = Emitter {
        p: prec,
        rt,
        hoisted: TokenStream::new(),
        lane: TokenStream::new(),
    };
    let vals = emit_formula(&mut e, g, &roots, &sources)?;
    let mut tile = e.hoisted.clone();
    // lane accumulators: per hook register, coordinate and lane
    let (z, nf_len, ni_len) = (zero(Ty::F, prec), num(nf), num(ni));
    tile.extend(quote! {
        let mut la_f = [[[#z; L]; #n]; #nf_len];
        let mut la_i = [[[0u64; L]; #n]; #ni_len];
    });
    let mut lane_init = TokenStream::new();
    let res = write_block(&mut lane_init, &hooks.init, &htys, &[], prec, rt);
    for (k, v) in res.iter().enumerate() {
        if k < nf {
            let k = num(k);
            lane_init.extend(quote!(la_f[#k][c] = [#v; L];));
        } else {
            let k = num(k - nf);
            lane_init.extend(quote!(la_i[#k][c] = [#v; L];));
        }
    }
    tile.extend(quote!(for c in 0..#n { #lane_init }));
    if order.is_some() {
        let (from_fn, last) = (paths::array_from_fn(), num(k - 1));
        tile.extend(quote!(let row_worst: [#f; #n] = #from_fn(|c| acc_f[#last * #n + c]);));
    }
    let mut chunk = chunk_decls;
    // F (and G) values per coordinate and lane
    let fv = &vals[0];
    let fw = array_len(&fv.dim, "the formula")?;
    chunk.extend(quote!(let mut fv = [[#z; L]; #fw];));
    let gv = vals.get(1);
    if let Some(gv) = gv {
        let gw = array_len(&gv.dim, "the weight")?;
        chunk.extend(quote!(let mut gv = [[#z; L]; #gw];));
    }
    let mut lane = e.lane.clone();
    let fv_name = &fv.name;
    lane.extend(quote!(for k in 0..#fw { fv[k][l] = #fv_name[k]; }));
    if let Some(gv) = gv {
        let (gd, gv_name) = (dim_expr(&gv.dim), &gv.name);
        lane.extend(quote!(for k in 0..#gd { gv[k][l] = #gv_name[k]; }));
    }
    chunk.extend(quote!(for l in 0..L { #lane }));
    // accumulate: one-coordinate hook per coordinate and lane, tail lanes masked
    let fc = if r.kind.needs_scalar_formula() || fv.dim.is(1) {
        c0.clone()
    } else {
        c.clone()
    };
    let mut bind: Vec<TokenStream> = (0..a)
        .map(|k| {
            if k < nf {
                let k = num(k);
                quote!(la_f[#k][c][l])
            } else {
                let k = num(k - nf);
                quote!(la_i[#k][c][l])
            }
        })
        .collect();
    bind.push(quote!(fv[#fc][l]));
    if let Some(gv) = gv {
        let gc = if gv.dim.is(1) { c0.clone() } else { c.clone() };
        bind.push(quote!(gv[#gc][l]));
    }
    bind.push(quote!(t.j0 + (base + l) as u64));
    let mut body = TokenStream::new();
    let res = write_block(&mut body, &hooks.accumulate, &htys, &bind, prec, rt);
    for (k, v) in res.iter().enumerate() {
        if k < nf {
            let k = num(k);
            body.extend(quote!(la_f[#k][c][l] = #v;));
        } else {
            let k = num(k - nf);
            body.extend(quote!(la_i[#k][c][l] = #v;));
        }
    }
    let accumulate = quote! {
        let full = base + L <= t.len;
        for c in 0..#n {
            for l in 0..L {
                if full || base + l < t.len { #body }
            }
        }
    };
    // Selections: skip chunks without a value that beats both the lane's worst kept value
    // and the row's K-th best so far.
    if let Some(order) = order {
        let (cmp, last) = (at_least_as_good(order), num(k - 1));
        chunk.extend(quote! {
            let mut candidate = false;
            for c in 0..#n { for l in 0..L { candidate |= (fv[#fc][l] #cmp la_f[#last][c][l]) & (fv[#fc][l] #cmp row_worst[c]); } }
            if candidate { #accumulate }
        });
    } else {
        chunk.extend(accumulate);
    }
    tile.extend(quote! {
        let mut base = 0usize;
        while base < t.len {
            #chunk
            base += L;
        }
    });
    // merge the lanes into the row accumulator, in lane order
    let mut merge_lanes = TokenStream::new();
    if let Some(order) = order {
        // a lane whose best values do not reach the row's worst kept ones changes nothing
        let (cmp, last) = (at_least_as_good(order), num(k - 1));
        merge_lanes.extend(
            quote!(if !(0..#n).any(|c| la_f[0][c][l] #cmp acc_f[#last * #n + c]) { continue; }),
        );
    }
    merge_lanes.extend(merge_coordinates(&|j| {
        // a shared register has the same value in every coordinate's copy
        let cc = if shared[j] { &c0 } else { &c };
        if j < nf {
            let j = num(j);
            quote!(la_f[#j][#cc][l])
        } else {
            let j = num(j - nf);
            quote!(la_i[#j][#cc][l])
        }
    }));
    tile.extend(quote!(for l in 0..L { #merge_lanes }));

    let (cpu_reduce, tile_ty, simd_kernel, dispatch) =
        (rt.cpu_reduce(), rt.tile(), rt.simd_kernel(), rt.dispatch());
    let (ow, iw, pw) = (ow.iter(), iw.iter(), pw.iter());
    let code = quote! {
        impl<#params> #cpu_reduce<#f> for #name<#args> {
            fn acc_len(&self) -> (usize, usize) { (#total_f, #total_i) }
            fn is_sum(&self) -> bool { #is_sum }
            fn out_len(&self) -> (usize, usize) { (#ov, #oi) }
            fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
                (vec![#(#ow),*], vec![#(#iw),*], vec![#(#pw),*])
            }
            fn init(&self, acc_f: &mut [#f], acc_i: &mut [u64]) {
                for c in 0..#n { #init }
            }
            fn merge(&self, acc_f: &mut [#f], acc_i: &mut [u64], other_f: &[#f], other_i: &[u64]) {
                #merge
            }
            fn finalize(&self, acc_f: &[#f], acc_i: &[u64], out_f: &mut [#f], out_i: &mut [u64]) {
                for c in 0..#n { #finalize }
            }
            #[inline]
            fn tile(&self, t: #tile_ty<'_, #f>, acc_f: &mut [#f], acc_i: &mut [u64]) {
                struct Body<'a, 'b, #params> { t: #tile_ty<'a, #f>, acc_f: &'b mut [#f], acc_i: &'b mut [u64] }
                impl<#params> #simd_kernel for Body<'_, '_, #args> {
                    #[inline(always)]
                    fn run(self) {
                        let Body { t, acc_f, acc_i } = self;
                        const L: usize = #nl;
                        #tile
                    }
                }
                #dispatch(Body::<#args> { t, acc_f, acc_i });
            }
        }
    };
    Ok(EmittedGeneric { code, inputs })
}
