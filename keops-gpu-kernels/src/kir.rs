//! The kernel IR: a GPU kernel as a flat list of instructions that the PTX printer maps
//! one to one, and that the SIMT interpreter runs on the CPU.
//!
//! Registers are typed and numbered; the lowered form's scalar registers keep their
//! numbers (a lowered block is inlined by binding its parameters with `Mov`), and the
//! scheme adds its own (indices, addresses, loop counters). Control flow is labels and
//! (predicated) branches; `Bar` is `bar.sync 0`. Memory addresses are u64 byte addresses:
//! in the global space they come from kernel parameters, in the shared space from
//! [`KInst::SharedBase`].

use keops_ir::lower::{Precision, SOp, Ty};
use std::fmt;

/// A PTX register type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum KTy {
    /// Predicate.
    Pred,
    /// 64-bit unsigned integer (indices, addresses, sizes).
    U64,
    /// 32-bit unsigned integer (counters within a tile, which cost one instruction per
    /// addition or comparison where u64 ones cost two).
    U32,
    /// 32-bit signed integer (math library of f32 kernels).
    S32,
    /// 64-bit signed integer (math library of f64 kernels).
    S64,
    /// f32.
    F32,
    /// f64.
    F64,
}

impl KTy {
    /// The register type of a lowered-form register in a kernel of precision `p`.
    pub fn of(t: Ty, p: Precision) -> KTy {
        match (t, p) {
            (Ty::F, Precision::F32) => KTy::F32,
            (Ty::F, Precision::F64) => KTy::F64,
            (Ty::Int, Precision::F32) => KTy::S32,
            (Ty::Int, Precision::F64) => KTy::S64,
            (Ty::Idx, _) => KTy::U64,
            (Ty::Pred, _) => KTy::Pred,
        }
    }

    /// Size in bytes in memory.
    pub fn bytes(self) -> u64 {
        match self {
            KTy::Pred => 1,
            KTy::S32 | KTy::U32 | KTy::F32 => 4,
            KTy::U64 | KTy::S64 | KTy::F64 => 8,
        }
    }
}

/// A typed register.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KReg(pub u32);

impl fmt::Display for KReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "k{}", self.0)
    }
}

/// A branch target.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

/// Special registers read by kernels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Special {
    /// `%tid.x`: the thread's index in its block.
    TidX,
    /// `%ntid.x`: threads per block.
    NtidX,
    /// `%ctaid.x`: the block's index along x.
    CtaidX,
    /// `%ctaid.y`: the block's index along y.
    CtaidY,
    /// `%nctaid.y`: blocks along y.
    NctaidY,
}

/// A memory space.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Space {
    /// Device memory.
    Global,
    /// The block's shared memory.
    Shared,
    /// Device memory, read where the instruction stands: never hoisted out of a loop nor
    /// merged with another read (PTX `ld.volatile`). For rows too wide for registers,
    /// which the assembler would otherwise keep in (spilled) registers across the loop.
    GlobalAtUse,
    /// Device memory that the kernel also writes (plain `ld.global`, coherent with its
    /// own stores): [`Space::Global`] loads go through the non-coherent path, which PTX
    /// allows only for data read-only during the kernel.
    GlobalWritten,
}

/// Integer operations on u64 registers (indices, addresses, loop counters).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum IOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b` (low 64 bits)
    Mul,
    /// `min(a, b)`
    Min,
    /// `a / b` (b > 0)
    Div,
    /// `a % b` (b > 0)
    Rem,
}

/// Comparisons of u64 registers, into a predicate.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ICmp {
    /// `a < b`
    Lt,
    /// `a >= b`
    Ge,
}

