//! Building blocks of scalar instructions, with common sub-expression sharing.

use super::scalar::{Inst, Reg, SOp, Ty, Val};
use crate::real::Real;
use std::collections::HashMap;
use std::fmt;

/// A straight-line function of scalar registers: `results = f(params)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// Input registers, bound by the caller.
    pub params: Vec<Reg>,
    /// Instructions, in order; each defines a fresh register.
    pub insts: Vec<Inst>,
    /// Output registers (params, constants or instruction results).
    pub results: Vec<Reg>,
}

impl Block {
    /// Runs the block in precision `R` (the interpreter behind lowering and math tests).
    pub fn run<R: Real>(&self, args: &[Val<R>]) -> Vec<Val<R>> {
        let mut regs = Vec::new();
        self.run_with(&mut regs, args)
    }

    /// Like [`Block::run`], reusing `regs` as the register file between calls.
    pub fn run_with<R: Real>(&self, regs: &mut Vec<Val<R>>, args: &[Val<R>]) -> Vec<Val<R>> {
        let top = self.max_reg() + 1;
        if regs.len() < top {
            regs.resize(top, Val::F(R::zero()));
        }
        for (p, a) in self.params.iter().zip(args) {
            regs[p.0 as usize] = *a;
        }
        let mut a: Vec<Val<R>> = Vec::with_capacity(3);
        for inst in &self.insts {
            a.clear();
            a.extend(inst.args.iter().map(|r| regs[r.0 as usize]));
            regs[inst.dst.0 as usize] = inst.op.eval(&a);
        }
        self.results.iter().map(|r| regs[r.0 as usize]).collect()
    }

    /// The highest register number used.
    pub fn max_reg(&self) -> usize {
        let insts = self
            .insts
            .iter()
            .flat_map(|i| std::iter::once(i.dst).chain(i.args.iter().copied()));
        self.params
            .iter()
            .chain(self.results.iter())
            .copied()
            .chain(insts)
            .map(|r| r.0 as usize)
            .max()
            .unwrap_or(0)
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insts.len()
    }

    /// True when the block has no instruction.
    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        for (k, p) in self.params.iter().enumerate() {
            write!(f, "{}{p}", if k == 0 { "" } else { ", " })?;
        }
        writeln!(f, ") {{")?;
        for i in &self.insts {
            writeln!(f, "  {i}")?;
        }
        write!(f, "}} -> (")?;
        for (k, p) in self.results.iter().enumerate() {
            write!(f, "{}{p}", if k == 0 { "" } else { ", " })?;
        }
        write!(f, ")")
    }
}

/// Emits scalar instructions into the current block; registers are numbered across
/// all blocks of a kernel.
#[derive(Debug, Default)]
pub struct Lower {
    /// Type of every register of the kernel.
    pub tys: Vec<Ty>,
    insts: Vec<Inst>,
    cse: HashMap<(SOp, Vec<Reg>), Reg>,
}

impl Lower {
    /// A fresh builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder continuing the register numbering of a kernel whose registers have
    /// these types (to rewrite its blocks, e.g. when expanding math functions).
    pub fn with_types(tys: Vec<Ty>) -> Self {
        Lower {
            tys,
            ..Self::default()
        }
    }

    /// A new register with no defining instruction (a block parameter).
    pub fn param(&mut self, ty: Ty) -> Reg {
        self.tys.push(ty);
        Reg(self.tys.len() as u32 - 1)
    }

    /// Type of a register.
    pub fn ty(&self, r: Reg) -> Ty {
        self.tys[r.0 as usize]
    }

    /// Appends `op(args)`, reusing an identical earlier instruction of this block.
    pub fn emit(&mut self, op: SOp, args: &[Reg]) -> Reg {
        let key = (op, args.to_vec());
        if let Some(r) = self.cse.get(&key) {
            return *r;
        }
        let ty = op.spec().result.unwrap_or_else(|| self.ty(args[1]));
        let dst = self.param(ty);
        self.insts.push(Inst {
            dst,
            op,
            args: args.to_vec(),
        });
        self.cse.insert(key, dst);
        dst
    }

    /// Closes the current block.
    pub fn finish(&mut self, params: Vec<Reg>, results: Vec<Reg>) -> Block {
        self.cse.clear();
        Block {
            params,
            insts: std::mem::take(&mut self.insts),
            results,
        }
    }

    /// A float constant.
    pub fn cst(&mut self, x: f64) -> Reg {
        self.emit(SOp::Const(x.to_bits()), &[])
    }
    /// An index constant.
    pub fn idx(&mut self, i: u64) -> Reg {
        self.emit(SOp::IdxConst(i), &[])
    }
    /// `a + b`
    pub fn add(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Add, &[a, b])
    }
    /// `a - b`
    pub fn sub(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Sub, &[a, b])
    }
    /// `a * b`
    pub fn mul(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Mul, &[a, b])
    }
    /// `a / b`
    pub fn div(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Div, &[a, b])
    }
    /// `-a`
    pub fn neg(&mut self, a: Reg) -> Reg {
        self.emit(SOp::Neg, &[a])
    }
    /// A unary scalar function.
    pub fn f1(&mut self, op: SOp, a: Reg) -> Reg {
        self.emit(op, &[a])
    }
    /// `a < b`
    pub fn lt(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Lt, &[a, b])
    }
    /// `a <= b`
    pub fn le(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Le, &[a, b])
    }
    /// `a == b`
    pub fn eq(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Eq, &[a, b])
    }
    /// `p ? a : b`
    pub fn select(&mut self, p: Reg, a: Reg, b: Reg) -> Reg {
        if a == b {
            return a;
        }
        self.emit(SOp::Select, &[p, a, b])
    }
    /// `p ? 1 : 0`
    pub fn indicator(&mut self, p: Reg) -> Reg {
        let (one, zero) = (self.cst(1.0), self.cst(0.0));
        self.select(p, one, zero)
    }
    /// Predicate and.
    pub fn and(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::And, &[a, b])
    }
    /// Predicate or.
    pub fn or(&mut self, a: Reg, b: Reg) -> Reg {
        self.emit(SOp::Or, &[a, b])
    }
    /// Predicate not.
    pub fn not(&mut self, a: Reg) -> Reg {
        self.emit(SOp::Not, &[a])
    }
    /// Sum of registers (0 for none), left to right.
    pub fn sum(&mut self, regs: &[Reg]) -> Reg {
        match regs.split_first() {
            None => self.cst(0.0),
            Some((first, rest)) => rest.iter().fold(*first, |acc, r| self.add(acc, *r)),
        }
    }
    /// Dot product of two register vectors.
    pub fn dot(&mut self, a: &[Reg], b: &[Reg]) -> Reg {
        let prods: Vec<Reg> = a.iter().zip(b).map(|(x, y)| self.mul(*x, *y)).collect();
        self.sum(&prods)
    }
}
