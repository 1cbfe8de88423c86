//! The SIMT interpreter: runs kernel IR on the CPU as a GPU would, so that the generated
//! kernels' logic (indexing, tiling, barriers, the 2D merge, chunking, the math library)
//! is tested on machines without a GPU.
//!
//! A launch runs every block of the grid; within a block, every thread runs until it
//! reaches a barrier or returns, then the barrier releases all of them. Beyond executing
//! the instructions, the interpreter reports as errors what would be undefined behaviour
//! or a silent bug on a device:
//!
//! - a read of a register that was never written;
//! - an access outside any allocation, past its end, or misaligned;
//! - a data race: within one barrier interval, a word of shared memory written by one
//!   thread and read or written by another; in global memory, a word written by two
//!   threads, or written by one and read by another, during one launch;
//! - a barrier that some threads of the block never reach (they returned), or threads
//!   waiting at different barriers;
//! - a thread running more than [`STEP_LIMIT`] instructions (a loop that never ends).
//!
//! Floating-point operations follow `SOp::eval` in the launch's precision, which is the
//! semantics the PTX printer's instructions have (explicit round-to-nearest, no flush
//! to zero).

use crate::gather::GpuGather;
use crate::kir::{ICmp, IOp, KInst, KReg, KTy, Kernel, Label, Space, Special, VerifyError};
use crate::launch::{DeviceLimits, PlanOptions, Scheme};
use crate::scheme::ReductionKernels;
use keops_ir::Real;
use keops_ir::lower::{Precision, Val};
use std::collections::HashMap;

/// Instructions one thread may run in one launch.
pub const STEP_LIMIT: u64 = 2_000_000_000;

/// The most threads in a block (as on every CUDA device since sm_20).
pub const MAX_BLOCK: u64 = 1024;

/// What went wrong in a launch.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SimtError {
    /// The kernel is malformed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The launch itself is invalid (parameters, sizes, precision).
    #[error("launch of `{kernel}`: {what}")]
    Launch {
        /// Kernel name.
        kernel: String,
        /// What is wrong.
        what: String,
    },
    /// A thread did something a device would not survive (or would compute garbage from).
    #[error("`{kernel}`, block ({bx}, {by}), thread {thread}, instruction {pc}: {what}")]
    Fault {
        /// Kernel name.
        kernel: String,
        /// Block index along x.
        bx: u64,
        /// Block index along y.
        by: u64,
        /// Thread index in the block.
        thread: u64,
        /// Instruction position.
        pc: usize,
        /// What happened.
        what: String,
    },
}

/// Device memory: allocations at distinct, widely spaced addresses, so that an address
/// computed past the end of one allocation never lands in another.
#[derive(Debug, Default)]
pub struct GlobalMemory {
    bufs: Vec<Vec<u8>>,
}

/// Allocation `k` starts at `(k + 1) << ALLOC_SHIFT`.
const ALLOC_SHIFT: u32 = 40;

/// Fresh allocations are filled with this byte, so that outputs a kernel forgets to write
/// do not look like zeros (or like the index `u64::MAX`).
const FILL: u8 = 0xA5;

impl GlobalMemory {
    /// Empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes allocated so far.
    pub fn allocated(&self) -> usize {
        self.bufs.iter().map(Vec::len).sum()
    }

    /// A new allocation of `bytes` bytes; returns its address.
    pub fn alloc(&mut self, bytes: usize) -> u64 {
        self.bufs.push(vec![FILL; bytes]);
        (self.bufs.len() as u64) << ALLOC_SHIFT
    }

    /// A new allocation holding `data`.
    pub fn upload_floats<R: Real>(&mut self, data: &[R]) -> u64 {
        let size = (R::BITS / 8) as usize;
        let addr = self.alloc(data.len() * size);
        let buf = self.bufs.last_mut().expect("just allocated");
        for (k, x) in data.iter().enumerate() {
            let bits = x.to_bits_i64().to_le_bytes();
            buf[k * size..(k + 1) * size].copy_from_slice(&bits[..size]);
        }
        addr
    }

    /// A new allocation holding these bytes (little-endian values, as a device stores them).
    pub fn upload_bytes(&mut self, bytes: &[u8]) -> u64 {
        self.bufs.push(bytes.to_vec());
        (self.bufs.len() as u64) << ALLOC_SHIFT
    }

