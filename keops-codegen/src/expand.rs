//! The `keops!` macro's expansion: input forms, checking, generation, and errors as
//! spanned `compile_error!`s with a stub so that call sites do not cascade.
//!
//! Input forms:
//! - an expression: `keops!(Sum_j(Exp(-SqDist(x_i, y_j)) * b_j))`, also with
//!   declarations (`x_i: 3; ...; Sum_j(...)`), KeOps aliases
//!   (`x = Vi(3); y = Vj(3); Sum_Reduction(..., 0)`), or all of it as one string literal;
//! - an item: `keops! { pub gauss(x_i: 3, y_j: 3, b_j, s: 1) = Sum_j(...) }`, naming the
//!   kernel type and fixing the argument order.

use crate::api::{ApiOptions, emit_api};
use crate::gpu::GpuKernels;
use keops_ir::check::{Declarations, check_items};
use keops_ir::error::{Error, ErrorKind, TokRange};
use keops_ir::graph::VarSource;
use keops_ir::ops::Op;
use keops_ir::parse::{Parser, Source, TokKind};
use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use std::str::FromStr;

/// The header of the item form, `[pub[(..)]] name(decls) =`.
struct Header {
    vis: String,
    name: String,
    decls: Declarations,
    /// Number of entries in the argument list (also when it has an error).
    arity: usize,
    /// An error in the argument list.
    error: Option<Error>,
    /// First token of the formula.
    body: usize,
}

/// Expands the macro input. `runtime` is the path of the runtime crate in the output.
/// CPU kernels only; see [`expand_with`].
pub fn expand(input: TokenStream, runtime: &str) -> TokenStream {
    expand_with(input, runtime, None)
}

/// Expands the macro input, with the GPU code generator when given (the `keops!`
/// macro passes `keops-gpu-kernels`'): reduction steps then carry their PTX.
pub fn expand_with(input: TokenStream, runtime: &str, gpu: Option<GpuKernels>) -> TokenStream {
    // Leading attributes (doc comments, `#[allow]`) go on the kernel type.
    let mut attrs = TokenStream::new();
    let mut rest: Vec<TokenTree> = input.into_iter().collect();
    while let [TokenTree::Punct(p), TokenTree::Group(g), ..] = rest.as_slice() {
        if p.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
            break;
        }
        attrs.extend(rest.drain(..2));
    }
    let mut src = Source::from_tokens(rest.into_iter().collect());
    // A single string literal: the formula text (KeOps strings are usually written so).
    if let [tok] = src.toks.as_slice()
        && let TokKind::OtherLiteral(lit) = &tok.kind
        && let Some(text) = unquote(lit)
    {
        let span = tok.span;
        match Source::from_text(&text) {
            Ok(inner) => {
                let ts = TokenStream::from_str(&text).unwrap_or_default();
                src = Source::from_tokens(respan(ts, span));
                src.text = inner.text;
            }
            Err(e) => {
                // The caret can only cover the whole literal: show the text itself.
                let msg = format!("cannot read the formula string:\n{}", e.rendered.trim_end());
                let mut out = compile_error(&msg, span, span);
                out.extend(stub(&src, None, runtime));
                return TokenStream::from(TokenTree::Group(Group::new(Delimiter::Brace, out)));
            }
        }
    }
    let header = item_header(&src);
    // A panic of the compiler is a keops-rs bug: report it at the formula, with the stub
    // below, rather than as "proc macro panicked" with nothing to point at.
    let expanded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        expand_source(&src, header.as_ref(), runtime, &attrs.to_string(), gpu)
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
            if header.is_some() {
                out
            } else {
                TokenStream::from(TokenTree::Group(Group::new(Delimiter::Brace, out)))
            }
        }
    }
}

fn unquote(lit: &str) -> Option<String> {
    let body = lit.strip_prefix('"')?.strip_suffix('"')?;
    Some(body.replace("\\\"", "\"").replace("\\\\", "\\"))
}

