//! The typed Rust API of a kernel: what the `keops!` macro expands to.
//!
//! For a checked program this writes a unit struct with an `eval` method (typed
//! arguments `impl Arg<T, D>`, typed result), a `grad_<arg>` method per argument (the
//! gradient of `<e, output>`, from the symbolic gradient program), and the CPU kernels of
//! every reduction step for f32 and f64. Widths left unknown by the formula become const
//! generic parameters `D0, D1, ...` of the methods and kernels, so rustc checks at the call
//! site that arrays which must have the same width do.
//!
//! The kernel type's name, the methods' argument names and the `grad_<arg>` methods carry
//! the spans the caller gives ([`ApiOptions::name`], [`ApiOptions::arg_spans`]), so that
//! the compiler's errors about them point at the user's tokens; everything else is at the
//! call site.

use crate::cpu::{RustOptions, emit_gather, emit_reduce};
use crate::generic::{dim_expr, emit_generic};
use crate::gpu::{GpuKernels, gather_kernels, reduction_kernels};
use crate::paths::Runtime;
use crate::tokens::{doc, float_debug, ident, num};
use keops_ir::dim::{Dim, SymId};
use keops_ir::error::{Error, ErrorKind, Result};
use keops_ir::graph::{Cat, NodeId, VarSource};
use keops_ir::lower::{KernelInput, Precision, SumMode};
use keops_ir::program::{Program, Step};
use proc_macro2::{Delimiter, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use std::collections::BTreeSet;

/// What to generate.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// The runtime crate in generated code.
    pub runtime: Runtime,
    /// Name of the kernel type, with the span errors about the type point at (the user's
    /// token in the macro).
    pub name: Ident,
    /// Visibility of the type and methods (nothing, `pub`, `pub(crate)`, ...).
    pub vis: TokenStream,
    /// Attributes for the type (the user's doc comment).
    pub attrs: TokenStream,
    /// Where each argument is written, by position: the span of its name in the methods'
    /// parameter lists and of its `grad_<arg>` methods (the call site for arguments
    /// beyond the list).
    pub arg_spans: Vec<Span>,
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
    /// The static GPU step descriptor `{kname}_GPU` of type `ty` (the runtime's `GpuStep`
    /// or `GpuGatherStep`): its kernels, how to regenerate them, and the sources of its
    /// inputs in call order.
    fn step_static(
        &self,
        kname: &str,
        ty: &TokenStream,
        kernels: &TokenStream,
        step: usize,
        sources: &[VarSource],
        rt: &Runtime,
    ) -> TokenStream {
        let grad = match self.grad {
            Some((pos, cot)) => {
                let (pos, cot) = (num(pos), Literal::string(cot));
                quote!(Some((#pos, #cot)))
            }
            None => quote!(None),
        };
        let input_source = rt.input_source();
        let sources = sources.iter().map(|s| match s {
            VarSource::Arg(a) => {
                let a = num(*a);
                quote!(#input_source::Arg(#a))
            }
            VarSource::Buffer(k) => {
                let k = num(*k);
                quote!(#input_source::Buffer(#k))
            }
            VarSource::Temp => quote!(#input_source::Arg(usize::MAX)),
        });
        let (name, formula, step) = (
            format_ident!("{}_GPU", kname),
            Literal::string(self.formula),
            num(step),
        );
        quote! {
            #[allow(non_upper_case_globals)]
            static #name: #ty = #ty { kernels: #kernels, formula: #formula, grad: #grad, step: #step, sources: &[#(#sources),*] };
        }
    }
}

/// Generated code.
#[derive(Clone, Debug)]
pub struct Api {
    /// Rust items: the kernel type, its methods and its kernels.
    pub code: TokenStream,
}

/// Lints that generated code may trip and that are not the user's concern.
fn allow() -> TokenStream {
    quote!(#[allow(unused_mut, unused_variables, unused_assignments, unused_parens, unused_braces, clippy::all)])
}

/// Whether attributes include a doc comment (`#[doc = ...]`).
fn has_doc(attrs: &TokenStream) -> bool {
    attrs.clone().into_iter().any(|t| match t {
        TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket => {
            matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
        }
        _ => false,
    })
}

/// `m`, `n` or `1`: the rows of an output indexed by `cat`.
fn rows(cat: Cat) -> TokenStream {
    match cat {
        Cat::I => quote!(m),
        Cat::J => quote!(n),
        _ => num(1).into_token_stream(),
    }
}

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

/// A width as a Rust type-level expression: a number or one const generic, the latter in
/// braces (`{ D0 }`) so that a type of the caller's named `D0` is not taken for it.
fn width(d: &Dim, what: &str) -> Result<TokenStream> {
    if d.as_known().is_some() {
        Ok(dim_expr(d))
    } else if d.as_sym().is_some() {
        let e = dim_expr(d);
        Ok(quote!({ #e }))
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
    let gen_names: Vec<Ident> = gens.iter().map(|s| format_ident!("D{}", s.0)).collect();
    let gen_decl = quote!(#(, const #gen_names: usize)*);
    let mut out = TokenStream::new();
    let mut kernels = TokenStream::new();
    let mut kernel_count = 0usize;

    let formula = escape_doc(&p.to_string());
    let attrs = &opts.attrs;
    let doc_attrs = if has_doc(attrs) {
        let (blank, line) = (doc(""), doc(&format!(" Formula: `{formula}`.")));
        quote!(#attrs #blank #line)
    } else {
        let line = doc(&format!(" A keops-rs kernel: `{formula}`."));
        quote!(#attrs #line)
    };
    // The declaration at the name's span: errors about the type (a name taken by another
    // item) point at the user's token.
    let decl = quote_spanned!(name.span()=> #vis struct #name;);
    out.extend(quote! {
        #[allow(non_camel_case_types)]
        #[derive(Copy, Clone, Debug, Default)]
        #doc_attrs
        #decl
    });
    let arg_names: Vec<Ident> = p
        .args
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let n = a
                .name
                .as_deref()
                .map(rust_ident)
                .unwrap_or_else(|| format!("arg{k}"));
            let span = opts.arg_spans.get(k).copied();
            Ident::new(&n, span.unwrap_or_else(Span::call_site))
        })
        .collect();
    let taken: Vec<String> = arg_names.iter().map(|n| n.to_string()).collect();
    let arg_widths: Vec<TokenStream> = p
        .args
        .iter()
        .map(|a| width(&a.dim, "an argument"))
        .collect::<Result<_>>()?;
    let arg_trait = rt.arg_trait();
    let params: Vec<TokenStream> = arg_names
        .iter()
        .zip(&arg_widths)
        .map(|(n, w)| quote!(#n: impl #arg_trait<T, #w>))
        .collect();

    let mut methods = TokenStream::new();
    let (formula_lit, formula_doc, formula_fn_doc) = (
        Literal::string(&p.to_string()),
        doc(" The formula, in the KeOps text form."),
        doc(" The formula, in the KeOps text form (it parses back with `keops::Program::parse`)."),
    );
    methods.extend(quote! {
        #formula_doc
        #vis const FORMULA: &'static str = #formula_lit;
        #formula_fn_doc
        #vis fn formula(&self) -> &'static str { Self::FORMULA }
    });

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
    let call_args = quote!(#(#arg_names),*);
    // Braced generic arguments: `{ D0 }` is the const parameter even where the caller's
    // scope has a type named `D0`.
    let gen_use = quote!(#(, { #gen_names })*);
    let output_name = ident(&unique_name("output", &taken));
    let sig = Sig {
        rt,
        vis,
        gen_decl: &gen_decl,
        gen_use: &gen_use,
        output: &output_name,
    };
    let eval_runner = ident("__keops_eval");
    methods.extend(sig.emit_runner(&eval_runner, &params, &body));
    let (keops_float, result, options, use_rt) =
        (rt.keops_float(), rt.result(), rt.options(), rt.use_alias());
    let (eval_doc, eval_with_doc) = (
        doc(" Evaluates the reduction."),
        doc(
            " Evaluates the reduction with options (the backend, f64 accumulation of f32 sums, fast math on the GPU).",
        ),
    );
    methods.extend(quote! {
        #eval_doc
        #vis fn eval<T: #keops_float #gen_decl>(&self, #(#params),*) -> #result<#ret_ty> {
            self.eval_with::<T #gen_use>(&Default::default(), #call_args)
        }
        #eval_with_doc
        #vis fn eval_with<T: #keops_float #gen_decl>(&self, options: &#options, #(#params),*) -> #result<#ret_ty> {
            #use_rt
            let out = self.#eval_runner::<T #gen_use>(options, None, #call_args)?;
            let result = #convert;
            Ok(result)
        }
    });
    // The `_into` methods take rows of a flat width: generic kernels whose output width is
    // composite (`3 * D`, KMin of a vector) have none.
    let out_info = p.output_info();
    let flat = |d: &Dim| -> Option<Option<TokenStream>> {
        if d.is(0) {
            Some(None)
        } else {
            width(d, "the output").ok().map(Some)
        }
    };
    if let (Some(vw), Some(iw)) = (flat(&out_info.values), flat(&out_info.indices))
        && (vw.is_some() || iw.is_some())
    {
        let idx = ident(&unique_name("indices", &taken));
        methods.extend(sig.emit_into_methods(
            &IntoMethods {
                method: &ident("eval"),
                runner: &eval_runner,
                values: vw.as_ref(),
                indices: iw.as_ref().map(|iw| (&idx, iw)),
            },
            &params,
            &call_args,
        ));
    }

    // gradients, one method per argument
    let cot = ident(&unique_name("cotangent", &taken));
    let cot_name = cot.to_string();
    let cot_dim = if out_info.values.is(0) {
        out_info.indices.clone()
    } else {
        out_info.values.clone()
    };
    for (pos, a) in p.args.iter().enumerate() {
        let g = p.gradient_program(pos, &cot_name)?;
        if !gen_names.is_empty() && g.steps.iter().any(|s| matches!(s, Step::Gather(_))) {
            // Gradients of selections (Min/Max/KMin) are generated for declared widths only.
            continue;
        }
        let cot_w = width(&cot_dim, "the output")?;
        let mut names = arg_names.clone();
        names.push(cot.clone());
        let mut gparams = params.clone();
        gparams.push(quote!(#cot: impl #arg_trait<T, #cot_w>));
        let w = &arg_widths[pos];
        let value_rows = rt.value_rows();
        let (ty, conv) = if a.rows() == Cat::P {
            (
                quote!([T; #w]),
                quote!(#value_rows::<T, #w>(&out).into_iter().next().unwrap_or([T::zero(); #w])),
            )
        } else {
            (quote!(Vec<[T; #w]>), quote!(#value_rows::<T, #w>(&out)))
        };
        let gpu = opts.gpu.map(|mode| GpuContext {
            mode,
            formula: &formula_text,
            grad: Some((pos, cot_name.as_str())),
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
        // The public methods at the argument's name; the private runner at the call site.
        let runner = format_ident!("__keops_grad_{}", an.to_string());
        let grad = format_ident!("grad_{}", an, span = an.span());
        let grad_with = format_ident!("grad_{}_with", an, span = an.span());
        methods.extend(sig.emit_runner(&runner, &gparams, &body));
        let (grad_doc, grad_with_doc) = (
            doc(&format!(
                " The gradient of `<{cot}, output>` with respect to `{an}`."
            )),
            doc(&format!(
                " The gradient of `<{cot}, output>` with respect to `{an}`, with options."
            )),
        );
        methods.extend(quote! {
            #grad_doc
            #vis fn #grad<T: #keops_float #gen_decl>(&self, #(#gparams),*) -> #result<#ty> {
                self.#grad_with::<T #gen_use>(&Default::default(), #call_args, #cot)
            }
            #grad_with_doc
            #vis fn #grad_with<T: #keops_float #gen_decl>(&self, options: &#options, #(#gparams),*) -> #result<#ty> {
                #use_rt
                let out = self.#runner::<T #gen_use>(options, None, #call_args, #cot)?;
                let result = #conv;
                Ok(result)
            }
        });
        methods.extend(sig.emit_into_methods(
            &IntoMethods {
                method: &grad,
                runner: &runner,
                values: Some(w),
                indices: None,
            },
            &gparams,
            &quote!(#call_args, #cot),
        ));
    }
    let allow = allow();
    out.extend(quote!(#allow impl #name { #methods }));
    out.extend(kernels);
    Ok(Api { code: out })
}

/// What the methods of a kernel share: paths, generics, the name of the output parameter.
struct Sig<'a> {
    rt: &'a Runtime,
    vis: &'a TokenStream,
    gen_decl: &'a TokenStream,
    gen_use: &'a TokenStream,
    output: &'a Ident,
}

impl Sig<'_> {
    /// The private method running a program's steps (`body`), writing the last step in
    /// place into `__dest` when it can; the public methods convert or copy its output.
    fn emit_runner(&self, name: &Ident, params: &[TokenStream], body: &TokenStream) -> TokenStream {
        let Sig { rt, gen_decl, .. } = self;
        let (keops_float, options, dest, result, output) = (
            rt.keops_float(),
            rt.options(),
            rt.dest(),
            rt.result(),
            rt.eval_output(),
        );
        quote! {
            fn #name<T: #keops_float #gen_decl>(&self, options: &#options, mut __dest: Option<&mut #dest<'_, T>>, #(#params),*) -> #result<#output<T>> {
                #body
                Ok(out)
            }
        }
    }

    /// `{method}_into` and `{method}_into_with`: the result written into the caller's
    /// buffers (rows of values, `Out`; rows of selected indices, `OutIndices`) instead of
    /// new vectors.
    fn emit_into_methods(
        &self,
        into: &IntoMethods<'_>,
        params: &[TokenStream],
        call_args: &TokenStream,
    ) -> TokenStream {
        let Sig {
            rt,
            vis,
            gen_decl,
            gen_use,
            output,
        } = self;
        let IntoMethods { method, runner, .. } = into;
        let (keops_float, options, result, out_trait, out_indices) = (
            rt.keops_float(),
            rt.options(),
            rt.result(),
            rt.out_trait(),
            rt.out_indices(),
        );
        // Buffer parameters, their names passed on, and what `_into_with` does with them.
        let (mut bufs, mut bufs_with, mut names) = (Vec::new(), Vec::new(), Vec::new());
        let (mut before, mut after, mut what) =
            (TokenStream::new(), TokenStream::new(), Vec::new());
        let mut dest = quote!(None);
        if let Some(w) = into.values {
            bufs.push(quote!(#output: impl #out_trait<T, #w>));
            bufs_with.push(quote!(mut #output: impl #out_trait<T, #w>));
            names.push(Ident::clone(output));
            before = quote!(let mut __dest = #out_trait::<T, #w>::dest(&mut #output)?;);
            dest = quote!(Some(&mut __dest));
            what.push(format!("`{output}` (rows of width {w}: `&mut Vec<[T; {w}]>`, `&mut [[T; {w}]]`, a `DeviceArray`, ...; a `DeviceArray` on the device the call runs on is written in place, with nothing copied back)"));
        }
        if let Some((idx, iw)) = into.indices {
            bufs.push(quote!(#idx: impl #out_indices<#iw>));
            bufs_with.push(quote!(#idx: impl #out_indices<#iw>));
            names.push(idx.clone());
            let write_indices = rt.write_indices();
            after = quote!(#write_indices(&out, #idx)?;);
            what.push(format!("`{idx}` (rows of {iw} indices: `&mut Vec<[usize; {iw}]>`, ...; `usize::MAX` where nothing was selected)"));
        }
        let finish = if into.values.is_some() {
            let write_output = rt.write_output();
            quote!(#write_output(&out, __dest))
        } else {
            quote!(Ok(()))
        };
        let what = what.join(" and ");
        let into_doc = doc(&format!(
            " [`Self::{method}`] written into {what}, as many rows as the result."
        ));
        let into_with_doc = doc(&format!(" [`Self::{method}_into`] with options."));
        let method_into = format_ident!("{}_into", method, span = method.span());
        let method_into_with = format_ident!("{}_into_with", method, span = method.span());
        quote! {
            #into_doc
            #vis fn #method_into<T: #keops_float #gen_decl>(&self, #(#bufs),*, #(#params),*) -> #result<()> {
                self.#method_into_with::<T #gen_use>(&Default::default(), #(#names),*, #call_args)
            }
            #into_with_doc
            #vis fn #method_into_with<T: #keops_float #gen_decl>(&self, options: &#options, #(#bufs_with),*, #(#params),*) -> #result<()> {
                #before
                let out = self.#runner::<T #gen_use>(options, #dest, #call_args)?;
                #after
                #finish
            }
        }
    }
}

/// The `_into` methods of one result: the method they stand for, the private method that
/// runs the program, and the widths of the value and index buffers (with the index
/// buffer's parameter name).
struct IntoMethods<'a> {
    method: &'a Ident,
    runner: &'a Ident,
    values: Option<&'a TokenStream>,
    indices: Option<(&'a Ident, &'a TokenStream)>,
}

/// Result type and conversion of the forward output.
fn output_type(p: &Program) -> Result<(TokenStream, TokenStream)> {
    let Some(Step::Reduce(r)) = p.steps.iter().find(|s| s.out() == p.output) else {
        return Err(Error::new(
            ErrorKind::Reduction,
            "the program has no reduction output",
        ));
    };
    let out = p.output_info();
    let fdim = width(p.graph.dim(r.formula), "the formula")?;
    let rt = Runtime::alias();
    let k = num(r.kind.k().unwrap_or(1));
    let f1 = p.graph.dim(r.formula).is(1);
    // Values (`T`, `value_*`) and indices (`usize`, `index_*`) are shaped alike: rows of K
    // (groups of K rows of the formula's width for a KMin of a vector), else rows of
    // `w`.
    let rows_of = |elem: TokenStream, values: bool, w: TokenStream| -> (TokenStream, TokenStream) {
        let (conv_rows, conv_groups) = if values {
            (rt.value_rows(), rt.value_groups())
        } else {
            (rt.index_rows(), rt.index_groups())
        };
        if r.kind.k().is_some() {
            if f1 {
                (quote!(Vec<[#elem; #k]>), quote!(#conv_rows::<T, #k>(&out)))
            } else {
                (
                    quote!(Vec<[[#elem; #fdim]; #k]>),
                    quote!(#conv_groups::<T, #k, #fdim>(&out)),
                )
            }
        } else {
            (quote!(Vec<[#elem; #w]>), quote!(#conv_rows::<T, #w>(&out)))
        }
    };
    let values = || -> Result<(TokenStream, TokenStream)> {
        // The output's width matters (and must be expressible) only without K.
        let w = match r.kind.k() {
            Some(_) => TokenStream::new(),
            None => width(&out.values, "the output")?,
        };
        Ok(rows_of(quote!(T), true, w))
    };
    let indices = || rows_of(quote!(usize), false, fdim.clone());
    Ok(match (r.kind.has_values(), r.kind.has_indices()) {
        (true, false) => values()?,
        (false, _) => indices(),
        (true, true) => {
            let (vt, vc) = values()?;
            let (it, ic) = indices();
            (quote!((#vt, #it)), quote!((#vc, #ic)))
        }
    })
}

/// `b{k}`: the local holding buffer `k`.
fn buf(k: usize) -> Ident {
    format_ident!("b{}", k)
}

/// Straight-line code running every step of a program; leaves the result in `out`.
fn program_body(
    p: &Program,
    arg_names: &[Ident],
    gens: &[Ident],
    kernels: &mut TokenStream,
    count: &mut usize,
    opts: &ApiOptions,
    gpu: Option<GpuContext<'_>>,
) -> Result<TokenStream> {
    let rt = &opts.runtime;
    let local = Runtime::alias();
    let symbolic = !gens.is_empty();
    let gen_strings: Vec<String> = gens.iter().map(|g| g.to_string()).collect();
    let mut b = rt.use_alias();
    let named_view = local.named_view();
    for (k, n) in arg_names.iter().enumerate() {
        let w = width(&p.args[k].dim, "an argument")?;
        let text = Literal::string(&n.to_string());
        b.extend(quote!(let #n = #named_view::<T, #w, _>(#text, &#n)?;));
    }
    let views = arg_names.iter().zip(&p.args).map(|(n, a)| {
        let (text, cat) = (
            Literal::string(&n.to_string()),
            Literal::u8_suffixed(cat_code(&a.cats)),
        );
        quote!((#text, #cat, &#n))
    });
    let sizes = local.sizes();
    b.extend(quote!(let (m, n) = #sizes(&[#(#views),*], options.m, options.n)?;));
    let info = p.output_info();
    let (out_rows, out_width) = (rows(info.rows), dim_expr(&info.values));
    b.extend(quote!(if let Some(d) = __dest.as_deref() { d.expect(#out_rows, #out_width)?; }));
    let gen_params = quote!(#(const #gens: usize),*);
    let mut result = TokenStream::new();
    let widths: Vec<TokenStream> = arg_names.iter().map(|n| quote!(#n.cols())).collect();
    // Kernel types are named after the kernel (without a raw identifier's `r#`).
    let kernel_base = opts.name.to_string();
    let kernel_base = kernel_base.trim_start_matches("r#");
    for (step_index, step) in p.steps.iter().enumerate() {
        let out = buf(step.out());
        match step {
            Step::Reduce(r) => {
                let kname = format!("__{}_kernel{}", kernel_base, *count);
                *count += 1;
                let kident = ident(&kname);
                let (inputs, instance) = if symbolic {
                    let inputs = cpu_kernels(kernels, &kident, Some(&gen_params), |prec| {
                        let e = emit_generic(p, r, &kname, &gen_strings, rt, prec)?;
                        Ok((e.code, e.inputs))
                    })?;
                    (inputs, quote!(#kident::<#({ #gens }),*>))
                } else {
                    let inputs = cpu_kernels(kernels, &kident, None, |prec| {
                        let e = emit_reduce(p, r, &kname, &rust_options(rt, prec))?;
                        Ok((e.code, e.inputs))
                    })?;
                    (inputs, kident.to_token_stream())
                };
                let (outer, inner, params) = bind_inputs(&inputs, r.out_rows, arg_names);
                let (n_outer, n_inner) = if r.out_rows == Cat::I {
                    (quote!(m), quote!(n))
                } else {
                    (quote!(n), quote!(m))
                };
                let reduce_args = local.reduce_args();
                let cpu = quote! {
                    T::cpu_reduce(&#instance, &#reduce_args { outer: vec![#(#outer),*], inner: vec![#(#inner),*], params: vec![#(#params),*], n_outer: #n_outer, n_inner: #n_inner }, &options.cpu_options())?
                };
                match gpu {
                    None => {
                        b.extend(quote!(let #out = #cpu;));
                    }
                    Some(g) => {
                        let sources = step_sources(p, r);
                        let kernels_expr = if symbolic {
                            quote!(None)
                        } else {
                            reduction_kernels(p, r, step_index, rt, g.mode)?
                        };
                        kernels.extend(g.step_static(
                            &kname,
                            &rt.gpu_step(),
                            &kernels_expr,
                            step_index,
                            &sources,
                            rt,
                        ));
                        let views: Vec<TokenStream> =
                            sources.iter().map(|s| source_view(*s, arg_names)).collect();
                        // The last step may write a device array in place.
                        let last = step_index + 1 == p.steps.len() && step.out() == p.output;
                        let (func, dest) = if last {
                            (local.reduce_step_into(), quote!(, __dest.as_deref_mut()))
                        } else {
                            (local.reduce_step(), TokenStream::new())
                        };
                        let (step_call, step_static) =
                            (local.step_call(), format_ident!("{}_GPU", kname));
                        b.extend(quote! {
                            let #out = match #func::<T>(&#step_call { step: &#step_static, widths: &[#(#widths),*], inputs: &[#(#views),*], m, n }, options #dest)? { Some(out) => out, None => #cpu };
                        });
                    }
                }
            }
            Step::Gather(ga) => {
                let kname = format!("__{}_kernel{}", kernel_base, *count);
                *count += 1;
                let kident = ident(&kname);
                let inputs = cpu_kernels(kernels, &kident, None, |prec| {
                    let e = emit_gather(p, ga, &kname, &rust_options(rt, prec))?;
                    Ok((e.code, e.inputs))
                })?;
                let (mut owner, mut other, mut params) = (Vec::new(), Vec::new(), Vec::new());
                for input in inputs.iter().filter(|i| i.var != ga.slot_var) {
                    let v = source_view(input.source, arg_names);
                    match input.cat {
                        Cat::P => params.push(v),
                        c if c == ga.owner => owner.push(v),
                        _ => other.push(v),
                    }
                }
                let weights: Vec<TokenStream> = ga
                    .weight
                    .iter()
                    .map(|w| {
                        let (view, param) = (source_view(w.source, arg_names), w.cat == Cat::P);
                        quote!((#view, #param))
                    })
                    .collect();
                let (n_owner, n_other) = if ga.owner == Cat::I {
                    (quote!(m), quote!(n))
                } else {
                    (quote!(n), quote!(m))
                };
                let (gather_args, indices, to_owner) = (
                    local.gather_args(),
                    buf(ga.indices),
                    ga.out_rows == ga.owner,
                );
                let cpu = quote! {
                    T::cpu_gather(&#kident, &#gather_args { owner: vec![#(#owner),*], other: vec![#(#other),*], params: vec![#(#params),*], indices: &#indices, weights: vec![#(#weights),*], n_owner: #n_owner, n_other: #n_other, to_owner: #to_owner })?
                };
                match gpu {
                    Some(g) if !symbolic => {
                        let kernels_expr = gather_kernels(p, ga, step_index, rt, g.mode)?;
                        let sources: Vec<VarSource> = inputs
                            .iter()
                            .filter(|i| i.var != ga.slot_var)
                            .map(|i| i.source)
                            .collect();
                        kernels.extend(g.step_static(
                            &kname,
                            &rt.gpu_gather_step(),
                            &kernels_expr,
                            step_index,
                            &sources,
                            rt,
                        ));
                        let views: Vec<TokenStream> =
                            sources.iter().map(|s| source_view(*s, arg_names)).collect();
                        let (gather_step, gather_call, step_static) = (
                            local.gather_step(),
                            local.gather_call(),
                            format_ident!("{}_GPU", kname),
                        );
                        b.extend(quote! {
                            let #out = match #gather_step::<T>(&#gather_call { step: &#step_static, widths: &[#(#widths),*], inputs: &[#(#views),*], indices: &#indices, weights: &[#(#weights),*], m, n }, options)? { Some(out) => out, None => #cpu };
                        });
                    }
                    _ => {
                        b.extend(quote!(let #out = #cpu;));
                    }
                }
            }
            Step::SumRows { src, .. } => {
                let (sum_rows, src) = (local.sum_rows(), buf(*src));
                b.extend(quote!(let #out = #sum_rows(&#src);));
            }
            Step::Add { a, b: c, .. } => {
                let (add, a, c) = (local.add(), buf(*a), buf(*c));
                b.extend(quote!(let #out = #add(&#a, &#c);));
            }
            Step::Fill { value, out: o } => {
                let info = &p.bufs[*o];
                let (fill, rows, w, value) = (
                    local.fill(),
                    rows(info.rows),
                    dim_expr(&info.values),
                    float_debug(*value),
                );
                b.extend(quote!(let #out = #fill::<T>(#rows, #w, #value);));
            }
        }
        result = out.into_token_stream();
    }
    b.extend(quote!(let out = #result;));
    Ok(b)
}

/// Options of the CPU emitter for a kernel in precision `precision`.
fn rust_options(rt: &Runtime, precision: Precision) -> RustOptions {
    RustOptions {
        runtime: rt.clone(),
        precision,
        sum_mode: SumMode::Plain,
    }
}

/// Writes the CPU kernel type `name` (with the const generic parameters `generics`) and
/// its implementations for f32 and f64, which `emit` generates with the kernel's inputs
/// (the same in both precisions); returns the inputs.
fn cpu_kernels(
    kernels: &mut TokenStream,
    name: &Ident,
    generics: Option<&TokenStream>,
    emit: impl Fn(Precision) -> Result<(TokenStream, Vec<KernelInput>)>,
) -> Result<Vec<KernelInput>> {
    let allow = allow();
    let mut inputs = Vec::new();
    for precision in [Precision::F32, Precision::F64] {
        let (code, i) = emit(precision)?;
        kernels.extend(quote!(#allow #code));
        inputs = i;
    }
    kernels.extend(match generics {
        Some(g) => quote! {
            #[allow(non_camel_case_types)]
            struct #name<#g>;
        },
        None => quote! {
            #[allow(non_camel_case_types)]
            struct #name;
        },
    });
    Ok(inputs)
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
fn source_view(source: VarSource, arg_names: &[Ident]) -> TokenStream {
    let local = Runtime::alias();
    match source {
        VarSource::Arg(k) => arg_names[k].to_token_stream(),
        VarSource::Buffer(k) => {
            let (buffer_view, b) = (local.buffer_view(), buf(k));
            quote!(#buffer_view(&#b)?)
        }
        VarSource::Temp => {
            let view = local.view();
            quote!(#view::empty())
        }
    }
}

/// View expressions of a kernel's inputs, by kind (output-indexed, reduced, parameters).
fn bind_inputs(
    inputs: &[KernelInput],
    out_rows: Cat,
    arg_names: &[Ident],
) -> (Vec<TokenStream>, Vec<TokenStream>, Vec<TokenStream>) {
    let (mut o, mut i, mut q) = (Vec::new(), Vec::new(), Vec::new());
    for input in inputs {
        let v = source_view(input.source, arg_names);
        match input.cat {
            Cat::P => q.push(v),
            c if c == out_rows => o.push(v),
            _ => i.push(v),
        }
    }
    (o, i, q)
}
