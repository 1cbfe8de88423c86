//! # keops-ptx-interp: a PTX interpreter for keops-rs tests
//!
//! An interpreter of the PTX dialect that `keops-gpu-kernels` prints (its `ptx` module):
//! the modules' text itself is parsed and executed, thread by thread, with blocks, shared
//! memory and barriers. Tests only (not published): it is no part of a user's build.
//!
//! `keops-gpu-kernels`' SIMT interpreter runs the kernel IR before printing; this one runs
//! what the driver would receive, so that the printer's operand orders, types, rounding
//! modes, address arithmetic and branch senses are exercised without a GPU. It is the
//! execution engine of the CPU model of the CUDA driver used by the runtime's tests
//! (`keops-runtime/fake-cuda`), and `keops-gpu-kernels`' SIMT tests run every kernel
//! through it too. It accepts the printer's subset of PTX only, and rejects anything else
//! at parse time, naming the line. It depends on nothing: global memory is whatever
//! implements [`GlobalMemory`].
//!
//! Semantics follow the PTX ISA: IEEE arithmetic with the rounding written in the opcode,
//! subnormals kept except by the `.ftz` approximate instructions (computed as their exact
//! values rounded to f32, with inputs and results flushed; the hardware's are within its
//! documented error bounds of these), float-to-integer conversions saturating with NaN to
//! 0, integer arithmetic wrapping at the type's width. It is stricter than the hardware
//! where a difference would hide a bug: reading memory outside the allocations or the
//! dynamic shared memory, a misaligned access, an integer division by zero, or a barrier
//! that some threads of the block can never reach are faults.

use std::collections::HashMap;
use std::fmt;

/// A fault of a launch, as the driver would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A load or store outside global memory's allocations or the shared memory.
    IllegalAddress(String),
    /// A load or store at an address not aligned to its size.
    MisalignedAddress(String),
    /// An operation with no defined result (integer division by zero) or a barrier that
    /// cannot complete.
    IllegalInstruction(String),
    /// A launch the kernel cannot take (parameter count, block shape).
    InvalidLaunch(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::IllegalAddress(m) => write!(f, "illegal address: {m}"),
            Fault::MisalignedAddress(m) => write!(f, "misaligned address: {m}"),
            Fault::IllegalInstruction(m) => write!(f, "illegal instruction: {m}"),
            Fault::InvalidLaunch(m) => write!(f, "invalid launch: {m}"),
        }
    }
}

impl std::error::Error for Fault {}

impl Fault {
    /// The same fault, its message placed by `at` (kernel, block, thread, instruction).
    fn at(self, at: impl Fn(String) -> String) -> Fault {
        match self {
            Fault::IllegalAddress(m) => Fault::IllegalAddress(at(m)),
            Fault::MisalignedAddress(m) => Fault::MisalignedAddress(at(m)),
            Fault::IllegalInstruction(m) => Fault::IllegalInstruction(at(m)),
            Fault::InvalidLaunch(m) => Fault::InvalidLaunch(at(m)),
        }
    }
}

/// Global memory as a launch sees it (the device allocations).
pub trait GlobalMemory {
    /// Reads `out.len()` bytes at `addr`.
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Fault>;
    /// Writes `data` at `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault>;
}

/// Register and memory types of the dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Pred,
    U32,
    S32,
    U64,
    S64,
    B32,
    B64,
    F32,
    F64,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "pred" => Ty::Pred,
            "u32" => Ty::U32,
            "s32" => Ty::S32,
            "u64" => Ty::U64,
            "s64" => Ty::S64,
            "b32" => Ty::B32,
            "b64" => Ty::B64,
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            _ => return None,
        })
    }

    fn bytes(self) -> usize {
        match self {
            Ty::Pred => 1,
            Ty::U32 | Ty::S32 | Ty::B32 | Ty::F32 => 4,
            _ => 8,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Ty::F32 | Ty::F64)
    }

    /// The register bits as a signed or unsigned integer of the type's width.
    fn int(self, bits: u64) -> i128 {
        match self {
            Ty::S32 => bits as u32 as i32 as i128,
            Ty::S64 => bits as i64 as i128,
            Ty::U32 | Ty::B32 => (bits as u32) as i128,
            Ty::Pred => (bits & 1) as i128,
            _ => bits as i128,
        }
    }

    /// An integer wrapped to the type's width, as register bits.
    fn wrap(self, v: i128) -> u64 {
        match self.bytes() {
            4 => v as u32 as u64,
            _ => v as u64,
        }
    }
}

fn f32_of(bits: u64) -> f32 {
    f32::from_bits(bits as u32)
}

fn f64_of(bits: u64) -> f64 {
    f64::from_bits(bits)
}

fn bits_f32(x: f32) -> u64 {
    x.to_bits() as u64
}

