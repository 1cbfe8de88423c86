//! Prints the Rust code the `keops!` macro generates for a formula (for inspection):
//! `cargo run -p keops-codegen --example show_kernel -- "x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))"`
use keops_codegen::api::{ApiOptions, emit_api};
fn main() {
    let text = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))".into());
    let p = keops_ir::Program::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let api = emit_api(
        &p,
        &ApiOptions {
            runtime: "rt".into(),
            name: "K".into(),
            vis: "pub".into(),
            attrs: String::new(),
            gpu: None,
        },
    )
    .unwrap();
    println!("{}", api.code);
}
