//! The CPU emitter: Rust tokens for a reduction kernel, from its lowered form.
//!
//! Each scalar register becomes either a scalar (when it is uniform: constants, the
//! output row's variables, parameters, and what depends only on them, computed once per
//! tile call) or an array of `L` lanes (when it varies with the reduced index); every
//! instruction on lanes is a `for l in 0..L` loop over fixed-size arrays, which LLVM
//! turns into SIMD instructions. The generated `impl` plugs into the runtime's CPU driver
//! (`CpuReduce`), which does the tiling, transposition and parallelism.

use crate::paths::Runtime;
use crate::tokens::{float, float_name, ident, literal, num, signed};
use keops_ir::error::Result;
use keops_ir::graph::Cat;
use keops_ir::lower::{
    Block, Hooks, Inst, KernelInput, LoweredKernel, Precision, Reg, SOp, SumMode, Ty,
    lower_reduction,
};
use keops_ir::program::{Program, Reduce};
use keops_ir::reduction::{CpuTile, Order};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{ToTokens, format_ident, quote};
use std::collections::HashSet;

/// Options of the CPU emitter.
#[derive(Clone, Debug)]
pub struct RustOptions {
    /// The runtime crate in the generated code (e.g. `::keops::__private::runtime`).
    pub runtime: Runtime,
    /// Float type of the kernel.
    pub precision: Precision,
    /// Accumulation of sums inside a thread.
    pub sum_mode: SumMode,
}

/// A generated reduction kernel.
#[derive(Clone, Debug)]
pub struct EmittedReduce {
    /// Rust tokens: an `impl CpuReduce<f32|f64> for <name>`.
    pub code: TokenStream,
    /// Inputs in kernel order; the driver binds output-indexed, reduced-index and
    /// parameter inputs in this order, each kind separately.
    pub inputs: Vec<KernelInput>,
    /// The lowered kernel the code was generated from.
    pub kernel: LoweredKernel,
}

/// SIMD lanes of a CPU kernel tile (64 bytes of floats).
pub(crate) fn lanes(p: Precision) -> usize {
    match p {
        Precision::F32 => 16,
        Precision::F64 => 8,
    }
}

pub(crate) fn rust_ty(t: Ty, p: Precision) -> Ident {
    ident(match (t, p) {
        (Ty::F, _) => float_name(p),
        (Ty::Idx, _) => "u64",
        (Ty::Pred, _) => "bool",
        (Ty::Int, Precision::F32) => "i32",
        (Ty::Int, Precision::F64) => "i64",
    })
}

pub(crate) fn zero(t: Ty, p: Precision) -> TokenStream {
    match (t, p) {
        (Ty::F, Precision::F32) => literal("0f32").into_token_stream(),
        (Ty::F, Precision::F64) => literal("0f64").into_token_stream(),
        (Ty::Idx, _) => literal("0u64").into_token_stream(),
        (Ty::Pred, _) => quote!(false),
        (Ty::Int, Precision::F32) => literal("0i32").into_token_stream(),
        (Ty::Int, Precision::F64) => literal("0i64").into_token_stream(),
    }
}

/// The name of a register: `r{n}`.
pub(crate) fn reg(r: Reg) -> Ident {
    format_ident!("r{}", r.0)
}

