//! The reduction schemes, as kernel IR built around a lowered reduction.
//!
//! **1D scheme** (KeOps' default): one thread per output row. The row's variables and the
//! accumulator live in registers; the reduced index is walked in tiles of `tile rows`
//! rows (a launch parameter, at most the block size), which the block's threads copy
//! cooperatively into shared memory (coalesced, element by element), then every thread
//! evaluates its formula against the whole tile. Sums in f32 are accumulated per tile and
//! the tile's sum added to the running sum (KeOps' block sums: the rounding error grows
//! with `N / tile + tile` instead of `N`). With [`KernelOptions::f64_accumulation`], the
//! f32 sum of every [`FLUSH_ROWS`] rows is added into an f64 running sum instead (a
//! conversion and an f64 addition per 16 pairs and output column).
//!
//! **2D scheme**: blocks also split the reduced index (grid y): block `(x, y)` reduces its
//! rows over slice `y` and writes its partial accumulators to a buffer
//! `[slices][rows][accumulator]`; a second kernel merges them row by row, in slice order,
//! and finalizes. For few output rows, where one thread per row would leave the GPU idle.
//!
//! **Chunks**, for wide formulas (`D` of 300 to 1000): the output columns are split into
//! chunks whose accumulator fits in [`ACC_REGISTERS`] registers; each chunk is its own set
//! of kernels computing only its columns (the rest of the formula is dead code for it), so
//! that `K(x_i, y_j) * b_j` with `b_j` of dimension 300 computes `K` once per chunk and
//! never holds 300 accumulators. Whatever the chunking, values staged in shared memory
//! are read where the formula first uses them and instructions are scheduled depth first,
//! so that `SqDist(x_i, y_j)` over `D = 1000` holds a few values at a time; output-row
//! variables wider than [`ROW_REGISTERS`] are read from global memory at their use
//! instead of being held in registers.
//!
//! Kernel parameters, all u64: see [`param`].

use crate::fast_math;
use crate::kir::{ICmp, IOp, KBuilder, KInst, KReg, KTy, Kernel, Label, Space, Special};
use keops_ir::graph::Cat;
use keops_ir::lower::{
    Block, Inst, KernelInput, Lower, LoweredKernel, Precision, Reg, SOp, SumMode, Ty, lower_hooks,
};
use keops_ir::reduction::{Order, ReductionKind};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// Positions of the kernels' parameters (all u64).
pub mod param {
    /// Number of output rows.
    pub const N_OUTER: usize = 0;
    /// Number of reduced rows.
    pub const N_INNER: usize = 1;
    /// Output values: `[rows][values]` floats.
    pub const OUT_VALUES: usize = 2;
    /// Output indices: `[rows][indices]` u64.
    pub const OUT_INDICES: usize = 3;
    /// Rows of a tile (at most the block size); the launch gives
    /// `tile rows * Kernel::shared_per_row` bytes of shared memory.
    pub const TILE_ROWS: usize = 4;
    /// Added to the reduced index given to the reduction (selections' indices): the first
    /// reduced row of the data passed, when the reduced index is processed in pieces.
    pub const J_OFFSET: usize = 5;
    /// The first input pointer; inputs follow in the lowered kernel's order. Then come
    /// the partial floats pointer, the partial indices pointer (unused by the 1D scheme),
    /// and the slice length (reduction kernel: at least N for the 1D scheme) or the
    /// number of slices (merge kernel). The merge kernel takes one more: whether it
    /// finalizes and stores the outputs (non-zero) or stores the merged accumulator in
    /// slice 0 (zero: the reduced index is processed in pieces, each piece's slices merged
    /// into slice 0 before the next piece writes its own).
    pub const FIRST_INPUT: usize = 6;
}

/// Most 32-bit registers an accumulator may take before the output is split into chunks
/// (f32 sums count twice: running and tile sums).
pub const ACC_REGISTERS: usize = 64;

/// Rows whose f32 sum is added into an f64 running sum at a time (the CPU kernels' 16
/// terms per lane): with [`KernelOptions::f64_accumulation`].
pub const FLUSH_ROWS: u32 = 16;

/// Most instructions (loads included) of a value recomputed at each use rather than kept
/// alive (see `formula_at`).
const REMAT_COST: usize = 4;

/// Most 32-bit registers that output-row variables and parameters may take; beyond,
/// they are read from global memory where used.
pub const ROW_REGISTERS: usize = 64;

/// The kernels computing some output columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkKernels {
    /// Columns computed: of F, or of G for weighted reductions (LogSumExp with a weight,
    /// SumSoftMaxWeight).
    pub columns: Range<usize>,
    /// Floats of the accumulator (per row of the 2D partials buffer), in the data's float
    /// size: an f64 accumulator of an f32 kernel counts 2.
    pub acc_floats: usize,
    /// Indices of the accumulator (per row of the 2D partials buffer).
    pub acc_indices: usize,
    /// The reduction kernel (both schemes).
    pub reduce: Kernel,
    /// The 2D scheme's merge kernel.
    pub merge: Kernel,
}

/// Every kernel of one reduction, in one precision.
#[derive(Clone, Debug, PartialEq)]
pub struct ReductionKernels {
    /// Float type.
    pub precision: Precision,
    /// The reduction.
    pub kind: ReductionKind,
    /// Output indexing (the other index is reduced).
    pub out_rows: Cat,
    /// Inputs, in the order of the pointer parameters.
    pub inputs: Vec<KernelInput>,
    /// Output values per row.
    pub out_values: usize,
    /// Output indices per row.
    pub out_indices: usize,
    /// Chunks of output columns (one when the accumulator fits in registers).
    pub chunks: Vec<ChunkKernels>,
}

impl ReductionKernels {
    /// All kernels, for a module.
    pub fn kernels(&self) -> impl Iterator<Item = &Kernel> {
        self.chunks.iter().flat_map(|c| [&c.reduce, &c.merge])
    }
}

/// Bytes of a float.
pub fn float_size(p: Precision) -> u64 {
    match p {
        Precision::F32 => 4,
        Precision::F64 => 8,
    }
}

