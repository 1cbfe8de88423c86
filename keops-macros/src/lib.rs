//! The `keops!` macro. Thin by design: the compiler library (`keops-ir`) parses, checks,
//! differentiates and generates (with `keops-gpu-kernels` for the PTX); this crate only
//! hands it the tokens.

use proc_macro::TokenStream;

/// Compiles a KeOps formula into typed, differentiated CPU kernels and GPU (PTX) kernels at
/// compile time.
/// See the `keops` crate for the documentation and examples.
#[proc_macro]
pub fn keops(input: TokenStream) -> TokenStream {
    keops_ir::emit::expand::expand_with(
        input.into(),
        "::keops::__private::runtime",
        Some(if cfg!(feature = "embed-ptx") {
            keops_gpu_kernels::module::EMBED
        } else {
            keops_gpu_kernels::module::DEFER
        }),
    )
    .into()
}