/// Flushes an f32 subnormal to a zero of its sign (`.ftz`).
fn ftz(x: f32) -> f32 {
    if x != 0.0 && x.abs() < f32::MIN_POSITIVE {
        0.0f32.copysign(x)
    } else {
        x
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Min,
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Un {
    Neg,
    Abs,
    Sqrt,
    Not,
    Ex2,
    Lg2,
    Sin,
    Cos,
    Rsqrt,
    Rcp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    /// Unordered not-equal: true when either operand is NaN.
    Neu,
}

/// Rounding modifier of `cvt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rnd {
    None,
    /// Nearest even (float results).
    Rn,
    /// Float to integral value: nearest even, toward zero, toward -inf.
    Rni,
    Rzi,
    Rmi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sreg {
    TidX,
    NtidX,
    CtaidX,
    CtaidY,
    NctaidX,
    NctaidY,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Space {
    Global,
    /// Global memory through the non-coherent path (`ld.global.nc`): only for data the
    /// kernel does not write.
    GlobalNc,
    Shared,
}

type R = u32;

/// One decoded instruction.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    Bin {
        op: Bin,
        ty: Ty,
        d: R,
        a: R,
        b: R,
    },
    Fma {
        ty: Ty,
        d: R,
        a: R,
        b: R,
        c: R,
    },
    Un {
        op: Un,
        ty: Ty,
        d: R,
        a: R,
    },
    Shift {
        left: bool,
        ty: Ty,
        d: R,
        a: R,
        k: u32,
    },
    Setp {
        cmp: Cmp,
        ty: Ty,
        d: R,
        a: R,
        b: R,
    },
    Selp {
        d: R,
        a: R,
        b: R,
        p: R,
    },
    Mov {
        d: R,
        a: R,
    },
    Imm {
        d: R,
        bits: u64,
    },
    Cvt {
        rnd: Rnd,
        dt: Ty,
        st: Ty,
        d: R,
        a: R,
    },
    Special {
        d: R,
        sreg: Sreg,
    },
    Param {
        d: R,
        index: usize,
    },
    Ld {
        space: Space,
        ty: Ty,
        dsts: Vec<R>,
        addr: R,
        off: i64,
    },
    St {
        space: Space,
        ty: Ty,
        addr: R,
        off: i64,
        src: R,
    },
    Bra {
        target: usize,
        pred: Option<(R, bool)>,
    },
    Bar,
    Ret,
}

/// A parsed module: its kernels by name.
#[derive(Clone, Debug)]
pub struct PtxModule {
    kernels: HashMap<String, PtxKernel>,
}

/// One `.entry` of a module, decoded.
#[derive(Clone, Debug)]
pub struct PtxKernel {
    name: String,
    params: usize,
    /// Registers per thread (every declared register, `%sr` last).
    regs: usize,
    ops: Vec<Op>,
    /// The source line of each op, for fault messages.
    lines: Vec<String>,
}

/// The newest target the interpreter accepts modules for (the model is of an sm_90 GPU).
pub const NEWEST_TARGET: u32 = 90;

impl PtxModule {
    /// Parses a module printed by `keops_gpu_kernels::ptx::module`; anything outside that
    /// dialect is an error naming the line.
    pub fn parse(text: &str) -> Result<PtxModule, String> {
        let mut kernels = HashMap::new();
        let mut lines = text.lines().enumerate().peekable();
        let mut shared_declared = false;
        let mut target_seen = false;
        while let Some((n, raw)) = lines.next() {
            let line = raw.trim();
            let at = |msg: String| format!("line {}: {msg}: `{line}`", n + 1);
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            if let Some(v) = line.strip_prefix(".version ") {
                let ok = v
                    .split_once('.')
                    .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                    .is_some_and(|(a, b)| (a, b) <= (8, 8));
                if !ok {
                    return Err(at("unsupported PTX ISA version".into()));
                }
            } else if let Some(t) = line.strip_prefix(".target ") {
                let sm = t
                    .strip_prefix("sm_")
                    .and_then(|s| s.parse::<u32>().ok())
                    .ok_or_else(|| at("unknown target".into()))?;
                if sm > NEWEST_TARGET {
                    return Err(at(format!(
                        "no binary for this GPU: the module needs sm_{sm}, newer than sm_{NEWEST_TARGET}"
                    )));
                }
                target_seen = true;
            } else if line == ".address_size 64" {
            } else if line == ".extern .shared .align 16 .b8 keops_shared[];" {
                shared_declared = true;
            } else if let Some(rest) = line.strip_prefix(".visible .entry ") {
                let name = rest
                    .strip_suffix('(')
                    .ok_or_else(|| at("expected `(` after the entry's name".into()))?
                    .to_string();
                let mut body = Vec::new();
                for (m, raw) in lines.by_ref() {
                    let l = raw.trim();
                    body.push((m, l.to_string()));
                    if l == "}" {
                        break;
                    }
                }
                let k = PtxKernel::parse(&name, &body, shared_declared)?;
                if kernels.insert(name.clone(), k).is_some() {
                    return Err(at(format!("kernel `{name}` defined twice")));
                }
            } else {
                return Err(at("unexpected directive".into()));
            }
        }
        if !target_seen {
            return Err("the module has no `.target`".into());
        }
        Ok(PtxModule { kernels })
    }

    /// The kernel of this name.
    pub fn kernel(&self, name: &str) -> Option<&PtxKernel> {
        self.kernels.get(name)
    }

    /// The names of the module's kernels, sorted.
    pub fn kernel_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.kernels.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Register names: `%` prefix number; each declared prefix (`%f<N>`) is a bank of N
/// registers; `%sr` is the scratch register of special-register reads.
struct Regs {
    /// (prefix, first slot, count) of each declaration.
    banks: Vec<(String, usize, usize)>,
    sr: R,
}

impl Regs {
    fn reg(&self, s: &str) -> Result<R, String> {
        let s = s.trim();
        if s == "%sr" {
            return Ok(self.sr);
        }
        let body = s
            .strip_prefix('%')
            .ok_or_else(|| format!("expected a register, found `{s}`"))?;
        let digits = body.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let prefix = &body[..body.len() - digits.len()];
        let &(_, first, count) = self
            .banks
            .iter()
            .find(|(p, _, _)| p == prefix)
            .ok_or_else(|| format!("undeclared register `{s}`"))?;
        let i: usize = digits
            .parse()
            .map_err(|_| format!("bad register number in `{s}`"))?;
        if i >= count {
            return Err(format!("register `{s}` beyond its declaration"));
        }
        Ok((first + i) as R)
    }
}

fn int_imm(s: &str) -> Result<i128, String> {
    s.trim()
        .parse::<i128>()
        .map_err(|_| format!("bad integer `{s}`"))
}

/// `[%rd5+16]` → (register, offset).
fn address(regs: &Regs, s: &str) -> Result<(R, i64), String> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| format!("expected an address, found `{s}`"))?;
    let (r, off) = inner.split_once('+').unwrap_or((inner, "0"));
    let off = off
        .parse::<i64>()
        .map_err(|_| format!("bad offset in `{s}`"))?;
    Ok((regs.reg(r)?, off))
}

