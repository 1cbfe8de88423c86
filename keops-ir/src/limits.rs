//! The documented limits of the compiler, and the one way it recurses over a formula.
//!
//! A formula can come from a request or a configuration file, so every size the compiler
//! computes from it is bounded here and checked (`checked_mul`/`checked_add`); going past
//! a limit is an [`ErrorKind::Limit`](crate::ErrorKind::Limit) error naming the operation
//! and the number, never a panic or an allocation abort. `docs/reliability.md` lists them
//! with what every other bad input gets.
//!
//! Walks over a formula (parse, check, differentiate, lower, evaluate, emit) recurse once
//! per level of nesting; they call [`deep`] at each level, which moves to a new stack
//! segment on the heap when the current one runs low (the `stacker` crate, as rustc does).
//! A formula of any depth thus runs on any thread, a spawned thread's 2 MiB included;
//! its size is what is bounded ([`crate::builder::NODE_LIMIT`]).

/// Largest argument index (`Var(index, ...)`, `Vi(index, ...)`): arguments are numbered
/// from 0, so at most `MAX_ARG_INDEX + 1` of them.
pub const MAX_ARG_INDEX: usize = 65_535;

/// Largest width of a vector (a variable, a constant, a zero, any intermediate result).
pub const MAX_WIDTH: usize = 1 << 20;

/// Largest `K` of the K-selection reductions (`KMin`, `ArgKMin`, `KMin_ArgKMin`).
pub const MAX_K: usize = 1 << 20;

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
