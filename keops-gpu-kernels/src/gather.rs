//! The gather kernel: sums of a formula over selected pairs only, the gradients of Min,
//! Max and KMin reductions through the indices they selected (see
//! [`keops_ir::program::Gather`]), without atomics and in a fixed order.
//!
//! One thread per output row `t`, walking the list of index slots that contribute to it.
//! A slot is its flat position `f = r * slots + s` in the `[owner rows][slots]` index
//! array, from which the owner row `r`, the selected row `j = indices[f]`, the weight
//! `weights[f]` and the slot's coordinate `s mod D = f mod D` follow. When the output is
//! indexed like the owner, row `t`'s slots are `t * slots .. (t + 1) * slots` (empty
//! selections skipped); otherwise the runtime passes the inverted lists: row `t`'s slots
//! are `entries[starts[t] .. starts[t + 1]]`, in increasing order, so that every sum is
//! taken in the same order on every run.
//!
//! When the data does not fit in device memory, the runtime launches the kernel on pieces
//! of output rows: owner-indexed outputs take the piece's rows of the owner's variables,
//! indices and weights (the other index's variables whole); the others take the piece's
//! rows of the other index's variables (at [`param::OTHER_OFFSET`]) and inverted lists
//! (the owner's variables, indices and weights whole).
//!
//! Kernel parameters, all u64: see [`param`].

use crate::fast_math;
use crate::kir::{ICmp, IOp, KBuilder, KInst, KReg, KTy, Kernel, Space, Special};
use crate::module::{GpuInput, gpu_inputs};
use crate::ptx;
use crate::scheme::{
    KernelOptions, float_size, inline, kr, loop_while_below, param as param_reg, schedule, special,
};
use keops_ir::graph::Cat;
use keops_ir::lower::{Lower, Precision, Reg, SOp, lower_formula};
use keops_ir::program::Gather;
use keops_ir::reduction::INDEX_NONE;
use keops_ir::{Error, ErrorKind, Program};
use std::borrow::Cow;
use std::collections::HashSet;

/// Positions of the gather kernel's parameters.
pub mod param {
    /// Number of output rows.
    pub const N_OUT: usize = 0;
    /// Output values, `[rows][out_dim]` (written).
    pub const OUT_VALUES: usize = 1;
    /// The selected indices, `[owner rows][slots]` u64 ([`super::INDEX_NONE`] where
    /// nothing was selected).
    pub const INDICES: usize = 2;
    /// The slots' weights, `[owner rows][slots]` floats.
    pub const WEIGHTS: usize = 3;
    /// Inverted lists (output indexed by the other index only): `rows + 1` u64 starts
    /// into [`ENTRIES`].
    pub const STARTS: usize = 4;
    /// Inverted lists: flat slot positions, grouped by output row.
    pub const ENTRIES: usize = 5;
    /// The first row of the other index's variables (inverted lists only): when the
    /// output rows go in pieces, those variables are passed from the piece's first row,
    /// and row `j` is read at `j - OTHER_OFFSET`.
    pub const OTHER_OFFSET: usize = 6;
    /// First input pointer (inputs in [`super::GpuGather::inputs`] order).
    pub const FIRST_INPUT: usize = 7;
}

/// A gather compiled for the GPU, in one precision.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GpuGather {
    /// The PTX module (one kernel).
    pub ptx: Cow<'static, str>,
    /// The kernel's entry name.
    pub entry: Cow<'static, str>,
    /// Float type of the data.
    pub precision: Precision,
    /// Whether the approximate math instructions are used (see [`crate::fast_math`]).
    pub fast_math: bool,
    /// Axis of the rows that selected (the index array's rows).
    pub owner: Cat,
    /// Whether the output is indexed like the owner (else by the selected index, through
    /// inverted lists).
    pub to_owner: bool,
    /// Index slots per owner row (`K * D`).
    pub slots: usize,
    /// Width of the selected formula (`D`): slot `s` weighs coordinate `s mod D`.
    pub slot_dim: usize,
    /// Output values per row.
    pub out_dim: usize,
    /// Pointer parameters from [`param::FIRST_INPUT`] on, in order.
    pub inputs: Cow<'static, [GpuInput]>,
}

