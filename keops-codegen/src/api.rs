//! The typed Rust API of a kernel: what the `keops!` macro expands to.
//!
//! For a checked program this writes a unit struct with an `eval` method (typed
//! arguments `impl Arg<T, D>`, typed result), a `grad_<arg>` method per argument (the
//! gradient of `<e, output>`, from the symbolic gradient program), and the CPU kernels of
//! every reduction step for f32 and f64. Widths left unknown by the formula become const
//! generic parameters `D0, D1, ...` of the methods and kernels, so rustc checks at the call
//! site that arrays which must have the same width do.

use crate::cpu::{RustOptions, emit_gather, emit_reduce};
use crate::generic::{dim_expr, emit_generic};
use crate::gpu::{GpuKernels, gather_kernels, reduction_kernels};
use keops_ir::dim::{Dim, SymId};
use keops_ir::error::{Error, ErrorKind, Result};
use keops_ir::graph::{Cat, NodeId, VarSource};
use keops_ir::lower::{KernelInput, Precision, SumMode};
use keops_ir::program::{Program, Step};
use std::collections::BTreeSet;
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
    /// The GPU kernels: when given, every reduction and gather step also gets a GPU step
    /// descriptor (with its PTX modules embedded when asked and every width is known) and
    /// runs on the backend the call's options choose; CPU kernels only otherwise.
    pub gpu: Option<GpuKernels>,
}

/// What a program body needs to describe its reduction steps to the GPU backend.
#[derive(Clone, Copy)]
struct GpuContext<'a> {
    mode: GpuKernels,
    /// The forward program's text.
    formula: &'a str,
    /// The gradient taken: argument position and cotangent name.
    grad: Option<(usize, &'a str)>,
}

impl GpuContext<'_> {
    /// The static GPU step descriptor `{kname}_GPU` of type `{rt}::gpu::{ty}`: its
    /// kernels, how to regenerate them, and the sources of its inputs in call order.
    fn step_static(
        &self,
        kname: &str,
        ty: &str,
        kernels: &str,
        step: usize,
        sources: &[VarSource],
        rt: &str,
    ) -> String {
        let grad = match self.grad {
            Some((pos, cot)) => format!("Some(({pos}, {cot:?}))"),
            None => "None".to_string(),
        };
        let sources: Vec<String> = sources
            .iter()
            .map(|s| match s {
                VarSource::Arg(a) => format!("{rt}::gpu::InputSource::Arg({a})"),
                VarSource::Buffer(k) => format!("{rt}::gpu::InputSource::Buffer({k})"),
                VarSource::Temp => format!("{rt}::gpu::InputSource::Arg(usize::MAX)"),
            })
            .collect();
        format!(
            "#[allow(non_upper_case_globals)]\nstatic {kname}_GPU: {rt}::gpu::{ty} = {rt}::gpu::{ty} {{ kernels: {kernels}, formula: {:?}, grad: {grad}, step: {step}, sources: &[{}] }};",
            self.formula,
            sources.join(", ")
        )
    }
}

/// Generated code.
#[derive(Clone, Debug)]
pub struct Api {
    /// Rust items: the kernel type, its methods and its kernels.
    pub code: String,
}

/// Lints that generated code may trip and that are not the user's concern.
const ALLOW: &str = "#[allow(unused_mut, unused_variables, unused_assignments, unused_parens, unused_braces, clippy::all)]";

fn cat_code(cats: &[Cat]) -> u8 {
    match cats {
        [Cat::I] => 0,
        [Cat::J] => 1,
        [Cat::I, Cat::J] | [Cat::J, Cat::I] => 3,
        _ => 2,
    }
}