    /// The bytes of the allocation that starts at `addr` (what kernels wrote there).
    pub fn allocation_bytes(&self, addr: u64) -> Result<&[u8], String> {
        let buf = (addr >> ALLOC_SHIFT) as usize;
        if buf == 0 || buf > self.bufs.len() || addr & ((1 << ALLOC_SHIFT) - 1) != 0 {
            return Err(format!(
                "address {addr:#x} is not the start of an allocation"
            ));
        }
        Ok(&self.bufs[buf - 1])
    }

    /// A new allocation holding `data`.
    pub fn upload_u64(&mut self, data: &[u64]) -> u64 {
        let addr = self.alloc(data.len() * 8);
        let buf = self.bufs.last_mut().expect("just allocated");
        for (k, x) in data.iter().enumerate() {
            buf[k * 8..(k + 1) * 8].copy_from_slice(&x.to_le_bytes());
        }
        addr
    }

    fn locate(&self, addr: u64, size: u64) -> Result<(usize, usize), String> {
        let buf = (addr >> ALLOC_SHIFT) as usize;
        let off = addr & ((1 << ALLOC_SHIFT) - 1);
        if buf == 0 || buf > self.bufs.len() {
            return Err(format!("global address {addr:#x} is in no allocation"));
        }
        let len = self.bufs[buf - 1].len() as u64;
        if !off.is_multiple_of(size) {
            return Err(format!(
                "misaligned {size}-byte access at offset {off} of allocation {buf}"
            ));
        }
        if off + size > len {
            return Err(format!(
                "{size}-byte access at offset {off} of allocation {buf}, which holds {len} bytes"
            ));
        }
        Ok((buf - 1, off as usize))
    }

    fn read_bits(&self, addr: u64, size: u64) -> Result<u64, String> {
        let (b, o) = self.locate(addr, size)?;
        let mut bytes = [0u8; 8];
        bytes[..size as usize].copy_from_slice(&self.bufs[b][o..o + size as usize]);
        Ok(u64::from_le_bytes(bytes))
    }

    fn write_bits(&mut self, addr: u64, size: u64, bits: u64) -> Result<(), String> {
        let (b, o) = self.locate(addr, size)?;
        self.bufs[b][o..o + size as usize].copy_from_slice(&bits.to_le_bytes()[..size as usize]);
        Ok(())
    }

    /// `n` floats at `addr`.
    pub fn download_floats<R: Real>(&self, addr: u64, n: usize) -> Result<Vec<R>, String> {
        let size = (R::BITS / 8) as u64;
        (0..n as u64)
            .map(|k| {
                self.read_bits(addr + k * size, size)
                    .map(|b| R::from_bits_i64(b as i64))
            })
            .collect()
    }

    /// `n` u64 at `addr`.
    pub fn download_u64(&self, addr: u64, n: usize) -> Result<Vec<u64>, String> {
        (0..n as u64)
            .map(|k| self.read_bits(addr + k * 8, 8))
            .collect()
    }

    /// Reads `out.len()` bytes at `addr`: one access of that size, aligned to it and inside
    /// one allocation (how another [`Launcher`]'s engine reads this memory).
    pub fn read_bytes(&self, addr: u64, out: &mut [u8]) -> Result<(), String> {
        let (b, o) = self.locate(addr, out.len() as u64)?;
        out.copy_from_slice(&self.bufs[b][o..o + out.len()]);
        Ok(())
    }

