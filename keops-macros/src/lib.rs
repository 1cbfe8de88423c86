//! The `keops!` macro. Thin by design: the code generator (`keops-codegen`, over the
//! compiler library `keops-ir` and the PTX generator `keops-gpu-kernels`) parses, checks,
//! differentiates and generates; this crate only hands it the tokens.

use proc_macro::TokenStream;

/// Compiles a KeOps formula into typed, differentiated CPU kernels and GPU (PTX) kernels at
/// compile time.
/// See the `keops` crate for the documentation and examples.
#[proc_macro]
pub fn keops(input: TokenStream) -> TokenStream {
    keops_codegen::expand::expand_with(
        input.into(),
        &keops_codegen::paths::Runtime::keops(),
        Some(if cfg!(feature = "embed-ptx") {
            keops_codegen::gpu::GpuKernels::Embedded
        } else {
            keops_codegen::gpu::GpuKernels::AtFirstUse
        }),
    )
    .into()
}