fn respan(ts: TokenStream, span: Span) -> TokenStream {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Group(g) => {
                let mut n = Group::new(g.delimiter(), respan(g.stream(), span));
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
    runtime: &str,
    attrs: &str,
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
            "__KeopsKernel".to_string(),
            "pub".to_string(),
        ),
    };
    let items = Parser::sub(src, start, src.toks.len()).items()?;
    let program = check_items(src, &items, &decls)?;
    if header.is_some()
        && let Some(k) = (decls.vars.len()..program.args.len()).next()
    {
        let name = program.args[k].name.clone().unwrap_or_default();
        // Point at the variable's first use in the formula.
        let at = program
            .graph
            .vars
            .iter()
            .find(|v| v.source == VarSource::Arg(k))
            .and_then(|v| v.declared_at)
            .unwrap_or(TokRange::one(start as u32));
        return Err(Error::new(ErrorKind::Declaration, format!("`{name}` is used in the formula but not in the argument list"))
                .at(at)
                .help(format!("add `{name}` (with its `_i`/`_j` suffix, and its width if you know it) to the argument list")));
    }
    let api = emit_api(
        &program,
        &ApiOptions {
            runtime: runtime.to_string(),
            name: name.clone(),
            vis,
            attrs: attrs.to_string(),
            gpu,
        },
    )?;
    let code = if header.is_none() {
        format!("{{\n{}\n{name}\n}}", api.code)
    } else {
        api.code
    };
    TokenStream::from_str(&code).map_err(|e| {
        Error::new(
            ErrorKind::Limit,
            format!("internal error: generated code does not parse: {e}"),
        )
    })
}

/// Recognizes `[pub[(..)]] name(decls) = formula`; `None` when the input is not the item
/// form. Errors in the argument list are kept in the header.
fn item_header(src: &Source) -> Option<Header> {
    let t = &src.toks;
    let kind = |i: usize| t.get(i).map(|x| &x.kind);
    let mut k = 0;
    let mut vis = String::new();
    if let Some(TokKind::Ident(i)) = kind(0)
        && i == "pub"
    {
        vis.push_str("pub");
        k = 1;
        if let Some(TokKind::Open('(')) = kind(1) {
            let close = matching(src, 1);
            let inner: Vec<String> = t[2..close].iter().map(|x| tok_text(&x.kind)).collect();
            vis = format!("pub({})", inner.join(" "));
            k = close + 1;
        }
    }
    let (Some(TokKind::Ident(name)), Some(TokKind::Open('('))) = (kind(k), kind(k + 1)) else {
        return None;
    };
    let close = matching(src, k + 1);
    if !matches!(kind(close + 1), Some(TokKind::Punct('=', _))) {
        return None;
    }
    let mut header = Header {
        vis,
        name: name.clone(),
        decls: Declarations::default(),
        arity: 0,
        error: None,
        body: close + 2,
    };
    // Entries, counted at the top level of the list (for the stub, even with an error).
    let mut depth = 0;
    let mut entries = usize::from(close > k + 2);
    for i in k + 2..close {
        match kind(i) {
            Some(TokKind::Open(_)) => depth += 1,
            Some(TokKind::Close(_)) => depth -= 1,
            Some(TokKind::Punct(',', _)) if depth == 0 && i + 1 < close => entries += 1,
            _ => {}
        }
    }
    header.arity = entries;
    let mut i = k + 2;
    while i < close {
        let Some(TokKind::Ident(var)) = kind(i) else {
            header.error = Some(
                Error::new(ErrorKind::Syntax, "expected an argument name")
                    .at(TokRange::one(i as u32))
                    .help("write the arguments as `x_i: 3, y_j, s: 1`"),
            );
            return Some(header);
        };
        let at = TokRange::one(i as u32);
        i += 1;
        let mut dim = None;
        if matches!(kind(i), Some(TokKind::Punct(':', _))) {
            match kind(i + 1) {
                Some(TokKind::Int(d)) if *d >= 1 => dim = Some(*d as usize),
                _ => {
                    header.error = Some(
                        Error::new(ErrorKind::Declaration, format!("expected the width of `{var}` after `:`, a positive integer"))
                            .at(TokRange::one(i as u32 + 1))
                            .help(format!("write `{var}: 3` for a width of 3, or `{var}` alone to let it be inferred")),
                    );
                    return Some(header);
                }
            }
            i += 2;
        }
        if header.decls.vars.iter().any(|(n, _, _)| n == var) {
            header.error = Some(
                Error::new(
                    ErrorKind::Declaration,
                    format!("`{var}` appears twice in the argument list"),
                )
                .at(at)
                .help("list each argument once"),
            );
            return Some(header);
        }
        header.decls.vars.push((var.clone(), dim, Some(at)));
        match kind(i) {
            Some(TokKind::Punct(',', _)) => i += 1,
            _ if i >= close => {}
            _ => {
                header.error = Some(
                    Error::new(ErrorKind::Syntax, "expected `,` between arguments")
                        .at(TokRange::one(i as u32))
                        .help("separate the arguments with commas: `x_i: 3, y_j: 3`"),
                );
                return Some(header);
            }
        }
    }
    Some(header)
}