impl PtxKernel {
    fn parse(name: &str, body: &[(usize, String)], shared: bool) -> Result<PtxKernel, String> {
        let mut params = 0;
        let mut banks: Vec<(String, usize, usize)> = Vec::new();
        let mut slots = 0usize;
        let mut declared_sr = false;
        let mut i = 0;
        // Parameters, up to `)`.
        while i < body.len() {
            let (n, l) = &body[i];
            i += 1;
            if l == ")" {
                break;
            }
            let want = format!(".param .u64 {name}_param_{params}");
            if l.trim_end_matches(',') != want {
                return Err(format!("line {}: expected `{want}`: `{l}`", n + 1));
            }
            params += 1;
        }
        if body.get(i).map(|(_, l)| l.as_str()) != Some("{") {
            return Err(format!(
                "kernel `{name}`: expected `{{` after the parameters"
            ));
        }
        i += 1;
        // Register declarations: `.reg .f32 %f<215>;` (the type is the prefix's).
        while let Some((n, l)) = body.get(i) {
            let Some(decl) = l.strip_prefix(".reg .") else {
                break;
            };
            i += 1;
            if decl == "u32 %sr;" {
                declared_sr = true;
                continue;
            }
            let bank = decl
                .split_once(" %")
                .and_then(|(_, r)| r.strip_suffix(">;"))
                .and_then(|r| r.split_once('<'))
                .and_then(|(p, c)| Some((p.to_string(), c.parse::<usize>().ok()?)))
                .filter(|(p, _)| banks.iter().all(|(q, _, _)| q != p))
                .ok_or_else(|| format!("line {}: bad register declaration `{l}`", n + 1))?;
            banks.push((bank.0, slots, bank.1));
            slots += bank.1;
        }
        if !declared_sr {
            return Err(format!("kernel `{name}`: `%sr` is not declared"));
        }
        let regs = Regs {
            banks,
            sr: slots as R,
        };
        let mut ops = Vec::new();
        let mut lines = Vec::new();
        let mut labels: HashMap<String, usize> = HashMap::new();
        let mut branches: Vec<(usize, String)> = Vec::new();
        let mut closed = false;
        for (n, l) in &body[i..] {
            let err = |e: String| format!("kernel `{name}`, line {}: {e}: `{l}`", n + 1);
            if l == "}" {
                closed = true;
                break;
            }
            if let Some(label) = l.strip_suffix(':') {
                if labels.insert(label.to_string(), ops.len()).is_some() {
                    return Err(err("label defined twice".into()));
                }
                continue;
            }
            let stmt = l
                .strip_suffix(';')
                .ok_or_else(|| err("missing `;`".into()))?;
            let (op, target) = decode(stmt, &regs, name, shared).map_err(err)?;
            if let Some(t) = target {
                branches.push((ops.len(), t));
            }
            ops.push(op);
            lines.push(l.clone());
        }
        if !closed {
            return Err(format!("kernel `{name}`: missing `}}`"));
        }
        for (at, label) in branches {
            let pc = *labels
                .get(&label)
                .ok_or_else(|| format!("kernel `{name}`: branch to undefined label `{label}`"))?;
            if let Op::Bra { target, .. } = &mut ops[at] {
                *target = pc;
            }
        }
        Ok(PtxKernel {
            name: name.to_string(),
            params,
            regs: slots + 1,
            ops,
            lines,
        })
    }

    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of parameters (all `.u64`).
    pub fn param_count(&self) -> usize {
        self.params
    }

    /// Registers each thread declares (an upper bound of what ptxas would allocate).
    pub fn register_count(&self) -> usize {
        self.regs
    }
}

