//! Compile-fail tests of the `keops!` macro: each `tests/ui/*.rs` must fail to build with
//! the error checked into the `.stderr` beside it (the caret at the user's tokens, a message
//! saying what to do, and no cascade of errors at the call sites).
//!
//! After changing a message, regenerate with `TRYBUILD=overwrite cargo test --test ui` and
//! read every changed `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