fn tok_text(k: &TokKind) -> String {
    match k {
        TokKind::Ident(s) | TokKind::OtherLiteral(s) => s.clone(),
        TokKind::Int(i) => i.to_string(),
        TokKind::Float(x) => x.to_string(),
        TokKind::Punct(c, _) | TokKind::Open(c) | TokKind::Close(c) => c.to_string(),
    }
}

/// Index of the token closing the group opened at `open`.
fn matching(src: &Source, open: usize) -> usize {
    let mut depth = 0i32;
    for (k, t) in src.toks.iter().enumerate().skip(open) {
        match t.kind {
            TokKind::Open(_) => depth += 1,
            TokKind::Close(_) => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    src.toks.len().saturating_sub(1)
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
    let p = |c: char, s: Spacing, span: Span| {
        let mut p = Punct::new(c, s);
        p.set_span(span);
        TokenTree::Punct(p)
    };
    [
        p(':', Spacing::Joint, start),
        p(':', Spacing::Alone, start),
        TokenTree::Ident(Ident::new("core", start)),
        p(':', Spacing::Joint, start),
        p(':', Spacing::Alone, start),
        TokenTree::Ident(Ident::new("compile_error", start)),
        p('!', Spacing::Alone, start),
        TokenTree::Group(group),
        p(';', Spacing::Alone, end),
    ]
    .into_iter()
    .collect()
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
fn stub(src: &Source, header: Option<&Header>, runtime: &str) -> TokenStream {
    let (name, vis, names) = match header {
        Some(h) => {
            let mut names: Vec<String> = h.decls.vars.iter().map(|(n, _, _)| n.clone()).collect();
            while names.len() < h.arity {
                names.push(format!("arg{}", names.len()));
            }
            (h.name.clone(), h.vis.clone(), names)
        }
        None => (
            "__KeopsKernel".to_string(),
            "pub".to_string(),
            guess_arguments(src),
        ),
    };
    let ident = |n: &str| {
        n.strip_suffix("_i")
            .or_else(|| n.strip_suffix("_j"))
            .filter(|b| !b.is_empty())
            .unwrap_or(n)
            .to_string()
    };
    let args: Vec<String> = (0..names.len())
        .map(|k| format!("_a{k}: impl Sized"))
        .collect();
    let mut grad_args = args.clone();
    grad_args.push("_cotangent: impl Sized".to_string());
    let mut methods = format!(
        "{vis} fn eval<R>(&self, {}) -> ::core::result::Result<R, {runtime}::KeopsError> {{ ::core::unreachable!() }}\n{vis} fn formula(&self) -> &'static str {{ \"\" }}\n",
        args.join(", ")
    );
    for n in &names {
        let m = ident(n);
        if m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            methods.push_str(&format!(
                "{vis} fn grad_{m}<R>(&self, {}) -> ::core::result::Result<R, {runtime}::KeopsError> {{ ::core::unreachable!() }}\n",
                grad_args.join(", ")
            ));
        }
    }
    let code = format!(
        "#[allow(non_camel_case_types, dead_code)] #[derive(Copy, Clone, Debug, Default)] {vis} struct {name};
         #[allow(dead_code)] impl {name} {{ {methods} }}"
    );
    let code = if header.is_none() {
        format!("{{ {code} {name} }}")
    } else {
        code
    };
    TokenStream::from_str(&code).unwrap_or_default()
}