/// Decodes one statement (without its `;`); a branch returns its label for resolution.
fn decode(
    stmt: &str,
    regs: &Regs,
    kernel: &str,
    shared: bool,
) -> Result<(Op, Option<String>), String> {
    // Predicated branch: `@%p3 bra L1` / `@!%p3 bra L1`.
    if let Some(rest) = stmt.strip_prefix('@') {
        let (p, rest) = rest
            .split_once(' ')
            .ok_or_else(|| "bad predicate".to_string())?;
        let (neg, p) = match p.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, p),
        };
        let label = rest
            .strip_prefix("bra ")
            .ok_or_else(|| "only branches are predicated in this dialect".to_string())?;
        let op = Op::Bra {
            target: 0,
            pred: Some((regs.reg(p)?, neg)),
        };
        return Ok((op, Some(label.trim().to_string())));
    }
    let (opcode, operands) = stmt.split_once(' ').unwrap_or((stmt, ""));
    let parts: Vec<&str> = opcode.split('.').collect();
    match parts.as_slice() {
        ["bra", "uni"] => {
            return Ok((
                Op::Bra {
                    target: 0,
                    pred: None,
                },
                Some(operands.trim().to_string()),
            ));
        }
        ["bar", "sync"] if operands.trim() == "0" => return Ok((Op::Bar, None)),
        ["ret"] => return Ok((Op::Ret, None)),
        _ => {}
    }
    // Vector loads: `{%f1, %f2}` holds commas; split it off first.
    if let (["ld", ..], Some((brace, rest))) = (parts.as_slice(), operands.split_once('}')) {
        let dsts = brace
            .trim()
            .strip_prefix('{')
            .ok_or_else(|| "bad vector operand".to_string())?
            .split(',')
            .map(|r| regs.reg(r))
            .collect::<Result<Vec<R>, String>>()?;
        let addr = rest.trim().trim_start_matches(',');
        return load(&parts, dsts, addr, regs);
    }
    let ops: Vec<&str> = operands.split(',').map(str::trim).collect();
    let reg = |k: usize| -> Result<R, String> {
        regs.reg(ops.get(k).ok_or_else(|| "missing operand".to_string())?)
    };
    let arity = |n: usize| -> Result<(), String> {
        if ops.len() == n {
            Ok(())
        } else {
            Err(format!("expected {n} operands"))
        }
    };
    let ty_at = |k: usize| -> Result<Ty, String> {
        parts
            .get(k)
            .and_then(|s| Ty::parse(s))
            .ok_or_else(|| "unknown type".to_string())
    };
    let last_ty = || ty_at(parts.len() - 1);
    let op = match parts.as_slice() {
        ["ld", "param", "u64"] => {
            arity(2)?;
            let sym = ops[1]
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.strip_prefix(kernel))
                .and_then(|s| s.strip_prefix("_param_"))
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| "bad parameter reference".to_string())?;
            Op::Param {
                d: reg(0)?,
                index: sym,
            }
        }
        ["ld", ..] => {
            arity(2)?;
            return load(&parts, vec![reg(0)?], ops[1], regs);
        }
        ["st", space, ty] => {
            arity(2)?;
            let (addr, off) = address(regs, ops[0])?;
            Op::St {
                space: match *space {
                    "global" => Space::Global,
                    "shared" => Space::Shared,
                    _ => return Err("unknown state space".into()),
                },
                ty: Ty::parse(ty).ok_or("unknown type")?,
                addr,
                off,
                src: reg(1)?,
            }
        }
        ["mov", "u32", ..]
            if ops.get(1).is_some_and(|s| {
                s.starts_with("%tid")
                    || s.starts_with("%ntid")
                    || s.starts_with("%ctaid")
                    || s.starts_with("%nctaid")
            }) =>
        {
            arity(2)?;
            let sreg = match ops[1] {
                "%tid.x" => Sreg::TidX,
                "%ntid.x" => Sreg::NtidX,
                "%ctaid.x" => Sreg::CtaidX,
                "%ctaid.y" => Sreg::CtaidY,
                "%nctaid.x" => Sreg::NctaidX,
                "%nctaid.y" => Sreg::NctaidY,
                s => return Err(format!("unsupported special register `{s}`")),
            };
            Op::Special { d: reg(0)?, sreg }
        }
        ["mov", t] => {
            arity(2)?;
            let ty = Ty::parse(t).ok_or("unknown type")?;
            let d = reg(0)?;
            let src = ops[1];
            if src == "keops_shared" {
                if !shared {
                    return Err("`keops_shared` is not declared".into());
                }
                // The dynamic shared memory starts at offset 0 of the shared window.
                Op::Imm { d, bits: 0 }
            } else if src.starts_with('%') {
                Op::Mov { d, a: reg(1)? }
            } else if let Some(h) = src.strip_prefix("0f") {
                if ty != Ty::F32 || h.len() != 8 {
                    return Err("bad f32 immediate".into());
                }
                let bits = u32::from_str_radix(h, 16).map_err(|_| "bad f32 immediate")?;
                Op::Imm {
                    d,
                    bits: bits as u64,
                }
            } else if let Some(h) = src.strip_prefix("0d") {
                if ty != Ty::F64 || h.len() != 16 {
                    return Err("bad f64 immediate".into());
                }
                let bits = u64::from_str_radix(h, 16).map_err(|_| "bad f64 immediate")?;
                Op::Imm { d, bits }
            } else {
                if ty.is_float() {
                    return Err("float immediates are written in hexadecimal".into());
                }
                Op::Imm {
                    d,
                    bits: ty.wrap(int_imm(src)?),
                }
            }
        }
        ["cvt", rest @ ..] => {
            arity(2)?;
            let (rnd, tys) = match rest {
                ["rn", a, b] => (Rnd::Rn, (*a, *b)),
                ["rni", a, b] => (Rnd::Rni, (*a, *b)),
                ["rzi", a, b] => (Rnd::Rzi, (*a, *b)),
                ["rmi", a, b] => (Rnd::Rmi, (*a, *b)),
                [a, b] => (Rnd::None, (*a, *b)),
                _ => return Err("bad conversion".into()),
            };
            let dt = Ty::parse(tys.0).ok_or("unknown type")?;
            let st = Ty::parse(tys.1).ok_or("unknown type")?;
            // The rounding PTX requires: float results from a wider or integer source
            // name a rounding (.rn); float to integer or to integral float names one of
            // .rni/.rzi/.rmi; exact conversions name none.
            let valid = match (st.is_float(), dt.is_float()) {
                (true, true) if st == dt => matches!(rnd, Rnd::Rni | Rnd::Rzi | Rnd::Rmi),
                (true, true) if dt.bytes() < st.bytes() => rnd == Rnd::Rn,
                (true, true) => rnd == Rnd::None,
                (true, false) => matches!(rnd, Rnd::Rni | Rnd::Rzi | Rnd::Rmi),
                (false, true) => rnd == Rnd::Rn,
                (false, false) => rnd == Rnd::None,
            };
            if !valid {
                return Err("conversion with a rounding modifier PTX does not allow".into());
            }
            Op::Cvt {
                rnd,
                dt,
                st,
                d: reg(0)?,
                a: reg(1)?,
            }
        }
        ["setp", c, t] => {
            arity(3)?;
            let ty = Ty::parse(t).ok_or("unknown type")?;
            let cmp = match *c {
                "lt" => Cmp::Lt,
                "le" => Cmp::Le,
                "gt" => Cmp::Gt,
                "ge" => Cmp::Ge,
                "eq" => Cmp::Eq,
                "ne" => Cmp::Ne,
                "neu" if ty.is_float() => Cmp::Neu,
                _ => return Err("unsupported comparison".into()),
            };
            Op::Setp {
                cmp,
                ty,
                d: reg(0)?,
                a: reg(1)?,
                b: reg(2)?,
            }
        }
        ["selp", _] => {
            arity(4)?;
            Op::Selp {
                d: reg(0)?,
                a: reg(1)?,
                b: reg(2)?,
                p: reg(3)?,
            }
        }
        ["fma", "rn", _] => {
            arity(4)?;
            Op::Fma {
                ty: last_ty()?,
                d: reg(0)?,
                a: reg(1)?,
                b: reg(2)?,
                c: reg(3)?,
            }
        }
        ["shl", _] | ["shr", _] => {
            arity(3)?;
            let k = int_imm(ops[2])?;
            let ty = last_ty()?;
            if !(0..(ty.bytes() as i128 * 8)).contains(&k) {
                return Err("shift beyond the type's width".into());
            }
            Op::Shift {
                left: parts[0] == "shl",
                ty,
                d: reg(0)?,
                a: reg(1)?,
                k: k as u32,
            }
        }
        _ => {
            let ty = last_ty()?;
            let float = ty.is_float();
            // Binary and unary operations, with the rounding and flush modifiers the
            // printer writes (`add.rn.f32`, `mul.lo.u64`, `ex2.approx.ftz.f32`).
            let mods = &parts[1..parts.len() - 1];
            let bin = match (parts[0], mods) {
                ("add", ["rn"]) | ("add", []) if float == (mods == ["rn"]) => Some(Bin::Add),
                ("sub", ["rn"]) | ("sub", []) if float == (mods == ["rn"]) => Some(Bin::Sub),
                ("mul", ["rn"]) if float => Some(Bin::Mul),
                ("mul", ["lo"]) if !float => Some(Bin::Mul),
                ("div", ["rn"]) if float => Some(Bin::Div),
                ("div", []) if !float => Some(Bin::Div),
                ("rem", []) if !float => Some(Bin::Rem),
                ("min", []) if !float => Some(Bin::Min),
                ("and", []) if !float => Some(Bin::And),
                ("or", []) if !float => Some(Bin::Or),
                _ => None,
            };
            if let Some(op) = bin {
                arity(3)?;
                Op::Bin {
                    op,
                    ty,
                    d: reg(0)?,
                    a: reg(1)?,
                    b: reg(2)?,
                }
            } else {
                let f32_approx = ty == Ty::F32 && mods == ["approx", "ftz"];
                let un = match (parts[0], mods) {
                    ("neg", []) => Un::Neg,
                    ("abs", []) => Un::Abs,
                    ("sqrt", ["rn"]) if float => Un::Sqrt,
                    ("not", []) if ty == Ty::Pred => Un::Not,
                    ("ex2", _) if f32_approx => Un::Ex2,
                    ("lg2", _) if f32_approx => Un::Lg2,
                    ("sin", _) if f32_approx => Un::Sin,
                    ("cos", _) if f32_approx => Un::Cos,
                    ("rsqrt", _) if f32_approx => Un::Rsqrt,
                    ("rcp", _) if f32_approx => Un::Rcp,
                    _ => return Err("unsupported instruction".into()),
                };
                arity(2)?;
                Op::Un {
                    op: un,
                    ty,
                    d: reg(0)?,
                    a: reg(1)?,
                }
            }
        }
    };
    Ok((op, None))
}

