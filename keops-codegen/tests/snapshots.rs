//! Snapshots of what the compiler produces for representative formulas: the lowered form,
//! the generated Rust (CPU kernels, and the whole `keops!` expansion for two kernels) and
//! the PTX. A change to generated code shows up here as a snapshot diff to review
//! (`INSTA_UPDATE=always cargo test --test snapshots` rewrites them; see insta's docs).

use keops_codegen::api::{ApiOptions, emit_api};
use keops_codegen::cpu::{RustOptions, emit_gather, emit_reduce};
use keops_codegen::generic::emit_generic;
use keops_codegen::gpu::GpuKernels;
use keops_codegen::paths::Runtime;
use keops_gpu_kernels::gather::compile_gather;
use keops_gpu_kernels::module::{compile_reduction, kernel_prefix};
use keops_gpu_kernels::scheme::KernelOptions;
use keops_ir::Program;
use keops_ir::lower::{Precision, SumMode, lower_reduction};
use keops_ir::program::Step;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use std::fmt::Write;

/// A representative formula: its name, text, and the argument whose gradient program is
/// compiled instead of the forward one.
struct Case {
    name: &'static str,
    text: &'static str,
    grad: Option<usize>,
}

const CASES: &[Case] = &[
    Case {
        name: "gaussian",
        text: "x_i: 3; y_j: 3; b_j: 1; g: 1; Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)",
        grad: None,
    },
    Case {
        name: "gaussian_grad_x",
        text: "x_i: 3; y_j: 3; b_j: 1; g: 1; Sum_j(Exp(-g * SqDist(x_i, y_j)) * b_j)",
        grad: Some(0),
    },
    Case {
        name: "logsumexp",
        text: "x_i: 3; y_j: 3; g: 1; LogSumExp_j(-g * SqDist(x_i, y_j))",
        grad: None,
    },
    Case {
        name: "logsumexp_weighted",
        text: "x_i: 2; y_j: 2; v_j: 2; LogSumExp_j(-SqDist(x_i, y_j), v_j)",
        grad: None,
    },
    Case {
        name: "softmax_attention",
        text: "q_i: 4; k_j: 4; v_j: 3; SumSoftMaxWeight_j(q_i | k_j, v_j)",
        grad: None,
    },
    Case {
        name: "argkmin",
        text: "x_i: 3; y_j: 3; ArgKMin_j(SqDist(x_i, y_j), 10)",
        grad: None,
    },
    Case {
        name: "min_argmin_vector",
        text: "x_i: 3; y_j: 3; Min_ArgMin_j(x_i - y_j)",
        grad: None,
    },
    Case {
        name: "kmin_grad_x",
        text: "x_i: 2; y_j: 2; KMin_j(SqDist(x_i, y_j), 3)",
        grad: Some(0),
    },
    Case {
        name: "sum_over_i",
        text: "x_i: 2; y_j: 2; a_i: 1; Sum_i(Exp(-SqDist(x_i, y_j)) * a_i)",
        grad: None,
    },
    Case {
        name: "generic_widths",
        text: "Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)",
        grad: None,
    },
    Case {
        name: "chunked_wide",
        text: "x_i: 3; y_j: 3; b_j: 80; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)",
        grad: None,
    },
    Case {
        name: "complex",
        text: "z_i: 2; w_j: 2; t_j: 1; Sum_j(ComplexMult(ComplexExp(z_i - w_j), ComplexExp1j(t_j)))",
        grad: None,
    },
];

fn program(c: &Case) -> Program {
    let p = Program::parse(c.text).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    match c.grad {
        Some(pos) => p.gradient_program(pos, "e").unwrap(),
        None => p,
    }
}

/// Rust code, formatted for reading.
fn pretty(code: TokenStream) -> String {
    let file: syn::File = syn::parse2(code.clone()).unwrap_or_else(|e| panic!("{e}\n{code}"));
    prettyplease::unparse(&file)
}

#[test]
fn lowered() {
    for c in CASES {
        let p = program(c);
        let mut out = format!("{p}\n");
        for step in &p.steps {
            if let Step::Reduce(r) = step {
                match lower_reduction(&p, r, SumMode::Plain) {
                    Ok(k) => writeln!(out, "{k}").unwrap(),
                    Err(e) => writeln!(out, "(not lowered: {e})").unwrap(),
                }
            }
        }
        insta::assert_snapshot!(format!("{}__lowered", c.name), out);
    }
}

#[test]
fn cpu_kernels() {
    for c in CASES {
        let p = program(c);
        let opts = RustOptions {
            runtime: Runtime::new(quote!(rt)),
            precision: Precision::F32,
            sum_mode: SumMode::Plain,
        };
        let symbolic = p.args.iter().any(|a| a.dim.as_known().is_none());
        let mut code = TokenStream::new();
        for (s, step) in p.steps.iter().enumerate() {
            let name = format!("K{s}");
            match step {
                Step::Reduce(r) if symbolic => {
                    let e = emit_generic(
                        &p,
                        r,
                        &name,
                        &["D0".into(), "D1".into(), "D2".into()],
                        &Runtime::new(quote!(rt)),
                        Precision::F32,
                    )
                    .unwrap();
                    code.extend(e.code);
                }
                Step::Reduce(r) => code.extend(emit_reduce(&p, r, &name, &opts).unwrap().code),
                Step::Gather(g) => code.extend(emit_gather(&p, g, &name, &opts).unwrap().code),
                _ => {}
            }
        }
        insta::assert_snapshot!(format!("{}__cpu_f32", c.name), pretty(code));
    }
}

#[test]
fn ptx() {
    for c in CASES.iter().filter(|c| c.name != "generic_widths") {
        let p = program(c);
        let opts = KernelOptions::default();
        let mut out = String::new();
        for (s, step) in p.steps.iter().enumerate() {
            match step {
                Step::Reduce(r) => {
                    let g =
                        compile_reduction(&p, r, Precision::F32, &opts, &kernel_prefix(s)).unwrap();
                    out.push_str(&g.ptx);
                }
                Step::Gather(g) => {
                    let (_, m) = compile_gather(&p, g, Precision::F32, &opts, s).unwrap();
                    out.push_str(&m.ptx);
                }
                _ => {}
            }
        }
        insta::assert_snapshot!(format!("{}__ptx_f32", c.name), out);
    }
}

#[test]
fn macro_expansion() {
    for (name, text) in [
        (
            "gaussian_1d",
            "x_i: 1; y_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)))",
        ),
        ("generic_widths", "Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)"),
    ] {
        let p = Program::parse(text).unwrap();
        let api = emit_api(
            &p,
            &ApiOptions {
                runtime: Runtime::new(quote!(rt)),
                name: Ident::new("K", Span::call_site()),
                vis: quote!(pub),
                attrs: TokenStream::new(),
                arg_spans: Vec::new(),
                gpu: Some(GpuKernels::AtFirstUse),
            },
        )
        .unwrap();
        insta::assert_snapshot!(format!("{name}__expansion"), pretty(api.code));
    }
}