/// The kernel of gather `g` (of an instantiated program), with its launch data (the
/// module's `ptx` left empty).
pub fn gather_kernel(
    p: &Program,
    g: &Gather,
    precision: Precision,
    opts: &KernelOptions,
    name: &str,
) -> Result<(Kernel, GpuGather), Error> {
    let internal = |what: &str| Error::new(ErrorKind::Limit, format!("internal: {what}"));
    let slot_dim = p
        .graph
        .var(g.slot_var)
        .dim
        .as_known()
        .ok_or_else(|| internal("a gather with a symbolic slot width"))?;
    let slots = p
        .bufs
        .get(g.indices)
        .and_then(|b| b.indices.as_known())
        .ok_or_else(|| internal("a gather whose index width is not known"))?;
    let out_dim = p
        .graph
        .known_dim(g.formula)
        .ok_or_else(|| internal("a gather whose formula width is not known"))?;
    if slot_dim == 0 || slots % slot_dim != 0 {
        return Err(internal("a gather's slots are not whole coordinates"));
    }
    let mut l = Lower::new();
    let (block, inputs) = lower_formula(&mut l, &p.graph, &[g.formula])?;
    let (block, tys) = fast_math::expand_block(&l.tys, &block, precision, opts.fast_math);
    let block = schedule(&block, block.results.clone());
    let used: HashSet<Reg> = block
        .insts
        .iter()
        .flat_map(|i| i.args.iter().copied())
        .chain(block.results.iter().copied())
        .collect();

    let fsize = float_size(precision);
    let to_owner = g.out_rows == g.owner;
    let mut b = KBuilder::with_lowered(&tys, precision);
    let tid = special(&mut b, Special::TidX);
    let ntid = special(&mut b, Special::NtidX);
    let ctaid = special(&mut b, Special::CtaidX);
    let base = b.iop(IOp::Mul, ctaid, ntid);
    let t = b.iop(IOp::Add, base, tid);
    let n_out = param_reg(&mut b, param::N_OUT);
    let done = b.label();
    let outside = b.cmp(ICmp::Ge, t, n_out);
    b.push(KInst::Bra {
        target: done,
        pred: Some((outside, false)),
    });

    // The inputs other than the slot variable are the kernel's pointer parameters; the
    // slot variable's registers are set per slot.
    let mut slot_regs: Vec<KReg> = Vec::new();
    let mut reads: Vec<InputRead> = Vec::new();
    let mut kernel_inputs = Vec::new();
    let mut at = 0;
    for input in &inputs {
        let regs = &block.params[at..at + input.dim];
        at += input.dim;
        if input.var == g.slot_var {
            slot_regs = regs.iter().map(|r| kr(*r)).collect();
            continue;
        }
        let live: Vec<(KReg, u64)> = regs
            .iter()
            .enumerate()
            .filter(|(_, r)| used.contains(r))
            .map(|(c, r)| (kr(*r), c as u64))
            .collect();
        reads.push(InputRead {
            param: param::FIRST_INPUT + kernel_inputs.len(),
            cat: input.cat,
            live,
            dim: input.dim as u64,
        });
        kernel_inputs.push(input.clone());
    }
    if slot_regs.len() != slot_dim {
        return Err(internal(
            "a gather's formula does not read its slot variable",
        ));
    }
    // Loads the live components of the inputs indexed by `cat` from `row`.
    let load_rows = |b: &mut KBuilder, cat: Cat, row: Option<KReg>| {
        for read in reads.iter().filter(|r| r.cat == cat && !r.live.is_empty()) {
            let ptr = param_reg(b, read.param);
            let addr = match row {
                Some(row) => b.addr(ptr, row, read.dim * fsize),
                None => ptr,
            };
            for (reg, comp) in &read.live {
                b.push(KInst::Load {
                    dst: *reg,
                    space: Space::Global,
                    addr,
                    offset: (comp * fsize) as u32,
                });
            }
        }
    };
    load_rows(&mut b, Cat::P, None);
    let other = g.owner.transposed();
    let zero = b.reg(KTy::of(keops_ir::lower::Ty::F, precision));
    b.push(KInst::Scalar {
        dst: zero,
        op: SOp::Const(0f64.to_bits()),
        args: vec![],
    });
    let acc: Vec<KReg> = (0..out_dim)
        .map(|_| {
            let a = b.reg(KTy::of(keops_ir::lower::Ty::F, precision));
            b.push(KInst::Mov { dst: a, src: zero });
            a
        })
        .collect();

    // This row's slots: `[lo, hi)` positions, or entries of the inverted lists.
    let (lo, hi) = if to_owner {
        load_rows(&mut b, g.owner, Some(t));
        let n = b.int(slots as u64);
        let lo = b.iop(IOp::Mul, t, n);
        (lo, b.iop(IOp::Add, lo, n))
    } else {
        let starts = param_reg(&mut b, param::STARTS);
        let at = b.addr(starts, t, 8);
        let (lo, hi) = (b.reg(KTy::U64), b.reg(KTy::U64));
        for (dst, offset) in [(lo, 0), (hi, 8)] {
            b.push(KInst::Load {
                dst,
                space: Space::Global,
                addr: at,
                offset,
            });
        }
        (lo, hi)
    };
    let e = b.reg(KTy::U64);
    b.push(KInst::Mov { dst: e, src: lo });
    let one = b.int(1);
    let (top, exit) = loop_while_below(&mut b, e, hi);
    let next = b.label();
    let f = if to_owner {
        e
    } else {
        load_u64(&mut b, param::ENTRIES, e)
    };
    let j = load_u64(&mut b, param::INDICES, f);
    if to_owner {
        // Nothing selected in this slot (the inverted lists leave such slots out).
        let none = b.int(INDEX_NONE);
        let empty = b.cmp(ICmp::Ge, j, none);
        b.push(KInst::Bra {
            target: next,
            pred: Some((empty, false)),
        });
        load_rows(&mut b, other, Some(j));
    } else {
        let n = b.int(slots as u64);
        let r = b.iop(IOp::Div, f, n);
        load_rows(&mut b, g.owner, Some(r));
        let offset = param_reg(&mut b, param::OTHER_OFFSET);
        let local = b.iop(IOp::Sub, j, offset);
        load_rows(&mut b, other, Some(local));
    }
    let weights = param_reg(&mut b, param::WEIGHTS);
    let at = b.addr(weights, f, fsize);
    let w = b.reg(KTy::of(keops_ir::lower::Ty::F, precision));
    b.push(KInst::Load {
        dst: w,
        space: Space::Global,
        addr: at,
        offset: 0,
    });
    // The slot variable: the weight at the slot's coordinate, zero elsewhere.
    if slot_dim == 1 {
        b.push(KInst::Mov {
            dst: slot_regs[0],
            src: w,
        });
    } else {
        let d = b.int(slot_dim as u64);
        let coord = b.iop(IOp::Rem, f, d);
        for (k, reg) in slot_regs.iter().enumerate() {
            let kc = b.int(k as u64);
            let here = b.reg(KTy::Pred);
            b.push(KInst::Scalar {
                dst: here,
                op: SOp::IdxEq,
                args: vec![coord, kc],
            });
            b.push(KInst::Scalar {
                dst: *reg,
                op: SOp::Select,
                args: vec![here, w, zero],
            });
        }
    }
    let params: Vec<KReg> = block.params.iter().map(|r| kr(*r)).collect();
    let values = inline(&mut b, &block, &params);
    for (a, v) in acc.iter().zip(&values) {
        b.push(KInst::Scalar {
            dst: *a,
            op: SOp::Add,
            args: vec![*a, *v],
        });
    }
    b.push(KInst::Label(next));
    let e1 = b.iop(IOp::Add, e, one);
    b.push(KInst::Mov { dst: e, src: e1 });
    b.push(KInst::Bra {
        target: top,
        pred: None,
    });
    b.push(KInst::Label(exit));
    let out = param_reg(&mut b, param::OUT_VALUES);
    let row = b.addr(out, t, out_dim as u64 * fsize);
    for (c, a) in acc.iter().enumerate() {
        b.push(KInst::Store {
            space: Space::Global,
            addr: row,
            offset: (c as u64 * fsize) as u32,
            src: *a,
        });
    }
    b.push(KInst::Label(done));
    b.push(KInst::Ret);
    let mut kernel = b.finish(name, param::FIRST_INPUT + kernel_inputs.len(), 0);
    if opts.fast_math && precision == Precision::F32 {
        fast_math::contract(&mut kernel);
    }
    let meta = GpuGather {
        ptx: Cow::Borrowed(""),
        entry: Cow::Owned(name.to_string()),
        precision,
        fast_math: opts.fast_math && precision == Precision::F32,
        owner: g.owner,
        to_owner,
        slots,
        slot_dim,
        out_dim,
        inputs: Cow::Owned(gpu_inputs(&kernel_inputs)?),
    };
    Ok((kernel, meta))
}

