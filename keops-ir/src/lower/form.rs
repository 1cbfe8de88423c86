//! The lowered form of a kernel: its inputs, the reduction's hooks and the blocks, with
//! the precision and summation mode they are emitted for. Definitions only: the lowering
//! itself is in [`crate::lower`], the math expansions in [`crate::lower::math`].

use crate::graph::{Cat, VarId, VarSource};
use crate::lower::builder::Block;
use crate::lower::scalar::Ty;
use crate::reduction::ReductionKind;
use std::fmt;

/// A variable read by a kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelInput {
    /// The variable.
    pub var: VarId,
    /// Its indexing.
    pub cat: Cat,
    /// Its data.
    pub source: VarSource,
    /// Its width.
    pub dim: usize,
}

/// Floating-point precision of an emitted kernel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32.
    F32,
    /// f64.
    F64,
}

/// How Sum reductions accumulate inside one thread.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SumMode {
    /// Plain running sums (blocking is done by the kernel's tiles through `merge`).
    #[default]
    Plain,
    /// Compensated sums: the accumulator holds sums then compensations.
    Kahan,
}

/// The reduction's four hooks as blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct Hooks {
    /// Types of the accumulator registers, in order.
    pub acc: Vec<Ty>,
    /// `() -> acc`
    pub init: Block,
    /// `(acc, f values, g values, j) -> acc`
    pub accumulate: Block,
    /// `(acc, acc) -> acc`
    pub merge: Block,
    /// `(acc) -> (output values, output indices)`
    pub finalize: Block,
    /// Number of output values per row.
    pub out_values: usize,
    /// Number of output indices per row.
    pub out_indices: usize,
}

impl Hooks {
    /// The hooks with each block replaced by `f` of it, called in the order init,
    /// accumulate, merge, finalize (rewrites through one [`Lower`](crate::lower::Lower) number their
    /// registers in that order).
    pub fn map_blocks(&self, mut f: impl FnMut(&Block) -> Block) -> Hooks {
        let init = f(&self.init);
        let accumulate = f(&self.accumulate);
        let merge = f(&self.merge);
        let finalize = f(&self.finalize);
        Hooks {
            init,
            accumulate,
            merge,
            finalize,
            ..self.clone()
        }
    }
}

/// A lowered reduction kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct LoweredKernel {
    /// The reduction.
    pub kind: ReductionKind,
    /// Output indexing.
    pub out_rows: Cat,
    /// Types of all registers.
    pub tys: Vec<Ty>,
    /// Variables, in the order of the formula block's parameters.
    pub inputs: Vec<KernelInput>,
    /// `(input components) -> (F values, G values)`.
    pub formula: Block,
    /// Dimension of F.
    pub fdim: usize,
    /// Dimension of G (1 when absent).
    pub gdim: usize,
    /// The reduction's hooks.
    pub hooks: Hooks,
}

impl fmt::Display for LoweredKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kernel {}({:?}) F:{} G:{}",
            self.kind, self.out_rows, self.fdim, self.gdim
        )?;
        for i in &self.inputs {
            writeln!(
                f,
                "  input var{} {:?} {:?} dim {}",
                i.var.0, i.cat, i.source, i.dim
            )?;
        }
        writeln!(f, "formula {}", self.formula)?;
        writeln!(f, "init {}", self.hooks.init)?;
        writeln!(f, "accumulate {}", self.hooks.accumulate)?;
        writeln!(f, "merge {}", self.hooks.merge)?;
        write!(f, "finalize {}", self.hooks.finalize)
    }
}
