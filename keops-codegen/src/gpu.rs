//! The GPU kernels of a step as the `keops!` macro embeds them: the PTX modules that
//! `keops-gpu-kernels` generates, written as Rust constants of the runtime's types.

use crate::paths::{Runtime, cow_borrowed};
use crate::tokens::{ident, num};
use keops_gpu_kernels::gather::{GpuGather, compile_gather, gather_variants};
use keops_gpu_kernels::module::{
    GpuInput, GpuReduction, InputSource, compile_reduction, kernel_prefix, variants,
};
use keops_ir::graph::Cat;
use keops_ir::lower::Precision;
use keops_ir::program::{Gather, Reduce};
use keops_ir::{Error, Program};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

/// Where a kernel's GPU code comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GpuKernels {
    /// The PTX is generated at expansion time and embedded in the binary.
    Embedded,
    /// The PTX is generated at the first GPU call (the `embed-ptx` feature off).
    AtFirstUse,
}

fn cat_path(c: Cat) -> Ident {
    ident(match c {
        Cat::I => "I",
        Cat::J => "J",
        Cat::P => "P",
        Cat::Temp => "Temp",
    })
}

fn precision_path(p: Precision) -> Ident {
    ident(match p {
        Precision::F32 => "F32",
        Precision::F64 => "F64",
    })
}

/// A Rust constant expression of an input.
fn input_const(i: &GpuInput, rt: &Runtime) -> TokenStream {
    let src = match i.source {
        InputSource::Arg(a) => {
            let a = num(a);
            quote!(Arg(#a))
        }
        InputSource::Buffer(b) => {
            let b = num(b);
            quote!(Buffer(#b))
        }
    };
    let (gpu_input, input_source, cat) = (rt.gpu_input(), rt.input_source(), rt.cat());
    let (c, dim) = (cat_path(i.cat), num(i.dim));
    quote!(#gpu_input { source: #input_source::#src, cat: #cat::#c, dim: #dim })
}

/// A Rust constant expression of a compiled reduction.
fn reduction_const(g: &GpuReduction, rt: &Runtime) -> TokenStream {
    let (gpu_reduction, precision, cat, chunk_meta, cow) = (
        rt.gpu_reduction(),
        rt.precision(),
        rt.cat(),
        rt.chunk_meta(),
        cow_borrowed(),
    );
    let ptx = Literal::string(&g.ptx);
    let (prec, fast_math, out_rows) = (
        precision_path(g.precision),
        g.fast_math,
        cat_path(g.out_rows),
    );
    let (out_values, out_indices) = (num(g.out_values), num(g.out_indices));
    let inputs = g.inputs.iter().map(|i| input_const(i, rt));
    let chunks = g.chunks.iter().map(|c| {
        let (reduce, merge) = (Literal::string(&c.reduce), Literal::string(&c.merge));
        let shared_per_row = Literal::u64_unsuffixed(c.shared_per_row);
        let (acc_floats, acc_indices) = (num(c.acc_floats), num(c.acc_indices));
        quote!(#chunk_meta { reduce: #cow(#reduce), merge: #cow(#merge), shared_per_row: #shared_per_row, acc_floats: #acc_floats, acc_indices: #acc_indices })
    });
    quote! {
        #gpu_reduction { ptx: #cow(#ptx), precision: #precision::#prec, fast_math: #fast_math, out_rows: #cat::#out_rows, out_values: #out_values, out_indices: #out_indices, inputs: #cow(&[#(#inputs,)*]), chunks: #cow(&[#(#chunks,)*]) }
    }
}

/// A Rust constant expression of a compiled gather.
fn gather_const(g: &GpuGather, rt: &Runtime) -> TokenStream {
    let (gpu_gather, precision, cat, cow) =
        (rt.gpu_gather(), rt.precision(), rt.cat(), cow_borrowed());
    let (ptx, entry) = (Literal::string(&g.ptx), Literal::string(&g.entry));
    let (prec, fast_math, owner, to_owner) = (
        precision_path(g.precision),
        g.fast_math,
        cat_path(g.owner),
        g.to_owner,
    );
    let (slots, slot_dim, out_dim) = (num(g.slots), num(g.slot_dim), num(g.out_dim));
    let inputs = g.inputs.iter().map(|i| input_const(i, rt));
    quote! {
        #gpu_gather { ptx: #cow(#ptx), entry: #cow(#entry), precision: #precision::#prec, fast_math: #fast_math, owner: #cat::#owner, to_owner: #to_owner, slots: #slots, slot_dim: #slot_dim, out_dim: #out_dim, inputs: #cow(&[#(#inputs,)*]) }
    }
}

/// The kernels of reduction `r` (step `step` of an instantiated program) for each of
/// the variants `keops-gpu-kernels` lists, as a Rust expression of type
/// `Option<&'static [<runtime>::gpu::GpuReduction]>` (`None` when left to the first use).
pub fn reduction_kernels(
    p: &Program,
    r: &Reduce,
    step: usize,
    rt: &Runtime,
    mode: GpuKernels,
) -> Result<TokenStream, Error> {
    if mode == GpuKernels::AtFirstUse {
        return Ok(quote!(None));
    }
    let prefix = kernel_prefix(step);
    let parts = variants(r.kind)
        .into_iter()
        .map(|(precision, opts)| {
            compile_reduction(p, r, precision, &opts, &prefix).map(|g| reduction_const(&g, rt))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(quote!(Some(&[#(#parts),*])))
}

/// The kernels of gather `g` (step `step` of an instantiated program) in each of
/// the variants `keops-gpu-kernels` lists, as a Rust expression of type
/// `Option<&'static [<runtime>::gpu::GpuGather]>` (`None` when left to the first use).
pub fn gather_kernels(
    p: &Program,
    g: &Gather,
    step: usize,
    rt: &Runtime,
    mode: GpuKernels,
) -> Result<TokenStream, Error> {
    if mode == GpuKernels::AtFirstUse {
        return Ok(quote!(None));
    }
    let parts = gather_variants()
        .into_iter()
        .map(|(precision, opts)| {
            compile_gather(p, g, precision, &opts, step).map(|(_, m)| gather_const(&m, rt))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(quote!(Some(&[#(#parts,)*])))
}