/// Checks that every selected index is a row of the other index (or
/// [`INDEX_NONE`]): the kernel reads row `j` of the other index's variables unchecked.
pub fn check_indices(indices: &[u64], n_other: usize) -> Result<(), String> {
    match indices
        .iter()
        .find(|j| **j != INDEX_NONE && **j >= n_other as u64)
    {
        Some(j) => Err(format!(
            "a selected index {j} is beyond the {n_other} rows it selects from"
        )),
        None => Ok(()),
    }
}

/// The inverted lists of a gather whose output is indexed by the selected index: for
/// each of the `n_other` rows, the flat slot positions that selected it in increasing
/// order, as `(starts, entries)` (`starts` has `n_other + 1` elements). Errors on an
/// index that is not a row (see [`check_indices`]).
pub fn inverted_lists(indices: &[u64], n_other: usize) -> Result<(Vec<u64>, Vec<u64>), String> {
    check_indices(indices, n_other)?;
    let mut starts = vec![0u64; n_other + 1];
    for &j in indices.iter().filter(|j| **j != INDEX_NONE) {
        starts[j as usize + 1] += 1;
    }
    for k in 0..n_other {
        starts[k + 1] += starts[k];
    }
    let mut next: Vec<u64> = starts[..n_other].to_vec();
    let mut entries = vec![0u64; starts[n_other] as usize];
    for (f, &j) in indices.iter().enumerate() {
        if j != INDEX_NONE {
            let at = &mut next[j as usize];
            entries[*at as usize] = f as u64;
            *at += 1;
        }
    }
    Ok((starts, entries))
}

