//! Small token builders shared by the emitters: identifiers, literals written exactly as
//! the generated code has always spelled them (unsuffixed counts, suffixed constants,
//! float bits in hexadecimal), doc attributes.

use keops_ir::lower::Precision;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{ToTokens, quote};
use std::str::FromStr;

/// An identifier at the macro's call site.
pub(crate) fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// An unsuffixed integer literal (`3`), for counts, widths and indices. Interpolating a
/// `usize` in `quote!` would write `3usize`.
pub(crate) fn num(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// A literal from its exact text (`0x3f800000`, `0f32`): generated code keeps its
/// spelling.
pub(crate) fn literal(text: &str) -> Literal {
    Literal::from_str(text).unwrap_or_else(|e| panic!("bad literal `{text}`: {e:?}"))
}

/// A signed number from its text (`-2`, `5i64`): a negative one is `-` followed by the
/// literal, as the number is lexed in source text.
pub(crate) fn signed(text: &str) -> TokenStream {
    match text.strip_prefix('-') {
        Some(abs) => {
            let lit = literal(abs);
            quote!(- #lit)
        }
        None => literal(text).into_token_stream(),
    }
}

/// An unsuffixed signed integer (`2`, `-2`).
pub(crate) fn int(v: impl std::fmt::Display) -> TokenStream {
    signed(&v.to_string())
}

/// A float as Rust's `{:?}` writes it (`0.0`, `-1.5`, `1e-7`); non-finite values as the
/// `f64` constants.
pub(crate) fn float_debug(v: f64) -> TokenStream {
    if v.is_nan() {
        quote!(f64::NAN)
    } else if v.is_infinite() {
        let sign = (v < 0.0).then(|| quote!(-));
        quote!(#sign f64::INFINITY)
    } else {
        signed(&format!("{v:?}"))
    }
}

/// `#[doc = "<text>"]`: the attribute of the doc comment `///<text>`.
pub(crate) fn doc(text: &str) -> TokenStream {
    let lit = Literal::string(text);
    quote!(#[doc = #lit])
}

/// The name of a precision's float type.
pub(crate) fn float_name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    }
}

/// The float type of a precision.
pub(crate) fn float(p: Precision) -> Ident {
    ident(float_name(p))
}