    /// Writes `data` at `addr`: one access of that size, aligned to it and inside one
    /// allocation.
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), String> {
        let (b, o) = self.locate(addr, data.len() as u64)?;
        self.bufs[b][o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Grid and block sizes of a launch.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Blocks along x and y.
    pub grid: [u64; 2],
    /// Threads per block (x).
    pub block: u64,
    /// Bytes of dynamic shared memory per block.
    pub shared_bytes: u64,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum State {
    Run,
    /// Waiting at the barrier at this position.
    Barrier(usize),
    Done,
}

struct Thread<R> {
    pc: usize,
    regs: Vec<Option<Val<R>>>,
    /// f64 registers of an f32 kernel (its f64 accumulators), which `Val<f32>` cannot hold.
    wide: Vec<Option<f64>>,
    state: State,
    steps: u64,
}

const NOBODY: u32 = u32::MAX;

/// Who touched a 4-byte word of shared memory since the last barrier.
#[derive(Copy, Clone)]
struct Touch {
    writer: u32,
    reader: u32,
    many_readers: bool,
}

const UNTOUCHED: Touch = Touch {
    writer: NOBODY,
    reader: NOBODY,
    many_readers: false,
};

/// Shared memory of one block, with its race tracking.
struct Shared {
    bytes: Vec<u8>,
    touched: Vec<Touch>,
}

impl Shared {
    fn words(addr: u64, size: u64) -> std::ops::Range<usize> {
        (addr / 4) as usize..((addr + size).div_ceil(4)) as usize
    }

    fn check(&self, addr: u64, size: u64) -> Result<usize, String> {
        let len = self.bytes.len() as u64;
        if !addr.is_multiple_of(size) {
            return Err(format!("misaligned {size}-byte shared access at {addr}"));
        }
        if addr + size > len {
            return Err(format!(
                "{size}-byte shared access at {addr}, past the {len} bytes of the block"
            ));
        }
        Ok(addr as usize)
    }

    fn load(&mut self, addr: u64, size: u64, t: u32) -> Result<u64, String> {
        let o = self.check(addr, size)?;
        for w in Self::words(addr, size) {
            let touch = &mut self.touched[w];
            if touch.writer != NOBODY && touch.writer != t {
                return Err(format!(
                    "data race: shared word {} written by thread {} is read by thread {t} before a barrier",
                    w * 4,
                    touch.writer
                ));
            }
            if touch.reader == NOBODY {
                touch.reader = t;
            } else if touch.reader != t {
                touch.many_readers = true;
            }
        }
        let mut bytes = [0u8; 8];
        bytes[..size as usize].copy_from_slice(&self.bytes[o..o + size as usize]);
        Ok(u64::from_le_bytes(bytes))
    }

    fn store(&mut self, addr: u64, size: u64, bits: u64, t: u32) -> Result<(), String> {
        let o = self.check(addr, size)?;
        for w in Self::words(addr, size) {
            let touch = &mut self.touched[w];
            let other_reader = touch.many_readers || (touch.reader != NOBODY && touch.reader != t);
            if (touch.writer != NOBODY && touch.writer != t) || other_reader {
                return Err(format!(
                    "data race: thread {t} writes shared word {} that another thread accessed since the last barrier",
                    w * 4
                ));
            }
            touch.writer = t;
        }
        self.bytes[o..o + size as usize].copy_from_slice(&bits.to_le_bytes()[..size as usize]);
        Ok(())
    }

    fn barrier(&mut self) {
        self.touched.fill(UNTOUCHED);
    }
}

/// Runs `kernel` over the grid, in precision `R` (which must be the kernel's: `p`).
pub fn launch<R: Real>(
    kernel: &Kernel,
    p: Precision,
    launch: Launch,
    params: &[u64],
    mem: &mut GlobalMemory,
) -> Result<(), SimtError> {
    let bad = |what: String| SimtError::Launch {
        kernel: kernel.name.clone(),
        what,
    };
    let bits = match p {
        Precision::F32 => 32,
        Precision::F64 => 64,
    };
    if R::BITS != bits {
        return Err(bad(format!("a {p:?} kernel run in {}", R::NAME)));
    }
    kernel.verify(p)?;
    if params.len() != kernel.params {
        return Err(bad(format!(
            "{} parameters given, {} expected",
            params.len(),
            kernel.params
        )));
    }
    if launch.block == 0 || launch.block > MAX_BLOCK {
        return Err(bad(format!(
            "block of {} threads (1 to {MAX_BLOCK})",
            launch.block
        )));
    }
    let labels: HashMap<Label, usize> = kernel
        .insts
        .iter()
        .enumerate()
        .filter_map(|(k, i)| match i {
            KInst::Label(l) => Some((*l, k)),
            _ => None,
        })
        .collect();
    let mut run = Run {
        kernel,
        params,
        labels,
        launch,
        shared_bytes: launch.shared_bytes,
        mem,
        global_writes: HashMap::new(),
        global_reads: HashMap::new(),
    };
    for by in 0..launch.grid[1] {
        for bx in 0..launch.grid[0] {
            run.block::<R>(bx, by)?;
        }
    }
    Ok(())
}

struct Run<'a> {
    kernel: &'a Kernel,
    params: &'a [u64],
    labels: HashMap<Label, usize>,
    launch: Launch,
    shared_bytes: u64,
    mem: &'a mut GlobalMemory,
    /// Global words written in this launch, and by which (block, thread).
    global_writes: HashMap<u64, (u64, u64, u64)>,
    /// Global words read in this launch, by the first (block, thread) that read them,
    /// with a flag for other readers.
    global_reads: HashMap<u64, ((u64, u64, u64), bool)>,
}

impl Run<'_> {
    fn block<R: Real>(&mut self, bx: u64, by: u64) -> Result<(), SimtError> {
        let k = self.kernel;
        let nthreads = self.launch.block;
        let shared_bytes = self.shared_bytes as usize;
        let mut shared = Shared {
            bytes: vec![FILL; shared_bytes],
            touched: vec![UNTOUCHED; shared_bytes.div_ceil(4)],
        };
        let mut threads: Vec<Thread<R>> = (0..nthreads)
            .map(|_| Thread {
                pc: 0,
                regs: vec![None; k.tys.len()],
                wide: vec![None; k.tys.len()],
                state: State::Run,
                steps: 0,
            })
            .collect();
        loop {
            for (t, th) in threads.iter_mut().enumerate() {
                if th.state == State::Run {
                    self.thread(th, bx, by, t as u64, &mut shared)
                        .map_err(|(pc, what)| SimtError::Fault {
                            kernel: k.name.clone(),
                            bx,
                            by,
                            thread: t as u64,
                            pc,
                            what,
                        })?;
                }
            }
            let waiting: Vec<(usize, usize)> = threads
                .iter()
                .enumerate()
                .filter_map(|(t, th)| match th.state {
                    State::Barrier(pc) => Some((t, pc)),
                    _ => None,
                })
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            let fault = |thread: usize, pc: usize, what: String| SimtError::Fault {
                kernel: k.name.clone(),
                bx,
                by,
                thread: thread as u64,
                pc,
                what,
            };
            if let Some(t) = threads.iter().position(|th| th.state == State::Done) {
                let (w, pc) = waiting[0];
                return Err(fault(
                    w,
                    pc,
                    format!("barrier never reached by thread {t}, which returned"),
                ));
            }
            if let Some((t, pc)) = waiting.iter().find(|(_, pc)| *pc != waiting[0].1) {
                return Err(fault(
                    *t,
                    *pc,
                    format!(
                        "thread {} waits at a barrier at {}",
                        waiting[0].0, waiting[0].1
                    ),
                ));
            }
            shared.barrier();
            for th in &mut threads {
                th.state = State::Run;
            }
        }
    }

    /// Runs one thread until a barrier or its end; errors carry the instruction position.
    fn thread<R: Real>(
        &mut self,
        th: &mut Thread<R>,
        bx: u64,
        by: u64,
        t: u64,
        shared: &mut Shared,
    ) -> Result<(), (usize, String)> {
        let k = self.kernel;
        let who = (bx, by, t);
        loop {
            let pc = th.pc;
            let Some(inst) = k.insts.get(pc) else {
                return Err((pc, "ran past the last instruction without `ret`".into()));
            };
            th.steps += 1;
            if th.steps > STEP_LIMIT {
                return Err((
                    pc,
                    format!("more than {STEP_LIMIT} instructions: a loop does not end"),
                ));
            }
            th.pc += 1;
            let regs = &mut th.regs;
            let get = |regs: &[Option<Val<R>>], r: KReg| -> Result<Val<R>, (usize, String)> {
                regs[r.0 as usize]
                    .ok_or_else(|| (pc, format!("register {r} is read before it is written")))
            };
            let idx = |regs: &[Option<Val<R>>], r: KReg| -> Result<u64, (usize, String)> {
                match get(regs, r)? {
                    Val::I(x) => Ok(x),
                    other => Err((pc, format!("register {r} holds {other:?}, not an index"))),
                }
            };
            // f64 registers: in `regs` in an f64 kernel, in `wide` in an f32 one.
            let narrow = R::BITS == 32;
            let is_wide = |r: KReg| narrow && k.ty(r) == KTy::F64;
            let get_f64 = |regs: &[Option<Val<R>>],
                           wide: &[Option<f64>],
                           r: KReg|
             -> Result<f64, (usize, String)> {
                if is_wide(r) {
                    wide[r.0 as usize]
                        .ok_or_else(|| (pc, format!("register {r} is read before it is written")))
                } else {
                    Ok(get(regs, r)?.f().f64())
                }
            };
            match inst {
                KInst::IntCast { dst, src } => {
                    let x = idx(regs, *src)?;
                    let v = if k.ty(*dst) == KTy::U32 {
                        x as u32 as u64
                    } else {
                        x
                    };
                    regs[dst.0 as usize] = Some(Val::I(v));
                }
                KInst::Convert { dst, src } => {
                    let x = get_f64(regs, &th.wide, *src)?;
                    if is_wide(*dst) {
                        th.wide[dst.0 as usize] = Some(x);
                    } else {
                        // Rounds to nearest: the float type of `dst` is the kernel's.
                        regs[dst.0 as usize] = Some(Val::F(R::of(x)));
                    }
                }
                KInst::AddF64 { dst, a, b } => {
                    let sum = get_f64(regs, &th.wide, *a)? + get_f64(regs, &th.wide, *b)?;
                    if is_wide(*dst) {
                        th.wide[dst.0 as usize] = Some(sum);
                    } else {
                        regs[dst.0 as usize] = Some(Val::F(R::of(sum)));
                    }
                }
                KInst::Load {
                    dst,
                    space,
                    addr,
                    offset,
                } if is_wide(*dst) => {
                    let a = idx(regs, *addr)?.wrapping_add(*offset as u64);
                    let bits = self
                        .load(shared, *space, a, 8, t as u32, who)
                        .map_err(|e| (pc, e))?;
                    th.wide[dst.0 as usize] = Some(f64::from_bits(bits));
                }
                KInst::Store {
                    space,
                    addr,
                    offset,
                    src,
                } if is_wide(*src) => {
                    let a = idx(regs, *addr)?.wrapping_add(*offset as u64);
                    let bits = get_f64(regs, &th.wide, *src)?.to_bits();
                    self.store(shared, *space, a, 8, bits, t as u32, who)
                        .map_err(|e| (pc, e))?;
                }
                KInst::Mov { dst, src } if is_wide(*dst) => {
                    th.wide[dst.0 as usize] = Some(get_f64(regs, &th.wide, *src)?);
                }
                KInst::Scalar { dst, .. } if is_wide(*dst) => {
                    return Err((
                        pc,
                        format!("f64 register {dst} in a scalar op of an f32 kernel"),
                    ));
                }
                KInst::LoadVector { dsts, .. } if dsts.iter().any(|d| is_wide(*d)) => {
                    return Err((pc, "f64 vector load in an f32 kernel".into()));
                }
                KInst::Scalar { dst, op, args } => {
                    let mut a = [Val::I(0); 3];
                    for (slot, r) in a.iter_mut().zip(args) {
                        *slot = get(regs, *r)?;
                    }
                    regs[dst.0 as usize] = Some(op.eval(&a[..args.len()]));
                }
                KInst::Int { dst, op, a, b } => {
                    let (x, y) = (idx(regs, *a)?, idx(regs, *b)?);
                    let v = match op {
                        IOp::Add => x.wrapping_add(y),
                        IOp::Sub => x.wrapping_sub(y),
                        IOp::Mul => x.wrapping_mul(y),
                        IOp::Min => x.min(y),
                        IOp::Div | IOp::Rem if y == 0 => {
                            return Err((pc, "integer division by zero".into()));
                        }
                        IOp::Div => x / y,
                        IOp::Rem => x % y,
                    };
                    // u32 registers hold their value zero-extended: wrap as the GPU does.
                    let v = if k.ty(*dst) == KTy::U32 {
                        v as u32 as u64
                    } else {
                        v
                    };
                    regs[dst.0 as usize] = Some(Val::I(v));
                }
                KInst::IntConst { dst, value } => regs[dst.0 as usize] = Some(Val::I(*value)),
                KInst::Cmp { dst, op, a, b } => {
                    let (x, y) = (idx(regs, *a)?, idx(regs, *b)?);
                    let v = match op {
                        ICmp::Lt => x < y,
                        ICmp::Ge => x >= y,
                    };
                    regs[dst.0 as usize] = Some(Val::P(v));
                }
                KInst::Special { dst, sreg } => {
                    let v = match sreg {
                        Special::TidX => t,
                        Special::NtidX => self.launch.block,
                        Special::CtaidX => bx,
                        Special::CtaidY => by,
                        Special::NctaidY => self.launch.grid[1],
                    };
                    regs[dst.0 as usize] = Some(Val::I(v));
                }
                KInst::Param { dst, index } => {
                    regs[dst.0 as usize] = Some(Val::I(self.params[*index]))
                }
                KInst::SharedBase { dst } => regs[dst.0 as usize] = Some(Val::I(0)),
                KInst::Load {
                    dst,
                    space,
                    addr,
                    offset,
                } => {
                    let a = idx(regs, *addr)?.wrapping_add(*offset as u64);
                    let ty = k.ty(*dst);
                    let size = ty.bytes();
                    let bits = self
                        .load(shared, *space, a, size, t as u32, who)
                        .map_err(|e| (pc, e))?;
                    regs[dst.0 as usize] = Some(from_bits::<R>(ty, bits));
                }
                KInst::LoadVector {
                    dsts,
                    space,
                    addr,
                    offset,
                } => {
                    let a = idx(regs, *addr)?.wrapping_add(*offset as u64);
                    let ty = k.ty(dsts[0]);
                    let size = ty.bytes();
                    let bytes = size * dsts.len() as u64;
                    if !a.is_multiple_of(bytes) {
                        return Err((pc, format!("misaligned {bytes}-byte vector load at {a:#x}")));
                    }
                    for (lane, d) in dsts.iter().enumerate() {
                        let at = a + lane as u64 * size;
                        let bits = self
                            .load(shared, *space, at, size, t as u32, who)
                            .map_err(|e| (pc, e))?;
                        regs[d.0 as usize] = Some(from_bits::<R>(ty, bits));
                    }
                }
                KInst::Store {
                    space,
                    addr,
                    offset,
                    src,
                } => {
                    let a = idx(regs, *addr)?.wrapping_add(*offset as u64);
                    let ty = k.ty(*src);
                    let bits = to_bits(get(regs, *src)?);
                    self.store(shared, *space, a, ty.bytes(), bits, t as u32, who)
                        .map_err(|e| (pc, e))?;
                }
                KInst::Mov { dst, src } => regs[dst.0 as usize] = Some(get(regs, *src)?),
                KInst::Label(_) => {}
                KInst::Bra { target, pred } => {
                    let taken = match pred {
                        None => true,
                        Some((r, neg)) => match get(regs, *r)? {
                            Val::P(b) => b != *neg,
                            other => return Err((pc, format!("branch on {other:?}"))),
                        },
                    };
                    if taken {
                        th.pc = self.labels[target];
                    }
                }
                KInst::Bar => {
                    th.state = State::Barrier(pc);
                    return Ok(());
                }
                KInst::Ret => {
                    th.state = State::Done;
                    return Ok(());
                }
            }
        }
    }

    /// `size` bytes at `a` in `space`, read by thread `t` (`who` in the grid).
    fn load(
        &mut self,
        shared: &mut Shared,
        space: Space,
        a: u64,
        size: u64,
        t: u32,
        who: (u64, u64, u64),
    ) -> Result<u64, String> {
        match space {
            Space::Shared => shared.load(a, size, t),
            Space::Global | Space::GlobalAtUse | Space::GlobalWritten => {
                self.global_load(a, size, who)
            }
        }
    }

    /// Writes `size` bytes of `bits` at `a` in `space`, by thread `t` (`who` in the grid).
    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        shared: &mut Shared,
        space: Space,
        a: u64,
        size: u64,
        bits: u64,
        t: u32,
        who: (u64, u64, u64),
    ) -> Result<(), String> {
        match space {
            Space::Shared => shared.store(a, size, bits, t),
            Space::Global | Space::GlobalAtUse | Space::GlobalWritten => {
                self.global_store(a, size, bits, who)
            }
        }
    }

    fn global_load(&mut self, a: u64, size: u64, who: (u64, u64, u64)) -> Result<u64, String> {
        for w in (a / 4)..(a + size).div_ceil(4) {
            if let Some(writer) = self.global_writes.get(&w)
                && *writer != who
            {
                return Err(format!(
                    "data race: global word {:#x} written by {writer:?} is read by {who:?}",
                    w * 4
                ));
            }
            self.global_reads
                .entry(w)
                .and_modify(|(first, many)| *many |= *first != who)
                .or_insert((who, false));
        }
        self.mem.read_bits(a, size)
    }

    fn global_store(
        &mut self,
        a: u64,
        size: u64,
        bits: u64,
        who: (u64, u64, u64),
    ) -> Result<(), String> {
        for w in (a / 4)..(a + size).div_ceil(4) {
            if let Some(writer) = self.global_writes.insert(w, who)
                && writer != who
            {
                return Err(format!(
                    "data race: global word {:#x} written by {writer:?} and {who:?}",
                    w * 4
                ));
            }
            if let Some((reader, many)) = self.global_reads.get(&w)
                && (*many || *reader != who)
            {
                return Err(format!(
                    "data race: global word {:#x} read by {reader:?} is written by {who:?}",
                    w * 4
                ));
            }
        }
        self.mem.write_bits(a, size, bits)
    }
}

