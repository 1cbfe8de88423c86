//! The documented limits of the compiler, and the one way it recurses over a formula.
//!
//! A formula can come from a request or a configuration file, so every size the compiler
//! computes from it is bounded here and checked (`checked_mul`/`checked_add`); going past
//! a limit is an [`ErrorKind::Limit`] error naming the operation
//! and the number, never a panic or an allocation abort. `docs/reliability.md` lists them
//! with what every other bad input gets.
//!
//! Where each is checked:
//! - [`MAX_ARG_INDEX`], [`MAX_WIDTH`] of declarations, `Zero(n)` and [`MAX_K`]: by the
//!   checker, at the user's token;
//! - [`MAX_WIDTH`] of every intermediate result: by the dimension rules of the operations
//!   that make a vector wider than their arguments (Concat, TensorProd, TensorDot, Kron,
//!   SumT, OneHot, ElemT, ExtractT, Real2Complex, ...), the output of a reduction
//!   (`K` times the formula's width) by the checker, and every width again when
//!   [`Program::instantiate`](crate::Program::instantiate) gives the symbolic ones a value;
//! - [`MAX_WORK`]: by the dimension rules of SoftDTW and TensorDot, and at instantiation;
//! - [`MAX_EVAL_VALUES`]: by [`Program::evaluate`](crate::Program::evaluate), for its
//!   inputs and every buffer it allocates (which it reserves with `try_reserve_exact`,
//!   so that memory running out is an error too).
//!
//! Walks over a formula (parse, check, differentiate, lower, evaluate, emit) recurse once
//! per level of nesting; they call [`deep`] at each level, which moves to a new stack
//! segment on the heap when the current one runs low (the `stacker` crate, as rustc does).
//! A formula of any depth thus runs on any thread, a spawned thread's 2 MiB included;
//! its size is what is bounded ([`crate::builder::NODE_LIMIT`]).

use crate::error::{Error, ErrorKind};
use std::fmt::Display;

/// Largest argument index (`Var(index, ...)`, `Vi(index, ...)`): arguments are numbered
/// from 0, so at most `MAX_ARG_INDEX + 1` of them.
pub const MAX_ARG_INDEX: usize = 65_535;

/// Largest width of a vector (a variable, a constant, a zero, any intermediate result,
/// a reduction's output row). 2^20: the product of two widths fits in 40 bits, so no
/// dimension rule can overflow on widths that passed this check.
pub const MAX_WIDTH: usize = 1 << 20;

/// Largest `K` of the K-selection reductions (`KMin`, `ArgKMin`, `KMin_ArgKMin`); the
/// output row, `K` times the formula's width, is bounded by [`MAX_WIDTH`] as well.
pub const MAX_K: usize = 1 << 20;

/// Largest number of scalar terms one operation computes for one pair (i, j) beyond its
/// arguments and result: the `n x m` table of `SoftDTW_SqDist` over sequences of lengths
/// `n` and `m`, the products summed by a `TensorDot`. 2^24 terms (128 MiB of f64 for the
/// reference evaluator's table) is far past what a kernel can lower
/// ([`crate::lower::INSTRUCTION_LIMIT`]).
pub const MAX_WORK: usize = 1 << 24;

/// Largest number of values of one array of an evaluation (an input's rows x width, an
/// output's or an intermediate buffer's rows x width): 2^31 values, 16 GiB of f64.
pub const MAX_EVAL_VALUES: usize = 1 << 31;

/// Stack kept free before a walk moves to a new segment: enough for the deepest frame of
/// one level of any walk (debug builds included).
const RED_ZONE: usize = 128 * 1024;

/// Size of each new stack segment.
const SEGMENT: usize = 4 * 1024 * 1024;

/// Runs one level of a recursive walk, on a new stack segment if the current one is low.
#[inline]
pub fn deep<T>(f: impl FnOnce() -> T) -> T {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}

/// Runs `f` with at least `bytes` of stack, on a new segment of that size when the
/// current one has less: for a walk that recurses without calling [`deep`] (another
/// crate's, e.g. `syn` reading a token tree), given a bound on the stack it needs (its
/// depth times its frames).
pub fn with_stack<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    let need = bytes.saturating_add(RED_ZONE);
    stacker::maybe_grow(need, need.saturating_add(SEGMENT), f)
}

/// The error of a number past a limit: "`what` `n` is past the limit `limit`", of kind
/// [`ErrorKind::Limit`] (`what` names the operation and the quantity, e.g. "Var index").
pub fn past_limit(what: impl Display, n: impl Display, limit: usize) -> Error {
    Error::new(
        ErrorKind::Limit,
        format!("{what} {n} is past the limit {limit}"),
    )
}