/// Whether the running sum is accumulated tile by tile (f32 sums: the table's
/// `GpuFlags::tile_sums`).
fn block_sum(kind: ReductionKind, p: Precision) -> bool {
    kind.spec().gpu.tile_sums && p == Precision::F32
}

/// Whether the running sum is an f64 accumulator of the f32 tile sums.
fn wide_sum(kind: ReductionKind, p: Precision, opts: &KernelOptions) -> bool {
    opts.f64_accumulation && block_sum(kind, p)
}

/// Accumulator registers for output columns of width `w`.
fn acc_registers(
    k: &LoweredKernel,
    weighted: bool,
    w: usize,
    p: Precision,
    opts: &KernelOptions,
) -> usize {
    let (f, g) = if weighted { (k.fdim, w) } else { (w, k.gdim) };
    let (nf, ni) = k.kind.acc_width(f, g);
    let fw = float_size(p) as usize / 4;
    let regs = nf * fw + 2 * ni;
    if wide_sum(k.kind, p, opts) {
        // An f64 running sum and an f32 tile sum per float.
        3 * regs
    } else if block_sum(k.kind, p) {
        2 * regs
    } else {
        regs
    }
}

/// Code generation choices.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KernelOptions {
    /// f32 kernels use the GPU's approximate exp, log, sin, cos, rsqrt and reciprocal (see
    /// [`crate::fast_math`] for their error bounds).
    pub fast_math: bool,
    /// f32 sums add the f32 sum of every [`FLUSH_ROWS`] terms into an f64 running sum,
    /// and the 2D scheme's partial sums are f64: the rounding error is that of 16-term
    /// f32 sums instead of growing with the number of terms. No effect on other
    /// reductions nor in f64.
    pub f64_accumulation: bool,
}

/// All kernels of a lowered reduction (math functions not yet expanded), named
/// `{name}_c{chunk}_{reduce|merge}`.
pub fn reduction_kernels(
    k: &LoweredKernel,
    p: Precision,
    opts: &KernelOptions,
    name: &str,
) -> ReductionKernels {
    let weighted = k.formula.results.len() > k.fdim;
    // Columns that can be computed separately: of G for weighted reductions, of F for
    // the others (coordinate-wise, or of a scalar F).
    let width = if weighted { k.gdim } else { k.fdim };
    let mut per_chunk = width;
    while per_chunk > 1 && acc_registers(k, weighted, per_chunk, p, opts) > ACC_REGISTERS {
        per_chunk = per_chunk.div_ceil(2).min(per_chunk - 1);
    }
    let n = width.div_ceil(per_chunk.max(1)).max(1);
    let (out_values, out_indices) = k
        .kind
        .output_width(k.fdim, if weighted { k.gdim } else { 1 });
    let chunks = (0..n)
        .map(|c| {
            let cols = c * width / n..(c + 1) * width / n;
            chunk_kernels(k, p, opts, weighted, width, cols, &format!("{name}_c{c}"))
        })
        .collect();
    ReductionKernels {
        precision: p,
        kind: k.kind,
        out_rows: k.out_rows,
        inputs: k.inputs.clone(),
        out_values,
        out_indices,
        chunks,
    }
}

/// Restricts a block to some of its results, keeping the instructions they need in depth
/// first order (arguments right before their use), which keeps few values alive.
pub fn schedule(block: &Block, results: Vec<Reg>) -> Block {
    let def: HashMap<Reg, usize> = block
        .insts
        .iter()
        .enumerate()
        .map(|(k, i)| (i.dst, k))
        .collect();
    let mut done = vec![false; block.insts.len()];
    let mut order: Vec<Inst> = Vec::new();
    // Explicit stack: (instruction, next argument to visit); chains of thousands of
    // additions would overflow a recursion.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for r in &results {
        let Some(&root) = def.get(r) else { continue };
        if done[root] {
            continue;
        }
        stack.push((root, 0));
        while let Some((i, next)) = stack.pop() {
            let args = &block.insts[i].args;
            if next < args.len() {
                stack.push((i, next + 1));
                if let Some(&a) = def.get(&args[next])
                    && !done[a]
                {
                    done[a] = true;
                    stack.push((a, 0));
                }
            } else {
                done[i] = true;
                order.push(block.insts[i].clone());
            }
        }
        done[root] = true;
    }
    Block {
        params: block.params.clone(),
        insts: order,
        results,
    }
}

/// Where a formula parameter (one component of an input) is read.
#[derive(Copy, Clone, Debug)]
enum Src {
    /// Held in its register since the prologue.
    Register,
    /// Component `c` of the tile row of staged variable `v`.
    Tile { v: usize, c: u64 },
    /// Component `c` of the row of input `v`, read from global memory at use.
    Global { v: usize, c: u64 },
}

/// How one input is read by a chunk.
#[derive(Clone, Debug)]
struct VarPlan {
    /// Pointer parameter.
    param: usize,
    /// Width of its rows.
    dim: u64,
    /// Live components: `lo..hi`.
    lo: u64,
    hi: u64,
    cat: Cat,
    /// For staged variables: offset of its region, in floats per tile row.
    tile_prefix: u64,
    /// Read from memory at use (staged, or wide output-row variable).
    in_memory: bool,
}

/// The chunk's lowered blocks and how their parameters are read.
struct Plan {
    p: Precision,
    /// The running sum is f64 (see [`KernelOptions::f64_accumulation`]).
    wide_sum: bool,
    kind: ReductionKind,
    out_rows: Cat,
    nin: usize,
    formula: Block,
    hooks: keops_ir::lower::Hooks,
    /// For K-selections: whether a value may enter the accumulator (see
    /// [`selection_guard`]); the accumulation is skipped when it cannot.
    skip_unless: Option<Block>,
    tys: Vec<Ty>,
    vars: Vec<VarPlan>,
    /// Formula parameter register -> (input, component).
    param_of: HashMap<Reg, (usize, u64)>,
    /// Floats per tile row: the staged variables one after the other, padded to a whole
    /// number of 16-byte vectors.
    tile_width: u64,
    /// Output placement of this chunk's columns.
    columns: Range<usize>,
    full_columns: usize,
    out_values: u64,
    out_indices: u64,
}