/// One instruction.
#[derive(Clone, Debug, PartialEq)]
pub enum KInst {
    /// A scalar operation of the lowered form (after math expansion), with its semantics
    /// (`SOp::eval`) in the kernel's precision.
    Scalar {
        /// Destination.
        dst: KReg,
        /// Operation.
        op: SOp,
        /// Arguments.
        args: Vec<KReg>,
    },
    /// Integer arithmetic, of u64 or u32 registers (all three of one type; u32 wraps).
    Int {
        /// Destination.
        dst: KReg,
        /// Operation.
        op: IOp,
        /// Left operand.
        a: KReg,
        /// Right operand.
        b: KReg,
    },
    /// An integer constant (u64 or u32).
    IntConst {
        /// Destination.
        dst: KReg,
        /// Value.
        value: u64,
    },
    /// Comparison of two integers of one type (u64 or u32).
    Cmp {
        /// Destination predicate.
        dst: KReg,
        /// Comparison.
        op: ICmp,
        /// Left operand.
        a: KReg,
        /// Right operand.
        b: KReg,
    },
    /// A special register, as a u64.
    Special {
        /// Destination.
        dst: KReg,
        /// Which.
        sreg: Special,
    },
    /// Kernel parameter `index` (all parameters are u64: pointers and sizes).
    Param {
        /// Destination.
        dst: KReg,
        /// Parameter position.
        index: usize,
    },
    /// The address of the block's dynamic shared memory.
    SharedBase {
        /// Destination.
        dst: KReg,
    },
    /// `dst = [addr + offset]`, typed by `dst`.
    Load {
        /// Destination.
        dst: KReg,
        /// Memory space.
        space: Space,
        /// Byte address.
        addr: KReg,
        /// Constant byte offset.
        offset: u32,
    },
    /// `dsts[k] = [addr + offset + k * size]` in one vector access (`ld.v2`, `ld.v4`), all
    /// of one float type; `addr + offset` must be a multiple of the vector's bytes.
    LoadVector {
        /// Destinations, 2 or 4.
        dsts: Vec<KReg>,
        /// Memory space.
        space: Space,
        /// Byte address.
        addr: KReg,
        /// Constant byte offset.
        offset: u32,
    },
    /// `[addr + offset] = src`, typed by `src`.
    Store {
        /// Memory space.
        space: Space,
        /// Byte address.
        addr: KReg,
        /// Constant byte offset.
        offset: u32,
        /// Value.
        src: KReg,
    },
    /// `dst = src` converted between u32 and u64 (zero-extended, or truncated).
    IntCast {
        /// Destination.
        dst: KReg,
        /// Source, of the other integer type.
        src: KReg,
    },
    /// `dst = src` converted between f32 and f64 (rounded to nearest): the f64
    /// accumulators of f32 sums.
    Convert {
        /// Destination.
        dst: KReg,
        /// Source, of the other float type.
        src: KReg,
    },
    /// `dst = a + b` in f64 (rounded to nearest), whatever the kernel's precision: the
    /// f64 accumulators of f32 sums.
    AddF64 {
        /// Destination.
        dst: KReg,
        /// Left operand.
        a: KReg,
        /// Right operand.
        b: KReg,
    },
    /// `dst = src` (same type).
    Mov {
        /// Destination.
        dst: KReg,
        /// Source.
        src: KReg,
    },
    /// A branch target.
    Label(Label),
    /// Jump to `target`, when `pred` (negated if the flag is set) holds, or always.
    Bra {
        /// Target.
        target: Label,
        /// Predicate and negation.
        pred: Option<(KReg, bool)>,
    },
    /// Barrier of the block (`bar.sync 0`).
    Bar,
    /// End of the thread.
    Ret,
}

/// A kernel: parameters, registers, instructions.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// Entry name.
    pub name: String,
    /// Number of u64 parameters.
    pub params: usize,
    /// Type of every register.
    pub tys: Vec<KTy>,
    /// The instructions.
    pub insts: Vec<KInst>,
    /// Bytes of dynamic shared memory per row of the staged tile (the launch gives
    /// `tile rows * shared_per_row`).
    pub shared_per_row: u64,
}

/// Builds kernels: fresh registers and labels.
#[derive(Debug, Default)]
pub struct KBuilder {
    /// Register types.
    pub tys: Vec<KTy>,
    /// Instructions so far.
    pub insts: Vec<KInst>,
    labels: u32,
}

impl KBuilder {
    /// A builder whose first registers are those of a lowered kernel (same numbers).
    pub fn with_lowered(tys: &[Ty], p: Precision) -> Self {
        KBuilder {
            tys: tys.iter().map(|t| KTy::of(*t, p)).collect(),
            insts: Vec::new(),
            labels: 0,
        }
    }

    /// A new register.
    pub fn reg(&mut self, t: KTy) -> KReg {
        self.tys.push(t);
        KReg(self.tys.len() as u32 - 1)
    }

    /// A new label.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Appends an instruction.
    pub fn push(&mut self, i: KInst) {
        self.insts.push(i);
    }

    /// A u64 constant.
    pub fn int(&mut self, value: u64) -> KReg {
        let dst = self.reg(KTy::U64);
        self.push(KInst::IntConst { dst, value });
        dst
    }

    /// A u32 constant.
    pub fn int32(&mut self, value: u32) -> KReg {
        let dst = self.reg(KTy::U32);
        self.push(KInst::IntConst {
            dst,
            value: value as u64,
        });
        dst
    }

    /// Integer arithmetic, in the type of `a` (u64 or u32).
    pub fn iop(&mut self, op: IOp, a: KReg, b: KReg) -> KReg {
        let dst = self.reg(self.tys[a.0 as usize]);
        self.push(KInst::Int { dst, op, a, b });
        dst
    }

    /// `src` (u32 or u64) converted to `to`.
    pub fn int_cast(&mut self, src: KReg, to: KTy) -> KReg {
        let dst = self.reg(to);
        self.push(KInst::IntCast { dst, src });
        dst
    }