fn from_bits<R: Real>(ty: KTy, bits: u64) -> Val<R> {
    match ty {
        KTy::F32 | KTy::F64 => Val::F(R::from_bits_i64(bits as i64)),
        KTy::S32 => Val::N(bits as u32 as i32 as i64),
        KTy::S64 => Val::N(bits as i64),
        KTy::U64 => Val::I(bits),
        KTy::U32 => Val::I(bits as u32 as u64),
        KTy::Pred => Val::P(bits != 0),
    }
}

fn to_bits<R: Real>(v: Val<R>) -> u64 {
    match v {
        Val::F(x) => x.to_bits_i64() as u64,
        Val::N(n) => n as u64,
        Val::I(i) => i,
        Val::P(b) => b as u64,
    }
}

/// Runs every chunk of a reduction as the GPU runtime does (launch plans included) and
/// returns the output values and indices, row-major. `inputs` gives, for each kernel
/// input, its values (row-major, `rows x dim`) and number of rows.
pub fn run_reduction<R: Real>(
    rk: &ReductionKernels,
    inputs: &[(&[R], usize)],
    n_outer: usize,
    n_inner: usize,
    dev: &DeviceLimits,
    opts: &PlanOptions,
) -> Result<(Vec<R>, Vec<u64>), SimtError> {
    run_reduction_on(&Kir, rk, inputs, n_outer, n_inner, dev, opts)
}

