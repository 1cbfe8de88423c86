//! The reduction table: every reduction of the formula language, declared once.
//!
//! A row gives the reduction's name (as in `KMin_Reduction` and `KMin_j`), whether it
//! takes K, and its columns:
//! - [`Rule`]: what is computed per output row, as init / accumulate / merge / finalize.
//!   The reference semantics ([`ReductionKind::init`], ... in `reference.rs`) and the
//!   lowered hooks (`crate::lower::lower_hooks`) follow it, and tests check they agree;
//!   the output and accumulator widths follow from it too;
//! - [`Weight`]: whether it takes a second formula G;
//! - [`Backward`]: how its gradient is computed (`Program::grad`);
//! - [`CpuTile`]: the loop the CPU emitter writes for a tile;
//! - [`GpuFlags`]: what the GPU schemes do differently for it.
//!
//! Code that depends on a reduction matches exhaustively on these columns, never on the
//! rows: a new reduction that follows an existing rule is one row (plus tests), and a new
//! rule makes the compiler list every place that must handle it. Each row is checked by
//! `tests/reduction_table.rs` (consistency of the columns, names, and that every row is
//! covered by the numerical tests).
//!
//! Semantics users rely on:
//! - ties go to the lowest index; a NaN never wins a Min/Max comparison;
//! - with K > N the missing KMin slots hold +inf and the index [`INDEX_NONE`];
//! - LogSumExp of an empty or all -inf row is -inf; NaN propagates;
//! - SumSoftMaxWeight of an empty or all -inf row is NaN (0 / 0).

mod reference;
mod table;

pub use reference::{Acc, beats, lse_accumulate, lse_merge};
pub use table::{
    Backward, CpuTile, GpuFlags, INDEX_NONE, Order, REDUCTIONS, ReductionId, ReductionKind,
    ReductionSpec, Rule, Selected, Weight,
};