    /// Integer comparison.
    pub fn cmp(&mut self, op: ICmp, a: KReg, b: KReg) -> KReg {
        let dst = self.reg(KTy::Pred);
        self.push(KInst::Cmp { dst, op, a, b });
        dst
    }

    /// `base + index * stride` (byte address of element `index`).
    pub fn addr(&mut self, base: KReg, index: KReg, stride: u64) -> KReg {
        let s = self.int(stride);
        let off = self.iop(IOp::Mul, index, s);
        self.iop(IOp::Add, base, off)
    }

    /// Finishes the kernel.
    pub fn finish(self, name: &str, params: usize, shared_per_row: u64) -> Kernel {
        Kernel {
            name: name.to_string(),
            params,
            tys: self.tys,
            insts: self.insts,
            shared_per_row,
        }
    }
}

/// A malformed kernel: an operand of the wrong type, an unknown label or parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kernel `{kernel}`, instruction {index} ({inst}): {what}")]
pub struct VerifyError {
    /// Kernel name.
    pub kernel: String,
    /// Position of the instruction.
    pub index: usize,
    /// The instruction, as debug text.
    pub inst: String,
    /// What is wrong.
    pub what: String,
}

impl Kernel {
    /// The type of a register.
    pub fn ty(&self, r: KReg) -> KTy {
        self.tys[r.0 as usize]
    }

    /// Checks operand types, labels and parameters: what ptxas would reject, found
    /// before printing (and without ptxas).
    pub fn verify(&self, p: Precision) -> Result<(), VerifyError> {
        let fail = |index: usize, what: String| VerifyError {
            kernel: self.name.clone(),
            index,
            inst: format!("{:?}", self.insts[index]),
            what,
        };
        let mut labels = std::collections::HashSet::new();
        for i in &self.insts {
            if let KInst::Label(l) = i
                && !labels.insert(*l)
            {
                return Err(fail(0, format!("label {} defined twice", l.0)));
            }
        }
        let n = self.tys.len();
        for (index, i) in self.insts.iter().enumerate() {
            let regs = inst_regs(i);
            if let Some(r) = regs.iter().find(|r| r.0 as usize >= n) {
                return Err(fail(index, format!("register {r} is not declared")));
            }
            let want = |r: KReg, t: KTy| -> Result<(), VerifyError> {
                if self.ty(r) == t {
                    Ok(())
                } else {
                    Err(fail(
                        index,
                        format!("{r} has type {:?}, expected {t:?}", self.ty(r)),
                    ))
                }
            };
            // Addresses are u64, or u32 in shared memory (offsets in its window).
            let want_addr = |space: Space, addr: KReg| match (space, self.ty(addr)) {
                (Space::Shared, KTy::U32) => Ok(()),
                _ => want(addr, KTy::U64),
            };
            match i {
                KInst::Scalar { dst, op, args } => {
                    let spec = op.spec();
                    if spec.args.len() != args.len() {
                        return Err(fail(
                            index,
                            format!("{} takes {} arguments", spec.name, spec.args.len()),
                        ));
                    }
                    for (a, t) in args.iter().zip(spec.args) {
                        // Select's value operands may be of any type (checked against dst).
                        if *op == SOp::Select && *t == Ty::F {
                            want(*a, self.ty(*dst))?;
                        } else {
                            want(*a, KTy::of(*t, p))?;
                        }
                    }
                    match spec.result {
                        Some(t) => want(*dst, KTy::of(t, p))?,
                        None if self.ty(*dst) == KTy::Pred => {
                            return Err(fail(index, "select of predicates".into()));
                        }
                        None => {}
                    }
                }
                KInst::Int { dst, a, b, .. } => {
                    let t = self.ty(*dst);
                    if !matches!(t, KTy::U64 | KTy::U32) {
                        return Err(fail(index, format!("integer arithmetic in {t:?}")));
                    }
                    want(*a, t)?;
                    want(*b, t)?;
                }
                KInst::IntConst { dst, value } => match self.ty(*dst) {
                    KTy::U64 => {}
                    KTy::U32 if *value <= u32::MAX as u64 => {}
                    t => return Err(fail(index, format!("constant {value} in {t:?}"))),
                },
                KInst::IntCast { dst, src } => match (self.ty(*dst), self.ty(*src)) {
                    (KTy::U32, KTy::U64) | (KTy::U64, KTy::U32) => {}
                    (d, s) => {
                        return Err(fail(index, format!("no integer cast from {s:?} to {d:?}")));
                    }
                },
                KInst::Special { dst, .. } => want(*dst, KTy::U64)?,
                // Shared-memory addresses fit in 32 bits.
                KInst::SharedBase { dst } => {
                    if !matches!(self.ty(*dst), KTy::U64 | KTy::U32) {
                        return Err(fail(index, "the shared base is an integer".into()));
                    }
                }
                KInst::Param { dst, index: pi } => {
                    want(*dst, KTy::U64)?;
                    if *pi >= self.params {
                        return Err(fail(index, format!("parameter {pi} of {}", self.params)));
                    }
                }
                KInst::Cmp { dst, a, b, .. } => {
                    want(*dst, KTy::Pred)?;
                    let t = self.ty(*a);
                    if !matches!(t, KTy::U64 | KTy::U32) {
                        return Err(fail(index, format!("integer comparison of {t:?}")));
                    }
                    want(*b, t)?;
                }
                KInst::LoadVector {
                    dsts, addr, space, ..
                } => {
                    want_addr(*space, *addr)?;
                    if !matches!(dsts.len(), 2 | 4) {
                        return Err(fail(index, format!("a vector of {} loads", dsts.len())));
                    }
                    let t = self.ty(dsts[0]);
                    if !matches!(t, KTy::F32 | KTy::F64) {
                        return Err(fail(index, "vector loads are of floats".into()));
                    }
                    for d in dsts {
                        want(*d, t)?;
                    }
                }
                KInst::Load {
                    dst: v,
                    addr,
                    space,
                    ..
                }
                | KInst::Store {
                    src: v,
                    addr,
                    space,
                    ..
                } => {
                    want_addr(*space, *addr)?;
                    if self.ty(*v) == KTy::Pred {
                        return Err(fail(index, "predicates have no memory type".into()));
                    }
                }
                KInst::Mov { dst, src } => want(*src, self.ty(*dst))?,
                KInst::Convert { dst, src } => match (self.ty(*dst), self.ty(*src)) {
                    (KTy::F32, KTy::F64) | (KTy::F64, KTy::F32) => {}
                    (d, s) => {
                        return Err(fail(index, format!("no conversion from {s:?} to {d:?}")));
                    }
                },
                KInst::AddF64 { dst, a, b } => {
                    want(*dst, KTy::F64)?;
                    want(*a, KTy::F64)?;
                    want(*b, KTy::F64)?;
                }
                KInst::Bra { target, pred } => {
                    if !labels.contains(target) {
                        return Err(fail(index, format!("unknown label {}", target.0)));
                    }
                    if let Some((r, _)) = pred {
                        want(*r, KTy::Pred)?;
                    }
                }
                KInst::Label(_) | KInst::Bar | KInst::Ret => {}
            }
        }
        Ok(())
    }
}

