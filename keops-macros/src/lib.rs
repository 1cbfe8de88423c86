//! The `keops!` macro. Thin by design: the compiler library (`keops-ir`) parses, checks,
//! differentiates and generates; this crate only hands it the tokens.

use proc_macro::TokenStream;

/// Compiles a KeOps formula into a typed, differentiated CPU kernel at compile time.
/// See the `keops` crate for the documentation and examples.
#[proc_macro]
pub fn keops(input: TokenStream) -> TokenStream {
    keops_ir::emit::expand::expand(input.into(), "::keops::__private::runtime").into()
}
