//! The `keops!` macro's expansion: input forms, checking, generation, and errors as
//! spanned `compile_error!`s with a stub so that call sites do not cascade.
//!
//! Input forms:
//! - an expression: `keops!(Sum_j(Exp(-SqDist(x_i, y_j)) * b_j))`, also with
//!   declarations (`x_i: 3; ...; Sum_j(...)`), KeOps aliases
//!   (`x = Vi(3); y = Vj(3); Sum_Reduction(..., 0)`), or all of it as one string literal;
//! - an item: `keops! { pub gauss(x_i: 3, y_j: 3, b_j, s: 1) = Sum_j(...) }`, naming the
//!   kernel type and fixing the argument order.
//!
//! The Rust-facing parts of the input are read with `syn`: the leading attributes (doc
//! comments), and the item form's header (visibility, name, argument list, `=`). The
//! formula is read by `keops_ir`'s parser, over the same tokens ([`Source`]), so that
//! errors in the header and in the formula point at the user's tokens alike.

use crate::api::{ApiOptions, emit_api};
use crate::gpu::GpuKernels;
use crate::paths::{self, Runtime};
use crate::tokens::ident;
use keops_ir::check::{Declarations, check_items};
use keops_ir::error::{Error, ErrorKind, TokRange};
use keops_ir::graph::VarSource;
use keops_ir::limits::{deep, with_stack};
use keops_ir::ops::Op;
use keops_ir::parse::{Parser, Source, TokKind};
use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use std::str::FromStr;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser as _};
use syn::{Attribute, LitInt, Token, Visibility, token};

/// The header of the item form, `[pub[(..)]] name(decls) =`.
struct Header {
    vis: TokenStream,
    /// The kernel's name, at the user's token.
    name: Ident,
    decls: Declarations,
    /// Where each declared argument's name is written.
    arg_spans: Vec<Span>,
    /// Number of entries in the argument list (also when it has an error).
    arity: usize,
    /// An error in the argument list.
    error: Option<Error>,
    /// First token of the formula.
    body: usize,
}

/// Expands the macro input. `runtime` is the runtime crate in the output.
/// CPU kernels only; see [`expand_with`].
pub fn expand(input: TokenStream, runtime: &Runtime) -> TokenStream {
    expand_with(input, runtime, None)
}

/// Expands the macro input, with GPU step descriptors when `gpu` is given (the `keops!`
/// macro passes [`GpuKernels::Embedded`], or [`GpuKernels::AtFirstUse`] without the
/// `embed-ptx` feature): reduction and gather steps then run on the GPU when the call's
/// options choose it.
pub fn expand_with(input: TokenStream, runtime: &Runtime, gpu: Option<GpuKernels>) -> TokenStream {
    // Leading attributes (doc comments, `#[allow]`) go on the kernel type.
    let (attrs, mut tokens) = split_attributes(input);
    let attrs = match with_syn_stack(&attrs, || Attribute::parse_outer.parse2(attrs.clone())) {
        Ok(attrs) => quote!(#(#attrs)*),
        Err(e) => {
            let header = item_header(tokens.clone());
            let mut out = e.to_compile_error();
            out.extend(stub(&Source::from_tokens(tokens), header.as_ref(), runtime));
            return wrap(out, header.is_some());
        }
    };
    let mut src = Source::from_tokens(tokens.clone());
    // A single string literal: the formula text (KeOps strings are usually written so).
    if let [tok] = src.toks.as_slice()
        && let TokKind::OtherLiteral(lit) = &tok.kind
        && let Some(text) = unquote(lit)
    {
        let span = tok.span;
        match Source::from_text(&text) {
            Ok(inner) => {
                // The user's formula text, read as tokens (input, not generated code).
                let ts = TokenStream::from_str(&text).unwrap_or_default();
                tokens = respan(ts, span);
                src = Source::from_tokens(tokens.clone());
                src.text = inner.text;
            }
            Err(e) => {
                // The caret can only cover the whole literal: show the text itself.
                let msg = format!("cannot read the formula string:\n{}", e.rendered.trim_end());
                let mut out = compile_error(&msg, span, span);
                out.extend(stub(&src, None, runtime));
                return wrap(out, false);
            }
        }
    }
    let header = item_header(tokens);
    // A panic of the compiler is a keops-rs bug: report it at the formula, with the stub
    // below, rather than as "proc macro panicked" with nothing to point at.
    let expanded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        expand_source(&src, header.as_ref(), runtime, attrs, gpu)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::new(
            ErrorKind::Limit,
            format!("internal error of keops-rs while compiling this formula: {what}"),
        )
        .help("this is a bug of keops-rs: please report it with the formula"))
    });
    match expanded {
        Ok(ts) => ts,
        Err(e) => {
            let (start, end) =
                e.at.and_then(|r| src.spans(r))
                    .unwrap_or((Span::call_site(), Span::call_site()));
            let mut out = compile_error(&e.full_message(), start, end);
            out.extend(stub(&src, header.as_ref(), runtime));
            wrap(out, header.is_some())
        }
    }
}

