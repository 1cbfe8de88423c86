//! The PTX printer: one PTX instruction per kernel IR instruction (two for special
//! registers, which PTX reads as 32 bits).
//!
//! Floating-point arithmetic is written with explicit rounding (`add.rn`, `mul.rn`,
//! `fma.rn`, `div.rn`, `sqrt.rn`) so that ptxas neither contracts nor approximates it: the
//! device computes exactly what the interpreter and the CPU kernels compute. Subnormals are
//! kept (no `.ftz`), except by the approximate instructions of `fast_math` kernels
//! (`ex2.approx.ftz.f32`, ...), which flush them as nvcc's `-use_fast_math` does; their
//! semantics in `SOp::eval` flush them too.

use crate::kir::{ICmp, IOp, KInst, KReg, KTy, Kernel, Space, Special};
use keops_ir::lower::SOp;
use std::fmt::Write;

/// PTX ISA version and the oldest target the modules are written for (ptxas and the
/// driver compile them for any newer architecture).
pub const PTX_VERSION: &str = "7.8";
/// See [`PTX_VERSION`].
pub const PTX_TARGET: &str = "sm_70";

fn prefix(t: KTy) -> &'static str {
    match t {
        KTy::Pred => "p",
        KTy::U64 => "rd",
        KTy::U32 => "ru",
        KTy::S32 => "r",
        KTy::S64 => "rl",
        KTy::F32 => "f",
        KTy::F64 => "fd",
    }
}

/// The state space and qualifier of a load: inputs are read-only for the whole kernel
/// (`.nc`); rows read at their use are `volatile` so that they are not kept in registers;
/// memory the kernel also writes is read coherently.
fn load_space(space: Space) -> &'static str {
    match space {
        Space::Global => "global.nc",
        Space::Shared => "shared",
        Space::GlobalAtUse => "volatile.global",
        Space::GlobalWritten => "global",
    }
}

fn suffix(t: KTy) -> &'static str {
    match t {
        KTy::Pred => "pred",
        KTy::U64 => "u64",
        KTy::U32 => "u32",
        KTy::S32 => "s32",
        KTy::S64 => "s64",
        KTy::F32 => "f32",
        KTy::F64 => "f64",
    }
}

fn bits(t: KTy) -> &'static str {
    match t {
        KTy::S32 | KTy::F32 => "b32",
        _ => "b64",
    }
}

struct Printer<'k> {
    k: &'k Kernel,
    out: String,
}