impl Plan {
    fn src(&self, r: Reg) -> Option<Src> {
        let (v, c) = *self.param_of.get(&r)?;
        let var = &self.vars[v];
        // A component this chunk does not read has no source (nor a tile column).
        if !(var.lo..var.hi).contains(&c) {
            return None;
        }
        if !var.in_memory {
            return Some(Src::Register);
        }
        if var.cat == self.out_rows || var.cat == Cat::P {
            Some(Src::Global { v, c })
        } else {
            Some(Src::Tile { v, c: c - var.lo })
        }
    }

    fn fsize(&self) -> u64 {
        float_size(self.p)
    }

    /// The register type of a running accumulator of type `t`.
    fn acc_ty(&self, t: Ty) -> KTy {
        if self.wide_sum && t == Ty::F {
            KTy::F64
        } else {
            KTy::of(t, self.p)
        }
    }

    /// Floats and indices of the accumulator.
    fn acc_counts(&self) -> (usize, usize) {
        let nf = self.hooks.acc.iter().filter(|t| **t == Ty::F).count();
        (nf, self.hooks.acc.len() - nf)
    }

    /// Bytes of an accumulator float in the 2D scheme's partials buffer.
    fn acc_float_size(&self) -> u64 {
        if self.wide_sum { 8 } else { self.fsize() }
    }

    /// Whether a variable is staged in shared memory tile by tile (the reduced index's).
    fn is_staged(&self, var: &VarPlan) -> bool {
        var.in_memory && var.cat != self.out_rows && var.cat != Cat::P
    }

    /// The formula parameter of column `col` of a staged tile row, if any (else padding or
    /// another chunk's column).
    fn tile_column(&self, col: u64) -> Option<Reg> {
        let (v, var) = self.vars.iter().enumerate().find(|(_, var)| {
            self.is_staged(var)
                && col >= var.tile_prefix
                && col < var.tile_prefix + (var.hi - var.lo)
        })?;
        let c = col - var.tile_prefix + var.lo;
        self.param_of
            .iter()
            .find(|(_, (pv, pc))| *pv == v && *pc == c)
            .map(|(r, _)| *r)
    }
}

/// For a selection of K >= 2 slots of a scalar formula: the block `(worst value, x) -> x
/// may enter the slots` (`x <= worst` for minima, `x >= worst` for maxima; false for NaN),
/// where the worst slot is the last one. The slots are sorted by (value, index), so a value
/// worse than the last slot enters none and the accumulation would leave them as they are:
/// the kernel tests this first and skips the K-step insertion, which almost every value of
/// a long reduction does (the test KeOps' insertion starts with). Equal values go through
/// the insertion, which breaks the tie by index exactly as without the test.
fn selection_guard(
    tys: Vec<Ty>,
    kind: ReductionKind,
    fdim: usize,
    hooks: &keops_ir::lower::Hooks,
) -> (Option<Block>, Vec<Ty>) {
    let slots = kind.slots();
    let (nf, ni) = kind.acc_width(fdim, 0);
    let Some(order) = kind.order() else {
        return (None, tys);
    };
    if slots < 2 || fdim != 1 || hooks.acc.len() != nf + ni || nf != slots {
        return (None, tys);
    }
    let mut l = Lower::with_types(tys);
    let (worst, x) = (l.param(Ty::F), l.param(Ty::F));
    let better = match order {
        Order::Smaller => l.lt(x, worst),
        Order::Larger => l.lt(worst, x),
    };
    let same = l.eq(x, worst);
    let may_enter = l.or(better, same);
    let block = l.finish(vec![worst, x], vec![may_enter]);
    (Some(block), l.tys)
}

/// Floats per 16-byte vector (the widest shared-memory load).
fn vector_len(p: Precision) -> u64 {
    16 / float_size(p)
}

fn plan(
    k: &LoweredKernel,
    p: Precision,
    opts: &KernelOptions,
    weighted: bool,
    width: usize,
    cols: Range<usize>,
) -> Plan {
    let results: Vec<Reg> = if weighted {
        let f = &k.formula.results[..k.fdim];
        f.iter()
            .chain(&k.formula.results[k.fdim + cols.start..k.fdim + cols.end])
            .copied()
            .collect()
    } else if width == k.fdim {
        let mut r = k.formula.results[cols.clone()].to_vec();
        r.extend(&k.formula.results[k.fdim..]);
        r
    } else {
        k.formula.results.clone()
    };
    let (fw, gw) = if weighted {
        (k.fdim, cols.len())
    } else if width == k.fdim {
        (cols.len(), k.gdim)
    } else {
        (k.fdim, k.gdim)
    };
    let restricted = schedule(&k.formula, results);
    let (formula, tys) = fast_math::expand_block(&k.tys, &restricted, p, opts.fast_math);
    let formula = schedule(&formula, formula.results.clone());
    let mut l = Lower::with_types(tys);
    let hooks = lower_hooks(&mut l, k.kind, fw, gw, weighted, SumMode::Plain);
    let (hooks, tys) = fast_math::expand_hooks(&l.tys, &hooks, p, opts.fast_math);
    let (skip_unless, tys) = selection_guard(tys, k.kind, fw, &hooks);

    // Which components of which inputs the chunk reads.
    let mut used: HashSet<Reg> = formula
        .insts
        .iter()
        .flat_map(|i| i.args.iter().copied())
        .collect();
    used.extend(&formula.results);
    let mut param_of = HashMap::new();
    let mut n = 0;
    let mut vars = Vec::new();
    for (v, input) in k.inputs.iter().enumerate() {
        let (mut lo, mut hi) = (u64::MAX, 0);
        for c in 0..input.dim as u64 {
            let r = formula.params[n + c as usize];
            param_of.insert(r, (v, c));
            if used.contains(&r) {
                lo = lo.min(c);
                hi = hi.max(c + 1);
            }
        }
        n += input.dim;
        vars.push(VarPlan {
            param: param::FIRST_INPUT + v,
            dim: input.dim as u64,
            lo: lo.min(hi),
            hi,
            cat: input.cat,
            tile_prefix: 0,
            in_memory: false,
        });
    }
    let row_floats: u64 = vars
        .iter()
        .filter(|v| v.cat == k.out_rows || v.cat == Cat::P)
        .map(|v| v.hi - v.lo)
        .sum();
    let wide_rows = row_floats * float_size(p) / 4 > ROW_REGISTERS as u64;
    let mut tile_width = 0;
    for v in &mut vars {
        if v.cat == k.out_rows || v.cat == Cat::P {
            v.in_memory = wide_rows;
        } else {
            v.in_memory = true;
            v.tile_prefix = tile_width;
            tile_width += v.hi - v.lo;
        }
    }
    // Tile rows padded to whole 16-byte vectors: the formula reads them with vector loads.
    let tile_width = tile_width.next_multiple_of(vector_len(p));
    let full_columns = width;
    let nf = if weighted { k.fdim } else { fw };
    let ng = if weighted { gw } else { 1 };
    let (out_values, out_indices) = k.kind.output_width(nf, ng);
    Plan {
        p,
        wide_sum: wide_sum(k.kind, p, opts),
        kind: k.kind,
        out_rows: k.out_rows,
        nin: k.inputs.len(),
        formula,
        hooks,
        skip_unless,
        tys,
        vars,
        param_of,
        tile_width,
        columns: cols,
        full_columns,
        out_values: out_values as u64,
        out_indices: out_indices as u64,
    }
}

