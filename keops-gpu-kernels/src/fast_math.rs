//! The `fast_math` option: in f32 kernels, exp, log, sin, cos, rsqrt and reciprocals use
//! the GPU's approximate instructions (special function unit) instead of the math
//! library, as nvcc's `-use_fast_math` (pykeops' default) does. Error bounds, from the PTX
//! ISA: `ex2.approx.f32` relative 2^-22 (so `exp(x) = ex2(x log2 e)` has a relative
//! error of about `(2 + |x log2 e|) 2^-23`: 2 ulp near 0, up to ~130 ulp near the
//! overflow threshold); `lg2.approx.f32` absolute 2^-22.6 in [0.5, 2], relative 2^-22
//! elsewhere; `sin.approx.f32` / `cos.approx.f32` absolute 2^-20.9 for |x| <= pi, growing
//! with |x| beyond; `rsqrt.approx.f32` relative 2^-22.9; `rcp.approx.f32` relative 2^-23.
//! Other functions, and every f64 kernel, keep the library (at most 2 ulp).
//!
//! As with nvcc's `-use_fast_math`, the approximate instructions flush subnormal inputs
//! and results to zero (`.ftz`: without it, `ex2.approx.f32` costs three more instructions
//! per call), and multiplications whose only use is an addition are contracted into a
//! fused multiply-add ([`contract`]): one rounding instead of two.

use crate::kir::{KInst, KReg, Kernel, inst_reads, inst_writes};
use keops_ir::lower::math::expand_block_with;
use keops_ir::lower::{Block, Hooks, Lower, Precision, SOp, Ty};
use std::collections::HashMap;

/// Expands a block's math functions: approximate instructions where `fast` (f32 only),
/// the library otherwise. Returns the block and the types of all registers.
pub fn expand_block(tys: &[Ty], b: &Block, p: Precision, fast: bool) -> (Block, Vec<Ty>) {
    let mut l = Lower::with_types(tys.to_vec());
    let b = expand_with(&mut l, b, p, fast && p == Precision::F32);
    (b, l.tys)
}

/// Expands the four hooks of a reduction (see [`expand_block`]).
pub fn expand_hooks(tys: &[Ty], h: &Hooks, p: Precision, fast: bool) -> (Hooks, Vec<Ty>) {
    let fast = fast && p == Precision::F32;
    let mut l = Lower::with_types(tys.to_vec());
    let h = h.map_blocks(|b| expand_with(&mut l, b, p, fast));
    (h, l.tys)
}

/// The math library's expansion, with the approximate instructions where `fast`.
fn expand_with(l: &mut Lower, b: &Block, p: Precision, fast: bool) -> Block {
    expand_block_with(l, b, p, |l, op, args| {
        if !fast {
            return None;
        }
        Some(match op {
            SOp::Exp => {
                let c = l.cst(std::f64::consts::LOG2_E);
                let t = l.mul(args[0], c);
                l.emit(SOp::Ex2Approx, &[t])
            }
            SOp::Log => {
                let t = l.emit(SOp::Lg2Approx, &[args[0]]);
                let c = l.cst(std::f64::consts::LN_2);
                l.mul(t, c)
            }
            SOp::Sin => l.emit(SOp::SinApprox, args),
            SOp::Cos => l.emit(SOp::CosApprox, args),
            SOp::Rsqrt => l.emit(SOp::RsqrtApprox, args),
            SOp::Recip => l.emit(SOp::RcpApprox, args),
            _ => return None,
        })
    })
}