fn load(
    parts: &[&str],
    dsts: Vec<R>,
    addr: &str,
    regs: &Regs,
) -> Result<(Op, Option<String>), String> {
    // ld.global.nc.T, ld.global.T, ld.volatile.global.T, ld.shared.T, with an optional
    // .vN before T.
    let (space, rest) = match &parts[1..] {
        ["global", "nc", rest @ ..] => (Space::GlobalNc, rest),
        ["volatile", "global", rest @ ..] => (Space::Global, rest),
        ["global", rest @ ..] => (Space::Global, rest),
        ["shared", rest @ ..] => (Space::Shared, rest),
        _ => return Err("unsupported load".into()),
    };
    let (n, ty) = match rest {
        [t] => (1, *t),
        [v, t] => (
            match *v {
                "v2" => 2,
                "v4" => 4,
                _ => return Err("bad vector width".into()),
            },
            *t,
        ),
        _ => return Err("unsupported load".into()),
    };
    if dsts.len() != n {
        return Err(format!("a .v{n} load needs {n} registers"));
    }
    let ty = Ty::parse(ty).ok_or("unknown type")?;
    let (addr, off) = address(regs, addr)?;
    Ok((
        Op::Ld {
            space,
            ty,
            dsts,
            addr,
            off,
        },
        None,
    ))
}

/// A thread's state between barriers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Ready,
    AtBarrier(usize),
    Done,
}

/// Uninitialized registers and shared memory hold this pattern (a NaN in f32 and f64,
/// a huge index): reading one before writing it shows in results rather than passing
/// as zero.
const POISON: u64 = 0xFFF4_DEAD_FFF4_DEAD;

struct Block<'a> {
    k: &'a PtxKernel,
    grid: [u32; 3],
    block: [u32; 3],
    ctaid: [u32; 3],
    params: &'a [u64],
    shared: Vec<u8>,
    pages: &'a mut Pages,
}

/// Global memory pages (4 KB) a launch read through the non-coherent path and wrote:
/// PTX allows `ld.global.nc` only on data that stays read-only for the kernel's lifetime
/// (its cache is not coherent with the kernel's stores), so a page in both is an error
/// (allocations never share a page in the driver model nor in the SIMT memory).
#[derive(Default)]
struct Pages {
    read_nc: std::collections::HashSet<u64>,
    written: std::collections::HashSet<u64>,
    /// The last page added to each set (most accesses are to the same page).
    last: [Option<u64>; 2],
}

impl Pages {
    const SHIFT: u32 = 12;

    fn note(&mut self, written: bool, addr: u64, len: usize) {
        let k = usize::from(written);
        for page in addr >> Self::SHIFT..=(addr + len as u64 - 1) >> Self::SHIFT {
            if self.last[k] != Some(page) {
                self.last[k] = Some(page);
                if written {
                    self.written.insert(page);
                } else {
                    self.read_nc.insert(page);
                }
            }
        }
    }
}

impl PtxKernel {
    /// Runs the kernel on `grid` blocks of `block` threads with `shared_bytes` of dynamic
    /// shared memory, blocks one after the other, threads of a block in turn between
    /// barriers.
    pub fn launch(
        &self,
        grid: [u32; 3],
        block: [u32; 3],
        shared_bytes: usize,
        params: &[u64],
        memory: &mut dyn GlobalMemory,
    ) -> Result<(), Fault> {
        if params.len() != self.params {
            return Err(Fault::InvalidLaunch(format!(
                "kernel `{}` takes {} parameters, {} given",
                self.name,
                self.params,
                params.len()
            )));
        }
        if grid.contains(&0) || block.contains(&0) {
            return Err(Fault::InvalidLaunch(
                "a grid or block dimension is 0".into(),
            ));
        }
        // The printer's kernels index threads and blocks by x (and blocks by y).
        if block[1] != 1 || block[2] != 1 || grid[2] != 1 {
            return Err(Fault::InvalidLaunch(format!(
                "kernel `{}` is written for 1D blocks and 2D grids",
                self.name
            )));
        }
        let mut pages = Pages::default();
        for y in 0..grid[1] {
            for x in 0..grid[0] {
                let mut b = Block {
                    k: self,
                    grid,
                    block,
                    ctaid: [x, y, 0],
                    params,
                    shared: vec![0xFF; shared_bytes],
                    pages: &mut pages,
                };
                b.run(memory)?;
            }
        }
        if let Some(page) = pages.read_nc.intersection(&pages.written).min() {
            return Err(Fault::IllegalInstruction(format!(
                "kernel `{}` reads global memory it also writes (page {:#x}) through the non-coherent path: `ld.global.nc` is for data read-only during the kernel; load it with `ld.global`",
                self.name,
                page << Pages::SHIFT
            )));
        }
        Ok(())
    }
}

