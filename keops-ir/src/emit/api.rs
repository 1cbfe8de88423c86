//! The typed Rust API of a kernel: what the `keops!` macro expands to.
//!
//! For a checked program this writes a unit struct with an `eval` method (typed
//! arguments `impl Arg<T, D>`, typed result), a `grad_<arg>` method per argument (the
//! gradient of `<e, output>`, from the symbolic gradient program), and the CPU kernels of
//! every reduction step for f32 and f64. Widths left unknown by the formula become const
//! generic parameters of the methods, so rustc checks at the call site that arrays which
//! must have the same width do.

use super::rust::{RustOptions, emit_reduce};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Cat, VarSource};
use crate::lower::{KernelInput, Precision, SumMode};
use crate::program::{Program, Step};
use std::fmt::Write;

/// What to generate.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Path of the runtime crate in generated code.
    pub runtime: String,
    /// Name of the kernel type.
    pub name: String,
    /// Visibility of the type and methods (`""`, `"pub"`, `"pub(crate)"`).
    pub vis: String,
    /// Attributes for the type (the user's doc comment), as Rust source.
    pub attrs: String,
}

/// Generated code and what it exposes.
#[derive(Clone, Debug)]
pub struct Api {
    /// Rust items: the kernel type, its methods and its kernels.
    pub code: String,
}

fn cat_code(cats: &[Cat]) -> u8 {
    match cats {
        [Cat::I] => 0,
        [Cat::J] => 1,
        [Cat::I, Cat::J] | [Cat::J, Cat::I] => 3,
        _ => 2,
    }
}

fn width(_p: &Program, d: &crate::dim::Dim, what: &str) -> Result<String> {
    d.as_known().map(|n| n.to_string()).ok_or_else(|| {
        Error::new(
            ErrorKind::Dimension,
            format!(
                "{what} has the symbolic width {}; the CPU code generator needs every width",
                d
            ),
        )
        .help("declare the widths of the variables, e.g. `x_i: 3`")
    })
}

fn rust_ident(name: &str) -> String {
    name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
}

/// Generates the API of a forward program.
pub fn emit_api(p: &Program, opts: &ApiOptions) -> Result<Api> {
    let rt = &opts.runtime;
    let name = &opts.name;
    let vis = &opts.vis;
    let mut out = String::new();
    let mut kernels = String::new();
    let mut kernel_count = 0usize;

    let doc = if opts.attrs.contains("doc") {
        // The user's doc comment, then the formula.
        format!(
            "{}\n///\n/// Formula: `{}`.",
            opts.attrs,
            escape_doc(&p.to_string())
        )
    } else {
        format!(
            "{}\n/// A keops-rs kernel: `{}`.",
            opts.attrs,
            escape_doc(&p.to_string())
        )
    };
    let _ = writeln!(
        out,
        "#[allow(non_camel_case_types)]\n#[derive(Copy, Clone, Debug, Default)]\n{doc}\n{vis} struct {name};"
    );
    let arg_names: Vec<String> = p
        .args
        .iter()
        .enumerate()
        .map(|(k, a)| {
            a.name
                .as_deref()
                .map(rust_ident)
                .unwrap_or_else(|| format!("arg{k}"))
        })
        .collect();
    let arg_widths: Vec<String> = p
        .args
        .iter()
        .map(|a| width(p, &a.dim, "an argument"))
        .collect::<Result<_>>()?;

    // eval
    let (ret_ty, convert) = output_type(p)?;
    let _ = writeln!(out, "impl {name} {{");
    let _ = writeln!(
        out,
        "/// The formula, in the KeOps text form.\n{vis} const FORMULA: &'static str = {:?};",
        p.to_string()
    );
    let _ = writeln!(
        out,
        "/// The formula, in the KeOps text form (it parses back with `keops::Program::parse`).\n{vis} fn formula(&self) -> &'static str {{ Self::FORMULA }}"
    );
    let params: Vec<String> = arg_names
        .iter()
        .zip(&arg_widths)
        .map(|(n, w)| format!("{n}: impl {rt}::Arg<T, {w}>"))
        .collect();
    let _ = writeln!(
        out,
        "/// Evaluates the reduction.\n{vis} fn eval<T: {rt}::KeopsFloat>(&self, {}) -> {rt}::Result<{ret_ty}> {{",
        params.join(", ")
    );
    let body = program_body(p, &arg_names, &mut kernels, &mut kernel_count, opts)?;
    let _ = writeln!(out, "{body}let result = {convert};\nOk(result)\n}}");

    // gradients
    let cot = unique_name("cotangent", &arg_names);
    let differentiable = p.output_info().values.as_known().is_some_and(|v| v > 0);
    for (pos, a) in p.args.iter().enumerate() {
        if !differentiable {
            break;
        }
        let g = gradient_program(p, pos, &cot)?;
        if g.steps.iter().any(|s| matches!(s, Step::Gather(_))) {
            // Selections (Min/Max/KMin) need the gather kernels, not generated for the CPU yet.
            continue;
        }
        let mut names = arg_names.clone();
        names.push(cot.clone());
        let out_info = p.output_info();
        let cot_w = width(p, &out_info.values, "the output")?;
        let mut gparams = params.clone();
        gparams.push(format!("{cot}: impl {rt}::Arg<T, {cot_w}>"));
        let w = &arg_widths[pos];
        let (ty, conv) = if a.rows() == Cat::P {
            (
                format!("[T; {w}]"),
                format!(
                    "{rt}::args::value_rows::<T, {w}>(&out).into_iter().next().unwrap_or([T::zero(); {w}])"
                ),
            )
        } else {
            (
                format!("Vec<[T; {w}]>"),
                format!("{rt}::args::value_rows::<T, {w}>(&out)"),
            )
        };
        let body = program_body(&g, &names, &mut kernels, &mut kernel_count, opts)?;
        let _ = writeln!(
            out,
            "/// The gradient of `<{cot}, output>` with respect to `{}`.\n{vis} fn grad_{}<T: {rt}::KeopsFloat>(&self, {}) -> {rt}::Result<{ty}> {{\n{body}let result = {conv};\nOk(result)\n}}",
            arg_names[pos],
            arg_names[pos],
            gparams.join(", ")
        );
    }
    let _ = writeln!(out, "}}");
    out.push_str(&kernels);
    Ok(Api { code: out })
}