/// What executes the launches of [`run_reduction_on`] and [`run_gather_on`]: [`Kir`],
/// this module's interpreter of the kernel IR, or another engine given the same kernels
/// and memory (the SIMT tests print each kernel as PTX and run the text in the PTX
/// interpreter of the `keops-ptx-interp` crate, which must compute the same bits).
pub trait Launcher {
    /// Runs `kernel` over the grid of `launch`, in precision `R` (which must be the
    /// kernel's: `p`), with these parameters, on `mem`.
    fn launch<R: Real>(
        &self,
        kernel: &Kernel,
        p: Precision,
        launch: Launch,
        params: &[u64],
        mem: &mut GlobalMemory,
    ) -> Result<(), SimtError>;
}

/// The interpreter of the kernel IR ([`launch`]) as a [`Launcher`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kir;

impl Launcher for Kir {
    fn launch<R: Real>(
        &self,
        kernel: &Kernel,
        p: Precision,
        l: Launch,
        params: &[u64],
        mem: &mut GlobalMemory,
    ) -> Result<(), SimtError> {
        launch::<R>(kernel, p, l, params, mem)
    }
}

/// [`run_reduction`] with the kernels executed by `launcher`.
pub fn run_reduction_on<R: Real>(
    launcher: &impl Launcher,
    rk: &ReductionKernels,
    inputs: &[(&[R], usize)],
    n_outer: usize,
    n_inner: usize,
    dev: &DeviceLimits,
    opts: &PlanOptions,
) -> Result<(Vec<R>, Vec<u64>), SimtError> {
    let bad = |what: String| SimtError::Launch {
        kernel: rk.chunks[0].reduce.name.clone(),
        what,
    };
    if inputs.len() != rk.inputs.len() {
        return Err(bad(format!(
            "{} inputs given, {} expected",
            inputs.len(),
            rk.inputs.len()
        )));
    }
    let mut mem = GlobalMemory::new();
    let mut ptrs = Vec::new();
    for (input, (data, rows)) in rk.inputs.iter().zip(inputs) {
        let want = rows * input.dim;
        if data.len() < want {
            return Err(bad(format!(
                "an input has {} values, {rows} x {} expected",
                data.len(),
                input.dim
            )));
        }
        ptrs.push(mem.upload_floats(&data[..want]));
    }
    let (nv, ni) = (rk.out_values, rk.out_indices);
    let fsize = (R::BITS / 8) as usize;
    let vptr = mem.alloc(n_outer * nv * fsize);
    let iptr = mem.alloc(n_outer * ni * 8);
    let p = rk.precision;
    for chunk in &rk.chunks {
        if n_outer == 0 {
            break;
        }
        let shared_per_row = chunk.reduce.shared_per_row;
        let plan = crate::launch::plan(shared_per_row, n_outer as u64, n_inner as u64, dev, opts)
            .map_err(|e| bad(e.to_string()))?;
        let mut params = vec![
            n_outer as u64,
            n_inner as u64,
            vptr,
            iptr,
            plan.tile_rows,
            0,
        ];
        params.extend(&ptrs);
        let (slices, slice) = match plan.scheme {
            Scheme::OneD => (1, (n_inner as u64).max(1)),
            Scheme::TwoD { slices, slice } => (slices, slice),
        };
        let rows = if slices > 1 {
            slices as usize * n_outer
        } else {
            0
        };
        let pf = mem.alloc(rows * chunk.acc_floats * fsize);
        let pi = mem.alloc(rows * chunk.acc_indices * 8);
        let mut reduce = params.clone();
        reduce.extend([pf, pi, slice]);
        let grid = [plan.grid_x, slices];
        let shared_bytes = plan.shared_bytes;
        launcher.launch::<R>(
            &chunk.reduce,
            p,
            Launch {
                grid,
                block: plan.block,
                shared_bytes,
            },
            &reduce,
            &mut mem,
        )?;
        if slices > 1 {
            let mut merge = params.clone();
            merge.extend([pf, pi, slices, 1]);
            let grid = [plan.grid_x, 1];
            launcher.launch::<R>(
                &chunk.merge,
                p,
                Launch {
                    grid,
                    block: plan.block,
                    shared_bytes: 0,
                },
                &merge,
                &mut mem,
            )?;
        }
    }
    let values = mem.download_floats::<R>(vptr, n_outer * nv).map_err(bad)?;
    let indices = mem.download_u64(iptr, n_outer * ni).map_err(bad)?;
    Ok((values, indices))
}