/// Items as they are for the item form; in a block for the expression form.
fn wrap(out: TokenStream, item: bool) -> TokenStream {
    if item {
        out
    } else {
        TokenStream::from(TokenTree::Group(Group::new(Delimiter::Brace, out)))
    }
}

/// The leading `#[...]` groups (the attributes, read with `syn`) and the tokens after
/// them.
fn split_attributes(input: TokenStream) -> (TokenStream, TokenStream) {
    let mut rest: Vec<TokenTree> = input.into_iter().collect();
    let mut attrs = TokenStream::new();
    while let [TokenTree::Punct(p), TokenTree::Group(g), ..] = rest.as_slice()
        && p.as_char() == '#'
        && g.delimiter() == Delimiter::Bracket
    {
        attrs.extend(rest.drain(..2));
    }
    (attrs, rest.into_iter().collect())
}

fn unquote(lit: &str) -> Option<String> {
    let body = lit.strip_prefix('"')?.strip_suffix('"')?;
    Some(body.replace("\\\"", "\"").replace("\\\\", "\\"))
}

fn respan(ts: TokenStream, span: Span) -> TokenStream {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let inner = deep(|| respan(g.stream(), span));
                let mut n = Group::new(g.delimiter(), inner);
                n.set_span(span);
                TokenTree::Group(n)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

fn expand_source(
    src: &Source,
    header: Option<&Header>,
    runtime: &Runtime,
    attrs: TokenStream,
    gpu: Option<GpuKernels>,
) -> Result<TokenStream, Error> {
    if let Some(e) = header.and_then(|h| h.error.clone()) {
        return Err(e);
    }
    let (start, decls, name, vis) = match header {
        Some(h) => (h.body, h.decls.clone(), h.name.clone(), h.vis.clone()),
        None => (
            0,
            Declarations::default(),
            ident("__KeopsKernel"),
            quote!(pub),
        ),
    };
    let items = Parser::sub(src, start, src.toks.len()).items()?;
    let program = check_items(src, &items, &decls)?;
    // Where argument `k` is written: its name in the argument list, or its first use in
    // the formula.
    let first_use = |k: usize| {
        program
            .graph
            .vars
            .iter()
            .find(|v| v.source == VarSource::Arg(k))
            .and_then(|v| v.declared_at)
    };
    if header.is_some()
        && let Some(k) = (decls.vars.len()..program.args.len()).next()
    {
        let name = program.args[k].name.clone().unwrap_or_default();
        // Point at the variable's first use in the formula.
        let at = first_use(k).unwrap_or(TokRange::one(start as u32));
        return Err(Error::new(ErrorKind::Declaration, format!("`{name}` is used in the formula but not in the argument list"))
                .at(at)
                .help(format!("add `{name}` (with its `_i`/`_j` suffix, and its width if you know it) to the argument list")));
    }
    let arg_spans = (0..program.args.len())
        .map(|k| match header {
            Some(h) => h.arg_spans.get(k).copied(),
            None => first_use(k).and_then(|r| src.spans(r)).map(|(s, _)| s),
        })
        .map(|s| s.unwrap_or_else(Span::call_site))
        .collect();
    let api = emit_api(
        &program,
        &ApiOptions {
            runtime: runtime.clone(),
            name: name.clone(),
            vis,
            attrs,
            arg_spans,
            gpu,
        },
    )?;
    let code = api.code;
    Ok(if header.is_none() {
        quote!({ #code #name })
    } else {
        code
    })
}

/// Number of tokens of `ts` in a [`Source`] (groups are an opening and a closing token,
/// invisible groups nothing).
fn flat_len(ts: TokenStream) -> usize {
    ts.into_iter()
        .map(|t| match t {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
                deep(|| flat_len(g.stream()))
            }
            TokenTree::Group(g) => 2 + deep(|| flat_len(g.stream())),
            _ => 1,
        })
        .sum()
}

/// Entries of an argument list (for the stub, even with an error): the commas at its top
/// level, but a last one, separate them.
fn count_entries(ts: TokenStream) -> usize {
    fn commas(ts: TokenStream, at: &mut usize, found: &mut Vec<usize>) {
        for t in ts {
            match t {
                TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
                    deep(|| commas(g.stream(), at, found))
                }
                TokenTree::Punct(p) if p.as_char() == ',' => {
                    found.push(*at);
                    *at += 1;
                }
                t => *at += flat_len(t.into()),
            }
        }
    }
    let (mut len, mut found) = (0, Vec::new());
    commas(ts, &mut len, &mut found);
    usize::from(len > 0) + found.iter().filter(|c| **c + 1 < len).count()
}

/// Recognizes `[pub[(..)]] name(decls) = formula`; `None` when the input is not the item
/// form. Errors in the argument list are kept in the header.
/// Stack per level of nesting of a token tree that `syn` may use while reading it
/// (`TokenBuffer::recursive_new` recurses once per group; its frames are a few hundred
/// bytes).
const SYN_STACK_PER_LEVEL: usize = 1024;

/// The nesting depth of a token tree (groups in groups), without recursion.
fn nesting_depth(ts: &TokenStream) -> usize {
    let mut deepest = 0;
    let mut open = vec![ts.clone().into_iter()];
    while let Some(it) = open.last_mut() {
        match it.next() {
            Some(TokenTree::Group(g)) => {
                open.push(g.stream().into_iter());
                deepest = deepest.max(open.len() - 1);
            }
            Some(_) => {}
            None => {
                open.pop();
            }
        }
    }
    deepest
}

/// Runs `f`, which reads `tokens` with `syn` (whose reading recurses per level of
/// nesting, unguarded), with enough stack for their depth: any depth runs on any thread.
fn with_syn_stack<T>(tokens: &TokenStream, f: impl FnOnce() -> T) -> T {
    with_stack(nesting_depth(tokens).saturating_mul(SYN_STACK_PER_LEVEL), f)
}

fn item_header(tokens: TokenStream) -> Option<Header> {
    let parse = |input: ParseStream<'_>| -> syn::Result<Option<Header>> {
        let vis: Visibility = input.parse()?;
        if !(input.peek(Ident::peek_any) && input.peek2(token::Paren) && input.peek3(Token![=])) {
            input.parse::<TokenStream>()?;
            return Ok(None);
        }
        let name = input.call(Ident::parse_any)?;
        let list;
        syn::parenthesized!(list in input);
        let vis = vis.into_token_stream();
        // Token positions in the Source: the name, `(`, the list, `)`, `=`.
        let first = flat_len(vis.clone()) + 2;
        let len = flat_len(list.fork().parse::<TokenStream>()?);
        let mut header = Header {
            vis,
            name,
            decls: Declarations::default(),
            arg_spans: Vec::new(),
            arity: count_entries(list.fork().parse()?),
            error: None,
            body: first + len + 2,
        };
        header.error = arguments(&list, first, &mut header).err();
        list.parse::<TokenStream>()?;
        input.parse::<Token![=]>()?;
        input.parse::<TokenStream>()?;
        Ok(Some(header))
    };
    with_syn_stack(&tokens, || parse.parse2(tokens.clone()))
        .ok()
        .flatten()
}