fn escape_doc(s: &str) -> String {
    s.replace('`', "'")
}

fn unique_name(base: &str, taken: &[String]) -> String {
    let mut n = base.to_string();
    while taken.contains(&n) {
        n.push('_');
    }
    n
}

/// The gradient program of argument `pos`, simplified and instantiated.
pub fn gradient_program(p: &Program, pos: usize, cot: &str) -> Result<Program> {
    let mut g = p.grad(pos, cot)?;
    g.simplify()?;
    let widths: Vec<usize> = g
        .args
        .iter()
        .map(|a| a.dim.as_known().unwrap_or(0))
        .collect();
    g.instantiate(&widths)
}

/// Result type and conversion of the forward output.
fn output_type(p: &Program) -> Result<(String, String)> {
    let Some(Step::Reduce(r)) = p.steps.iter().find(|s| s.out() == p.output) else {
        return Err(Error::new(
            ErrorKind::Reduction,
            "the program has no reduction output",
        ));
    };
    let out = p.output_info();
    let fdim = width(p, p.graph.dim(r.formula), "the formula")?;
    let v = width(p, &out.values, "the output")?;
    let rt = "__rt";
    let k = r.kind.k().unwrap_or(1);
    let f1 = fdim == "1";
    let values = |o: &str| {
        if r.kind.k().is_some() {
            if f1 {
                (
                    format!("Vec<[T; {k}]>"),
                    format!("{rt}::args::value_rows::<T, {k}>(&{o})"),
                )
            } else {
                (
                    format!("Vec<[[T; {fdim}]; {k}]>"),
                    format!("{rt}::args::value_groups::<T, {k}, {fdim}>(&{o})"),
                )
            }
        } else {
            (
                format!("Vec<[T; {v}]>"),
                format!("{rt}::args::value_rows::<T, {v}>(&{o})"),
            )
        }
    };
    let indices = |o: &str| {
        if r.kind.k().is_some() {
            if f1 {
                (
                    format!("Vec<[usize; {k}]>"),
                    format!("{rt}::args::index_rows::<T, {k}>(&{o})"),
                )
            } else {
                (
                    format!("Vec<[[usize; {fdim}]; {k}]>"),
                    format!("{rt}::args::index_groups::<T, {k}, {fdim}>(&{o})"),
                )
            }
        } else {
            (
                format!("Vec<[usize; {fdim}]>"),
                format!("{rt}::args::index_rows::<T, {fdim}>(&{o})"),
            )
        }
    };
    Ok(match (r.kind.has_values(), r.kind.has_indices()) {
        (true, false) => values("out"),
        (false, _) => indices("out"),
        (true, true) => {
            let (vt, vc) = values("out");
            let (it, ic) = indices("out");
            (format!("({vt}, {it})"), format!("({vc}, {ic})"))
        }
    })
}