/// Runs a gather kernel (see [`crate::gather`]) as the GPU runtime does, one thread per
/// output row in blocks of `block` threads, executed by `launcher`: `inputs` gives each
/// kernel input's values (row-major) and rows, `indices` and `weights` are `[owner
/// rows][slots]`. Returns the output values, row-major.
#[allow(clippy::too_many_arguments)]
pub fn run_gather_on<R: Real>(
    launcher: &impl Launcher,
    kernel: &Kernel,
    g: &GpuGather,
    inputs: &[(&[R], usize)],
    indices: &[u64],
    weights: &[R],
    (n_owner, n_other): (usize, usize),
    block: u64,
) -> Result<Vec<R>, SimtError> {
    let bad = |what: String| SimtError::Launch {
        kernel: kernel.name.clone(),
        what,
    };
    if inputs.len() != g.inputs.len()
        || indices.len() != n_owner * g.slots
        || weights.len() != indices.len()
    {
        return Err(bad("inputs, indices or weights of other sizes".into()));
    }
    let mut mem = GlobalMemory::new();
    let mut ptrs = Vec::new();
    for (input, (data, rows)) in g.inputs.iter().zip(inputs) {
        if data.len() != rows * input.dim {
            return Err(bad(format!("an input of {} values", data.len())));
        }
        ptrs.push(mem.upload_floats(data));
    }
    let n_out = if g.to_owner { n_owner } else { n_other };
    let (starts, entries) = if g.to_owner {
        crate::gather::check_indices(indices, n_other).map_err(bad)?;
        (mem.alloc(0), mem.alloc(0))
    } else {
        let (s, e) = crate::gather::inverted_lists(indices, n_other).map_err(bad)?;
        (mem.upload_u64(&s), mem.upload_u64(&e))
    };
    let out = mem.alloc(n_out * g.out_dim * (R::BITS / 8) as usize);
    let mut params = vec![
        n_out as u64,
        out,
        mem.upload_u64(indices),
        mem.upload_floats(weights),
        starts,
        entries,
        0,
    ];
    params.extend(ptrs);
    if n_out > 0 {
        let l = Launch {
            grid: [(n_out as u64).div_ceil(block), 1],
            block,
            shared_bytes: 0,
        };
        launcher.launch::<R>(kernel, g.precision, l, &params, &mut mem)?;
    }
    mem.download_floats::<R>(out, n_out * g.out_dim)
        .map_err(bad)
}