/// A float constant with its exact bits in the kernel precision.
fn float_literal(x: f64, p: Precision) -> TokenStream {
    match p {
        Precision::F32 => {
            let bits = literal(&format!("0x{:08x}", (x as f32).to_bits()));
            quote!(f32::from_bits(#bits))
        }
        Precision::F64 => {
            let bits = literal(&format!("0x{:016x}", x.to_bits()));
            quote!(f64::from_bits(#bits))
        }
    }
}

/// The Rust expression of one instruction, from its operands' expressions.
pub(crate) fn expr(op: SOp, a: &[TokenStream], p: Precision, rt: &Runtime) -> TokenStream {
    let f = float(p);
    let (ity, uty) = match p {
        Precision::F32 => (ident("i32"), ident("u32")),
        Precision::F64 => (ident("i64"), ident("u64")),
    };
    let x = |k: usize| a.get(k).cloned().unwrap_or_default();
    let (x0, x1, x2) = (x(0), x(1), x(2));
    match op {
        SOp::Const(bits) => float_literal(f64::from_bits(bits), p),
        SOp::IdxConst(i) => Literal::u64_suffixed(i).into_token_stream(),
        SOp::IntConst(i) => {
            let i = signed(&format!("{i}i64"));
            quote!((#i as #ity))
        }
        SOp::Add => quote!((#x0 + #x1)),
        SOp::Sub => quote!((#x0 - #x1)),
        SOp::Mul => quote!((#x0 * #x1)),
        SOp::Div => quote!((#x0 / #x1)),
        SOp::Neg => quote!((-#x0)),
        SOp::Abs => quote!(#x0.abs()),
        SOp::Floor => quote!(#x0.floor()),
        SOp::Trunc => quote!(#x0.trunc()),
        SOp::RoundEven => quote!(#x0.round_ties_even()),
        SOp::Round => quote!(#x0.round()),
        SOp::Sqrt => quote!(#x0.sqrt()),
        SOp::Rsqrt => quote!((1.0 / #x0.sqrt())),
        SOp::Recip => quote!((1.0 / #x0)),
        SOp::Exp => quote!(#x0.exp()),
        SOp::Log => quote!(#x0.ln()),
        SOp::Sin => quote!(#x0.sin()),
        SOp::Cos => quote!(#x0.cos()),
        SOp::Asin => quote!(#x0.asin()),
        SOp::Acos => quote!(#x0.acos()),
        SOp::Atan => quote!(#x0.atan()),
        SOp::Atan2 => quote!(#x0.atan2(#x1)),
        SOp::Powf => quote!(#x0.powf(#x1)),
        SOp::PowI(n) => {
            let n = signed(&n.to_string());
            quote!(#x0.powi(#n))
        }
        SOp::Fma => quote!(#x0.mul_add(#x1, #x2)),
        SOp::Lt | SOp::IdxLt | SOp::ILt => quote!((#x0 < #x1)),
        SOp::Le => quote!((#x0 <= #x1)),
        SOp::Eq | SOp::IdxEq | SOp::IEq => quote!((#x0 == #x1)),
        SOp::Ne => quote!((#x0 != #x1)),
        SOp::And => quote!((#x0 & #x1)),
        SOp::Or => quote!((#x0 | #x1)),
        SOp::Not => quote!((!#x0)),
        SOp::Select => quote!((if #x0 { #x1 } else { #x2 })),
        SOp::Bits => quote!((#x0.to_bits() as #ity)),
        SOp::FromBits => quote!(#f::from_bits(#x0 as #uty)),
        // `as` saturates, which LLVM does not vectorize; the runtime's conversion clamps
        // and converts in a way it does.
        SOp::CvtInt => {
            let cvt = rt.cvt_int(p);
            quote!(#cvt(#x0))
        }
        SOp::CvtFloat => quote!((#x0 as #f)),
        SOp::IAdd => quote!(#x0.wrapping_add(#x1)),
        SOp::ISub => quote!(#x0.wrapping_sub(#x1)),
        SOp::IAnd => quote!((#x0 & #x1)),
        SOp::IOr => quote!((#x0 | #x1)),
        SOp::IShl(k) => {
            let k = num(k.into());
            quote!((#x0 << #k))
        }
        SOp::IShr(k) => {
            let k = num(k.into());
            quote!((#x0 >> #k))
        }
        // GPU fast-math instructions, never in CPU kernels: their exact values.
        SOp::Ex2Approx => quote!(#x0.exp2()),
        SOp::Lg2Approx => quote!(#x0.log2()),
        SOp::SinApprox => quote!(#x0.sin()),
        SOp::CosApprox => quote!(#x0.cos()),
        SOp::RsqrtApprox => quote!((1.0 / #x0.sqrt())),
        SOp::RcpApprox => quote!((1.0 / #x0)),
    }
}

/// Writes blocks as Rust statements.
struct Writer<'k> {
    tys: &'k [Ty],
    /// The runtime crate.
    rt: &'k Runtime,
    p: Precision,
    /// Registers holding one value for all lanes.
    uniform: HashSet<Reg>,
}

impl Writer<'_> {
    fn ty(&self, r: Reg) -> Ty {
        self.tys[r.0 as usize]
    }

    fn operand(&self, r: Reg, lane: bool) -> TokenStream {
        let name = reg(r);
        if lane && !self.uniform.contains(&r) {
            quote!(#name[l])
        } else {
            quote!(#name)
        }
    }

    /// Scalar statements (all registers scalar).
    fn scalar(&self, insts: &[Inst]) -> TokenStream {
        let mut out = TokenStream::new();
        for i in insts {
            let args: Vec<TokenStream> = i.args.iter().map(|r| self.operand(*r, false)).collect();
            let e = expr(i.op, &args, self.p, self.rt);
            let (dst, t) = (reg(i.dst), rust_ty(self.ty(i.dst), self.p));
            out.extend(quote!(let #dst: #t = #e;));
        }
        out
    }

    /// Lane statements: uniform instructions stay scalar, the others loop over lanes.
    fn lanes(&mut self, insts: &[Inst]) -> TokenStream {
        let mut out = TokenStream::new();
        for i in insts {
            let varying = i.args.iter().any(|a| !self.uniform.contains(a));
            let (dst, t) = (reg(i.dst), rust_ty(self.ty(i.dst), self.p));
            if !varying {
                let args: Vec<TokenStream> =
                    i.args.iter().map(|r| self.operand(*r, false)).collect();
                let e = expr(i.op, &args, self.p, self.rt);
                out.extend(quote!(let #dst: #t = #e;));
                self.uniform.insert(i.dst);
            } else {
                let args: Vec<TokenStream> =
                    i.args.iter().map(|r| self.operand(*r, true)).collect();
                let e = expr(i.op, &args, self.p, self.rt);
                let z = zero(self.ty(i.dst), self.p);
                out.extend(
                    quote!(let mut #dst: [#t; L] = [#z; L]; for l in 0..L { #dst[l] = #e; }),
                );
            }
        }
        out
    }

    /// Binds block parameters to expressions (`let rP = <expr>;`), keeping uniformity.
    fn bind(&mut self, params: &[Reg], values: &[(TokenStream, bool)]) -> TokenStream {
        let mut out = TokenStream::new();
        for (p, (v, uniform)) in params.iter().zip(values) {
            let r = reg(*p);
            out.extend(quote!(let #r = #v;));
            if *uniform {
                self.uniform.insert(*p);
            } else {
                self.uniform.remove(p);
            }
        }
        out
    }
}

/// Unsuffixed literals of a list of widths.
pub(crate) fn widths_list(v: &[usize]) -> Vec<Literal> {
    v.iter().map(|d| num(*d)).collect()
}

/// Emits `impl CpuReduce<f32|f64> for <name>` for a reduction step of an instantiated program.
pub fn emit_reduce(
    p: &Program,
    r: &Reduce,
    name: &str,
    opts: &RustOptions,
) -> Result<EmittedReduce> {
    let kernel = lower_reduction(p, r, opts.sum_mode)?;
    let kernel = keops_ir::lower::expand_math(&kernel, opts.precision);
    let rt = &opts.runtime;
    let f = float(opts.precision);
    let nlanes = num(lanes(opts.precision));
    let h = &kernel.hooks;
    let nf = h.acc.iter().filter(|t| **t == Ty::F).count();
    let ni = h.acc.len() - nf;

    // Components of the formula block's parameters, by input kind.
    let mut outer_w = Vec::new();
    let mut inner_w = Vec::new();
    let mut param_w = Vec::new();
    let mut sources: Vec<(TokenStream, bool)> = Vec::new();
    let (mut no, mut nin, mut np) = (0, 0, 0);
    let chunk = rt.chunk();
    for input in &kernel.inputs {
        for _ in 0..input.dim {
            if input.cat == Cat::P {
                let k = num(np);
                sources.push((quote!(t.params[#k]), true));
                np += 1;
            } else if input.cat == kernel.out_rows {
                let k = num(no);
                sources.push((quote!(t.outer[#k]), true));
                no += 1;
            } else {
                let k = num(nin);
                sources.push((
                    quote!(#chunk::<#f, { L }>(t.inner, #k * t.stride + base)),
                    false,
                ));
                nin += 1;
            }
        }
        match input.cat {
            Cat::P => param_w.push(input.dim),
            c if c == kernel.out_rows => outer_w.push(input.dim),
            _ => inner_w.push(input.dim),
        }
    }

    // The exponential as its own block (registers after the kernel's), for the two-pass
    // LogSumExp tile.
    let (exp_block, tys) = {
        let mut l = keops_ir::lower::Lower::with_types(kernel.tys.clone());
        let x = l.param(Ty::F);
        let e = l.emit(keops_ir::lower::SOp::Exp, &[x]);
        let b = l.finish(vec![x], vec![e]);
        keops_ir::lower::expand_block_math(&l.tys, &b, opts.precision)
    };
    let mut w = Writer {
        tys: &tys,
        rt,
        p: opts.precision,
        uniform: HashSet::new(),
    };
    let name = ident(name);
    let (acc_f_len, acc_i_len) = (num(nf), num(ni));
    let is_sum = kernel.kind.is_sum();
    let (out_values, out_indices) = (num(h.out_values), num(h.out_indices));
    let (outer_w, inner_w, param_w) = (
        widths_list(&outer_w),
        widths_list(&inner_w),
        widths_list(&param_w),
    );

    // init
    let mut init = w.scalar(&h.init.insts);
    init.extend(store_acc(&h.init.results, &h.acc, "acc_f", "acc_i"));

    // merge
    let mut vals = load_acc(&h.acc, "acc_f", "acc_i");
    vals.extend(load_acc(&h.acc, "other_f", "other_i"));
    let mut merge = w.bind(&h.merge.params, &vals);
    merge.extend(w.scalar(&h.merge.insts));
    merge.extend(store_acc(&h.merge.results, &h.acc, "acc_f", "acc_i"));

    // finalize
    let vals = load_acc(&h.acc, "acc_f", "acc_i");
    let mut finalize = w.bind(&h.finalize.params, &vals);
    finalize.extend(w.scalar(&h.finalize.insts));
    let (mut kf, mut ki) = (0, 0);
    for res in &h.finalize.results {
        let (r, k) = (reg(*res), num(if w.ty(*res) == Ty::Idx { ki } else { kf }));
        if w.ty(*res) == Ty::Idx {
            finalize.extend(quote!(out_i[#k] = #r;));
            ki += 1;
        } else {
            finalize.extend(quote!(out_f[#k] = #r;));
            kf += 1;
        }
    }

    // tile: uniform parts of the formula, hoisted out of the lane loop
    let (hoisted, per_lane) = split_uniform(&kernel.formula, &sources);
    w.uniform.clear();
    let mut tile = TokenStream::new();
    for (p, (v, uniform)) in kernel.formula.params.iter().zip(&sources) {
        if *uniform {
            let r = reg(*p);
            tile.extend(quote!(let #r = #v;));
            w.uniform.insert(*p);
        }
    }
    tile.extend(w.lanes(&hoisted));
    // The tile loop the reduction table asks for.
    let order = kernel.kind.order();
    match (kernel.kind.spec().cpu_tile, order) {
        (CpuTile::Select, Some(order)) => {
            tile.extend(select_tile(
                &mut w,
                &kernel,
                &sources,
                &per_lane,
                order,
                opts.precision,
            ));
        }
        // Two passes for a scalar F (no G) that varies with the reduced index.
        (CpuTile::TwoPassLogSumExp, _)
            if kernel.formula.results.len() == 1
                && !w.uniform.contains(&kernel.formula.results[0]) =>
        {
            tile.extend(lse_tile(
                &mut w,
                &kernel,
                &sources,
                &per_lane,
                &exp_block,
                opts.precision,
            ));
        }
        (CpuTile::Select, None) => {
            return Err(keops_ir::Error::new(
                keops_ir::ErrorKind::Limit,
                format!(
                    "internal error: {} has a selection tile but no order",
                    kernel.kind
                ),
            ));
        }
        (CpuTile::Lanes | CpuTile::TwoPassLogSumExp, _) => {
            tile.extend(sum_tile(
                &mut w,
                &kernel,
                &sources,
                &per_lane,
                opts.precision,
            ));
        }
    }
    let (cpu_reduce, tile_ty, simd_kernel, dispatch) =
        (rt.cpu_reduce(), rt.tile(), rt.simd_kernel(), rt.dispatch());
    let code = quote! {
        impl #cpu_reduce<#f> for #name {
            fn acc_len(&self) -> (usize, usize) { (#acc_f_len, #acc_i_len) }
            fn is_sum(&self) -> bool { #is_sum }
            fn out_len(&self) -> (usize, usize) { (#out_values, #out_indices) }
            fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
                (vec![#(#outer_w),*], vec![#(#inner_w),*], vec![#(#param_w),*])
            }
            fn init(&self, acc_f: &mut [#f], acc_i: &mut [u64]) {
                #init
            }
            fn merge(&self, acc_f: &mut [#f], acc_i: &mut [u64], other_f: &[#f], other_i: &[u64]) {
                #merge
            }
            fn finalize(&self, acc_f: &[#f], acc_i: &[u64], out_f: &mut [#f], out_i: &mut [u64]) {
                #finalize
            }
            #[inline]
            fn tile(&self, t: #tile_ty<'_, #f>, acc_f: &mut [#f], acc_i: &mut [u64]) {
                struct Body<'a, 'b> { t: #tile_ty<'a, #f>, acc_f: &'b mut [#f], acc_i: &'b mut [u64] }
                impl #simd_kernel for Body<'_, '_> {
                    #[inline(always)]
                    fn run(self) {
                        let Body { t, acc_f, acc_i } = self;
                        const L: usize = #nlanes;
                        #tile
                    }
                }
                #dispatch(Body { t, acc_f, acc_i });
            }
        }
    };
    Ok(EmittedReduce {
        code,
        inputs: kernel.inputs.clone(),
        kernel,
    })
}

/// `la{k}`: lane accumulator `k` of a sum tile.
fn lane_acc(k: usize) -> Ident {
    format_ident!("la{}", k)
}

/// The lane loop of sums and LogSumExp-like reductions: one accumulator per lane, merged
/// into the row's accumulator at the end of the tile, in lane order.
fn sum_tile(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(TokenStream, bool)],
    per_lane: &[Inst],
    precision: Precision,
) -> TokenStream {
    let h = &kernel.hooks;
    // lane accumulators, from the init block
    let mut out = w.scalar(&h.init.insts);
    for (k, res) in h.init.results.iter().enumerate() {
        let (la, r) = (lane_acc(k), reg(*res));
        out.extend(quote!(let mut #la = [#r; L];));
    }
    let (lanes_code, lane_vals) = formula_lanes(w, kernel, sources, per_lane, precision);
    let acc_params = &h.accumulate.params;
    let nacc = h.acc.len();
    // accumulate: full chunks, then the masked tail
    let mut chunks = TokenStream::new();
    for masked in [false, true] {
        let mut binds: Vec<TokenStream> = (0..nacc)
            .map(|k| {
                let la = lane_acc(k);
                quote!(#la[l])
            })
            .collect();
        binds.extend(lane_vals.iter().cloned());
        binds.push(quote!(t.j0 + (base + l) as u64));
        let mut body = TokenStream::new();
        for (p, v) in acc_params.iter().zip(&binds) {
            let r = reg(*p);
            body.extend(quote!(let #r = #v;));
        }
        body.extend(w.scalar(&h.accumulate.insts));
        for (k, res) in h.accumulate.results.iter().enumerate() {
            let (la, r) = (lane_acc(k), reg(*res));
            body.extend(quote!(#la[l] = #r;));
        }
        chunks.extend(if masked {
            quote!(else { for l in 0..L { if base + l < t.len { #body } } })
        } else {
            quote!(if base + L <= t.len { for l in 0..L { { #body } } })
        });
    }
    out.extend(quote! {
        let mut base = 0usize;
        while base < t.len {
            #lanes_code
            #chunks
            base += L;
        }
    });
    // merge the lanes into the row accumulator, in lane order
    let mut vals = load_acc(&h.acc, "acc_f", "acc_i");
    vals.extend((0..nacc).map(|k| {
        let la = lane_acc(k);
        (quote!(#la[l]), true)
    }));
    w.uniform.clear();
    let mut merge = w.bind(&h.merge.params, &vals);
    merge.extend(w.scalar(&h.merge.insts));
    merge.extend(store_acc(&h.merge.results, &h.acc, "acc_f", "acc_i"));
    out.extend(quote!(for l in 0..L { #merge }));
    out
}

/// The comparison `value <op> worst` that lets a value enter a selection's slots: `<=`
/// when smaller is better, `>=` when larger is (equal values go through the insertion,
/// which breaks ties by index).
pub(crate) fn at_least_as_good(order: Order) -> TokenStream {
    match order {
        Order::Smaller => quote!(<=),
        Order::Larger => quote!(>=),
    }
}

/// The lane loop of selections (Min, ArgMin, KMin, ...): the formula is evaluated for a
/// chunk of lanes at once, compared with the row's current worst kept value (a vector
/// test that almost always fails once the row has K good values), and only the lanes that
/// pass are inserted, one by one in index order, into the row's single accumulator, whose
/// worst kept value then tightens the test. As in KeOps, the insertion network runs about
/// K log(N / K) times per row instead of N.
fn select_tile(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(TokenStream, bool)],
    per_lane: &[Inst],
    order: Order,
    precision: Precision,
) -> TokenStream {
    let h = &kernel.hooks;
    let (k, d) = (kernel.kind.slots(), kernel.fdim);
    let cmp = at_least_as_good(order);
    let worst = |c: usize| format_ident!("worst{}", c);
    // The row's worst kept values, read and refreshed from the accumulator.
    let read_worst: TokenStream = (0..d)
        .map(|c| {
            let (wc, at) = (worst(c), num((k - 1) * d + c));
            quote!(#wc = acc_f[#at];)
        })
        .collect();
    let mut out: TokenStream = (0..d)
        .map(|c| {
            let (wc, at) = (worst(c), num((k - 1) * d + c));
            quote!(let mut #wc = acc_f[#at];)
        })
        .collect();
    let (lanes_code, lane_vals) = formula_lanes(w, kernel, sources, per_lane, precision);
    let candidates: TokenStream = lane_vals
        .iter()
        .enumerate()
        .take(d)
        .map(|(c, f)| {
            let wc = worst(c);
            quote!(for l in 0..L { candidate |= #f #cmp #wc; })
        })
        .collect();
    let tests: Vec<TokenStream> = lane_vals
        .iter()
        .take(d)
        .enumerate()
        .map(|(c, f)| {
            let wc = worst(c);
            quote!((#f #cmp #wc))
        })
        .collect();
    let accumulate = accumulate_into_row(w, h, lane_vals.iter().cloned());
    out.extend(quote! {
        let mut base = 0usize;
        while base < t.len {
            #lanes_code
            let mut candidate = false;
            #candidates
            if candidate {
                for l in 0..L.min(t.len - base) {
                    if !(#(#tests)|*) { continue; }
                    #accumulate
                    #read_worst
                }
            }
            base += L;
        }
    });
    out
}

/// The tile of an unweighted LogSumExp, in blocks of 16 chunks and two passes: the
/// maximum M of the formula's values, then the sum of exp(f - M) (one exponential per
/// term and no rescaling), merged into the row's state (m, s) once per block. Blocks whose
/// maximum is not finite (all -inf, +inf, all NaN) go through the one-term-at-a-time
/// reduction, which defines those cases.
fn lse_tile(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(TokenStream, bool)],
    per_lane: &[Inst],
    exp: &Block,
    precision: Precision,
) -> TokenStream {
    let h = &kernel.hooks;
    let f = float(precision);
    // Chunks per block: the formula is evaluated twice (for the maximum, then for the
    // sum), which costs less than keeping its values.
    const CHUNKS: usize = 16;
    let chunks = num(CHUNKS);
    // First pass: the block's maximum.
    let (max_lanes, lane_vals) = formula_lanes(w, kernel, sources, per_lane, precision);
    let v = &lane_vals[0];
    // Second pass: the sum of exponentials.
    let (sum_lanes, lane_vals) = formula_lanes(w, kernel, sources, per_lane, precision);
    let v2 = &lane_vals[0];
    let (exp_in, exp_out) = (reg(exp.params[0]), reg(exp.results[0]));
    let exp_code = w.scalar(&exp.insts);
    let mut vals = load_acc(&h.acc, "acc_f", "acc_i");
    vals.push((quote!(mb), true));
    vals.push((quote!(sb), true));
    let mut merge = w.bind(&h.merge.params, &vals);
    merge.extend(w.scalar(&h.merge.insts));
    merge.extend(store_acc(&h.merge.results, &h.acc, "acc_f", "acc_i"));
    // Not finite: the formula again, one term at a time.
    let (term_lanes, lane_vals) = formula_lanes(w, kernel, sources, per_lane, precision);
    let accumulate = accumulate_into_row(w, h, [lane_vals[0].clone()]);
    quote! {
        let mut start = 0usize;
        while start < t.len {
            let end = (start + #chunks * L).min(t.len);
            let mut vmax = [#f::NEG_INFINITY; L];
            let mut base = start;
            while base < end {
                #max_lanes
                if base + L <= end { for l in 0..L { let v = #v; vmax[l] = if v > vmax[l] { v } else { vmax[l] }; } } else { for l in 0..L { let v = if base + l < end { #v } else { #f::NEG_INFINITY }; vmax[l] = if v > vmax[l] { v } else { vmax[l] }; } }
                base += L;
            }
            let mut mb = #f::NEG_INFINITY;
            for l in 0..L { mb = mb.max(vmax[l]); }
            if mb.is_finite() {
                let mut sl = [0 as #f; L];
                let mut base = start;
                while base < end {
                    #sum_lanes
                    let full = base + L <= end;
                    for l in 0..L {
                        let #exp_in = if full || base + l < end { #v2 } else { #f::NEG_INFINITY } - mb;
                        #exp_code
                        sl[l] += #exp_out;
                    }
                    base += L;
                }
                let mut sb = 0 as #f;
                for l in 0..L { sb += sl[l]; }
                #merge
            } else {
                let mut base = start;
                while base < end {
                    #term_lanes
                    for l in 0..L.min(end - base) {
                        #accumulate
                    }
                    base += L;
                }
            }
            start = end;
        }
    }
}

/// Adds lane `l`'s term (its formula `values`, reduced index `t.j0 + base + l`) into the
/// row's accumulator `acc_f` / `acc_i`, one term at a time: the accumulate hook in scalar
/// code.
fn accumulate_into_row(
    w: &mut Writer<'_>,
    h: &Hooks,
    values: impl IntoIterator<Item = TokenStream>,
) -> TokenStream {
    let mut binds: Vec<TokenStream> = load_acc(&h.acc, "acc_f", "acc_i")
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    binds.extend(values);
    binds.push(quote!(t.j0 + (base + l) as u64));
    let mut out = TokenStream::new();
    for (p, v) in h.accumulate.params.iter().zip(&binds) {
        let r = reg(*p);
        out.extend(quote!(let #r = #v;));
    }
    out.extend(w.scalar(&h.accumulate.insts));
    out.extend(store_acc(&h.accumulate.results, &h.acc, "acc_f", "acc_i"));
    out
}

/// Loads a chunk's inputs and evaluates the formula for every lane (a loop body of scalar
/// code that LLVM's loop vectorizer turns into SIMD instructions); returns the code and
/// the expression of each formula value for lane `l`.
fn formula_lanes(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(TokenStream, bool)],
    per_lane: &[Inst],
    precision: Precision,
) -> (TokenStream, Vec<TokenStream>) {
    let mut out = TokenStream::new();
    let mut varying_params = Vec::new();
    for (k, (p, (v, uniform))) in kernel.formula.params.iter().zip(sources).enumerate() {
        if !*uniform {
            let y = format_ident!("y{}", k);
            out.extend(quote!(let #y = #v;));
            varying_params.push((*p, y));
        }
    }
    let fvals = kernel.formula.results.clone();
    let mut lane_vals: Vec<TokenStream> = Vec::new();
    for (i, r) in fvals.iter().enumerate() {
        if w.uniform.contains(r) {
            let r = reg(*r);
            lane_vals.push(quote!(#r));
        } else {
            let (fv, z) = (format_ident!("fv{}", i), zero(Ty::F, precision));
            out.extend(quote!(let mut #fv = [#z; L];));
            lane_vals.push(quote!(#fv[l]));
        }
    }
    let mut body = TokenStream::new();
    for (p, y) in &varying_params {
        let r = reg(*p);
        body.extend(quote!(let #r = #y[l];));
    }
    body.extend(w.scalar(per_lane));
    for (i, r) in fvals.iter().enumerate() {
        if !w.uniform.contains(r) {
            let (fv, r) = (format_ident!("fv{}", i), reg(*r));
            body.extend(quote!(#fv[l] = #r;));
        }
    }
    out.extend(quote!(for l in 0..L { #body }));
    (out, lane_vals)
}

/// Splits the formula block into instructions that depend only on uniform parameters
/// (hoisted out of the lane loop) and the rest.
fn split_uniform(b: &Block, sources: &[(TokenStream, bool)]) -> (Vec<Inst>, Vec<Inst>) {
    let mut uniform: HashSet<Reg> = b
        .params
        .iter()
        .zip(sources)
        .filter(|(_, (_, u))| *u)
        .map(|(p, _)| *p)
        .collect();
    let (mut hoisted, mut rest) = (Vec::new(), Vec::new());
    for i in &b.insts {
        if i.args.iter().all(|a| uniform.contains(a)) {
            uniform.insert(i.dst);
            hoisted.push(i.clone());
        } else {
            rest.push(i.clone());
        }
    }
    (hoisted, rest)
}

/// The accumulator slots `f[k]` / `i[k]` of an accumulator's registers, floats and
/// indices counted separately (all uniform).
fn load_acc(acc: &[Ty], f: &str, i: &str) -> Vec<(TokenStream, bool)> {
    let (f, i) = (ident(f), ident(i));
    let (mut kf, mut ki) = (0, 0);
    acc.iter()
        .map(|t| {
            if *t == Ty::Idx {
                ki += 1;
                let k = num(ki - 1);
                (quote!(#i[#k]), true)
            } else {
                kf += 1;
                let k = num(kf - 1);
                (quote!(#f[#k]), true)
            }
        })
        .collect()
}

/// Stores registers into the accumulator slots of [`load_acc`].
fn store_acc(results: &[Reg], acc: &[Ty], f: &str, i: &str) -> TokenStream {
    let (f, i) = (ident(f), ident(i));
    let (mut kf, mut ki) = (0, 0);
    let mut out = TokenStream::new();
    for (r, t) in results.iter().zip(acc) {
        let r = reg(*r);
        if *t == Ty::Idx {
            let k = num(ki);
            out.extend(quote!(#i[#k] = #r;));
            ki += 1;
        } else {
            let k = num(kf);
            out.extend(quote!(#f[#k] = #r;));
            kf += 1;
        }
    }
    out
}

/// A generated gather kernel (gradients of selections).
#[derive(Clone, Debug)]
pub struct EmittedGather {
    /// Rust tokens: an `impl CpuGather<f32|f64> for <name>`.
    pub code: TokenStream,
    /// Inputs in kernel order (the slot variable included, with a `Temp` source).
    pub inputs: Vec<KernelInput>,
}

/// Emits `impl CpuGather<f32|f64> for <name>` for a gather step of an instantiated program.
pub fn emit_gather(
    p: &Program,
    g: &keops_ir::program::Gather,
    name: &str,
    opts: &RustOptions,
) -> Result<EmittedGather> {
    let mut l = keops_ir::lower::Lower::new();
    let (block, inputs) = keops_ir::lower::lower_formula(&mut l, &p.graph, &[g.formula])?;
    let (block, tys) = keops_ir::lower::expand_block_math(&l.tys, &block, opts.precision);
    let rt = &opts.runtime;
    let f = float(opts.precision);
    let slot_dim = p.graph.var(g.slot_var).dim.as_known().unwrap_or(1);
    let out_dim = p.graph.known_dim(g.formula).unwrap_or(0);
    let (mut wo, mut wi, mut wp) = (Vec::new(), Vec::new(), Vec::new());
    let (mut no, mut ni, mut np, mut ns) = (0, 0, 0, 0);
    let mut bind = Vec::new();
    for input in &inputs {
        let (arr, counter) = if input.var == g.slot_var {
            ("slot", &mut ns)
        } else if input.cat == Cat::P {
            wp.push(input.dim);
            ("params", &mut np)
        } else if input.cat == g.owner {
            wo.push(input.dim);
            ("owner", &mut no)
        } else {
            wi.push(input.dim);
            ("other", &mut ni)
        };
        let arr = ident(arr);
        for _ in 0..input.dim {
            let k = num(*counter);
            bind.push(quote!(#arr[#k]));
            *counter += 1;
        }
    }
    let (wo, wi, wp) = (widths_list(&wo), widths_list(&wi), widths_list(&wp));
    let mut body = TokenStream::new();
    for (param, e) in block.params.iter().zip(&bind) {
        let r = reg(*param);
        body.extend(quote!(let #r = #e;));
    }
    for i in &block.insts {
        let args: Vec<TokenStream> = i.args.iter().map(|a| reg(*a).into_token_stream()).collect();
        let ty = rust_ty(
            tys.get(i.dst.0 as usize).copied().unwrap_or(Ty::F),
            opts.precision,
        );
        let (dst, e) = (reg(i.dst), expr(i.op, &args, opts.precision, rt));
        body.extend(quote!(let #dst: #ty = #e;));
    }
    for (k, r) in block.results.iter().enumerate() {
        let (k, r) = (num(k), reg(*r));
        body.extend(quote!(out[#k] = #r;));
    }
    let (cpu_gather, name, slot_dim, out_dim) =
        (rt.cpu_gather(), ident(name), num(slot_dim), num(out_dim));
    let code = quote! {
        impl #cpu_gather<#f> for #name {
            fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
                (vec![#(#wo),*], vec![#(#wi),*], vec![#(#wp),*])
            }
            fn slot_dim(&self) -> usize { #slot_dim }
            fn out_dim(&self) -> usize { #out_dim }
            fn eval(&self, owner: &[#f], other: &[#f], params: &[#f], slot: &[#f], out: &mut [#f]) {
                #body
            }
        }
    };
    Ok(EmittedGather { code, inputs })
}