fn chunk_kernels(
    k: &LoweredKernel,
    p: Precision,
    opts: &KernelOptions,
    weighted: bool,
    width: usize,
    cols: Range<usize>,
    name: &str,
) -> ChunkKernels {
    let plan = plan(k, p, opts, weighted, width, cols.clone());
    let (nf, ni) = plan.acc_counts();
    let nf = nf * (plan.acc_float_size() / plan.fsize()) as usize;
    let mut reduce = kernel_reduce(&plan, &format!("{name}_reduce"));
    let mut merge = kernel_2d_merge(&plan, &format!("{name}_merge"));
    if opts.fast_math && p == Precision::F32 {
        fast_math::contract(&mut reduce);
        fast_math::contract(&mut merge);
    }
    ChunkKernels {
        columns: cols,
        acc_floats: nf,
        acc_indices: ni,
        reduce,
        merge,
    }
}

pub(crate) fn kr(r: Reg) -> KReg {
    KReg(r.0)
}

pub(crate) fn special(b: &mut KBuilder, s: Special) -> KReg {
    let dst = b.reg(KTy::U64);
    b.push(KInst::Special { dst, sreg: s });
    dst
}

pub(crate) fn param(b: &mut KBuilder, index: usize) -> KReg {
    let dst = b.reg(KTy::U64);
    b.push(KInst::Param { dst, index });
    dst
}

/// The head of a loop running while `counter < end` (unsigned): places the loop's top
/// label and the exit test; returns (top, exit) labels for the back edge and the end.
pub(crate) fn loop_while_below(b: &mut KBuilder, counter: KReg, end: KReg) -> (Label, Label) {
    let (top, done) = (b.label(), b.label());
    b.push(KInst::Label(top));
    let finished = b.cmp(ICmp::Ge, counter, end);
    b.push(KInst::Bra {
        target: done,
        pred: Some((finished, false)),
    });
    (top, done)
}

/// `dsts = srcs` as a parallel assignment (through temporaries when a source is
/// overwritten before it is read).
fn assign(b: &mut KBuilder, dsts: &[KReg], srcs: &[KReg]) {
    let clobbered = srcs
        .iter()
        .enumerate()
        .any(|(i, s)| dsts.iter().enumerate().any(|(k, d)| d == s && k < i));
    let srcs: Vec<KReg> = if clobbered {
        srcs.iter()
            .map(|s| {
                let t = b.reg(b.tys[s.0 as usize]);
                b.push(KInst::Mov { dst: t, src: *s });
                t
            })
            .collect()
    } else {
        srcs.to_vec()
    };
    for (d, s) in dsts.iter().zip(&srcs) {
        if d != s {
            b.push(KInst::Mov { dst: *d, src: *s });
        }
    }
}

/// Inlines a block whose parameters are all bound to registers.
pub(crate) fn inline(b: &mut KBuilder, block: &Block, args: &[KReg]) -> Vec<KReg> {
    let params: Vec<KReg> = block.params.iter().map(|r| kr(*r)).collect();
    assign(b, &params, args);
    for i in &block.insts {
        b.push(KInst::Scalar {
            dst: kr(i.dst),
            op: i.op,
            args: i.args.iter().map(|r| kr(*r)).collect(),
        });
    }
    block.results.iter().map(|r| kr(*r)).collect()
}

/// Per-thread state shared by the schemes.
struct Prologue {
    row: KReg,
    active: KReg,
    tid: KReg,
    bdim: KReg,
    n_inner: KReg,
    tile_rows: KReg,
    j_offset: KReg,
    /// The staged tile's address in shared memory, as a u32 (the formula's tile reads:
    /// u32 arithmetic on the row counter).
    shared32: KReg,
    /// Per staged variable: the address of its first column in the staged tile.
    tile_base: Vec<Option<KReg>>,
    /// Per output-row variable read from memory: the address of its row.
    row_base: Vec<Option<KReg>>,
    /// Per staged variable: the thread's first element (row, column) of a tile, and the
    /// step in rows and columns between its elements.
    stage_start: Vec<Option<[KReg; 4]>>,
    /// Accumulator registers (persistent across iterations).
    acc: Vec<KReg>,
}