/// Straight-line code running every step of a program; leaves the result in `out`.
fn program_body(
    p: &Program,
    arg_names: &[String],
    kernels: &mut String,
    count: &mut usize,
    opts: &ApiOptions,
) -> Result<String> {
    let rt = &opts.runtime;
    let mut b = String::new();
    let _ = writeln!(
        b,
        "#[allow(unused_imports)] use {rt} as __rt;\nuse __rt::Arg as _;"
    );
    for (k, n) in arg_names.iter().enumerate() {
        let w = p.args[k].dim.as_known().unwrap_or(0);
        let _ = writeln!(b, "let {n} = __rt::Arg::<T, {w}>::view(&{n})?;");
    }
    let views: Vec<String> = arg_names
        .iter()
        .zip(&p.args)
        .map(|(n, a)| format!("({n:?}, {}u8, &{n})", cat_code(&a.cats)))
        .collect();
    let _ = writeln!(
        b,
        "let (m, n) = __rt::args::sizes(&[{}], None, None)?;",
        views.join(", ")
    );
    let _ = writeln!(b, "let options = __rt::cpu::CpuOptions::default();");
    let mut result = String::new();
    for step in &p.steps {
        let buf = format!("b{}", step.out());
        match step {
            Step::Reduce(r) => {
                let kname = format!("__{}_kernel{}", opts.name, *count);
                *count += 1;
                let mut inputs: Vec<KernelInput> = Vec::new();
                for prec in [Precision::F32, Precision::F64] {
                    let ro = RustOptions {
                        runtime: rt.clone(),
                        precision: prec,
                        sum_mode: SumMode::Plain,
                    };
                    let e = emit_reduce(p, r, &kname, &ro)?;
                    kernels.push_str(&e.code);
                    inputs = e.inputs;
                }
                let _ = writeln!(kernels, "#[allow(non_camel_case_types)]\nstruct {kname};");
                let (outer, inner, params) = bind_inputs(p, &inputs, r.out_rows, arg_names);
                let (n_outer, n_inner) = if r.out_rows == Cat::I {
                    ("m", "n")
                } else {
                    ("n", "m")
                };
                let _ = writeln!(
                    b,
                    "let {buf} = T::cpu_reduce(&{kname}, &__rt::cpu::ReduceArgs {{ outer: vec![{outer}], inner: vec![{inner}], params: vec![{params}], n_outer: {n_outer}, n_inner: {n_inner} }}, &options)?;"
                );
            }
            Step::Gather(_) => {
                return Err(Error::new(
                    ErrorKind::Limit,
                    "gradients of Min/Max/KMin reductions are not yet compiled for the CPU",
                )
                .help("use the run-time API (reference evaluator) for these gradients"));
            }
            Step::SumRows { src, .. } => {
                let _ = writeln!(b, "let {buf} = __rt::args::sum_rows(&b{src});");
            }
            Step::Add { a, b: c, .. } => {
                let _ = writeln!(b, "let {buf} = __rt::args::add(&b{a}, &b{c});");
            }
            Step::Fill { value, out } => {
                let info = &p.bufs[*out];
                let rows = match info.rows {
                    Cat::I => "m",
                    Cat::J => "n",
                    _ => "1",
                };
                let w = info.values.as_known().unwrap_or(0);
                let _ = writeln!(
                    b,
                    "let {buf} = __rt::args::fill::<T>({rows}, {w}, {value:?});"
                );
            }
        }
        result = buf;
    }
    let _ = writeln!(b, "let out = {result};");
    Ok(b)
}

/// View expressions of a kernel's inputs, by kind (output-indexed, reduced, parameters).
fn bind_inputs(
    p: &Program,
    inputs: &[KernelInput],
    out_rows: Cat,
    arg_names: &[String],
) -> (String, String, String) {
    let (mut o, mut i, mut q) = (Vec::new(), Vec::new(), Vec::new());
    for input in inputs {
        let v = match input.source {
            VarSource::Arg(k) => arg_names[k].clone(),
            VarSource::Buffer(k) => format!("__rt::args::buffer_view(&b{k})?"),
            VarSource::Temp => {
                "__rt::View { data: &[], rows: 0, cols: 0, row_stride: 0, col_stride: 0 }"
                    .to_string()
            }
        };
        match input.cat {
            Cat::P => q.push(v),
            c if c == out_rows => o.push(v),
            _ => i.push(v),
        }
    }
    let _ = p;
    (o.join(", "), i.join(", "), q.join(", "))
}
