//! The `keops!` macro's expansion: input forms, checking, generation, and errors as
//! spanned `compile_error!`s with a stub so that call sites do not cascade.
//!
//! Input forms:
//! - an expression: `keops!(Sum_j(Exp(-SqDist(x_i, y_j)) * b_j))`, also with
//!   declarations (`x_i: 3; ...; Sum_j(...)`), KeOps aliases
//!   (`x = Vi(3); y = Vj(3); Sum_Reduction(..., 0)`), or all of it as one string literal;
//! - an item: `keops! { pub gauss(x_i: 3, y_j: 3, b_j, s: 1) = Sum_j(...) }`, naming the
//!   kernel type and fixing the argument order.

use super::api::{ApiOptions, emit_api};
use crate::check::{Declarations, check_items};
use crate::error::{Error, ErrorKind, TokRange};
use crate::parse::{Parser, Source, TokKind};
use proc_macro2::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use std::str::FromStr;

/// The parsed header of the item form.
struct Header {
    vis: String,
    name: String,
    decls: Declarations,
    /// First token of the formula.
    body: usize,
}

/// Expands the macro input. `runtime` is the path of the runtime crate in the output.
pub fn expand(input: TokenStream, runtime: &str) -> TokenStream {
    // Leading attributes (doc comments, `#[allow]`) go on the kernel type.
    let mut attrs = TokenStream::new();
    let mut rest: Vec<TokenTree> = input.into_iter().collect();
    while let [TokenTree::Punct(p), TokenTree::Group(g), ..] = rest.as_slice() {
        if p.as_char() != '#' || g.delimiter() != Delimiter::Bracket {
            break;
        }
        attrs.extend(rest.drain(..2));
    }
    let input: TokenStream = rest.into_iter().collect();
    let mut src = Source::from_tokens(input.clone());
    // A single string literal: the formula text (KeOps strings are usually written so).
    if let [tok] = src.toks.as_slice()
        && let TokKind::OtherLiteral(lit) = &tok.kind
        && let Some(text) = unquote(lit)
    {
        match TokenStream::from_str(&text) {
            Ok(ts) => {
                let span = tok.span;
                let mut inner = Source::from_tokens(respan(ts, span));
                inner.text = Some(text);
                src = inner;
            }
            Err(e) => {
                return compile_error(&format!("cannot read the formula: {e}"), tok.span, tok.span);
            }
        }
    }
    match expand_source(&src, runtime, &attrs.to_string()) {
        Ok(ts) => ts,
        Err(e) => {
            let (start, end) =
                e.at.and_then(|r| src.spans(r))
                    .unwrap_or((Span::call_site(), Span::call_site()));
            let mut out = compile_error(&e.full_message(), start, end);
            out.extend(stub(&src, runtime));
            if matches!(item_header(&src), Ok(Some(_))) {
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

fn expand_source(src: &Source, runtime: &str, attrs: &str) -> Result<TokenStream, Error> {
    let header = item_header(src)?;
    let (start, decls, name, vis, expression) = match header {
        Some(h) => (h.body, h.decls, h.name, h.vis, false),
        None => (
            0,
            Declarations::default(),
            "__KeopsKernel".to_string(),
            "pub".to_string(),
            true,
        ),
    };
    let items = Parser::sub(src, start, src.toks.len()).items()?;
    let program = check_items(src, &items, &decls)?;
    if !expression {
        for (k, a) in program.args.iter().enumerate() {
            if k >= decls.vars.len() {
                let name = a.name.clone().unwrap_or_default();
                return Err(Error::new(
                    ErrorKind::Declaration,
                    format!("`{name}` is used in the formula but not in the argument list"),
                )
                .at(TokRange::one(start as u32))
                .help(format!(
                    "add `{name}` (with its `_i`/`_j` suffix) to the argument list"
                )));
            }
        }
    }
    let api = emit_api(
        &program,
        &ApiOptions {
            runtime: runtime.to_string(),
            name: name.clone(),
            vis,
            attrs: attrs.to_string(),
        },
    )?;
    let code = if expression {
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

/// Recognizes `[pub[(..)]] name(decls) = formula`.
fn item_header(src: &Source) -> Result<Option<Header>, Error> {
    let t = &src.toks;
    let mut k = 0;
    let mut vis = String::new();
    if let Some(TokKind::Ident(i)) = t.first().map(|x| &x.kind)
        && i == "pub"
    {
        vis.push_str("pub");
        k = 1;
        if let Some(TokKind::Open('(')) = t.get(1).map(|x| &x.kind) {
            let close = matching(src, 1);
            let inner: Vec<String> = t[2..close].iter().map(|x| tok_text(&x.kind)).collect();
            vis = format!("pub({})", inner.join(" "));
            k = close + 1;
        }
    }
    let (Some(TokKind::Ident(name)), Some(TokKind::Open('('))) =
        (t.get(k).map(|x| &x.kind), t.get(k + 1).map(|x| &x.kind))
    else {
        return Ok(None);
    };
    let close = matching(src, k + 1);
    if !matches!(
        t.get(close + 1).map(|x| &x.kind),
        Some(TokKind::Punct('=', _))
    ) {
        return Ok(None);
    }
    let mut decls = Declarations::default();
    let mut i = k + 2;
    while i < close {
        let Some(TokKind::Ident(var)) = t.get(i).map(|x| &x.kind) else {
            return Err(Error::new(ErrorKind::Syntax, "expected an argument name")
                .at(TokRange::one(i as u32))
                .help("write the arguments as `x_i: 3, y_j, s: 1`"));
        };
        let at = TokRange::one(i as u32);
        i += 1;
        let mut dim = None;
        if matches!(t.get(i).map(|x| &x.kind), Some(TokKind::Punct(':', _))) {
            match t.get(i + 1).map(|x| &x.kind) {
                Some(TokKind::Int(d)) if *d >= 1 => dim = Some(*d as usize),
                _ => {
                    return Err(Error::new(
                        ErrorKind::Declaration,
                        format!("expected the width of `{var}` after `:`, a positive integer"),
                    )
                    .at(TokRange::one(i as u32 + 1)));
                }
            }
            i += 2;
        }
        if decls.vars.iter().any(|(n, _, _)| n == var) {
            return Err(Error::new(
                ErrorKind::Declaration,
                format!("`{var}` appears twice in the argument list"),
            )
            .at(at));
        }
        decls.vars.push((var.clone(), dim, Some(at)));
        match t.get(i).map(|x| &x.kind) {
            Some(TokKind::Punct(',', _)) => i += 1,
            _ if i >= close => {}
            _ => {
                return Err(
                    Error::new(ErrorKind::Syntax, "expected `,` between arguments")
                        .at(TokRange::one(i as u32)),
                );
            }
        }
    }
    Ok(Some(Header {
        vis,
        name: name.clone(),
        decls,
        body: close + 2,
    }))
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

/// `::core::compile_error! { "msg" }` spanning `start..end`.
fn compile_error(msg: &str, start: Span, end: Span) -> TokenStream {
    let mut lit = Literal::string(msg);
    lit.set_span(end);
    let mut group = Group::new(Delimiter::Brace, TokenStream::from(TokenTree::Literal(lit)));
    group.set_span(end);
    let p = |c: char, s: Spacing| {
        let mut p = Punct::new(c, s);
        p.set_span(start);
        TokenTree::Punct(p)
    };
    [
        p(':', Spacing::Joint),
        p(':', Spacing::Alone),
        TokenTree::Ident(Ident::new("core", start)),
        p(':', Spacing::Joint),
        p(':', Spacing::Alone),
        TokenTree::Ident(Ident::new("compile_error", start)),
        p('!', Spacing::Alone),
        TokenTree::Group(group),
        p(';', Spacing::Alone),
    ]
    .into_iter()
    .collect()
}

/// A stand-in kernel after an error, shaped like the real one so that call sites type-check
/// and the user sees the one error that matters.
fn stub(src: &Source, runtime: &str) -> TokenStream {
    let header = item_header(src).ok().flatten();
    let (name, vis, arity, expression) = match &header {
        Some(h) => (h.name.clone(), h.vis.clone(), h.decls.vars.len(), false),
        None => {
            let mut names: Vec<String> = Vec::new();
            for (k, t) in src.toks.iter().enumerate() {
                let called = matches!(
                    src.toks.get(k + 1).map(|t| &t.kind),
                    Some(TokKind::Open('('))
                );
                if let (TokKind::Ident(n), false) = (&t.kind, called) {
                    let base = n.strip_suffix("_i").or_else(|| n.strip_suffix("_j"));
                    if let Some(b) = base
                        && !b.is_empty()
                        && !names.iter().any(|x| x == b)
                        && !n.ends_with("_Reduction")
                    {
                        names.push(b.to_string());
                    }
                }
            }
            (
                "__KeopsKernel".to_string(),
                "pub".to_string(),
                names.len(),
                true,
            )
        }
    };
    let args: Vec<String> = (0..arity).map(|k| format!("_a{k}: impl Sized")).collect();
    let code = format!(
        "#[allow(non_camel_case_types, dead_code)] #[derive(Copy, Clone, Debug, Default)] {vis} struct {name};
         #[allow(dead_code)] impl {name} {{
             {vis} fn eval<T, R>(&self, {}) -> ::core::result::Result<R, {runtime}::KeopsError> {{ ::core::unreachable!() }}
             {vis} fn formula(&self) -> &'static str {{ \"\" }}
         }}",
        args.join(", ")
    );
    let code = if expression {
        format!("{{ {code} {name} }}")
    } else {
        code
    };
    TokenStream::from_str(&code).unwrap_or_default()
}