impl Block<'_> {
    fn run(&mut self, memory: &mut dyn GlobalMemory) -> Result<(), Fault> {
        let n = self.block[0] as usize;
        let nregs = self.k.regs;
        let mut regs = vec![POISON; n * nregs];
        let mut pcs = vec![0usize; n];
        let mut state = vec![Run::Ready; n];
        loop {
            for t in 0..n {
                if state[t] == Run::Ready {
                    let r = &mut regs[t * nregs..(t + 1) * nregs];
                    state[t] = self.thread(t as u32, r, &mut pcs[t], memory)?;
                }
            }
            let waiting: Vec<(usize, usize)> = state
                .iter()
                .enumerate()
                .filter_map(|(t, s)| match s {
                    Run::AtBarrier(pc) => Some((t, *pc)),
                    _ => None,
                })
                .collect();
            let Some(&(t0, pc0)) = waiting.first() else {
                return Ok(());
            };
            let whence = |t: usize, pc: usize| {
                format!(
                    "kernel `{}`, block ({}, {}), thread {t}, at `{}`",
                    self.k.name, self.ctaid[0], self.ctaid[1], self.k.lines[pc]
                )
            };
            if let Some(done) = state.iter().position(|s| *s == Run::Done) {
                return Err(Fault::IllegalInstruction(format!(
                    "{}: barrier never reached by thread {done}, which returned",
                    whence(t0, pc0)
                )));
            }
            if let Some(&(t, pc)) = waiting.iter().find(|(_, pc)| *pc != pc0) {
                return Err(Fault::IllegalInstruction(format!(
                    "{}: waits at another barrier than thread {t0} (pc {pc0})",
                    whence(t, pc)
                )));
            }
            for (t, pc) in waiting {
                state[t] = Run::Ready;
                pcs[t] = pc + 1;
            }
        }
    }

    /// Runs thread `tid` from `*pc` to its next barrier or its return.
    fn thread(
        &mut self,
        tid: u32,
        r: &mut [u64],
        pc: &mut usize,
        memory: &mut dyn GlobalMemory,
    ) -> Result<Run, Fault> {
        let ops = &self.k.ops;
        loop {
            let Some(op) = ops.get(*pc) else {
                return Ok(Run::Done);
            };
            let here = *pc;
            *pc += 1;
            let fault_at = |what: String| {
                format!(
                    "kernel `{}`, block ({}, {}), thread {tid}, at `{}`: {what}",
                    self.k.name, self.ctaid[0], self.ctaid[1], self.k.lines[here]
                )
            };
            match op {
                Op::Bin { op, ty, d, a, b } => {
                    let (x, y) = (r[*a as usize], r[*b as usize]);
                    r[*d as usize] = binary(*op, *ty, x, y)
                        .map_err(|e| Fault::IllegalInstruction(fault_at(e.into())))?;
                }
                Op::Fma { ty, d, a, b, c } => {
                    let (x, y, z) = (r[*a as usize], r[*b as usize], r[*c as usize]);
                    r[*d as usize] = match ty {
                        Ty::F32 => bits_f32(f32_of(x).mul_add(f32_of(y), f32_of(z))),
                        _ => f64_of(x).mul_add(f64_of(y), f64_of(z)).to_bits(),
                    };
                }
                Op::Un { op, ty, d, a } => r[*d as usize] = unary(*op, *ty, r[*a as usize]),
                Op::Shift { left, ty, d, a, k } => {
                    let x = ty.int(r[*a as usize]);
                    r[*d as usize] = if *left {
                        ty.wrap(x << k)
                    } else {
                        ty.wrap(x >> k)
                    };
                }
                Op::Setp { cmp, ty, d, a, b } => {
                    let (x, y) = (r[*a as usize], r[*b as usize]);
                    r[*d as usize] = compare(*cmp, *ty, x, y) as u64;
                }
                Op::Selp { d, a, b, p } => {
                    r[*d as usize] = if r[*p as usize] & 1 == 1 {
                        r[*a as usize]
                    } else {
                        r[*b as usize]
                    };
                }
                Op::Mov { d, a } => r[*d as usize] = r[*a as usize],
                Op::Imm { d, bits } => r[*d as usize] = *bits,
                Op::Cvt { rnd, dt, st, d, a } => {
                    r[*d as usize] = convert(*rnd, *dt, *st, r[*a as usize]);
                }
                Op::Special { d, sreg } => {
                    r[*d as usize] = match sreg {
                        Sreg::TidX => tid,
                        Sreg::NtidX => self.block[0],
                        Sreg::CtaidX => self.ctaid[0],
                        Sreg::CtaidY => self.ctaid[1],
                        Sreg::NctaidX => self.grid[0],
                        Sreg::NctaidY => self.grid[1],
                    } as u64;
                }
                Op::Param { d, index } => {
                    r[*d as usize] = *self.params.get(*index).ok_or_else(|| {
                        Fault::InvalidLaunch(fault_at("parameter beyond the kernel's".into()))
                    })?;
                }
                Op::Ld {
                    space,
                    ty,
                    dsts,
                    addr,
                    off,
                } => {
                    let size = ty.bytes();
                    let base = r[*addr as usize].wrapping_add(*off as u64);
                    let mut buf = [0u8; 32];
                    let buf = &mut buf[..size * dsts.len()];
                    match self
                        .place(*space, base, buf.len())
                        .map_err(|f| f.at(fault_at))?
                    {
                        None => {
                            memory.read(base, buf).map_err(|f| f.at(fault_at))?;
                            if *space == Space::GlobalNc {
                                self.pages.note(false, base, buf.len());
                            }
                        }
                        Some(s) => buf.copy_from_slice(&self.shared[s]),
                    }
                    for (dst, bytes) in dsts.iter().zip(buf.chunks(size)) {
                        let mut v = [0u8; 8];
                        v[..size].copy_from_slice(bytes);
                        r[*dst as usize] = u64::from_le_bytes(v);
                    }
                }
                Op::St {
                    space,
                    ty,
                    addr,
                    off,
                    src,
                } => {
                    let size = ty.bytes();
                    let base = r[*addr as usize].wrapping_add(*off as u64);
                    let v = r[*src as usize].to_le_bytes();
                    match self.place(*space, base, size).map_err(|f| f.at(fault_at))? {
                        None => {
                            memory.write(base, &v[..size]).map_err(|f| f.at(fault_at))?;
                            self.pages.note(true, base, size);
                        }
                        Some(s) => self.shared[s].copy_from_slice(&v[..size]),
                    }
                }
                Op::Bra { target, pred } => {
                    let taken = match pred {
                        None => true,
                        Some((p, neg)) => (r[*p as usize] & 1 == 1) != *neg,
                    };
                    if taken {
                        *pc = *target;
                    }
                }
                Op::Bar => return Ok(Run::AtBarrier(here)),
                Op::Ret => return Ok(Run::Done),
            }
        }
    }

    /// Where a `len`-byte access at `base` goes: global memory (`None`, checked by the
    /// memory itself) or this range of the shared memory. Accesses must be aligned to
    /// their size (a vector's whole size).
    fn place(
        &self,
        space: Space,
        base: u64,
        len: usize,
    ) -> Result<Option<std::ops::Range<usize>>, Fault> {
        if !base.is_multiple_of(len as u64) {
            return Err(Fault::MisalignedAddress(format!(
                "{len}-byte access at {base:#x}"
            )));
        }
        if space != Space::Shared {
            return Ok(None);
        }
        let start = usize::try_from(base).ok();
        let range = start.and_then(|s| Some(s..s.checked_add(len)?));
        match range {
            Some(r) if r.end <= self.shared.len() => Ok(Some(r)),
            _ => Err(Fault::IllegalAddress(format!(
                "shared memory access at {base:#x}, beyond the {} bytes of the launch",
                self.shared.len()
            ))),
        }
    }
}