/// Thread indices, output-row variables and parameters in registers (or their row
/// addresses), the staging plan, and the accumulator initialized.
fn prologue(b: &mut KBuilder, pl: &Plan) -> Prologue {
    let fsize = pl.fsize();
    let tid = special(b, Special::TidX);
    let bdim = special(b, Special::NtidX);
    let bid = special(b, Special::CtaidX);
    let base = b.iop(IOp::Mul, bid, bdim);
    let row = b.iop(IOp::Add, base, tid);
    let n_outer = param(b, param::N_OUTER);
    let n_inner = param(b, param::N_INNER);
    let tile_rows = param(b, param::TILE_ROWS);
    let j_offset = param(b, param::J_OFFSET);
    let active = b.cmp(ICmp::Lt, row, n_outer);
    let shared = b.reg(KTy::U64);
    b.push(KInst::SharedBase { dst: shared });
    let shared32 = b.reg(KTy::U32);
    b.push(KInst::SharedBase { dst: shared32 });
    let nv = pl.vars.len();
    let (mut tile_base, mut row_base, mut stage_start) =
        (vec![None; nv], vec![None; nv], vec![None; nv]);
    for (v, var) in pl.vars.iter().enumerate() {
        if var.hi <= var.lo {
            continue;
        }
        if pl.is_staged(var) {
            let pre = b.int(var.tile_prefix * fsize);
            tile_base[v] = Some(b.iop(IOp::Add, shared, pre));
            let w = b.int(var.hi - var.lo);
            let r0 = b.iop(IOp::Div, tid, w);
            let c0 = b.iop(IOp::Rem, tid, w);
            let dr = b.iop(IOp::Div, bdim, w);
            let dc = b.iop(IOp::Rem, bdim, w);
            stage_start[v] = Some([r0, c0, dr, dc]);
        }
    }
    // Output-row variables: loaded (or addressed) by active threads only.
    let skip = b.label();
    b.push(KInst::Bra {
        target: skip,
        pred: Some((active, true)),
    });
    for (v, var) in pl.vars.iter().enumerate() {
        if var.hi <= var.lo || var.cat != pl.out_rows {
            continue;
        }
        let ptr = param(b, var.param);
        let stride = b.int(var.dim * fsize);
        let off = b.iop(IOp::Mul, row, stride);
        let addr = b.iop(IOp::Add, ptr, off);
        if var.in_memory {
            row_base[v] = Some(addr);
        } else {
            load_components(b, pl, v, addr);
        }
    }
    b.push(KInst::Label(skip));
    for (v, var) in pl.vars.iter().enumerate() {
        if var.hi <= var.lo || var.cat != Cat::P {
            continue;
        }
        let ptr = param(b, var.param);
        if var.in_memory {
            row_base[v] = Some(ptr);
        } else {
            load_components(b, pl, v, ptr);
        }
    }
    // The running accumulator has registers of its own: the hooks' parameters are
    // rebound at every call.
    let acc = running_acc(b, pl);
    let init = inline(b, &pl.hooks.init, &[]);
    if pl.wide_sum {
        for (a, i) in acc.iter().zip(&init) {
            b.push(KInst::Convert { dst: *a, src: *i });
        }
    } else {
        assign(b, &acc, &init);
    }
    Prologue {
        row,
        active,
        tid,
        bdim,
        n_inner,
        tile_rows,
        j_offset,
        shared32,
        tile_base,
        row_base,
        stage_start,
        acc,
    }
}

/// Fresh registers for a running accumulator.
fn running_acc(b: &mut KBuilder, pl: &Plan) -> Vec<KReg> {
    pl.hooks.acc.iter().map(|t| b.reg(pl.acc_ty(*t))).collect()
}

/// `acc = merge(acc, other)`: the merge hook, or with f64 running sums, `acc += other`
/// in f64 (`other` an f32 tile sum or an f64 partial sum).
fn merge_into(b: &mut KBuilder, pl: &Plan, acc: &[KReg], other: &[KReg]) {
    if pl.wide_sum {
        for (a, o) in acc.iter().zip(other) {
            let o = if b.tys[o.0 as usize] == KTy::F64 {
                *o
            } else {
                let w = b.reg(KTy::F64);
                b.push(KInst::Convert { dst: w, src: *o });
                w
            };
            b.push(KInst::AddF64 {
                dst: *a,
                a: *a,
                b: o,
            });
        }
    } else {
        let mut args = acc.to_vec();
        args.extend(other);
        let res = inline(b, &pl.hooks.merge, &args);
        assign(b, acc, &res);
    }
}

/// Loads the live components of input `v` held in registers, from its row at `addr`.
fn load_components(b: &mut KBuilder, pl: &Plan, v: usize, addr: KReg) {
    for (r, (pv, c)) in sorted(&pl.param_of) {
        if pv == v && c >= pl.vars[v].lo && c < pl.vars[v].hi {
            let offset = (c * pl.fsize()) as u32;
            b.push(KInst::Load {
                dst: kr(r),
                space: Space::Global,
                addr,
                offset,
            });
        }
    }
}

fn sorted(m: &HashMap<Reg, (usize, u64)>) -> Vec<(Reg, (usize, u64))> {
    let mut v: Vec<_> = m.iter().map(|(r, x)| (*r, *x)).collect();
    v.sort_by_key(|(r, _)| r.0);
    v
}

/// Copies rows `[jstart, jstart + rows)` of the staged variables into shared memory:
/// element `e` of a variable's rows goes to its thread `e mod block`.
fn stage_tile(b: &mut KBuilder, pl: &Plan, pro: &Prologue, jstart: KReg, rows: KReg) {
    let fsize = pl.fsize();
    let stride = b.int(pl.tile_width);
    for (v, var) in pl.vars.iter().enumerate() {
        let (Some(base), Some([r0, c0, dr, dc])) = (pro.tile_base[v], pro.stage_start[v]) else {
            continue;
        };
        let w = var.hi - var.lo;
        let wr = b.int(w);
        let total = b.iop(IOp::Mul, rows, wr);
        let (e, r, c) = (b.reg(KTy::U64), b.reg(KTy::U64), b.reg(KTy::U64));
        b.push(KInst::Mov {
            dst: e,
            src: pro.tid,
        });
        b.push(KInst::Mov { dst: r, src: r0 });
        b.push(KInst::Mov { dst: c, src: c0 });
        let ptr = param(b, var.param);
        let dim = b.int(var.dim);
        let lo = b.int(var.lo);
        let fs = b.int(fsize);
        let one = b.int(1);
        let (top, done, no_wrap) = (b.label(), b.label(), b.label());
        b.push(KInst::Label(top));
        let end = b.cmp(ICmp::Ge, e, total);
        b.push(KInst::Bra {
            target: done,
            pred: Some((end, false)),
        });
        let j = b.iop(IOp::Add, jstart, r);
        let first = b.iop(IOp::Mul, j, dim);
        let col = b.iop(IOp::Add, c, lo);
        let idx = b.iop(IOp::Add, first, col);
        let src = b.addr(ptr, idx, fsize);
        let x = b.reg(KTy::of(Ty::F, pl.p));
        b.push(KInst::Load {
            dst: x,
            space: Space::Global,
            addr: src,
            offset: 0,
        });
        // Element (r, c) of the variable sits at column `c` of tile row `r`.
        let row_start = b.iop(IOp::Mul, r, stride);
        let cell = b.iop(IOp::Add, row_start, c);
        let cell_bytes = b.iop(IOp::Mul, cell, fs);
        let dst = b.iop(IOp::Add, base, cell_bytes);
        b.push(KInst::Store {
            space: Space::Shared,
            addr: dst,
            offset: 0,
            src: x,
        });
        let e2 = b.iop(IOp::Add, e, pro.bdim);
        b.push(KInst::Mov { dst: e, src: e2 });
        let r2 = b.iop(IOp::Add, r, dr);
        b.push(KInst::Mov { dst: r, src: r2 });
        let c2 = b.iop(IOp::Add, c, dc);
        b.push(KInst::Mov { dst: c, src: c2 });
        let lt = b.cmp(ICmp::Lt, c, wr);
        b.push(KInst::Bra {
            target: no_wrap,
            pred: Some((lt, false)),
        });
        let c3 = b.iop(IOp::Sub, c, wr);
        b.push(KInst::Mov { dst: c, src: c3 });
        let r3 = b.iop(IOp::Add, r, one);
        b.push(KInst::Mov { dst: r, src: r3 });
        b.push(KInst::Label(no_wrap));
        b.push(KInst::Bra {
            target: top,
            pred: None,
        });
        b.push(KInst::Label(done));
    }
}