/// Contracts `a * b + c` into `fma(a, b, c)` where the product's only use is the addition
/// (possibly through copies) in the same straight-line stretch of the kernel, and neither
/// `a` nor `b` is written in between; the product and its copies are removed. The SIMT
/// interpreter runs the contracted kernel, so it computes what the GPU computes.
pub fn contract(k: &mut Kernel) {
    let mut uses: HashMap<KReg, usize> = HashMap::new();
    for i in &k.insts {
        for r in inst_reads(i) {
            *uses.entry(r).or_default() += 1;
        }
    }
    let single = |r: &KReg| uses.get(r) == Some(&1);
    // Products (and their copies) available here: register -> (the product's position,
    // its operands, the copies' positions).
    let mut products: HashMap<KReg, (usize, KReg, KReg, Vec<usize>)> = HashMap::new();
    let mut dead: Vec<usize> = Vec::new();
    for idx in 0..k.insts.len() {
        let mut replace = None;
        match &k.insts[idx] {
            KInst::Label(_) | KInst::Bra { .. } | KInst::Bar | KInst::Ret => products.clear(),
            KInst::Scalar {
                op: SOp::Add,
                args,
                dst,
            } => {
                let fused = [(0, 1), (1, 0)].into_iter().find_map(|(m, c)| {
                    products
                        .get(&args[m])
                        .filter(|_| single(&args[m]))
                        .map(|p| (p.clone(), args[c]))
                });
                if let Some(((mul, a, b, copies), c)) = fused {
                    dead.push(mul);
                    dead.extend(copies);
                    replace = Some(KInst::Scalar {
                        dst: *dst,
                        op: SOp::Fma,
                        args: vec![a, b, c],
                    });
                }
            }
            _ => {}
        }
        if let Some(i) = replace {
            k.insts[idx] = i;
        }
        let inst = &k.insts[idx];
        for w in inst_writes(inst) {
            // What `w` held, and products of it, are gone.
            products.retain(|r, (_, a, b, _)| *r != w && *a != w && *b != w);
            match inst {
                KInst::Scalar {
                    op: SOp::Mul,
                    args,
                    dst,
                } if single(dst) && args[0] != *dst && args[1] != *dst => {
                    products.insert(*dst, (idx, args[0], args[1], Vec::new()));
                }
                KInst::Mov { dst, src } if single(src) => {
                    if let Some((mul, a, b, copies)) = products.get(src).cloned() {
                        let mut copies = copies;
                        copies.push(idx);
                        products.insert(*dst, (mul, a, b, copies));
                    }
                }
                _ => {}
            }
        }
    }
    dead.sort_unstable();
    let mut next_dead = dead.into_iter().peekable();
    let mut idx = 0;
    k.insts.retain(|_| {
        let keep = next_dead.peek() != Some(&idx);
        if !keep {
            next_dead.next();
        }
        idx += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kir::{KTy, Label};

    fn f(r: u32) -> KReg {
        KReg(r)
    }
    fn op(o: SOp, dst: u32, args: &[u32]) -> KInst {
        KInst::Scalar {
            dst: f(dst),
            op: o,
            args: args.iter().map(|a| f(*a)).collect(),
        }
    }
    fn mov(dst: u32, src: u32) -> KInst {
        KInst::Mov {
            dst: f(dst),
            src: f(src),
        }
    }
    fn store(src: u32) -> KInst {
        KInst::Store {
            space: crate::kir::Space::Global,
            addr: f(99),
            offset: 0,
            src: f(src),
        }
    }
    fn contracted(insts: Vec<KInst>) -> Vec<KInst> {
        let mut k = Kernel {
            name: "t".into(),
            params: 0,
            tys: vec![KTy::F32; 100],
            insts,
            shared_per_row: 0,
        };
        contract(&mut k);
        k.insts
    }

    #[test]
    fn products_used_once_by_an_addition_are_fused() {
        // r2 = r0 * r1; r4 = r3 + r2  =>  r4 = fma(r0, r1, r3)
        assert_eq!(
            contracted(vec![
                op(SOp::Mul, 2, &[0, 1]),
                op(SOp::Add, 4, &[3, 2]),
                store(4)
            ]),
            vec![op(SOp::Fma, 4, &[0, 1, 3]), store(4)]
        );
        // Through a copy, product on the left: r2 = r0 * r1; r5 = r2; r4 = r5 + r3
        assert_eq!(
            contracted(vec![
                op(SOp::Mul, 2, &[0, 1]),
                mov(5, 2),
                op(SOp::Add, 4, &[5, 3]),
                store(4)
            ]),
            vec![op(SOp::Fma, 4, &[0, 1, 3]), store(4)]
        );
    }

    #[test]
    fn products_are_kept_where_fusing_would_change_the_program() {
        // Used twice.
        let twice = vec![
            op(SOp::Mul, 2, &[0, 1]),
            op(SOp::Add, 4, &[3, 2]),
            store(4),
            store(2),
        ];
        assert_eq!(contracted(twice.clone()), twice);
        // An operand written between the product and the addition (a loop-carried copy).
        let overwritten = vec![
            op(SOp::Mul, 2, &[0, 1]),
            mov(0, 7),
            op(SOp::Add, 4, &[3, 2]),
            store(4),
        ];
        assert_eq!(contracted(overwritten.clone()), overwritten);
        // Across a label (another path may reach the addition).
        let across = vec![
            op(SOp::Mul, 2, &[0, 1]),
            KInst::Label(Label(0)),
            op(SOp::Add, 4, &[3, 2]),
            store(4),
        ];
        assert_eq!(contracted(across.clone()), across);
        // A subtraction is not an addition.
        let sub = vec![op(SOp::Mul, 2, &[0, 1]), op(SOp::Sub, 4, &[3, 2]), store(4)];
        assert_eq!(contracted(sub.clone()), sub);
    }
}
