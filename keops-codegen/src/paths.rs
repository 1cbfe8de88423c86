//! Every path that generated code names, spelled once.
//!
//! Generated code reaches the runtime crate (and, through its re-exports `ir` and `gpu`,
//! the types of `keops_ir` and `keops_gpu_kernels`) by a root path that the caller of the
//! code generator chooses: `::keops::__private::runtime` in the `keops!` macro, a short
//! name in tests. A [`Runtime`] holds that root and has one method per item, returning the
//! item's full path as tokens (`rt.cpu_reduce()` is `<root>::cpu::CpuReduce`). Method
//! bodies bring the root in as a local alias (`use <root> as __rt;`, [`Runtime::use_alias`])
//! and name items through it: [`Runtime::alias`] is the runtime seen through that alias.
//! The few paths of `core` and `std` are the free functions at the end.

use keops_ir::lower::Precision;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The runtime crate as generated code names it: its root path.
#[derive(Clone, Debug)]
pub struct Runtime {
    /// The root path, e.g. `::keops::__private::runtime`.
    pub root: TokenStream,
}

impl Runtime {
    /// The runtime at `root` (a path, e.g. `quote!(::my_crate::runtime)`).
    pub fn new(root: TokenStream) -> Runtime {
        Runtime { root }
    }

    /// The runtime as the `keops!` macro names it: `::keops::__private::runtime`.
    pub fn keops() -> Runtime {
        Runtime::new(quote!(::keops::__private::runtime))
    }

    /// The runtime through the local alias `__rt` of [`Runtime::use_alias`].
    pub fn alias() -> Runtime {
        Runtime::new(quote!(__rt))
    }

    /// `use <root> as __rt;`, the statement that makes [`Runtime::alias`] valid.
    pub fn use_alias(&self) -> TokenStream {
        let root = &self.root;
        quote!(use #root as __rt;)
    }

    /// `<root>::simd::cvt_int_f32` or `..._f64`: the runtime's vectorizable float to
    /// integer conversion for a precision.
    pub fn cvt_int(&self, p: Precision) -> TokenStream {
        let root = &self.root;
        let f = format_ident!("cvt_int_{}", crate::tokens::float_name(p));
        quote!(#root::simd::#f)
    }
}

/// Declares one method of [`Runtime`] per item: `name => path::in::the::runtime`.
macro_rules! runtime_items {
    ($($method:ident => $($segment:ident)::+;)*) => {
        impl Runtime {
            $(
                #[doc = concat!("`<root>", $("::", stringify!($segment),)+ "`")]
                pub fn $method(&self) -> TokenStream {
                    let root = &self.root;
                    quote!(#root $(:: $segment)+)
                }
            )*
        }
    };
}

runtime_items! {
    // The typed API.
    keops_error => KeopsError;
    keops_float => KeopsFloat;
    result => Result;
    options => Options;
    arg_trait => Arg;
    out_trait => Out;
    out_indices => OutIndices;
    dest => Dest;
    view => View;
    write_output => out::write_output;
    write_indices => out::write_indices;
    // Arguments, buffers and outputs.
    named_view => args::named_view;
    sizes => args::sizes;
    buffer_view => args::buffer_view;
    sum_rows => args::sum_rows;
    add => args::add;
    fill => args::fill;
    value_rows => args::value_rows;
    index_rows => args::index_rows;
    value_groups => args::value_groups;
    index_groups => args::index_groups;
    // The CPU driver.
    cpu_reduce => cpu::CpuReduce;
    reduce_args => cpu::ReduceArgs;
    tile => cpu::Tile;
    cpu_gather => gather::CpuGather;
    gather_args => gather::GatherArgs;
    simd_kernel => simd::Kernel;
    dispatch => simd::dispatch;
    chunk => simd::chunk;
    // The GPU runtime, and `keops_gpu_kernels`' types it re-exports.
    gpu_step => gpu::GpuStep;
    gpu_gather_step => gpu::GpuGatherStep;
    step_call => gpu::StepCall;
    gather_call => gpu::GatherCall;
    reduce_step => gpu::reduce_step;
    reduce_step_into => gpu::reduce_step_into;
    gather_step => gpu::gather_step;
    input_source => gpu::InputSource;
    gpu_reduction => gpu::GpuReduction;
    gpu_gather => gpu::GpuGather;
    gpu_input => gpu::GpuInput;
    chunk_meta => gpu::ChunkMeta;
    // `keops_ir`'s types, re-exported as `ir`.
    eval_output => ir::eval::Output;
    cat => ir::Cat;
    precision => ir::lower::Precision;
}

/// `::core::compile_error`.
pub fn compile_error() -> TokenStream {
    quote!(::core::compile_error)
}

/// `::core::result::Result`.
pub fn core_result() -> TokenStream {
    quote!(::core::result::Result)
}

/// `::core::unreachable`.
pub fn unreachable() -> TokenStream {
    quote!(::core::unreachable)
}

/// `::std::borrow::Cow::Borrowed`.
pub fn cow_borrowed() -> TokenStream {
    quote!(::std::borrow::Cow::Borrowed)
}

/// `core::array::from_fn`.
pub fn array_from_fn() -> TokenStream {
    quote!(core::array::from_fn)
}