/// The formula for tile row `jj`, reading memory operands where first used.
fn formula_at(b: &mut KBuilder, pl: &Plan, pro: &Prologue, jj: KReg) -> Vec<KReg> {
    let fsize = pl.fsize();
    let block = &pl.formula;
    let def: HashMap<Reg, usize> = block
        .insts
        .iter()
        .enumerate()
        .map(|(k, i)| (i.dst, k))
        .collect();
    // Values cheap to recompute from memory operands (a load, or a few arithmetic
    // instructions on loads and constants) are recomputed for every output column that
    // uses them instead of being kept alive from their first use: `SqDist` over D = 100
    // and then `(x - y)_c` per output column would otherwise hold D differences.
    let mut cost: HashMap<Reg, usize> = HashMap::new();
    for r in block.params.iter() {
        if matches!(pl.src(*r), Some(Src::Global { .. } | Src::Tile { .. })) {
            cost.insert(*r, 1);
        }
    }
    for i in &block.insts {
        let arith = matches!(
            i.op,
            SOp::Add | SOp::Sub | SOp::Mul | SOp::Neg | SOp::Abs | SOp::Fma | SOp::Const(_)
        );
        let args: Option<usize> = i.args.iter().map(|a| cost.get(a).copied()).sum();
        if let Some(c) = args.filter(|c| arith && *c < REMAT_COST) {
            cost.insert(i.dst, c + 1);
        }
    }
    let mut tile_row: Option<KReg> = None;
    // Loads `r`; returns the other formula parameters that the load defined too (the
    // columns of its 16-byte vector in the staged tile row).
    let mut load = |b: &mut KBuilder, r: Reg| -> Vec<Reg> {
        match pl.src(r) {
            None | Some(Src::Register) => vec![],
            Some(Src::Global { v, c }) => {
                let addr = pro.row_base[v].expect("row address of a live variable");
                b.push(KInst::Load {
                    dst: kr(r),
                    space: Space::GlobalAtUse,
                    addr,
                    offset: (c * fsize) as u32,
                });
                vec![]
            }
            Some(Src::Tile { v, c }) => {
                let addr = *tile_row.get_or_insert_with(|| {
                    // A tile row is at most 227 KB into shared memory: u32.
                    let w = b.int32((pl.tile_width * fsize) as u32);
                    let off = b.iop(IOp::Mul, jj, w);
                    b.iop(IOp::Add, pro.shared32, off)
                });
                let vl = vector_len(pl.p);
                let first = (pl.vars[v].tile_prefix + c) / vl * vl;
                let lanes: Vec<Option<Reg>> =
                    (first..first + vl).map(|col| pl.tile_column(col)).collect();
                let dsts: Vec<KReg> = lanes
                    .iter()
                    .map(|l| match l {
                        Some(reg) => kr(*reg),
                        None => b.reg(KTy::of(Ty::F, pl.p)),
                    })
                    .collect();
                b.push(KInst::LoadVector {
                    dsts,
                    space: Space::Shared,
                    addr,
                    offset: (first * fsize) as u32,
                });
                lanes.into_iter().flatten().filter(|l| *l != r).collect()
            }
        }
    };
    // Emitted once for the whole formula / once per output column.
    let mut done: HashSet<Reg> = HashSet::new();
    let mut scope: HashSet<Reg> = HashSet::new();
    for root in &block.results {
        scope.clear();
        // Depth first, with an explicit stack (chains of thousands of additions).
        let mut stack: Vec<(Reg, bool)> = vec![(*root, false)];
        while let Some((r, expanded)) = stack.pop() {
            let set = if cost.contains_key(&r) {
                &mut scope
            } else {
                &mut done
            };
            if set.contains(&r) {
                continue;
            }
            let Some(&k) = def.get(&r) else {
                set.insert(r);
                // Tile parameters are all rematerializable: their vector neighbours
                // join the same scope.
                for other in load(b, r) {
                    scope.insert(other);
                }
                continue;
            };
            let inst = &block.insts[k];
            if !expanded {
                stack.push((r, true));
                for a in inst.args.iter().rev() {
                    stack.push((*a, false));
                }
                continue;
            }
            set.insert(r);
            b.push(KInst::Scalar {
                dst: kr(r),
                op: inst.op,
                args: inst.args.iter().map(|a| kr(*a)).collect(),
            });
        }
    }
    block.results.iter().map(|r| kr(*r)).collect()
}

