//! Prints the Rust code the `keops!` macro generates for a formula (for inspection),
//! formatted with `prettyplease`:
//! `cargo run -p keops-codegen --example show_kernel -- "x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))"`
use keops_codegen::api::{ApiOptions, emit_api};
use keops_codegen::paths::Runtime;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

fn main() {
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))".into());
    let p = keops_ir::Program::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let api = emit_api(
        &p,
        &ApiOptions {
            runtime: Runtime::new(quote!(rt)),
            name: Ident::new("K", Span::call_site()),
            vis: quote!(pub),
            attrs: TokenStream::new(),
            arg_spans: Vec::new(),
            gpu: None,
        },
    )
    .unwrap();
    let file: syn::File = syn::parse2(api.code).expect("generated code parses");
    println!("{}", prettyplease::unparse(&file));
}