fn binary(op: Bin, ty: Ty, x: u64, y: u64) -> Result<u64, &'static str> {
    const NOT_FLOAT: &str = "an integer operation on floats";
    Ok(match ty {
        Ty::F32 => {
            let (a, b) = (f32_of(x), f32_of(y));
            bits_f32(match op {
                Bin::Add => a + b,
                Bin::Sub => a - b,
                Bin::Mul => a * b,
                Bin::Div => a / b,
                _ => return Err(NOT_FLOAT),
            })
        }
        Ty::F64 => {
            let (a, b) = (f64_of(x), f64_of(y));
            match op {
                Bin::Add => a + b,
                Bin::Sub => a - b,
                Bin::Mul => a * b,
                Bin::Div => a / b,
                _ => return Err(NOT_FLOAT),
            }
            .to_bits()
        }
        Ty::Pred => match op {
            Bin::And => x & y & 1,
            Bin::Or => (x | y) & 1,
            _ => return Err("an arithmetic operation on predicates"),
        },
        _ => {
            let (a, b) = (ty.int(x), ty.int(y));
            ty.wrap(match op {
                Bin::Add => a + b,
                Bin::Sub => a - b,
                Bin::Mul => a.wrapping_mul(b),
                Bin::Div | Bin::Rem if b == 0 => return Err("integer division by zero"),
                Bin::Div => a / b,
                Bin::Rem => a % b,
                Bin::Min => a.min(b),
                Bin::And => a & b,
                Bin::Or => a | b,
            })
        }
    })
}

fn unary(op: Un, ty: Ty, x: u64) -> u64 {
    match ty {
        Ty::F32 => {
            let a = f32_of(x);
            // The approximate instructions, as in `SOp::eval`: flushed input, exact value
            // rounded to f32, flushed result.
            let approx = |f: fn(f64) -> f64| bits_f32(ftz(f(ftz(a) as f64) as f32));
            match op {
                Un::Neg => bits_f32(-a),
                Un::Abs => bits_f32(a.abs()),
                Un::Sqrt => bits_f32(a.sqrt()),
                Un::Ex2 => approx(f64::exp2),
                Un::Lg2 => approx(f64::log2),
                Un::Sin => approx(f64::sin),
                Un::Cos => approx(f64::cos),
                Un::Rsqrt => approx(|v| 1.0 / v.sqrt()),
                Un::Rcp => approx(|v| 1.0 / v),
                Un::Not => x,
            }
        }
        Ty::F64 => {
            let a = f64_of(x);
            match op {
                Un::Neg => -a,
                Un::Abs => a.abs(),
                Un::Sqrt => a.sqrt(),
                _ => a,
            }
            .to_bits()
        }
        Ty::Pred => (!x) & 1,
        _ => {
            let a = ty.int(x);
            match op {
                Un::Neg => ty.wrap(-a),
                Un::Abs => ty.wrap(a.abs()),
                _ => x,
            }
        }
    }
}

fn compare(cmp: Cmp, ty: Ty, x: u64, y: u64) -> bool {
    let ord = match ty {
        Ty::F32 => f32_of(x).partial_cmp(&f32_of(y)),
        Ty::F64 => f64_of(x).partial_cmp(&f64_of(y)),
        _ => Some(ty.int(x).cmp(&ty.int(y))),
    };
    use std::cmp::Ordering::*;
    match (cmp, ord) {
        (Cmp::Neu, None) => true,
        (_, None) => false,
        (Cmp::Lt, Some(o)) => o == Less,
        (Cmp::Le, Some(o)) => o != Greater,
        (Cmp::Gt, Some(o)) => o == Greater,
        (Cmp::Ge, Some(o)) => o != Less,
        (Cmp::Eq, Some(o)) => o == Equal,
        (Cmp::Ne | Cmp::Neu, Some(o)) => o != Equal,
    }
}