/// How the kernel reads one input: its pointer parameter, indexing, row width, and the
/// registers of the components the formula uses.
struct InputRead {
    param: usize,
    cat: Cat,
    dim: u64,
    live: Vec<(KReg, u64)>,
}

/// Element `index` of the u64 array at pointer parameter `param`.
fn load_u64(b: &mut KBuilder, param: usize, index: KReg) -> KReg {
    let ptr = param_reg(b, param);
    let addr = b.addr(ptr, index, 8);
    let dst = b.reg(KTy::U64);
    b.push(KInst::Load {
        dst,
        space: Space::Global,
        addr,
        offset: 0,
    });
    dst
}

/// Entry name of the gather of step `step`: `keops_s{step}_gather`.
pub fn gather_entry(step: usize) -> String {
    format!("{}_gather", crate::module::kernel_prefix(step))
}

/// Compiles gather `g`, step `step` of an instantiated program: the kernel (for the
/// interpreter) and its module.
pub fn compile_gather(
    p: &Program,
    g: &Gather,
    precision: Precision,
    opts: &KernelOptions,
    step: usize,
) -> Result<(Kernel, GpuGather), Error> {
    let (kernel, mut meta) = gather_kernel(p, g, precision, opts, &gather_entry(step))?;
    kernel
        .verify(precision)
        .map_err(|e| Error::new(ErrorKind::Limit, format!("internal: {e}")))?;
    let ptx = ptx::module(std::slice::from_ref(&kernel))
        .map_err(|e| Error::new(ErrorKind::Limit, format!("internal: {e}")))?;
    meta.ptx = Cow::Owned(ptx);
    Ok((kernel, meta))
}

/// The variants the `keops!` macro embeds for a gather, in order: f32, f32 with
/// `fast_math`, f64 (f64 accumulation changes nothing: a gather has no long sums).
pub fn gather_variants() -> [(Precision, KernelOptions); 3] {
    let opts = |fast_math| KernelOptions {
        fast_math,
        f64_accumulation: false,
    };
    [
        (Precision::F32, opts(false)),
        (Precision::F32, opts(true)),
        (Precision::F64, opts(false)),
    ]
}

/// The embedded gather of a variant, from a list built from [`gather_variants`].
pub fn embedded_gather<'a>(
    list: &'a [GpuGather],
    p: Precision,
    opts: &KernelOptions,
) -> Option<&'a GpuGather> {
    let fast = opts.fast_math && p == Precision::F32;
    list.iter()
        .find(|g| g.precision == p && g.fast_math == fast)
}