fn rust_ident(name: &str) -> String {
    name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
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

/// A width as a Rust type-level expression: a number or one const generic.
fn width(d: &Dim, what: &str) -> Result<String> {
    if d.as_known().is_some() || d.as_sym().is_some() {
        Ok(dim_expr(d))
    } else {
        Err(Error::new(
            ErrorKind::Dimension,
            format!("{what} has the width {d}, which a Rust array type cannot express"),
        )
        .help("declare the widths of the variables involved (e.g. `x_i: 3`)"))
    }
}

/// Const generic parameters of a program: the symbols of its arguments' widths.
fn generics(p: &Program) -> Result<Vec<SymId>> {
    let mut syms = BTreeSet::new();
    for (k, a) in p.args.iter().enumerate() {
        let name = a.name.clone().unwrap_or_else(|| format!("argument {k}"));
        width(&a.dim, &format!("`{name}`"))?;
        syms.extend(a.dim.syms());
    }
    // Every other width must follow from these.
    let roots = p.roots();
    for n in p.graph.topo(&roots) {
        for s in p.graph.dim(n).syms() {
            if !syms.contains(&s) {
                return Err(Error::new(
                    ErrorKind::Dimension,
                    format!(
                        "a width of the formula ({}) does not follow from the arguments' widths",
                        p.graph.dim(n)
                    ),
                )
                .help("declare the widths of the variables (e.g. `A_i: 6; v_j: 2`)"));
            }
        }
    }
    Ok(syms.into_iter().collect())
}

/// Generates the API of a forward program.
pub fn emit_api(p: &Program, opts: &ApiOptions) -> Result<Api> {
    let canon;
    let p = if opts.gpu.is_some() {
        canon = p.canonical()?;
        &canon
    } else {
        p
    };
    let formula_text = p.to_string();
    let rt = &opts.runtime;
    let name = &opts.name;
    let vis = &opts.vis;
    let gens = generics(p)?;
    let gen_names: Vec<String> = gens.iter().map(|s| format!("D{}", s.0)).collect();
    let gen_decl: String = gen_names
        .iter()
        .map(|d| format!(", const {d}: usize"))
        .collect();
    let mut out = String::new();
    let mut kernels = String::new();
    let mut kernel_count = 0usize;

    let formula = escape_doc(&p.to_string());
    let doc = if opts.attrs.contains("doc") {
        format!("{}\n///\n/// Formula: `{formula}`.", opts.attrs)
    } else {
        format!("{}\n/// A keops-rs kernel: `{formula}`.", opts.attrs)
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
        .map(|a| width(&a.dim, "an argument"))
        .collect::<Result<_>>()?;
    let params: Vec<String> = arg_names
        .iter()
        .zip(&arg_widths)
        .map(|(n, w)| format!("{n}: impl {rt}::Arg<T, {w}>"))
        .collect();

    let _ = writeln!(out, "{ALLOW}\nimpl {name} {{");
    let _ = writeln!(
        out,
        "/// The formula, in the KeOps text form.\n{vis} const FORMULA: &'static str = {:?};",
        p.to_string()
    );
    let _ = writeln!(
        out,
        "/// The formula, in the KeOps text form (it parses back with `keops::Program::parse`).\n{vis} fn formula(&self) -> &'static str {{ Self::FORMULA }}"
    );

    // eval
    let (ret_ty, convert) = output_type(p)?;
    let gpu = opts.gpu.map(|mode| GpuContext {
        mode,
        formula: &formula_text,
        grad: None,
    });
    let body = program_body(
        p,
        &arg_names,
        &gen_names,
        &mut kernels,
        &mut kernel_count,
        opts,
        gpu,
    )?;
    let call_args = arg_names.join(", ");
    let gen_use: String = gen_names.iter().map(|d| format!(", {d}")).collect();
    let output_name = unique_name("output", &arg_names);
    let sig = Sig {
        rt,
        vis,
        gen_decl: &gen_decl,
        gen_use: &gen_use,
        output: &output_name,
    };
    sig.emit_runner(&mut out, "__keops_eval", &params, &body);
    let _ = writeln!(
        out,
        "/// Evaluates the reduction.\n{vis} fn eval<T: {rt}::KeopsFloat{gen_decl}>(&self, {}) -> {rt}::Result<{ret_ty}> {{\nself.eval_with::<T{gen_use}>(&Default::default(), {call_args})\n}}",
        params.join(", ")
    );
    let _ = writeln!(
        out,
        "/// Evaluates the reduction with options (the backend, f64 accumulation of f32 sums, fast math on the GPU).\n{vis} fn eval_with<T: {rt}::KeopsFloat{gen_decl}>(&self, options: &{rt}::Options, {}) -> {rt}::Result<{ret_ty}> {{\nuse {rt} as __rt;\nlet out = self.__keops_eval::<T{gen_use}>(options, None, {call_args})?;\nlet result = {convert};\nOk(result)\n}}",
        params.join(", ")
    );
    // The `_into` methods take rows of a flat width: generic kernels whose output width is
    // composite (`3 * D`, KMin of a vector) have none.
    let out_info = p.output_info();
    let flat = |d: &Dim| -> Option<Option<String>> {
        if d.is(0) {
            Some(None)
        } else {
            width(d, "the output").ok().map(Some)
        }
    };
    if let (Some(vw), Some(iw)) = (flat(&out_info.values), flat(&out_info.indices))
        && (vw.is_some() || iw.is_some())
    {
        let idx = unique_name("indices", &arg_names);
        sig.emit_into_methods(
            &mut out,
            &IntoMethods {
                method: "eval",
                runner: "__keops_eval",
                values: vw.as_deref(),
                indices: iw.as_deref().map(|iw| (idx.as_str(), iw)),
            },
            &params,
            &call_args,
        );
    }

    // gradients, one method per argument
    let cot = unique_name("cotangent", &arg_names);
    let cot_dim = if out_info.values.is(0) {
        out_info.indices.clone()
    } else {
        out_info.values.clone()
    };
    for (pos, a) in p.args.iter().enumerate() {
        let g = p.gradient_program(pos, &cot)?;
        if !gen_names.is_empty() && g.steps.iter().any(|s| matches!(s, Step::Gather(_))) {
            // Gradients of selections (Min/Max/KMin) are generated for declared widths only.
            continue;
        }
        let cot_w = width(&cot_dim, "the output")?;
        let mut names = arg_names.clone();
        names.push(cot.clone());
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
        let gpu = opts.gpu.map(|mode| GpuContext {
            mode,
            formula: &formula_text,
            grad: Some((pos, cot.as_str())),
        });
        let body = program_body(
            &g,
            &names,
            &gen_names,
            &mut kernels,
            &mut kernel_count,
            opts,
            gpu,
        )?;
        let an = &arg_names[pos];
        let runner = format!("__keops_grad_{an}");
        sig.emit_runner(&mut out, &runner, &gparams, &body);
        let _ = writeln!(
            out,
            "/// The gradient of `<{cot}, output>` with respect to `{an}`.\n{vis} fn grad_{an}<T: {rt}::KeopsFloat{gen_decl}>(&self, {}) -> {rt}::Result<{ty}> {{\nself.grad_{an}_with::<T{gen_use}>(&Default::default(), {call_args}, {cot})\n}}",
            gparams.join(", ")
        );
        let _ = writeln!(
            out,
            "/// The gradient of `<{cot}, output>` with respect to `{an}`, with options.\n{vis} fn grad_{an}_with<T: {rt}::KeopsFloat{gen_decl}>(&self, options: &{rt}::Options, {}) -> {rt}::Result<{ty}> {{\nuse {rt} as __rt;\nlet out = self.{runner}::<T{gen_use}>(options, None, {call_args}, {cot})?;\nlet result = {conv};\nOk(result)\n}}",
            gparams.join(", ")
        );
        sig.emit_into_methods(
            &mut out,
            &IntoMethods {
                method: &format!("grad_{an}"),
                runner: &runner,
                values: Some(w),
                indices: None,
            },
            &gparams,
            &format!("{call_args}, {cot}"),
        );
    }
    let _ = writeln!(out, "}}");
    out.push_str(&kernels);
    Ok(Api { code: out })
}

/// What the methods of a kernel share: paths, generics, the name of the output parameter.
struct Sig<'a> {
    rt: &'a str,
    vis: &'a str,
    gen_decl: &'a str,
    gen_use: &'a str,
    output: &'a str,
}

impl Sig<'_> {
    /// The private method running a program's steps (`body`), writing the last step in
    /// place into `__dest` when it can; the public methods convert or copy its output.
    fn emit_runner(&self, out: &mut String, name: &str, params: &[String], body: &str) {
        let Sig { rt, gen_decl, .. } = self;
        let _ = writeln!(
            out,
            "fn {name}<T: {rt}::KeopsFloat{gen_decl}>(&self, options: &{rt}::Options, mut __dest: Option<&mut {rt}::Dest<'_, T>>, {}) -> {rt}::Result<{rt}::ir::eval::Output<T>> {{\n{body}Ok(out)\n}}",
            params.join(", ")
        );
    }

    /// `{method}_into` and `{method}_into_with`: the result written into the caller's
    /// buffers (rows of values, `Out`; rows of selected indices, `OutIndices`) instead of
    /// new vectors.
    fn emit_into_methods(
        &self,
        out: &mut String,
        into: &IntoMethods<'_>,
        params: &[String],
        call_args: &str,
    ) {
        let Sig {
            rt,
            vis,
            gen_decl,
            gen_use,
            output,
        } = self;
        let IntoMethods { method, runner, .. } = into;
        // Buffer parameters, their names passed on, and what `_into_with` does with them.
        let (mut bufs, mut bufs_with, mut names) = (Vec::new(), Vec::new(), Vec::new());
        let (mut before, mut after, mut what) = (String::new(), String::new(), Vec::new());
        let mut dest = "None";
        if let Some(w) = into.values {
            bufs.push(format!("{output}: impl {rt}::Out<T, {w}>"));
            bufs_with.push(format!("mut {output}: impl {rt}::Out<T, {w}>"));
            names.push(output.to_string());
            before = format!("let mut __dest = {rt}::Out::<T, {w}>::dest(&mut {output})?;\n");
            dest = "Some(&mut __dest)";
            what.push(format!("`{output}` (rows of width {w}: `&mut Vec<[T; {w}]>`, `&mut [[T; {w}]]`, a `DeviceArray`, ...; a `DeviceArray` on the device the call runs on is written in place, with nothing copied back)"));
        }
        if let Some((idx, iw)) = into.indices {
            bufs.push(format!("{idx}: impl {rt}::OutIndices<{iw}>"));
            bufs_with.push(format!("{idx}: impl {rt}::OutIndices<{iw}>"));
            names.push(idx.to_string());
            after = format!("{rt}::out::write_indices(&out, {idx})?;\n");
            what.push(format!("`{idx}` (rows of {iw} indices: `&mut Vec<[usize; {iw}]>`, ...; `usize::MAX` where nothing was selected)"));
        }
        let finish = if into.values.is_some() {
            format!("{rt}::out::write_output(&out, __dest)")
        } else {
            "Ok(())".to_string()
        };
        let (what, names) = (what.join(" and "), names.join(", "));
        let (bufs, bufs_with) = (bufs.join(", "), bufs_with.join(", "));
        let _ = writeln!(
            out,
            "/// [`Self::{method}`] written into {what}, as many rows as the result.\n{vis} fn {method}_into<T: {rt}::KeopsFloat{gen_decl}>(&self, {bufs}, {}) -> {rt}::Result<()> {{\nself.{method}_into_with::<T{gen_use}>(&Default::default(), {names}, {call_args})\n}}",
            params.join(", ")
        );
        let _ = writeln!(
            out,
            "/// [`Self::{method}_into`] with options.\n{vis} fn {method}_into_with<T: {rt}::KeopsFloat{gen_decl}>(&self, options: &{rt}::Options, {bufs_with}, {}) -> {rt}::Result<()> {{\n{before}let out = self.{runner}::<T{gen_use}>(options, {dest}, {call_args})?;\n{after}{finish}\n}}",
            params.join(", ")
        );
    }
}

