//! The reduction table itself: the columns, the rows (one per reduction) and the lookups
//! by name; see [`crate::reduction`] for what each column means.

use crate::dim::Dim;
use std::fmt;

/// The index stored where no element was selected (K > N, empty or all-NaN rows).
pub const INDEX_NONE: u64 = u64::MAX;

/// Which of two values a selection prefers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Order {
    /// The smaller (Min, ArgMin, KMin, ...).
    Smaller,
    /// The larger (Max, ArgMax, ...).
    Larger,
}

/// What a selection outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selected {
    /// The selected values.
    Values,
    /// Their indices.
    Indices,
    /// Both: values, then indices.
    Both,
}

impl Selected {
    /// Whether the output has the values.
    pub fn values(self) -> bool {
        matches!(self, Selected::Values | Selected::Both)
    }

    /// Whether the output has the indices.
    pub fn indices(self) -> bool {
        matches!(self, Selected::Indices | Selected::Both)
    }
}

/// What a reduction computes per output row.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// Running sums of F's coordinates: accumulator and output of F's width.
    Sum,
    /// For each coordinate of F, the K best values (K = 1 for the reductions without K)
    /// in order, with their indices: ties go to the lowest index and NaN is never
    /// selected. Accumulator: K slots of values then K slots of indices per coordinate,
    /// laid out `[slot][coordinate]`.
    Select {
        /// Which values are best.
        order: Order,
        /// What is output.
        output: Selected,
    },
    /// `log sum_j exp(F) G` (G = 1 when absent) of a scalar F in one stable pass:
    /// accumulator `(m, s_1..s_g)` with `s = sum exp(F - m) G`; output `m + log s`.
    LogSumExp,
    /// `sum_j exp(F) G / sum_j exp(F)` of a scalar F: accumulator `(m, s, t_1..t_g)` with
    /// `s = sum exp(F - m)` and `t = sum exp(F - m) G`; output `t / s`.
    SoftMaxWeight,
}

/// Whether a reduction takes a second formula G.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Weight {
    /// Never.
    None,
    /// Optionally (LogSumExp's weights; 1 when absent).
    Optional,
    /// Always (the values averaged by SumSoftMaxWeight).
    Required,
}

/// How the gradient of `<E, output>` is computed (see `Program::grad`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backward {
    /// Sum is linear: the gradient of F weighted by E, reduced over the other index.
    Linear,
    /// The gradients of F (and G) weighted by the softmax weights `exp(F - output)`.
    LogSumExp,
    /// Through the softmax weights `exp(F - LogSumExp(F))`, the weights G and the output:
    /// a LogSumExp step first, then Sum reductions.
    SoftMaxWeight,
    /// The gradient of F at the selected pairs only (a gather step), from this
    /// reduction's indices or, when it outputs none, from a forward step of its variant
    /// with indices ([`ReductionKind::with_indices`]).
    Selected,
    /// The output has no values (indices only): the gradient is zero.
    Zero,
}

/// The loop the CPU emitter writes for one tile of the reduced index.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CpuTile {
    /// One accumulator per SIMD lane, merged into the row's in lane order at the end of
    /// the tile.
    Lanes,
    /// A chunk of lanes is compared with the row's worst kept values (a vector test that
    /// almost always fails once the row has K good values); only the lanes that pass are
    /// inserted, one by one in index order, into the row's accumulator.
    Select,
    /// An unweighted LogSumExp of a formula that varies with the reduced index: blocks of
    /// two passes, the maximum M then the sum of `exp(f - M)` (one exponential per term
    /// and no rescaling); [`CpuTile::Lanes`] otherwise.
    TwoPassLogSumExp,
}

/// What the GPU reduction schemes do differently for a reduction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GpuFlags {
    /// In f32, the running sum of each tile is kept apart and added to the row's sum tile
    /// by tile (less rounding error), and the kernels exist in an f64-accumulation variant
    /// (`Options::f64_accumulation`).
    pub tile_sums: bool,
}

/// One row of the reduction table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReductionSpec {
    /// Name in both syntaxes: `{name}_Reduction(F, ..)` and `{name}_j(F, ..)`.
    pub name: &'static str,
    /// Whether it takes K, the number of values kept per coordinate.
    pub takes_k: bool,
    /// What is computed.
    pub rule: Rule,
    /// Its second formula.
    pub weight: Weight,
    /// How its gradient is computed.
    pub backward: Backward,
    /// The CPU emitter's tile loop.
    pub cpu_tile: CpuTile,
    /// The GPU schemes' flags.
    pub gpu: GpuFlags,
}

/// The columns of a row whose name and K the table fills in.
const fn columns(
    rule: Rule,
    weight: Weight,
    backward: Backward,
    cpu_tile: CpuTile,
    gpu: GpuFlags,
) -> ReductionSpec {
    ReductionSpec {
        name: "",
        takes_k: false,
        rule,
        weight,
        backward,
        cpu_tile,
        gpu,
    }
}