/// Reads the argument list `x_i: 3, y_j, s: 1` (its first token at position `i`) into
/// the header's declarations; the first error stops it.
fn arguments(list: ParseStream<'_>, mut i: usize, header: &mut Header) -> Result<(), Error> {
    let at = |i: usize| TokRange::one(i as u32);
    while !list.is_empty() {
        let Ok(var) = list.call(Ident::parse_any) else {
            return Err(Error::new(ErrorKind::Syntax, "expected an argument name")
                .at(at(i))
                .help("write the arguments as `x_i: 3, y_j, s: 1`"));
        };
        let name_at = at(i);
        let var_name = var.to_string();
        i += 1;
        let mut dim = None;
        if list.parse::<Option<Token![:]>>().ok().flatten().is_some() {
            dim = Some(width(list).ok_or_else(|| {
                Error::new(ErrorKind::Declaration, format!("expected the width of `{var_name}` after `:`, a positive integer"))
                    .at(at(i + 1))
                    .help(format!("write `{var_name}: 3` for a width of 3, or `{var_name}` alone to let it be inferred"))
            })?);
            i += 2;
        }
        if header.decls.vars.iter().any(|(n, _, _)| *n == var_name) {
            return Err(Error::new(
                ErrorKind::Declaration,
                format!("`{var_name}` appears twice in the argument list"),
            )
            .at(name_at)
            .help("list each argument once"));
        }
        header.decls.vars.push((var_name, dim, Some(name_at)));
        header.arg_spans.push(var.span());
        if list.parse::<Option<Token![,]>>().ok().flatten().is_some() {
            i += 1;
        } else if !list.is_empty() {
            return Err(
                Error::new(ErrorKind::Syntax, "expected `,` between arguments")
                    .at(at(i))
                    .help("separate the arguments with commas: `x_i: 3, y_j: 3`"),
            );
        }
    }
    Ok(())
}

