//! The `fast_math` option: in f32 kernels, exp, log, sin, cos, rsqrt and reciprocals use
//! the GPU's approximate instructions (special function unit) instead of the math
//! library, as nvcc's `-use_fast_math` (pykeops' default) does. Error bounds, from the PTX
//! ISA: `ex2.approx.f32` relative 2^-22 (so `exp(x) = ex2(x log2 e)` has a relative
//! error of about `(2 + |x log2 e|) 2^-23`: 2 ulp near 0, up to ~130 ulp near the
//! overflow threshold); `lg2.approx.f32` absolute 2^-22.6 in [0.5, 2], relative 2^-22
//! elsewhere; `sin.approx.f32` / `cos.approx.f32` absolute 2^-20.9 for |x| <= pi, growing
//! with |x| beyond; `rsqrt.approx.f32` relative 2^-22.9; `rcp.approx.f32` relative 2^-23.
//! Other functions, and every f64 kernel, keep the library (at most 2 ulp).

use keops_ir::lower::math::expand_op;
use keops_ir::lower::{Block, Hooks, Lower, Precision, Reg, SOp, Ty};
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
    let init = expand_with(&mut l, &h.init, p, fast);
    let accumulate = expand_with(&mut l, &h.accumulate, p, fast);
    let merge = expand_with(&mut l, &h.merge, p, fast);
    let finalize = expand_with(&mut l, &h.finalize, p, fast);
    (
        Hooks {
            init,
            accumulate,
            merge,
            finalize,
            ..h.clone()
        },
        l.tys,
    )
}

fn expand_with(l: &mut Lower, b: &Block, p: Precision, fast: bool) -> Block {
    let mut map: HashMap<Reg, Reg> = HashMap::new();
    for inst in &b.insts {
        let args: Vec<Reg> = inst
            .args
            .iter()
            .map(|r| map.get(r).copied().unwrap_or(*r))
            .collect();
        let r = match inst.op {
            SOp::Exp if fast => {
                let c = l.cst(std::f64::consts::LOG2_E);
                let t = l.mul(args[0], c);
                l.emit(SOp::Ex2Approx, &[t])
            }
            SOp::Log if fast => {
                let t = l.emit(SOp::Lg2Approx, &[args[0]]);
                let c = l.cst(std::f64::consts::LN_2);
                l.mul(t, c)
            }
            SOp::Sin if fast => l.emit(SOp::SinApprox, &args),
            SOp::Cos if fast => l.emit(SOp::CosApprox, &args),
            SOp::Rsqrt if fast => l.emit(SOp::RsqrtApprox, &args),
            SOp::Recip if fast => l.emit(SOp::RcpApprox, &args),
            op => expand_op(l, op, &args, p),
        };
        map.insert(inst.dst, r);
    }
    let results = b
        .results
        .iter()
        .map(|r| map.get(r).copied().unwrap_or(*r))
        .collect();
    l.finish(b.params.clone(), results)
}