/// The loop over the reduced index `[j_begin, j_end)`, tile by tile.
fn tile_loop(b: &mut KBuilder, pl: &Plan, pro: &Prologue, j_begin: KReg, j_end: KReg) {
    let nacc = pl.hooks.acc.len();
    let jstart = b.reg(KTy::U64);
    b.push(KInst::Mov {
        dst: jstart,
        src: j_begin,
    });
    let (top, done) = loop_while_below(b, jstart, j_end);
    let left = b.iop(IOp::Sub, j_end, jstart);
    let rows = b.iop(IOp::Min, pro.tile_rows, left);
    stage_tile(b, pl, pro, jstart, rows);
    b.push(KInst::Bar);
    let skip_compute = b.label();
    b.push(KInst::Bra {
        target: skip_compute,
        pred: Some((pro.active, true)),
    });
    // With block sums, the tile is reduced into fresh accumulator registers, then merged
    // (f64 running sums: every FLUSH_ROWS rows).
    let blocked = block_sum(pl.kind, pl.p);
    let tacc: Vec<KReg> = if blocked {
        pl.hooks
            .acc
            .iter()
            .map(|ty| b.reg(KTy::of(*ty, pl.p)))
            .collect()
    } else {
        pro.acc.clone()
    };
    let init_tile_sum = |b: &mut KBuilder| {
        let init = inline(b, &pl.hooks.init, &[]);
        assign(b, &tacc, &init);
    };
    if blocked && !pl.wide_sum {
        init_tile_sum(b);
    }
    // The row within the tile counts in u32 (a tile has at most 1024 rows): one
    // instruction per increment and comparison where u64 takes two.
    let rows32 = b.int_cast(rows, KTy::U32);
    let one = b.int32(1);
    let jj = b.int32(0);
    let (inner_top, inner_done) = loop_while_below(b, jj, rows32);
    // f64 running sums: an inner loop over the next FLUSH_ROWS rows of the tile.
    let flush = pl.wide_sum.then(|| {
        init_tile_sum(b);
        let n = b.int32(FLUSH_ROWS);
        let next = b.iop(IOp::Add, jj, n);
        let flush_end = b.iop(IOp::Min, next, rows32);
        loop_while_below(b, jj, flush_end)
    });
    let values = formula_at(b, pl, pro, jj);
    let skip = b.label();
    if let Some(guard) = &pl.skip_unless {
        let worst = [tacc[pl.kind.slots() - 1], values[0]];
        let may_enter = inline(b, guard, &worst)[0];
        b.push(KInst::Bra {
            target: skip,
            pred: Some((may_enter, true)),
        });
    }
    // The reduced index, after the guard: values that skip the accumulation need none.
    let jj64 = b.int_cast(jj, KTy::U64);
    let j_rel = b.iop(IOp::Add, jstart, jj64);
    let j = b.iop(IOp::Add, j_rel, pro.j_offset);
    let mut args = tacc.clone();
    args.extend(values);
    args.push(j);
    let res = inline(b, &pl.hooks.accumulate, &args);
    assign(b, &tacc, &res[..nacc]);
    if pl.skip_unless.is_some() {
        b.push(KInst::Label(skip));
    }
    let next = b.iop(IOp::Add, jj, one);
    b.push(KInst::Mov { dst: jj, src: next });
    if let Some((flush_top, flush_done)) = flush {
        b.push(KInst::Bra {
            target: flush_top,
            pred: None,
        });
        b.push(KInst::Label(flush_done));
        merge_into(b, pl, &pro.acc, &tacc);
    }
    b.push(KInst::Bra {
        target: inner_top,
        pred: None,
    });
    b.push(KInst::Label(inner_done));
    if blocked && !pl.wide_sum {
        merge_into(b, pl, &pro.acc, &tacc);
    }
    b.push(KInst::Label(skip_compute));
    b.push(KInst::Bar);
    let step = b.iop(IOp::Add, jstart, rows);
    b.push(KInst::Mov {
        dst: jstart,
        src: step,
    });
    b.push(KInst::Bra {
        target: top,
        pred: None,
    });
    b.push(KInst::Label(done));
}

/// Stores the finalized row: values then indices, at their columns of the full output.
fn store_outputs(b: &mut KBuilder, pl: &Plan, acc: &[KReg], row: KReg) {
    let fsize = pl.fsize();
    let acc: Vec<KReg> = if pl.wide_sum {
        acc.iter()
            .map(|a| {
                let n = b.reg(KTy::of(Ty::F, pl.p));
                b.push(KInst::Convert { dst: n, src: *a });
                n
            })
            .collect()
    } else {
        acc.to_vec()
    };
    let out = inline(b, &pl.hooks.finalize, &acc);
    let w = pl.columns.len() as u64;
    let (full, c0) = (pl.full_columns as u64, pl.columns.start as u64);
    // Output layout of a chunk column: `[slot][column]`, slot 0 only except for KMin.
    let at = |local: u64| (local / w) * full + c0 + local % w;
    let (nv, ni) = (pl.out_values, pl.out_indices);
    let full_nv = nv / w * full;
    let full_ni = ni / w * full;
    let (vptr, iptr) = (param(b, param::OUT_VALUES), param(b, param::OUT_INDICES));
    let vstride = b.int(full_nv * fsize);
    let voff = b.iop(IOp::Mul, row, vstride);
    let vrow = b.iop(IOp::Add, vptr, voff);
    let istride = b.int(full_ni * 8);
    let ioff = b.iop(IOp::Mul, row, istride);
    let irow = b.iop(IOp::Add, iptr, ioff);
    for (n, r) in out.iter().enumerate() {
        let n = n as u64;
        let (addr, offset) = if n < nv {
            (vrow, at(n) * fsize)
        } else {
            (irow, at(n - nv) * 8)
        };
        b.push(KInst::Store {
            space: Space::Global,
            addr,
            offset: offset as u32,
            src: *r,
        });
    }
}