fn convert(rnd: Rnd, dt: Ty, st: Ty, x: u64) -> u64 {
    // The source as f64 when it is a float (f32 widens exactly).
    let src_float = match st {
        Ty::F32 => Some(f32_of(x) as f64),
        Ty::F64 => Some(f64_of(x)),
        _ => None,
    };
    let integral = |v: f64| match rnd {
        Rnd::Rni => v.round_ties_even(),
        Rnd::Rzi => v.trunc(),
        Rnd::Rmi => v.floor(),
        _ => v,
    };
    match (src_float, dt) {
        // Float to integral float of the same type: rounding f32 through f64 is exact.
        (Some(v), Ty::F32) if st == Ty::F32 => bits_f32(integral(v) as f32),
        (Some(v), Ty::F64) if st == Ty::F64 => integral(v).to_bits(),
        (Some(v), Ty::F32) => bits_f32(v as f32),
        (Some(v), Ty::F64) => v.to_bits(),
        // Float to integer: saturating, NaN to 0 (Rust's `as` has these semantics).
        (Some(v), _) => {
            let v = integral(v);
            match dt {
                Ty::S32 => v as i32 as u32 as u64,
                Ty::U32 => v as u32 as u64,
                Ty::S64 => v as i64 as u64,
                _ => v as u64,
            }
        }
        // Integer to float, rounded to nearest.
        (None, Ty::F32) => bits_f32(match st {
            Ty::S32 | Ty::S64 => st.int(x) as i64 as f32,
            _ => st.int(x) as u64 as f32,
        }),
        (None, Ty::F64) => (match st {
            Ty::S32 | Ty::S64 => st.int(x) as i64 as f64,
            _ => st.int(x) as u64 as f64,
        })
        .to_bits(),
        // Integer to integer: extended by the source's signedness, truncated to the
        // destination's width.
        (None, _) => dt.wrap(st.int(x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Global memory of one allocation at 0x1000.
    struct Flat(Vec<u8>);
    impl GlobalMemory for Flat {
        fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<(), Fault> {
            let s = (addr as usize).wrapping_sub(0x1000);
            let v = self
                .0
                .get(s..s + out.len())
                .ok_or_else(|| Fault::IllegalAddress(format!("{addr:#x}")))?;
            out.copy_from_slice(v);
            Ok(())
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
            let s = (addr as usize).wrapping_sub(0x1000);
            self.0
                .get_mut(s..s + data.len())
                .ok_or_else(|| Fault::IllegalAddress(format!("{addr:#x}")))?
                .copy_from_slice(data);
            Ok(())
        }
    }

    fn module(body: &str, regs: usize) -> String {
        format!(
            ".version 7.8\n.target sm_70\n.address_size 64\n\n.extern .shared .align 16 .b8 keops_shared[];\n\n\
             .visible .entry k(\n\t.param .u64 k_param_0\n)\n{{\n\t.reg .pred %p<{regs}>;\n\t.reg .u64 %rd<{regs}>;\n\
             \t.reg .f32 %f<{regs}>;\n\t.reg .s32 %r<{regs}>;\n\t.reg .u32 %sr;\n{body}}}\n"
        )
    }

    /// Runs `body` on one block of `threads` threads over 64 bytes at 0x1000 (the
    /// parameter), with 64 bytes of shared memory.
    fn run(body: &str, threads: u32, mem: Vec<u8>) -> (Result<(), Fault>, Vec<u8>) {
        let m = PtxModule::parse(&module(body, 16)).unwrap();
        let mut g = Flat(mem);
        let r = m
            .kernel("k")
            .unwrap()
            .launch([1, 1, 1], [threads, 1, 1], 64, &[0x1000], &mut g);
        (r, g.0)
    }

    fn f32s(b: &[u8]) -> Vec<f32> {
        b.chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn threads_share_memory_across_a_barrier() {
        // Each thread stores its index to shared memory; after the barrier thread t
        // reads thread (t+1) % 4's value and writes it, as f32, to global memory.
        let body = "\tmov.u32 %sr, %tid.x;\n\tcvt.u64.u32 %rd1, %sr;\n\tmov.u64 %rd2, keops_shared;\n\
            \tshl.b64 %rd3, %rd1, 3;\n\tadd.u64 %rd4, %rd2, %rd3;\n\tst.shared.u64 [%rd4+0], %rd1;\n\tbar.sync 0;\n\
            \tmov.u64 %rd5, 1;\n\tadd.u64 %rd6, %rd1, %rd5;\n\tmov.u64 %rd7, 4;\n\trem.u64 %rd8, %rd6, %rd7;\n\
            \tshl.b64 %rd9, %rd8, 3;\n\tadd.u64 %rd10, %rd2, %rd9;\n\tld.shared.u64 %rd11, [%rd10+0];\n\
            \tcvt.rn.f32.u64 %f12, %rd11;\n\tld.param.u64 %rd13, [k_param_0];\n\tshl.b64 %rd14, %rd1, 2;\n\
            \tadd.u64 %rd15, %rd13, %rd14;\n\tst.global.f32 [%rd15+0], %f12;\n\tret;\n";
        let (r, mem) = run(body, 4, vec![0; 16]);
        r.unwrap();
        assert_eq!(f32s(&mem), [1.0, 2.0, 3.0, 0.0]);
    }

    #[test]
    fn arithmetic_follows_the_opcode() {
        // Operand order of sub and div, fma's single rounding, comparisons with NaN,
        // saturating conversions.
        let body = "\tld.param.u64 %rd1, [k_param_0];\n\tld.global.v4.f32 {%f1, %f2, %f3, %f4}, [%rd1+0];\n\
            \tsub.rn.f32 %f5, %f1, %f2;\n\tdiv.rn.f32 %f6, %f1, %f2;\n\tfma.rn.f32 %f7, %f1, %f2, %f3;\n\
            \tsetp.lt.f32 %p1, %f4, %f1;\n\tsetp.neu.f32 %p2, %f4, %f4;\n\tmov.f32 %f8, 0f3F800000;\n\
            \tmov.f32 %f9, 0f00000000;\n\tselp.f32 %f10, %f8, %f9, %p1;\n\tselp.f32 %f11, %f8, %f9, %p2;\n\
            \tcvt.rzi.s32.f32 %r12, %f4;\n\tcvt.rn.f32.s32 %f12, %r12;\n\
            \tst.global.f32 [%rd1+16], %f5;\n\tst.global.f32 [%rd1+20], %f6;\n\tst.global.f32 [%rd1+24], %f7;\n\
            \tst.global.f32 [%rd1+28], %f10;\n\tst.global.f32 [%rd1+32], %f11;\n\tst.global.f32 [%rd1+36], %f12;\n\tret;\n";
        let mut mem: Vec<u8> = [3.0f32, 2.0, 1e-8, f32::NAN]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        mem.resize(40, 0);
        let (r, mem) = run(body, 1, mem);
        r.unwrap();
        let v = f32s(&mem);
        assert_eq!(v[4], 1.0);
        assert_eq!(v[5], 1.5);
        assert_eq!(v[6], 3.0f32.mul_add(2.0, 1e-8));
        assert_eq!(&v[7..10], [0.0, 1.0, 0.0]);
    }

    #[test]
    fn faults_name_the_instruction() {
        let oob = "\tld.param.u64 %rd1, [k_param_0];\n\tld.global.nc.f32 %f1, [%rd1+64];\n\tret;\n";
        let (r, _) = run(oob, 1, vec![0; 64]);
        let e = r.unwrap_err();
        assert!(
            matches!(&e, Fault::IllegalAddress(m) if m.contains("[%rd1+64]")),
            "{e}"
        );
        let misaligned =
            "\tld.param.u64 %rd1, [k_param_0];\n\tld.global.nc.f32 %f1, [%rd1+2];\n\tret;\n";
        assert!(matches!(
            run(misaligned, 1, vec![0; 64]).0,
            Err(Fault::MisalignedAddress(_))
        ));
        let shared = "\tmov.u64 %rd1, keops_shared;\n\tld.shared.f32 %f1, [%rd1+64];\n\tret;\n";
        assert!(matches!(
            run(shared, 1, vec![0; 64]).0,
            Err(Fault::IllegalAddress(_))
        ));
        // A non-coherent load of memory the kernel writes (4 bytes apart: the same page).
        let nc = "\tld.param.u64 %rd1, [k_param_0];\n\tld.global.nc.f32 %f1, [%rd1+0];\n\tst.global.f32 [%rd1+4], %f1;\n\tret;\n";
        let e = run(nc, 1, vec![0; 64]).0.unwrap_err();
        assert!(e.to_string().contains("non-coherent"), "{e}");
        // Through the coherent path it is allowed.
        let coherent = nc.replace("ld.global.nc.f32", "ld.global.f32");
        run(&coherent, 1, vec![0; 64]).0.unwrap();
        // Thread 0 returns before the barrier the others wait at.
        let divergent = "\tmov.u32 %sr, %tid.x;\n\tcvt.u64.u32 %rd1, %sr;\n\tmov.u64 %rd2, 0;\n\
            \tsetp.eq.u64 %p1, %rd1, %rd2;\n\t@%p1 bra L0;\n\tbar.sync 0;\nL0:\n\tret;\n";
        assert!(matches!(
            run(divergent, 2, vec![0; 64]).0,
            Err(Fault::IllegalInstruction(_))
        ));
    }

    #[test]
    fn text_outside_the_dialect_is_rejected_with_its_line() {
        let e = PtxModule::parse(&module("\tadd.f32 %f1, %f2, %f3;\n", 4)).unwrap_err();
        assert!(e.contains("add.f32"), "{e}");
        let e = PtxModule::parse(&module("\tbra.uni L9;\n", 4)).unwrap_err();
        assert!(e.contains("L9"), "{e}");
        let e = PtxModule::parse(&module("\tmov.u64 %rd9, 0;\n", 4)).unwrap_err();
        assert!(e.contains("beyond its declaration"), "{e}");
        let newer = module("", 4).replace("sm_70", "sm_100");
        assert!(PtxModule::parse(&newer).unwrap_err().contains("sm_100"));
    }
}