/// The columns of a selection (Min, ArgKMin, ...): the gradient goes through the
/// selected pairs, or is zero without values.
const fn select(order: Order, output: Selected) -> ReductionSpec {
    let backward = match output {
        Selected::Values | Selected::Both => Backward::Selected,
        Selected::Indices => Backward::Zero,
    };
    columns(
        Rule::Select { order, output },
        Weight::None,
        backward,
        CpuTile::Select,
        GpuFlags { tile_sums: false },
    )
}

/// The type of K in a row's variant.
macro_rules! k_type {
    ($k:ident) => {
        usize
    };
}

/// `Some(k)` for a row with K, `None` otherwise.
macro_rules! k_value {
    () => {
        None
    };
    ($k:ident) => {
        Some($k)
    };
}

/// Whether a row takes K.
macro_rules! takes_k {
    () => {
        false
    };
    ($k:ident) => {
        true
    };
}

macro_rules! reduction_table {
    ($( $(#[$doc:meta])* $variant:ident $(($k:ident))? $name:literal => $columns:expr, )*) => {
        /// A reduction over i or j, with its K (see the table in [`REDUCTIONS`]).
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum ReductionKind {
            $( $(#[$doc])* $variant $((k_type!($k)))?, )*
        }

        /// A row of the reduction table: a [`ReductionKind`] without its K.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ReductionId {
            $( $(#[$doc])* $variant, )*
        }

        /// The reduction table, indexed by [`ReductionId`].
        pub static REDUCTIONS: &[ReductionSpec] = &[
            $( ReductionSpec { name: $name, takes_k: takes_k!($($k)?), ..$columns }, )*
        ];

        impl ReductionId {
            /// Every reduction, in table order.
            pub const ALL: &'static [ReductionId] = &[$(ReductionId::$variant),*];

            /// The reduction of this row with K = `k` (ignored by rows without K).
            pub fn with_k(self, k: usize) -> ReductionKind {
                // `k` is read by the rows with K only.
                let _ = k;
                match self {
                    $( ReductionId::$variant => ReductionKind::$variant $(({ let $k = k; $k }))?, )*
                }
            }
        }

        impl ReductionKind {
            /// The row of the table.
            pub fn id(self) -> ReductionId {
                match self {
                    $( ReductionKind::$variant { .. } => ReductionId::$variant, )*
                }
            }

            /// K, for the reductions that take it.
            pub fn k(self) -> Option<usize> {
                match self {
                    $( ReductionKind::$variant $(($k))? => k_value!($($k)?), )*
                }
            }
        }
    };
}

use Backward as B;
use CpuTile as T;
use Order::{Larger, Smaller};
use Selected::{Both, Indices, Values};

reduction_table! {
    /// Sum.
    Sum "Sum" => columns(Rule::Sum, Weight::None, B::Linear, T::Lanes, GpuFlags { tile_sums: true }),
    /// Coordinate-wise minimum.
    Min "Min" => select(Smaller, Values),
    /// Coordinate-wise maximum.
    Max "Max" => select(Larger, Values),
    /// Index of the minimum.
    ArgMin "ArgMin" => select(Smaller, Indices),
    /// Index of the maximum.
    ArgMax "ArgMax" => select(Larger, Indices),
    /// Minimum and its index.
    MinArgMin "Min_ArgMin" => select(Smaller, Both),
    /// Maximum and its index.
    MaxArgMax "Max_ArgMax" => select(Larger, Both),
    /// The K smallest values, ascending.
    KMin(k) "KMin" => select(Smaller, Values),
    /// Indices of the K smallest values.
    ArgKMin(k) "ArgKMin" => select(Smaller, Indices),
    /// The K smallest values and their indices.
    KMinArgKMin(k) "KMin_ArgKMin" => select(Smaller, Both),
    /// `log sum_j exp(F)` (times G when weighted), computed in one stable pass.
    LogSumExp "LogSumExp" => columns(Rule::LogSumExp, Weight::Optional, B::LogSumExp, T::TwoPassLogSumExp, GpuFlags { tile_sums: false }),
    /// `sum_j exp(F) G / sum_j exp(F)`.
    SumSoftMaxWeight "SumSoftMaxWeight" => columns(Rule::SoftMaxWeight, Weight::Required, B::SoftMaxWeight, T::Lanes, GpuFlags { tile_sums: false }),
}

impl ReductionId {
    /// The table row.
    pub fn spec(self) -> &'static ReductionSpec {
        &REDUCTIONS[self as usize]
    }

    /// Looks a reduction up by its base name (`"KMin"` of `KMin_Reduction`, `KMin_j`).
    pub fn from_name(name: &str) -> Option<ReductionId> {
        ReductionId::ALL
            .iter()
            .copied()
            .find(|id| id.spec().name == name)
    }
}

impl ReductionKind {
    /// The table row.
    pub fn spec(self) -> &'static ReductionSpec {
        self.id().spec()
    }

    /// Base name (`"KMin"`), as in `KMin_Reduction` and `KMin_j`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// What it computes.
    pub fn rule(self) -> Rule {
        self.spec().rule
    }

    /// Number of slots per coordinate of F (K for the KMin family, else 1).
    pub fn slots(self) -> usize {
        self.k().unwrap_or(1)
    }

    /// Whether this is a Min/Max/KMin-type selection.
    pub fn selects(self) -> bool {
        self.order().is_some()
    }

    /// For selections: which values are best.
    pub fn order(self) -> Option<Order> {
        match self.rule() {
            Rule::Select { order, .. } => Some(order),
            Rule::Sum | Rule::LogSumExp | Rule::SoftMaxWeight => None,
        }
    }

    /// Whether this is a plain sum (whose summation the evaluators and kernels may
    /// block, compensate or widen).
    pub fn is_sum(self) -> bool {
        match self.rule() {
            Rule::Sum => true,
            Rule::Select { .. } | Rule::LogSumExp | Rule::SoftMaxWeight => false,
        }
    }

    /// Whether the output has values.
    pub fn has_values(self) -> bool {
        match self.rule() {
            Rule::Sum | Rule::LogSumExp | Rule::SoftMaxWeight => true,
            Rule::Select { output, .. } => output.values(),
        }
    }

    /// Whether the output has indices.
    pub fn has_indices(self) -> bool {
        match self.rule() {
            Rule::Sum | Rule::LogSumExp | Rule::SoftMaxWeight => false,
            Rule::Select { output, .. } => output.indices(),
        }
    }

    /// Whether it may take a second formula G.
    pub fn takes_weight(self) -> bool {
        match self.spec().weight {
            Weight::None => false,
            Weight::Optional | Weight::Required => true,
        }
    }

    /// Whether F must be a scalar (the exponential reductions).
    pub fn needs_scalar_formula(self) -> bool {
        match self.rule() {
            Rule::Sum | Rule::Select { .. } => false,
            Rule::LogSumExp | Rule::SoftMaxWeight => true,
        }
    }

    /// The output widths (values, indices) per row, for F of width `f` and G of width `g`
    /// (1 when absent), symbolic or not.
    pub fn output_dims(self, f: &Dim, g: &Dim) -> (Dim, Dim) {
        let k = self.slots();
        match self.rule() {
            Rule::Sum => (f.clone(), Dim::known(0)),
            Rule::LogSumExp | Rule::SoftMaxWeight => (g.clone(), Dim::known(0)),
            Rule::Select { output, .. } => {
                let selected = |yes: bool| if yes { f.scale(k) } else { Dim::known(0) };
                (selected(output.values()), selected(output.indices()))
            }
        }
    }

    /// Output width (values, indices) per row, for F of dimension `f` and G of dimension `g`
    /// (`g` is 1 for an unweighted LogSumExp).
    pub fn output_width(self, f: usize, g: usize) -> (usize, usize) {
        // Past `usize::MAX` it saturates: far past the limits checked on the output.
        let sel = f.saturating_mul(self.slots());
        match self.rule() {
            Rule::Sum => (f, 0),
            Rule::LogSumExp | Rule::SoftMaxWeight => (g, 0),
            Rule::Select { output, .. } => (
                if output.values() { sel } else { 0 },
                if output.indices() { sel } else { 0 },
            ),
        }
    }

    /// Accumulator width (floats, indices), for F of dimension `f` and G of dimension `g`.
    pub fn acc_width(self, f: usize, g: usize) -> (usize, usize) {
        match self.rule() {
            Rule::Sum => (f, 0),
            Rule::LogSumExp => (1 + g, 0),
            Rule::SoftMaxWeight => (2 + g, 0),
            Rule::Select { .. } => {
                let sel = f.saturating_mul(self.slots());
                (sel, sel)
            }
        }
    }

    /// Number of leading float registers of the accumulator that are shared by all the
    /// coordinates of G (the running maximum of LogSumExp; the maximum and the sum of
    /// SumSoftMaxWeight): emitters that run the one-coordinate hooks per coordinate keep
    /// one copy of them.
    pub fn shared_state(self) -> usize {
        match self.rule() {
            Rule::Sum | Rule::Select { .. } => 0,
            Rule::LogSumExp => 1,
            Rule::SoftMaxWeight => 2,
        }
    }

    /// For a selection without indices (Min, Max, KMin): the reduction of the same row
    /// family that outputs the values and their indices (Min_ArgMin, Max_ArgMax,
    /// KMin_ArgKMin), whose forward step gives the gradient its indices. `None` for the
    /// other reductions.
    pub fn with_indices(self) -> Option<ReductionKind> {
        let Rule::Select { order, output } = self.rule() else {
            return None;
        };
        if output.indices() {
            return None;
        }
        let takes_k = self.spec().takes_k;
        ReductionId::ALL
            .iter()
            .find(|id| {
                id.spec().takes_k == takes_k
                    && id.spec().rule
                        == Rule::Select {
                            order,
                            output: Selected::Both,
                        }
            })
            .map(|id| id.with_k(self.slots()))
    }
}

impl fmt::Display for ReductionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