/// A declared width: a positive decimal integer literal (a suffix is allowed).
fn width(list: ParseStream<'_>) -> Option<usize> {
    let lit: LitInt = list.parse().ok()?;
    let text = lit.to_string();
    let decimal = !["0x", "0o", "0b"].iter().any(|p| text.starts_with(p));
    let d: i64 = lit.base10_parse().ok()?;
    (decimal && d >= 1).then_some(d as usize)
}

/// `::core::compile_error!("msg");` spanning `start..end` (valid as an item and as a
/// statement).
fn compile_error(msg: &str, start: Span, end: Span) -> TokenStream {
    let mut lit = Literal::string(msg);
    lit.set_span(end);
    let mut group = Group::new(
        Delimiter::Parenthesis,
        TokenStream::from(TokenTree::Literal(lit)),
    );
    group.set_span(end);
    let punct = |c: char, span: Span| {
        let mut p = Punct::new(c, Spacing::Alone);
        p.set_span(span);
        TokenTree::Punct(p)
    };
    let mut out = respan(paths::compile_error(), start);
    out.extend([punct('!', start), TokenTree::Group(group), punct(';', end)]);
    out
}

/// Names of a formula's arguments, guessed from its tokens (for the stub after an error):
/// aliases, concise `x_i`/`y_j` base names, and parameters.
fn guess_arguments(src: &Source) -> Vec<String> {
    let t = &src.toks;
    let aliases: Vec<&String> = t
        .iter()
        .enumerate()
        .filter_map(|(k, x)| match (&x.kind, t.get(k + 1).map(|y| &y.kind)) {
            (TokKind::Ident(n), Some(TokKind::Punct('=', false))) => Some(n),
            _ => None,
        })
        .collect();
    let mut names: Vec<String> = aliases.iter().map(|s| s.to_string()).collect();
    let mut inline_vars = 0;
    for (k, x) in t.iter().enumerate() {
        let TokKind::Ident(n) = &x.kind else { continue };
        let next = t.get(k + 1).map(|y| &y.kind);
        if matches!(next, Some(TokKind::Open('('))) {
            if n == "Var" {
                inline_vars += 1;
            }
            continue;
        }
        if aliases.contains(&n)
            || matches!(next, Some(TokKind::Punct('=', false)))
            || Op::from_name(n).is_some()
        {
            continue;
        }
        let base = n
            .strip_suffix("_i")
            .or_else(|| n.strip_suffix("_j"))
            .filter(|b| !b.is_empty())
            .unwrap_or(n);
        if aliases.is_empty() && !names.iter().any(|x| x == base) {
            names.push(base.to_string());
        }
    }
    for k in 0..inline_vars {
        names.push(format!("var{k}"));
    }
    names
}

/// A stand-in kernel after an error, shaped like the real one (argument count, gradient
/// methods) so that call sites type-check and the user sees the one error that matters.
fn stub(src: &Source, header: Option<&Header>, runtime: &Runtime) -> TokenStream {
    let (name, vis, names) = match header {
        Some(h) => {
            let mut names: Vec<String> = h.decls.vars.iter().map(|(n, _, _)| n.clone()).collect();
            while names.len() < h.arity {
                names.push(format!("arg{}", names.len()));
            }
            (h.name.clone(), h.vis.clone(), names)
        }
        None => (ident("__KeopsKernel"), quote!(pub), guess_arguments(src)),
    };
    let base = |n: &str| {
        n.strip_suffix("_i")
            .or_else(|| n.strip_suffix("_j"))
            .filter(|b| !b.is_empty())
            .unwrap_or(n)
            .to_string()
    };
    let args: Vec<Ident> = (0..names.len()).map(|k| format_ident!("_a{}", k)).collect();
    let (result, error, unreachable) = (
        paths::core_result(),
        runtime.keops_error(),
        paths::unreachable(),
    );
    let mut methods = quote! {
        #vis fn eval<R>(&self, #(#args: impl Sized),*) -> #result<R, #error> { #unreachable!() }
        #vis fn formula(&self) -> &'static str { "" }
    };
    for n in &names {
        let m = base(n);
        if m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let grad = format_ident!("grad_{}", m);
            methods.extend(quote! {
                #vis fn #grad<R>(&self, #(#args: impl Sized,)* _cotangent: impl Sized) -> #result<R, #error> { #unreachable!() }
            });
        }
    }
    let decl = quote_spanned!(name.span()=> #vis struct #name;);
    let code = quote! {
        #[allow(non_camel_case_types, dead_code)] #[derive(Copy, Clone, Debug, Default)] #decl
        #[allow(dead_code)] impl #name { #methods }
    };
    if header.is_none() {
        quote!({ #code #name })
    } else {
        code
    }
}