impl Printer<'_> {
    fn ty(&self, r: KReg) -> KTy {
        self.k.tys[r.0 as usize]
    }

    fn reg(&self, r: KReg) -> String {
        format!("%{}{}", prefix(self.ty(r)), r.0)
    }

    fn line(&mut self, s: String) {
        let _ = writeln!(self.out, "\t{s};");
    }

    fn scalar(&mut self, dst: KReg, op: SOp, args: &[KReg]) -> Result<(), String> {
        let d = self.reg(dst);
        let a: Vec<String> = args.iter().map(|r| self.reg(*r)).collect();
        let dt = self.ty(dst);
        let at = args.first().map(|r| self.ty(*r)).unwrap_or(dt);
        let t = suffix(at);
        let s = match op {
            SOp::Const(b) => match dt {
                KTy::F32 => format!(
                    "mov.f32 {d}, 0f{:08X}",
                    (f64::from_bits(b) as f32).to_bits()
                ),
                _ => format!("mov.f64 {d}, 0d{b:016X}"),
            },
            SOp::IdxConst(i) => format!("mov.u64 {d}, {i}"),
            SOp::IntConst(i) => match dt {
                KTy::S32 => format!("mov.s32 {d}, {}", i as i32),
                _ => format!("mov.s64 {d}, {i}"),
            },
            SOp::Add => format!("add.rn.{t} {d}, {}, {}", a[0], a[1]),
            SOp::Sub => format!("sub.rn.{t} {d}, {}, {}", a[0], a[1]),
            SOp::Mul => format!("mul.rn.{t} {d}, {}, {}", a[0], a[1]),
            SOp::Div => format!("div.rn.{t} {d}, {}, {}", a[0], a[1]),
            SOp::Fma => format!("fma.rn.{t} {d}, {}, {}, {}", a[0], a[1], a[2]),
            SOp::Neg => format!("neg.{t} {d}, {}", a[0]),
            SOp::Abs => format!("abs.{t} {d}, {}", a[0]),
            SOp::Floor => format!("cvt.rmi.{t}.{t} {d}, {}", a[0]),
            SOp::Trunc => format!("cvt.rzi.{t}.{t} {d}, {}", a[0]),
            SOp::RoundEven => format!("cvt.rni.{t}.{t} {d}, {}", a[0]),
            SOp::Sqrt => format!("sqrt.rn.{t} {d}, {}", a[0]),
            SOp::Lt | SOp::IdxLt | SOp::ILt => format!("setp.lt.{t} {d}, {}, {}", a[0], a[1]),
            SOp::Le => format!("setp.le.{t} {d}, {}, {}", a[0], a[1]),
            SOp::Eq | SOp::IdxEq | SOp::IEq => format!("setp.eq.{t} {d}, {}, {}", a[0], a[1]),
            // Unordered: true when either is NaN, as Rust's `!=`.
            SOp::Ne => format!("setp.neu.{t} {d}, {}, {}", a[0], a[1]),
            SOp::And => format!("and.pred {d}, {}, {}", a[0], a[1]),
            SOp::Or => format!("or.pred {d}, {}, {}", a[0], a[1]),
            SOp::Not => format!("not.pred {d}, {}", a[0]),
            SOp::Select => format!("selp.{} {d}, {}, {}, {}", suffix(dt), a[1], a[2], a[0]),
            SOp::Bits | SOp::FromBits => format!("mov.{} {d}, {}", bits(dt), a[0]),
            // Saturating, NaN to 0 (PTX's default for float-to-integer conversions).
            SOp::CvtInt => format!("cvt.rzi.{}.{t} {d}, {}", suffix(dt), a[0]),
            SOp::CvtFloat => format!("cvt.rn.{}.{t} {d}, {}", suffix(dt), a[0]),
            SOp::IAdd => format!("add.{t} {d}, {}, {}", a[0], a[1]),
            SOp::ISub => format!("sub.{t} {d}, {}, {}", a[0], a[1]),
            SOp::IAnd => format!("and.{} {d}, {}, {}", bits(dt), a[0], a[1]),
            SOp::IOr => format!("or.{} {d}, {}, {}", bits(dt), a[0], a[1]),
            SOp::IShl(k) => format!("shl.{} {d}, {}, {k}", bits(dt), a[0]),
            SOp::IShr(k) => format!("shr.{t} {d}, {}, {k}", a[0]),
            SOp::Ex2Approx => format!("ex2.approx.ftz.f32 {d}, {}", a[0]),
            SOp::Lg2Approx => format!("lg2.approx.ftz.f32 {d}, {}", a[0]),
            SOp::SinApprox => format!("sin.approx.ftz.f32 {d}, {}", a[0]),
            SOp::CosApprox => format!("cos.approx.ftz.f32 {d}, {}", a[0]),
            SOp::RsqrtApprox => format!("rsqrt.approx.ftz.f32 {d}, {}", a[0]),
            SOp::RcpApprox => format!("rcp.approx.ftz.f32 {d}, {}", a[0]),
            other => {
                return Err(format!(
                    "{other:?} should have been expanded by the math library before PTX emission"
                ));
            }
        };
        self.line(s);
        Ok(())
    }

    fn inst(&mut self, i: &KInst) -> Result<(), String> {
        match i {
            KInst::Scalar { dst, op, args } => self.scalar(*dst, *op, args)?,
            KInst::Int { dst, op, a, b } => {
                let o = match op {
                    IOp::Add => "add",
                    IOp::Sub => "sub",
                    IOp::Mul => "mul.lo",
                    IOp::Min => "min",
                    IOp::Div => "div",
                    IOp::Rem => "rem",
                };
                let t = suffix(self.ty(*dst));
                let s = format!(
                    "{o}.{t} {}, {}, {}",
                    self.reg(*dst),
                    self.reg(*a),
                    self.reg(*b)
                );
                self.line(s);
            }
            KInst::IntConst { dst, value } => {
                let s = format!("mov.{} {}, {value}", suffix(self.ty(*dst)), self.reg(*dst));
                self.line(s);
            }
            KInst::Cmp { dst, op, a, b } => {
                let o = match op {
                    ICmp::Lt => "lt",
                    ICmp::Ge => "ge",
                };
                let s = format!(
                    "setp.{o}.{} {}, {}, {}",
                    suffix(self.ty(*a)),
                    self.reg(*dst),
                    self.reg(*a),
                    self.reg(*b)
                );
                self.line(s);
            }
            KInst::Special { dst, sreg } => {
                let name = match sreg {
                    Special::TidX => "%tid.x",
                    Special::NtidX => "%ntid.x",
                    Special::CtaidX => "%ctaid.x",
                    Special::CtaidY => "%ctaid.y",
                    Special::NctaidY => "%nctaid.y",
                };
                self.line(format!("mov.u32 %sr, {name}"));
                let s = format!("cvt.u64.u32 {}, %sr", self.reg(*dst));
                self.line(s);
            }
            KInst::Param { dst, index } => {
                let s = format!(
                    "ld.param.u64 {}, [{}_param_{index}]",
                    self.reg(*dst),
                    self.k.name
                );
                self.line(s);
            }
            KInst::SharedBase { dst } => {
                let s = format!(
                    "mov.{} {}, keops_shared",
                    suffix(self.ty(*dst)),
                    self.reg(*dst)
                );
                self.line(s);
            }
            KInst::Load {
                dst,
                space,
                addr,
                offset,
            } => {
                let sp = load_space(*space);
                let s = format!(
                    "ld.{sp}.{} {}, [{}+{offset}]",
                    suffix(self.ty(*dst)),
                    self.reg(*dst),
                    self.reg(*addr)
                );
                self.line(s);
            }
            KInst::LoadVector {
                dsts,
                space,
                addr,
                offset,
            } => {
                let sp = load_space(*space);
                let regs: Vec<String> = dsts.iter().map(|d| self.reg(*d)).collect();
                let s = format!(
                    "ld.{sp}.v{}.{} {{{}}}, [{}+{offset}]",
                    dsts.len(),
                    suffix(self.ty(dsts[0])),
                    regs.join(", "),
                    self.reg(*addr)
                );
                self.line(s);
            }
            KInst::Store {
                space,
                addr,
                offset,
                src,
            } => {
                let sp = match space {
                    Space::Global | Space::GlobalAtUse | Space::GlobalWritten => "global",
                    Space::Shared => "shared",
                };
                let s = format!(
                    "st.{sp}.{} [{}+{offset}], {}",
                    suffix(self.ty(*src)),
                    self.reg(*addr),
                    self.reg(*src)
                );
                self.line(s);
            }
            KInst::Mov { dst, src } => {
                let s = format!(
                    "mov.{} {}, {}",
                    suffix(self.ty(*dst)),
                    self.reg(*dst),
                    self.reg(*src)
                );
                self.line(s);
            }
            KInst::Convert { dst, src } | KInst::IntCast { dst, src } => {
                // Integer casts and float widening are exact; float narrowing rounds to
                // nearest.
                let rounding = if self.ty(*dst) == KTy::F32 { ".rn" } else { "" };
                let s = format!(
                    "cvt{rounding}.{}.{} {}, {}",
                    suffix(self.ty(*dst)),
                    suffix(self.ty(*src)),
                    self.reg(*dst),
                    self.reg(*src)
                );
                self.line(s);
            }
            KInst::AddF64 { dst, a, b } => {
                let s = format!(
                    "add.rn.f64 {}, {}, {}",
                    self.reg(*dst),
                    self.reg(*a),
                    self.reg(*b)
                );
                self.line(s);
            }
            KInst::Label(l) => {
                let _ = writeln!(self.out, "L{}:", l.0);
            }
            KInst::Bra { target, pred } => {
                let s = match pred {
                    None => format!("bra.uni L{}", target.0),
                    Some((p, neg)) => format!(
                        "@{}{} bra L{}",
                        if *neg { "!" } else { "" },
                        self.reg(*p),
                        target.0
                    ),
                };
                self.line(s);
            }
            KInst::Bar => self.line("bar.sync 0".to_string()),
            KInst::Ret => self.line("ret".to_string()),
        }
        Ok(())
    }
}