/// The registers an instruction reads or writes.
pub fn inst_regs(i: &KInst) -> Vec<KReg> {
    match i {
        KInst::Scalar { dst, args, .. } => {
            std::iter::once(*dst).chain(args.iter().copied()).collect()
        }
        KInst::Int { dst, a, b, .. }
        | KInst::Cmp { dst, a, b, .. }
        | KInst::AddF64 { dst, a, b } => vec![*dst, *a, *b],
        KInst::IntConst { dst, .. }
        | KInst::Special { dst, .. }
        | KInst::Param { dst, .. }
        | KInst::SharedBase { dst } => vec![*dst],
        KInst::Load { dst, addr, .. } => vec![*dst, *addr],
        KInst::LoadVector { dsts, addr, .. } => {
            dsts.iter().copied().chain(std::iter::once(*addr)).collect()
        }
        KInst::Store { addr, src, .. } => vec![*addr, *src],
        KInst::Mov { dst, src } | KInst::Convert { dst, src } | KInst::IntCast { dst, src } => {
            vec![*dst, *src]
        }
        KInst::Bra { pred, .. } => pred.iter().map(|(r, _)| *r).collect(),
        KInst::Label(_) | KInst::Bar | KInst::Ret => vec![],
    }
}

/// The registers an instruction writes.
pub fn inst_writes(i: &KInst) -> Vec<KReg> {
    match i {
        KInst::Scalar { dst, .. }
        | KInst::Int { dst, .. }
        | KInst::Cmp { dst, .. }
        | KInst::IntConst { dst, .. }
        | KInst::Special { dst, .. }
        | KInst::Param { dst, .. }
        | KInst::SharedBase { dst }
        | KInst::Load { dst, .. }
        | KInst::Mov { dst, .. }
        | KInst::Convert { dst, .. }
        | KInst::IntCast { dst, .. }
        | KInst::AddF64 { dst, .. } => vec![*dst],
        KInst::LoadVector { dsts, .. } => dsts.clone(),
        KInst::Store { .. } | KInst::Bra { .. } | KInst::Label(_) | KInst::Bar | KInst::Ret => {
            vec![]
        }
    }
}

/// The registers an instruction reads.
pub fn inst_reads(i: &KInst) -> Vec<KReg> {
    let mut regs = inst_regs(i);
    regs.drain(..inst_writes(i).len());
    regs
}