/// The `_into` methods of one result: the method they stand for, the private method that
/// runs the program, and the widths of the value and index buffers (with the index
/// buffer's parameter name).
struct IntoMethods<'a> {
    method: &'a str,
    runner: &'a str,
    values: Option<&'a str>,
    indices: Option<(&'a str, &'a str)>,
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
    let fdim = width(p.graph.dim(r.formula), "the formula")?;
    let rt = "__rt";
    let k = r.kind.k().unwrap_or(1);
    let f1 = p.graph.dim(r.formula).is(1);
    // Values (`T`, `value_*`) and indices (`usize`, `index_*`) are shaped alike: rows of K
    // (groups of K rows of the formula's width for a KMin of a vector), else rows of
    // `w`.
    let rows_of = |elem: &str, conv: &str, w: String| -> (String, String) {
        if r.kind.k().is_some() {
            if f1 {
                (
                    format!("Vec<[{elem}; {k}]>"),
                    format!("{rt}::args::{conv}_rows::<T, {k}>(&out)"),
                )
            } else {
                (
                    format!("Vec<[[{elem}; {fdim}]; {k}]>"),
                    format!("{rt}::args::{conv}_groups::<T, {k}, {fdim}>(&out)"),
                )
            }
        } else {
            (
                format!("Vec<[{elem}; {w}]>"),
                format!("{rt}::args::{conv}_rows::<T, {w}>(&out)"),
            )
        }
    };
    let values = || -> Result<(String, String)> {
        // The output's width matters (and must be expressible) only without K.
        let w = match r.kind.k() {
            Some(_) => String::new(),
            None => width(&out.values, "the output")?,
        };
        Ok(rows_of("T", "value", w))
    };
    let indices = || rows_of("usize", "index", fdim.clone());
    Ok(match (r.kind.has_values(), r.kind.has_indices()) {
        (true, false) => values()?,
        (false, _) => indices(),
        (true, true) => {
            let (vt, vc) = values()?;
            let (it, ic) = indices();
            (format!("({vt}, {it})"), format!("({vc}, {ic})"))
        }
    })
}