/// The PTX text of one kernel (its `.entry` only).
pub fn entry(k: &Kernel) -> Result<String, String> {
    let mut p = Printer {
        k,
        out: String::new(),
    };
    let params: Vec<String> = (0..k.params)
        .map(|i| format!("\t.param .u64 {}_param_{i}", k.name))
        .collect();
    let _ = writeln!(
        p.out,
        ".visible .entry {}(\n{}\n)\n{{",
        k.name,
        params.join(",\n")
    );
    for t in [
        KTy::Pred,
        KTy::U64,
        KTy::U32,
        KTy::S32,
        KTy::S64,
        KTy::F32,
        KTy::F64,
    ] {
        if k.tys.contains(&t) {
            let _ = writeln!(
                p.out,
                "\t.reg .{} %{}<{}>;",
                suffix(t),
                prefix(t),
                k.tys.len()
            );
        }
    }
    let _ = writeln!(p.out, "\t.reg .u32 %sr;");
    for i in &k.insts {
        p.inst(i)?;
    }
    let _ = writeln!(p.out, "}}");
    Ok(p.out)
}

/// A complete PTX module holding the given kernels.
pub fn module(kernels: &[Kernel]) -> Result<String, String> {
    let mut out = format!(
        "//\n// Generated by keops-rs\n//\n.version {PTX_VERSION}\n.target {PTX_TARGET}\n.address_size 64\n\n.extern .shared .align 16 .b8 keops_shared[];\n\n"
    );
    for k in kernels {
        out.push_str(&entry(k)?);
        out.push('\n');
    }
    Ok(out)
}