/// The reduction kernel of both schemes: block `(x, y)` reduces its rows over rows
/// `[y * slice, (y + 1) * slice)` of the reduced index. With one block along y (the 1D
/// scheme, `slice >= N`) it finalizes and stores the outputs; with several (the 2D
/// scheme) it stores its accumulators in the partials buffers for the merge kernel.
fn kernel_reduce(pl: &Plan, name: &str) -> Kernel {
    let mut b = KBuilder::with_lowered(&pl.tys, pl.p);
    let pro = prologue(&mut b, pl);
    let y = special(&mut b, Special::CtaidY);
    let ny = special(&mut b, Special::NctaidY);
    let slice = param(&mut b, param::FIRST_INPUT + pl.nin + 2);
    let begin0 = b.iop(IOp::Mul, y, slice);
    let begin = b.iop(IOp::Min, begin0, pro.n_inner);
    let end0 = b.iop(IOp::Add, begin, slice);
    let end = b.iop(IOp::Min, end0, pro.n_inner);
    tile_loop(&mut b, pl, &pro, begin, end);
    let (done, two_d) = (b.label(), b.label());
    b.push(KInst::Bra {
        target: done,
        pred: Some((pro.active, true)),
    });
    let two = b.int(2);
    let one_d = b.cmp(ICmp::Lt, ny, two);
    b.push(KInst::Bra {
        target: two_d,
        pred: Some((one_d, true)),
    });
    store_outputs(&mut b, pl, &pro.acc, pro.row);
    b.push(KInst::Bra {
        target: done,
        pred: None,
    });
    b.push(KInst::Label(two_d));
    let n_outer = param(&mut b, param::N_OUTER);
    partials(&mut b, pl, &pro.acc, pro.row, y, n_outer, true);
    b.push(KInst::Label(done));
    b.push(KInst::Ret);
    b.finish(
        name,
        param::FIRST_INPUT + pl.nin + 3,
        pl.tile_width * pl.fsize(),
    )
}

/// Stores (or, with `store == false`, loads) the accumulator of `row` in slice `y` of
/// the partials buffers: floats `[slices][rows][acc floats]`, indices
/// `[slices][rows][acc indices]`.
fn partials(
    b: &mut KBuilder,
    pl: &Plan,
    acc: &[KReg],
    row: KReg,
    y: KReg,
    n_outer: KReg,
    store: bool,
) {
    let fsize = pl.acc_float_size();
    let (nf, ni) = pl.acc_counts();
    let (nf, ni) = (nf as u64, ni as u64);
    let (fptr, iptr) = (
        param(b, param::FIRST_INPUT + pl.nin),
        param(b, param::FIRST_INPUT + pl.nin + 1),
    );
    let slot = b.iop(IOp::Mul, y, n_outer);
    let r = b.iop(IOp::Add, slot, row);
    let fstride = b.int(nf * fsize);
    let foff = b.iop(IOp::Mul, r, fstride);
    let frow = b.iop(IOp::Add, fptr, foff);
    let istride = b.int(ni * 8);
    let ioff = b.iop(IOp::Mul, r, istride);
    let irow = b.iop(IOp::Add, iptr, ioff);
    let (mut kf, mut ki) = (0u64, 0u64);
    for (a, t) in acc.iter().zip(&pl.hooks.acc) {
        let (addr, offset) = if *t == Ty::Idx {
            ki += 1;
            (irow, (ki - 1) * 8)
        } else {
            kf += 1;
            (frow, (kf - 1) * fsize)
        };
        let offset = offset as u32;
        if store {
            b.push(KInst::Store {
                space: Space::Global,
                addr,
                offset,
                src: *a,
            });
        } else {
            // The merge kernel writes slice 0 back when it does not finalize.
            b.push(KInst::Load {
                dst: *a,
                space: Space::GlobalWritten,
                addr,
                offset,
            });
        }
    }
}

/// The 2D scheme's merge kernel: one thread per row merges the slices' accumulators in
/// order and stores the finalized row, or (see [`param::FIRST_INPUT`]) the merged
/// accumulator in slice 0.
fn kernel_2d_merge(pl: &Plan, name: &str) -> Kernel {
    let mut b = KBuilder::with_lowered(&pl.tys, pl.p);
    let tid = special(&mut b, Special::TidX);
    let bdim = special(&mut b, Special::NtidX);
    let bid = special(&mut b, Special::CtaidX);
    let base = b.iop(IOp::Mul, bid, bdim);
    let row = b.iop(IOp::Add, base, tid);
    let n_outer = param(&mut b, param::N_OUTER);
    let active = b.cmp(ICmp::Lt, row, n_outer);
    let end = b.label();
    b.push(KInst::Bra {
        target: end,
        pred: Some((active, true)),
    });
    let slices = param(&mut b, param::FIRST_INPUT + pl.nin + 2);
    let nacc = pl.hooks.acc.len();
    // The merge block's parameters hold the running result and the next slice's (f64
    // sums have registers of their own).
    let (a, other): (Vec<KReg>, Vec<KReg>) = if pl.wide_sum {
        (running_acc(&mut b, pl), running_acc(&mut b, pl))
    } else {
        let params: Vec<KReg> = pl.hooks.merge.params.iter().map(|r| kr(*r)).collect();
        (params[..nacc].to_vec(), params[nacc..].to_vec())
    };
    let zero = b.int(0);
    partials(&mut b, pl, &a, row, zero, n_outer, false);
    let y = b.reg(KTy::U64);
    let one = b.int(1);
    b.push(KInst::Mov { dst: y, src: one });
    let (top, done) = loop_while_below(&mut b, y, slices);
    partials(&mut b, pl, &other, row, y, n_outer, false);
    merge_into(&mut b, pl, &a, &other);
    let next = b.iop(IOp::Add, y, one);
    b.push(KInst::Mov { dst: y, src: next });
    b.push(KInst::Bra {
        target: top,
        pred: None,
    });
    b.push(KInst::Label(done));
    let finalize = param(&mut b, param::FIRST_INPUT + pl.nin + 3);
    let keep = b.cmp(ICmp::Lt, finalize, one);
    let stored = b.label();
    b.push(KInst::Bra {
        target: stored,
        pred: Some((keep, false)),
    });
    store_outputs(&mut b, pl, &a, row);
    b.push(KInst::Bra {
        target: end,
        pred: None,
    });
    b.push(KInst::Label(stored));
    partials(&mut b, pl, &a, row, zero, n_outer, true);
    b.push(KInst::Label(end));
    b.push(KInst::Ret);
    b.finish(name, param::FIRST_INPUT + pl.nin + 4, 0)
}
