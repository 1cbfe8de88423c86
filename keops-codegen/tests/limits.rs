//! A deeply nested formula goes through the whole `keops!` expansion (syn's reading of
//! the input, parsing, checking, lowering, emission) on a thread with a 2 MiB stack.

use keops_codegen::expand::expand;
use keops_codegen::paths::Runtime;
use proc_macro2::TokenStream;
use quote::quote;
use std::str::FromStr;
use std::time::Instant;

/// Levels of nesting: smaller than keops-ir's tests, the expansion writing the kernels.
const DEEP: usize = 20_000;

/// Expands `text` on a 2 MiB thread; the expansion must have no `compile_error!`.
fn expand_on_small_stack(label: &'static str, text: String) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let t = Instant::now();
            let input = TokenStream::from_str(&text).expect("the formula lexes");
            let out = expand(input, &Runtime::new(quote!(rt))).to_string();
            println!("{label}: {:?}, {} bytes of code", t.elapsed(), out.len());
            assert!(
                !out.contains("compile_error"),
                "{label}: {}",
                &out[..out.len().min(2000)]
            );
            assert!(out.contains("CpuReduce"), "{label}: no CPU kernel");
        })
        .expect("spawn")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}

#[test]
fn nested_parentheses_expand_on_a_small_stack() {
    let text = format!(
        "x_i: 1; y_j: 1; Sum_j({}x_i{} * y_j)",
        "(".repeat(DEEP),
        ")".repeat(DEEP)
    );
    expand_on_small_stack("parentheses", text);
}

#[test]
fn item_form_with_nested_calls_expands_on_a_small_stack() {
    let text = format!(
        "pub deep_abs(x_i: 1, y_j: 1) = Sum_j({}x_i{} * y_j)",
        "Abs(".repeat(DEEP),
        ")".repeat(DEEP)
    );
    expand_on_small_stack("nested Abs", text);
}

#[test]
fn long_chains_expand_on_a_small_stack() {
    let terms: Vec<&str> = (0..DEEP)
        .map(|k| if k % 2 == 0 { "x_i" } else { "y_j" })
        .collect();
    let text = format!("x_i: 1; y_j: 1; Sum_j({})", terms.join(" + "));
    expand_on_small_stack("chain", text);
}

#[test]
fn string_literal_with_nested_parentheses_expands_on_a_small_stack() {
    // The formula as one string literal: its tokens are re-spanned (a walk over groups).
    let formula = format!(
        "x = Vi(0, 1); y = Vj(1, 1); Sum_Reduction({}x{} * y, 0)",
        "(".repeat(DEEP),
        ")".repeat(DEEP)
    );
    expand_on_small_stack("string literal", format!("{formula:?}"));
}