/// Straight-line code running every step of a program; leaves the result in `out`.
fn program_body(
    p: &Program,
    arg_names: &[String],
    gens: &[String],
    kernels: &mut String,
    count: &mut usize,
    opts: &ApiOptions,
    gpu: Option<GpuContext<'_>>,
) -> Result<String> {
    let rt = &opts.runtime;
    let symbolic = !gens.is_empty();
    let mut b = String::new();
    let _ = writeln!(b, "use {rt} as __rt;");
    for (k, n) in arg_names.iter().enumerate() {
        let w = width(&p.args[k].dim, "an argument")?;
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
    let info = p.output_info();
    let out_rows = match info.rows {
        Cat::I => "m",
        Cat::J => "n",
        _ => "1",
    };
    let _ = writeln!(
        b,
        "if let Some(d) = __dest.as_deref() {{ d.expect({out_rows}, {})?; }}",
        dim_expr(&info.values)
    );
    let gen_args = gens.join(", ");
    let gen_params: String = gens
        .iter()
        .map(|d| format!("const {d}: usize"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut result = String::new();
    let widths: Vec<String> = arg_names.iter().map(|n| format!("{n}.cols")).collect();
    for (step_index, step) in p.steps.iter().enumerate() {
        let buf = format!("b{}", step.out());
        match step {
            Step::Reduce(r) => {
                let kname = format!("__{}_kernel{}", opts.name, *count);
                *count += 1;
                let mut inputs: Vec<KernelInput> = Vec::new();
                for prec in [Precision::F32, Precision::F64] {
                    if symbolic {
                        let e = emit_generic(p, r, &kname, gens, rt, prec)?;
                        let _ = writeln!(kernels, "{ALLOW}\n{}", e.code);
                        inputs = e.inputs;
                    } else {
                        let ro = RustOptions {
                            runtime: rt.clone(),
                            precision: prec,
                            sum_mode: SumMode::Plain,
                        };
                        let e = emit_reduce(p, r, &kname, &ro)?;
                        let _ = writeln!(kernels, "{ALLOW}\n{}", e.code);
                        inputs = e.inputs;
                    }
                }
                let instance = if symbolic {
                    let _ = writeln!(
                        kernels,
                        "#[allow(non_camel_case_types)]\nstruct {kname}<{gen_params}>;"
                    );
                    format!("{kname}::<{gen_args}>")
                } else {
                    let _ = writeln!(kernels, "#[allow(non_camel_case_types)]\nstruct {kname};");
                    kname.clone()
                };
                let (outer, inner, params) = bind_inputs(&inputs, r.out_rows, arg_names);
                let (n_outer, n_inner) = if r.out_rows == Cat::I {
                    ("m", "n")
                } else {
                    ("n", "m")
                };
                let cpu = format!(
                    "T::cpu_reduce(&{instance}, &__rt::cpu::ReduceArgs {{ outer: vec![{outer}], inner: vec![{inner}], params: vec![{params}], n_outer: {n_outer}, n_inner: {n_inner} }}, &options.cpu_options())?"
                );
                match gpu {
                    None => {
                        let _ = writeln!(b, "let {buf} = {cpu};");
                    }
                    Some(g) => {
                        let sources = step_sources(p, r);
                        let kernels_expr = if symbolic {
                            "None".to_string()
                        } else {
                            reduction_kernels(p, r, step_index, rt, g.mode)?
                        };
                        let _ = writeln!(
                            kernels,
                            "{}",
                            g.step_static(
                                &kname,
                                "GpuStep",
                                &kernels_expr,
                                step_index,
                                &sources,
                                rt
                            )
                        );
                        let views: Vec<String> =
                            sources.iter().map(|s| source_view(*s, arg_names)).collect();
                        // The last step may write a device array in place.
                        let last = step_index + 1 == p.steps.len() && step.out() == p.output;
                        let (func, dest) = if last {
                            ("reduce_step_into", ", __dest.as_deref_mut()")
                        } else {
                            ("reduce_step", "")
                        };
                        let _ = writeln!(
                            b,
                            "let {buf} = match __rt::gpu::{func}::<T>(&__rt::gpu::StepCall {{ step: &{kname}_GPU, widths: &[{}], inputs: &[{}], m, n }}, options{dest})? {{ Some(out) => out, None => {cpu} }};",
                            widths.join(", "),
                            views.join(", ")
                        );
                    }
                }
            }
            Step::Gather(ga) => {
                let kname = format!("__{}_kernel{}", opts.name, *count);
                *count += 1;
                let mut inputs: Vec<KernelInput> = Vec::new();
                for prec in [Precision::F32, Precision::F64] {
                    let ro = RustOptions {
                        runtime: rt.clone(),
                        precision: prec,
                        sum_mode: SumMode::Plain,
                    };
                    let e = emit_gather(p, ga, &kname, &ro)?;
                    let _ = writeln!(kernels, "{ALLOW}\n{}", e.code);
                    inputs = e.inputs;
                }
                let _ = writeln!(kernels, "#[allow(non_camel_case_types)]\nstruct {kname};");
                let (mut owner, mut other, mut params) = (Vec::new(), Vec::new(), Vec::new());
                for input in inputs.iter().filter(|i| i.var != ga.slot_var) {
                    let v = source_view(input.source, arg_names);
                    match input.cat {
                        Cat::P => params.push(v),
                        c if c == ga.owner => owner.push(v),
                        _ => other.push(v),
                    }
                }
                let weights: Vec<String> = ga
                    .weight
                    .iter()
                    .map(|w| {
                        format!(
                            "({}, {})",
                            source_view(w.source, arg_names),
                            w.cat == Cat::P
                        )
                    })
                    .collect();
                let (n_owner, n_other) = if ga.owner == Cat::I {
                    ("m", "n")
                } else {
                    ("n", "m")
                };
                let cpu = format!(
                    "T::cpu_gather(&{kname}, &__rt::gather::GatherArgs {{ owner: vec![{}], other: vec![{}], params: vec![{}], indices: &b{}, weights: vec![{}], n_owner: {n_owner}, n_other: {n_other}, to_owner: {} }})?",
                    owner.join(", "),
                    other.join(", "),
                    params.join(", "),
                    ga.indices,
                    weights.join(", "),
                    ga.out_rows == ga.owner
                );
                match gpu {
                    Some(g) if !symbolic => {
                        let kernels_expr = gather_kernels(p, ga, step_index, rt, g.mode)?;
                        let sources: Vec<VarSource> = inputs
                            .iter()
                            .filter(|i| i.var != ga.slot_var)
                            .map(|i| i.source)
                            .collect();
                        let _ = writeln!(
                            kernels,
                            "{}",
                            g.step_static(
                                &kname,
                                "GpuGatherStep",
                                &kernels_expr,
                                step_index,
                                &sources,
                                rt
                            )
                        );
                        let views: Vec<String> =
                            sources.iter().map(|s| source_view(*s, arg_names)).collect();
                        let _ = writeln!(
                            b,
                            "let {buf} = match __rt::gpu::gather_step::<T>(&__rt::gpu::GatherCall {{ step: &{kname}_GPU, widths: &[{}], inputs: &[{}], indices: &b{}, weights: &[{}], m, n }}, options)? {{ Some(out) => out, None => {cpu} }};",
                            widths.join(", "),
                            views.join(", "),
                            ga.indices,
                            weights.join(", "),
                        );
                    }
                    _ => {
                        let _ = writeln!(b, "let {buf} = {cpu};");
                    }
                }
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
                let w = dim_expr(&info.values);
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

/// Sources of a reduction step's inputs, in the order of the lowered kernel's inputs.
fn step_sources(p: &Program, r: &keops_ir::program::Reduce) -> Vec<VarSource> {
    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
    p.graph
        .vars_of(&roots)
        .into_iter()
        .map(|v| p.graph.var(v).source)
        .collect()
}

/// The view expression of a data source.
fn source_view(source: VarSource, arg_names: &[String]) -> String {
    match source {
        VarSource::Arg(k) => arg_names[k].clone(),
        VarSource::Buffer(k) => format!("__rt::args::buffer_view(&b{k})?"),
        VarSource::Temp => {
            "__rt::View { data: &[], rows: 0, cols: 0, row_stride: 0, col_stride: 0, resident: None }".to_string()
        }
    }
}

/// View expressions of a kernel's inputs, by kind (output-indexed, reduced, parameters).
fn bind_inputs(
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
                "__rt::View { data: &[], rows: 0, cols: 0, row_stride: 0, col_stride: 0, resident: None }"
                    .to_string()
            }
        };
        match input.cat {
            Cat::P => q.push(v),
            c if c == out_rows => o.push(v),
            _ => i.push(v),
        }
    }
    (o.join(", "), i.join(", "), q.join(", "))
}
