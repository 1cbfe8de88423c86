//! The CPU emitter: Rust source for a reduction kernel, from its lowered form.
//!
//! Each scalar register becomes either a scalar (when it is uniform: constants, the
//! output row's variables, parameters, and what depends only on them, computed once per
//! tile call) or an array of `L` lanes (when it varies with the reduced index); every
//! instruction on lanes is a `for l in 0..L` loop over fixed-size arrays, which LLVM
//! turns into SIMD instructions. The generated `impl` plugs into the runtime's CPU driver
//! (`CpuReduce`), which does the tiling, transposition and parallelism.

use keops_ir::error::Result;
use keops_ir::graph::Cat;
use keops_ir::lower::{
    Block, Hooks, Inst, KernelInput, LoweredKernel, Precision, Reg, SOp, SumMode, Ty,
    lower_reduction,
};
use keops_ir::program::{Program, Reduce};
use std::collections::HashSet;
use std::fmt::Write;

/// Options of the CPU emitter.
#[derive(Clone, Debug)]
pub struct RustOptions {
    /// Path of the runtime crate in the generated code (e.g. `::keops::__private::runtime`).
    pub runtime: String,
    /// Float type of the kernel.
    pub precision: Precision,
    /// Accumulation of sums inside a thread.
    pub sum_mode: SumMode,
}

/// A generated reduction kernel.
#[derive(Clone, Debug)]
pub struct EmittedReduce {
    /// Rust source: an `impl CpuReduce<f32|f64> for <name>`.
    pub code: String,
    /// Inputs in kernel order; the driver binds output-indexed, reduced-index and
    /// parameter inputs in this order, each kind separately.
    pub inputs: Vec<KernelInput>,
    /// The lowered kernel the code was generated from.
    pub kernel: LoweredKernel,
}

pub(crate) fn float(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    }
}

pub(crate) fn lanes(p: Precision) -> usize {
    match p {
        Precision::F32 => 16,
        Precision::F64 => 8,
    }
}

pub(crate) fn rust_ty(t: Ty, p: Precision) -> &'static str {
    match (t, p) {
        (Ty::F, _) => float(p),
        (Ty::Idx, _) => "u64",
        (Ty::Pred, _) => "bool",
        (Ty::Int, Precision::F32) => "i32",
        (Ty::Int, Precision::F64) => "i64",
    }
}

pub(crate) fn zero(t: Ty, p: Precision) -> &'static str {
    match (t, p) {
        (Ty::F, Precision::F32) => "0f32",
        (Ty::F, Precision::F64) => "0f64",
        (Ty::Idx, _) => "0u64",
        (Ty::Pred, _) => "false",
        (Ty::Int, Precision::F32) => "0i32",
        (Ty::Int, Precision::F64) => "0i64",
    }
}

/// A float constant with its exact bits in the kernel precision.
fn float_literal(x: f64, p: Precision) -> String {
    match p {
        Precision::F32 => format!("f32::from_bits(0x{:08x})", (x as f32).to_bits()),
        Precision::F64 => format!("f64::from_bits(0x{:016x})", x.to_bits()),
    }
}

/// The Rust expression of one instruction, from its operands' expressions.
pub(crate) fn expr(op: SOp, a: &[String], p: Precision, rt: &str) -> String {
    let f = float(p);
    let (ity, uty) = match p {
        Precision::F32 => ("i32", "u32"),
        Precision::F64 => ("i64", "u64"),
    };
    let x = |k: usize| a[k].as_str();
    match op {
        SOp::Const(bits) => float_literal(f64::from_bits(bits), p),
        SOp::IdxConst(i) => format!("{i}u64"),
        SOp::IntConst(i) => format!("({i}i64 as {ity})"),
        SOp::Add => format!("({} + {})", x(0), x(1)),
        SOp::Sub => format!("({} - {})", x(0), x(1)),
        SOp::Mul => format!("({} * {})", x(0), x(1)),
        SOp::Div => format!("({} / {})", x(0), x(1)),
        SOp::Neg => format!("(-{})", x(0)),
        SOp::Abs => format!("{}.abs()", x(0)),
        SOp::Floor => format!("{}.floor()", x(0)),
        SOp::Trunc => format!("{}.trunc()", x(0)),
        SOp::RoundEven => format!("{}.round_ties_even()", x(0)),
        SOp::Round => format!("{}.round()", x(0)),
        SOp::Sqrt => format!("{}.sqrt()", x(0)),
        SOp::Rsqrt => format!("(1.0 / {}.sqrt())", x(0)),
        SOp::Recip => format!("(1.0 / {})", x(0)),
        SOp::Exp => format!("{}.exp()", x(0)),
        SOp::Log => format!("{}.ln()", x(0)),
        SOp::Sin => format!("{}.sin()", x(0)),
        SOp::Cos => format!("{}.cos()", x(0)),
        SOp::Asin => format!("{}.asin()", x(0)),
        SOp::Acos => format!("{}.acos()", x(0)),
        SOp::Atan => format!("{}.atan()", x(0)),
        SOp::Atan2 => format!("{}.atan2({})", x(0), x(1)),
        SOp::Powf => format!("{}.powf({})", x(0), x(1)),
        SOp::PowI(n) => format!("{}.powi({n})", x(0)),
        SOp::Fma => format!("{}.mul_add({}, {})", x(0), x(1), x(2)),
        SOp::Lt | SOp::IdxLt | SOp::ILt => format!("({} < {})", x(0), x(1)),
        SOp::Le => format!("({} <= {})", x(0), x(1)),
        SOp::Eq | SOp::IdxEq | SOp::IEq => format!("({} == {})", x(0), x(1)),
        SOp::Ne => format!("({} != {})", x(0), x(1)),
        SOp::And => format!("({} & {})", x(0), x(1)),
        SOp::Or => format!("({} | {})", x(0), x(1)),
        SOp::Not => format!("(!{})", x(0)),
        SOp::Select => format!("(if {} {{ {} }} else {{ {} }})", x(0), x(1), x(2)),
        SOp::Bits => format!("({}.to_bits() as {ity})", x(0)),
        SOp::FromBits => format!("{f}::from_bits({} as {uty})", x(0)),
        // `as` saturates, which LLVM does not vectorize; the runtime's conversion clamps
        // and converts in a way it does.
        SOp::CvtInt => format!("{rt}::simd::cvt_int_{f}({})", x(0)),
        SOp::CvtFloat => format!("({} as {f})", x(0)),
        SOp::IAdd => format!("{}.wrapping_add({})", x(0), x(1)),
        SOp::ISub => format!("{}.wrapping_sub({})", x(0), x(1)),
        SOp::IAnd => format!("({} & {})", x(0), x(1)),
        SOp::IOr => format!("({} | {})", x(0), x(1)),
        SOp::IShl(k) => format!("({} << {k})", x(0)),
        SOp::IShr(k) => format!("({} >> {k})", x(0)),
        // GPU fast-math instructions, never in CPU kernels: their exact values.
        SOp::Ex2Approx => format!("{}.exp2()", x(0)),
        SOp::Lg2Approx => format!("{}.log2()", x(0)),
        SOp::SinApprox => format!("{}.sin()", x(0)),
        SOp::CosApprox => format!("{}.cos()", x(0)),
        SOp::RsqrtApprox => format!("(1.0 / {}.sqrt())", x(0)),
        SOp::RcpApprox => format!("(1.0 / {})", x(0)),
    }
}

/// Writes blocks as Rust statements.
struct Writer<'k> {
    tys: &'k [Ty],
    /// Path of the runtime crate.
    rt: &'k str,
    p: Precision,
    /// Registers holding one value for all lanes.
    uniform: HashSet<Reg>,
    out: String,
}

impl Writer<'_> {
    fn ty(&self, r: Reg) -> Ty {
        self.tys[r.0 as usize]
    }

    fn operand(&self, r: Reg, lane: bool) -> String {
        if lane && !self.uniform.contains(&r) {
            format!("r{}[l]", r.0)
        } else {
            format!("r{}", r.0)
        }
    }

    /// Scalar statements (all registers scalar).
    fn scalar(&mut self, insts: &[Inst]) {
        for i in insts {
            let args: Vec<String> = i.args.iter().map(|r| self.operand(*r, false)).collect();
            let e = expr(i.op, &args, self.p, self.rt);
            let _ = writeln!(
                self.out,
                "let r{}: {} = {e};",
                i.dst.0,
                rust_ty(self.ty(i.dst), self.p)
            );
        }
    }

    /// Lane statements: uniform instructions stay scalar, the others loop over lanes.
    fn lanes(&mut self, insts: &[Inst]) {
        for i in insts {
            let varying = i.args.iter().any(|a| !self.uniform.contains(a));
            let t = rust_ty(self.ty(i.dst), self.p);
            if !varying {
                let args: Vec<String> = i.args.iter().map(|r| self.operand(*r, false)).collect();
                let e = expr(i.op, &args, self.p, self.rt);
                let _ = writeln!(self.out, "let r{}: {t} = {e};", i.dst.0);
                self.uniform.insert(i.dst);
            } else {
                let args: Vec<String> = i.args.iter().map(|r| self.operand(*r, true)).collect();
                let e = expr(i.op, &args, self.p, self.rt);
                let z = zero(self.ty(i.dst), self.p);
                let _ = writeln!(
                    self.out,
                    "let mut r{0}: [{t}; L] = [{z}; L]; for l in 0..L {{ r{0}[l] = {e}; }}",
                    i.dst.0
                );
            }
        }
    }

    /// Binds block parameters to expressions (`let rP = <expr>;`), keeping uniformity.
    fn bind(&mut self, params: &[Reg], values: &[(String, bool)]) {
        for (p, (v, uniform)) in params.iter().zip(values) {
            let _ = writeln!(self.out, "let r{} = {v};", p.0);
            if *uniform {
                self.uniform.insert(*p);
            } else {
                self.uniform.remove(p);
            }
        }
    }
}

/// Emits `impl CpuReduce<f32|f64> for <name>` for a reduction step of an instantiated program.
pub fn emit_reduce(
    p: &Program,
    r: &Reduce,
    name: &str,
    opts: &RustOptions,
) -> Result<EmittedReduce> {
    let kernel = lower_reduction(p, r, opts.sum_mode)?;
    let kernel = keops_ir::lower::expand_math(&kernel, opts.precision);
    let rt = &opts.runtime;
    let f = float(opts.precision);
    let nlanes = lanes(opts.precision);
    let h = &kernel.hooks;
    let nf = h.acc.iter().filter(|t| **t == Ty::F).count();
    let ni = h.acc.len() - nf;

    // Components of the formula block's parameters, by input kind.
    let mut outer_w = Vec::new();
    let mut inner_w = Vec::new();
    let mut param_w = Vec::new();
    let mut sources: Vec<(String, bool)> = Vec::new();
    let (mut no, mut nin, mut np) = (0, 0, 0);
    for input in &kernel.inputs {
        for _ in 0..input.dim {
            if input.cat == Cat::P {
                sources.push((format!("t.params[{np}]"), true));
                np += 1;
            } else if input.cat == kernel.out_rows {
                sources.push((format!("t.outer[{no}]"), true));
                no += 1;
            } else {
                sources.push((
                    format!("{rt}::simd::chunk::<{f}, L>(t.inner, {nin} * t.stride + base)"),
                    false,
                ));
                nin += 1;
            }
        }
        match input.cat {
            Cat::P => param_w.push(input.dim),
            c if c == kernel.out_rows => outer_w.push(input.dim),
            _ => inner_w.push(input.dim),
        }
    }

    // The exponential as its own block (registers after the kernel's), for the two-pass
    // LogSumExp tile.
    let (exp_block, tys) = {
        let mut l = keops_ir::lower::Lower::with_types(kernel.tys.clone());
        let x = l.param(Ty::F);
        let e = l.emit(keops_ir::lower::SOp::Exp, &[x]);
        let b = l.finish(vec![x], vec![e]);
        keops_ir::lower::expand_block_math(&l.tys, &b, opts.precision)
    };
    let mut w = Writer {
        tys: &tys,
        rt: &opts.runtime,
        p: opts.precision,
        uniform: HashSet::new(),
        out: String::new(),
    };
    let list = |v: &[usize]| {
        v.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(w.out, "impl {rt}::cpu::CpuReduce<{f}> for {name} {{");
    let _ = writeln!(
        w.out,
        "fn acc_len(&self) -> (usize, usize) {{ ({nf}, {ni}) }}"
    );
    let _ = writeln!(
        w.out,
        "fn is_sum(&self) -> bool {{ {} }}",
        kernel.kind == keops_ir::reduction::ReductionKind::Sum
    );
    let _ = writeln!(
        w.out,
        "fn out_len(&self) -> (usize, usize) {{ ({}, {}) }}",
        h.out_values, h.out_indices
    );
    let _ = writeln!(
        w.out,
        "fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {{ (vec![{}], vec![{}], vec![{}]) }}",
        list(&outer_w),
        list(&inner_w),
        list(&param_w)
    );

    // init
    let _ = writeln!(
        w.out,
        "fn init(&self, acc_f: &mut [{f}], acc_i: &mut [u64]) {{"
    );
    w.scalar(&h.init.insts);
    store_acc(&mut w.out, &h.init.results, &h.acc, "acc_f", "acc_i", "");
    let _ = writeln!(w.out, "}}");

    // merge
    let _ = writeln!(
        w.out,
        "fn merge(&self, acc_f: &mut [{f}], acc_i: &mut [u64], other_f: &[{f}], other_i: &[u64]) {{"
    );
    let half = h.acc.len();
    let mut vals = load_acc(&h.acc, "acc_f", "acc_i", "");
    vals.extend(load_acc(&h.acc, "other_f", "other_i", ""));
    w.bind(&h.merge.params, &vals);
    w.scalar(&h.merge.insts);
    store_acc(&mut w.out, &h.merge.results, &h.acc, "acc_f", "acc_i", "");
    let _ = writeln!(w.out, "}}");
    let _ = half;

    // finalize
    let _ = writeln!(
        w.out,
        "fn finalize(&self, acc_f: &[{f}], acc_i: &[u64], out_f: &mut [{f}], out_i: &mut [u64]) {{"
    );
    let vals = load_acc(&h.acc, "acc_f", "acc_i", "");
    w.bind(&h.finalize.params, &vals);
    w.scalar(&h.finalize.insts);
    let (mut kf, mut ki) = (0, 0);
    for res in &h.finalize.results {
        if w.ty(*res) == Ty::Idx {
            let _ = writeln!(w.out, "out_i[{ki}] = r{};", res.0);
            ki += 1;
        } else {
            let _ = writeln!(w.out, "out_f[{kf}] = r{};", res.0);
            kf += 1;
        }
    }
    let _ = writeln!(w.out, "}}");

    // tile
    let _ = writeln!(
        w.out,
        "#[inline]\nfn tile(&self, t: {rt}::cpu::Tile<'_, {f}>, acc_f: &mut [{f}], acc_i: &mut [u64]) {{"
    );
    let _ = writeln!(
        w.out,
        "struct Body<'a, 'b> {{ t: {rt}::cpu::Tile<'a, {f}>, acc_f: &'b mut [{f}], acc_i: &'b mut [u64] }}"
    );
    let _ = writeln!(
        w.out,
        "impl {rt}::simd::Kernel for Body<'_, '_> {{\n#[inline(always)]\nfn run(self) {{"
    );
    let _ = writeln!(
        w.out,
        "let Body {{ t, acc_f, acc_i }} = self;\nconst L: usize = {nlanes};"
    );
    // uniform parts of the formula, hoisted out of the lane loop
    let (hoisted, per_lane) = split_uniform(&kernel.formula, &sources);
    w.uniform.clear();
    for (p, (v, uniform)) in kernel.formula.params.iter().zip(&sources) {
        if *uniform {
            let _ = writeln!(w.out, "let r{} = {v};", p.0);
            w.uniform.insert(*p);
        }
    }
    w.lanes(&hoisted);
    let unweighted_lse = kernel.kind == keops_ir::reduction::ReductionKind::LogSumExp
        && kernel.formula.results.len() == 1
        && !w.uniform.contains(&kernel.formula.results[0]);
    if let Some(smaller) = kernel.kind.order() {
        select_tile(
            &mut w,
            &kernel,
            &sources,
            &per_lane,
            smaller == keops_ir::reduction::Order::Smaller,
            opts.precision,
        );
    } else if unweighted_lse {
        lse_tile(
            &mut w,
            &kernel,
            &sources,
            &per_lane,
            &exp_block,
            opts.precision,
        );
    } else {
        sum_tile(&mut w, &kernel, &sources, &per_lane, opts.precision);
    }
    let _ = writeln!(
        w.out,
        "{rt}::simd::dispatch(Body {{ t, acc_f, acc_i }});\n}}\n}}"
    );
    Ok(EmittedReduce {
        code: w.out,
        inputs: kernel.inputs.clone(),
        kernel,
    })
}

/// The lane loop of sums and LogSumExp-like reductions: one accumulator per lane, merged
/// into the row's accumulator at the end of the tile, in lane order.
fn sum_tile(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(String, bool)],
    per_lane: &[Inst],
    precision: Precision,
) {
    let h = &kernel.hooks;
    // lane accumulators, from the init block
    w.scalar(&h.init.insts);
    for (k, res) in h.init.results.iter().enumerate() {
        let _ = writeln!(w.out, "let mut la{k} = [r{}; L];", res.0);
    }
    let _ = writeln!(w.out, "let mut base = 0usize;\nwhile base < t.len {{");
    let lane_vals = formula_lanes(w, kernel, sources, per_lane, precision);
    let acc_params = &h.accumulate.params;
    let nacc = h.acc.len();
    // accumulate: full chunks, then the masked tail
    for masked in [false, true] {
        let head = if masked {
            "else"
        } else {
            "if base + L <= t.len"
        };
        let guard = if masked { "if base + l < t.len " } else { "" };
        let _ = writeln!(w.out, "{head} {{\nfor l in 0..L {{ {guard}{{");
        let mut binds: Vec<String> = (0..nacc).map(|k| format!("la{k}[l]")).collect();
        binds.extend(lane_vals.iter().cloned());
        binds.push("t.j0 + (base + l) as u64".to_string());
        for (p, v) in acc_params.iter().zip(&binds) {
            let _ = writeln!(w.out, "let r{} = {v};", p.0);
        }
        w.scalar(&h.accumulate.insts);
        for (k, res) in h.accumulate.results.iter().enumerate() {
            let _ = writeln!(w.out, "la{k}[l] = r{};", res.0);
        }
        let _ = writeln!(w.out, "}} }}\n}}");
    }
    let _ = writeln!(w.out, "base += L;\n}}");
    // merge the lanes into the row accumulator, in lane order
    let _ = writeln!(w.out, "for l in 0..L {{");
    let mut vals = load_acc(&h.acc, "acc_f", "acc_i", "");
    vals.extend((0..nacc).map(|k| (format!("la{k}[l]"), true)));
    w.uniform.clear();
    w.bind(&h.merge.params, &vals);
    w.scalar(&h.merge.insts);
    store_acc(&mut w.out, &h.merge.results, &h.acc, "acc_f", "acc_i", "");
    let _ = writeln!(w.out, "}}\n}}\n}}");
}

/// The lane loop of selections (Min, ArgMin, KMin, ...): the formula is evaluated for a
/// chunk of lanes at once, compared with the row's current worst kept value (a vector
/// test that almost always fails once the row has K good values), and only the lanes that
/// pass are inserted, one by one in index order, into the row's single accumulator, whose
/// worst kept value then tightens the test. As in KeOps, the insertion network runs about
/// K log(N / K) times per row instead of N.
fn select_tile(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(String, bool)],
    per_lane: &[Inst],
    smaller: bool,
    precision: Precision,
) {
    let h = &kernel.hooks;
    let (k, d) = (kernel.kind.slots(), kernel.fdim);
    let cmp = if smaller { "<=" } else { ">=" };
    for c in 0..d {
        let _ = writeln!(w.out, "let mut worst{c} = acc_f[{}];", (k - 1) * d + c);
    }
    let _ = writeln!(w.out, "let mut base = 0usize;\nwhile base < t.len {{");
    let lane_vals = formula_lanes(w, kernel, sources, per_lane, precision);
    let _ = writeln!(w.out, "let mut candidate = false;");
    for (c, f) in lane_vals.iter().enumerate().take(d) {
        let _ = writeln!(
            w.out,
            "for l in 0..L {{ candidate |= {f} {cmp} worst{c}; }}"
        );
    }
    let _ = writeln!(w.out, "if candidate {{\nfor l in 0..L.min(t.len - base) {{");
    let tests: Vec<String> = lane_vals
        .iter()
        .take(d)
        .enumerate()
        .map(|(c, f)| format!("({f} {cmp} worst{c})"))
        .collect();
    let _ = writeln!(w.out, "if !({}) {{ continue; }}", tests.join(" | "));
    accumulate_into_row(w, h, lane_vals.iter().cloned());
    for c in 0..d {
        let _ = writeln!(w.out, "worst{c} = acc_f[{}];", (k - 1) * d + c);
    }
    let _ = writeln!(w.out, "}}\n}}\nbase += L;\n}}\n}}\n}}");
}

/// The tile of an unweighted LogSumExp, in blocks of 16 chunks and two passes: the
/// maximum M of the formula's values, then the sum of exp(f - M) (one exponential per
/// term and no rescaling), merged into the row's state (m, s) once per block. Blocks whose
/// maximum is not finite (all -inf, +inf, all NaN) go through the one-term-at-a-time
/// reduction, which defines those cases.
fn lse_tile(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(String, bool)],
    per_lane: &[Inst],
    exp: &Block,
    precision: Precision,
) {
    let h = &kernel.hooks;
    let f = float(precision);
    // Chunks per block: the formula is evaluated twice (for the maximum, then for the
    // sum), which costs less than keeping its values.
    const CHUNKS: usize = 16;
    let _ = writeln!(w.out, "let mut start = 0usize;\nwhile start < t.len {{");
    let _ = writeln!(w.out, "let end = (start + {CHUNKS} * L).min(t.len);");
    let _ = writeln!(
        w.out,
        "let mut vmax = [{f}::NEG_INFINITY; L];\nlet mut base = start;\nwhile base < end {{"
    );
    let lane_vals = formula_lanes(w, kernel, sources, per_lane, precision);
    let v = &lane_vals[0];
    let _ = writeln!(
        w.out,
        "if base + L <= end {{ for l in 0..L {{ let v = {v}; vmax[l] = if v > vmax[l] {{ v }} else {{ vmax[l] }}; }} }} else {{ for l in 0..L {{ let v = if base + l < end {{ {v} }} else {{ {f}::NEG_INFINITY }}; vmax[l] = if v > vmax[l] {{ v }} else {{ vmax[l] }}; }} }}\nbase += L;\n}}"
    );
    let _ = writeln!(
        w.out,
        "let mut mb = {f}::NEG_INFINITY;\nfor l in 0..L {{ mb = mb.max(vmax[l]); }}"
    );
    let _ = writeln!(
        w.out,
        "if mb.is_finite() {{\nlet mut sl = [0 as {f}; L];\nlet mut base = start;\nwhile base < end {{"
    );
    let lane_vals = formula_lanes(w, kernel, sources, per_lane, precision);
    let v = &lane_vals[0];
    let _ = writeln!(w.out, "let full = base + L <= end;\nfor l in 0..L {{");
    let _ = writeln!(
        w.out,
        "let r{} = if full || base + l < end {{ {v} }} else {{ {f}::NEG_INFINITY }} - mb;",
        exp.params[0].0
    );
    w.scalar(&exp.insts);
    let _ = writeln!(w.out, "sl[l] += r{};\n}}\nbase += L;\n}}", exp.results[0].0);
    let _ = writeln!(
        w.out,
        "let mut sb = 0 as {f};\nfor l in 0..L {{ sb += sl[l]; }}"
    );
    let mut vals = load_acc(&h.acc, "acc_f", "acc_i", "");
    vals.push(("mb".to_string(), true));
    vals.push(("sb".to_string(), true));
    w.bind(&h.merge.params, &vals);
    w.scalar(&h.merge.insts);
    store_acc(&mut w.out, &h.merge.results, &h.acc, "acc_f", "acc_i", "");
    // Not finite: the formula again, one term at a time.
    let _ = writeln!(
        w.out,
        "}} else {{\nlet mut base = start;\nwhile base < end {{"
    );
    let lane_vals = formula_lanes(w, kernel, sources, per_lane, precision);
    let _ = writeln!(w.out, "for l in 0..L.min(end - base) {{");
    accumulate_into_row(w, h, [lane_vals[0].clone()]);
    let _ = writeln!(w.out, "}}\nbase += L;\n}}\n}}\nstart = end;\n}}\n}}\n}}");
}

/// Adds lane `l`'s term (its formula `values`, reduced index `t.j0 + base + l`) into the
/// row's accumulator `acc_f` / `acc_i`, one term at a time: the accumulate hook in scalar
/// code.
fn accumulate_into_row(w: &mut Writer<'_>, h: &Hooks, values: impl IntoIterator<Item = String>) {
    let mut binds: Vec<String> = load_acc(&h.acc, "acc_f", "acc_i", "")
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    binds.extend(values);
    binds.push("t.j0 + (base + l) as u64".to_string());
    for (p, v) in h.accumulate.params.iter().zip(&binds) {
        let _ = writeln!(w.out, "let r{} = {v};", p.0);
    }
    w.scalar(&h.accumulate.insts);
    store_acc(
        &mut w.out,
        &h.accumulate.results,
        &h.acc,
        "acc_f",
        "acc_i",
        "",
    );
}

/// Loads a chunk's inputs and evaluates the formula for every lane (a loop body of scalar
/// code that LLVM's loop vectorizer turns into SIMD instructions); returns the expression
/// of each formula value for lane `l`.
fn formula_lanes(
    w: &mut Writer<'_>,
    kernel: &LoweredKernel,
    sources: &[(String, bool)],
    per_lane: &[Inst],
    precision: Precision,
) -> Vec<String> {
    let mut varying_params = Vec::new();
    for (k, (p, (v, uniform))) in kernel.formula.params.iter().zip(sources).enumerate() {
        if !*uniform {
            let _ = writeln!(w.out, "let y{k} = {v};");
            varying_params.push((*p, k));
        }
    }
    let fvals = kernel.formula.results.clone();
    let mut lane_vals: Vec<String> = Vec::new();
    for (i, r) in fvals.iter().enumerate() {
        if w.uniform.contains(r) {
            lane_vals.push(format!("r{}", r.0));
        } else {
            let _ = writeln!(w.out, "let mut fv{i} = [{}; L];", zero(Ty::F, precision));
            lane_vals.push(format!("fv{i}[l]"));
        }
    }
    let _ = writeln!(w.out, "for l in 0..L {{");
    for (p, k) in &varying_params {
        let _ = writeln!(w.out, "let r{} = y{k}[l];", p.0);
    }
    w.scalar(per_lane);
    for (i, r) in fvals.iter().enumerate() {
        if !w.uniform.contains(r) {
            let _ = writeln!(w.out, "fv{i}[l] = r{};", r.0);
        }
    }
    let _ = writeln!(w.out, "}}");
    lane_vals
}

/// Splits the formula block into instructions that depend only on uniform parameters
/// (hoisted out of the lane loop) and the rest.
fn split_uniform(b: &Block, sources: &[(String, bool)]) -> (Vec<Inst>, Vec<Inst>) {
    let mut uniform: HashSet<Reg> = b
        .params
        .iter()
        .zip(sources)
        .filter(|(_, (_, u))| *u)
        .map(|(p, _)| *p)
        .collect();
    let (mut hoisted, mut rest) = (Vec::new(), Vec::new());
    for i in &b.insts {
        if i.args.iter().all(|a| uniform.contains(a)) {
            uniform.insert(i.dst);
            hoisted.push(i.clone());
        } else {
            rest.push(i.clone());
        }
    }
    (hoisted, rest)
}

fn load_acc(acc: &[Ty], f: &str, i: &str, _suffix: &str) -> Vec<(String, bool)> {
    let (mut kf, mut ki) = (0, 0);
    acc.iter()
        .map(|t| {
            if *t == Ty::Idx {
                ki += 1;
                (format!("{i}[{}]", ki - 1), true)
            } else {
                kf += 1;
                (format!("{f}[{}]", kf - 1), true)
            }
        })
        .collect()
}

fn store_acc(out: &mut String, results: &[Reg], acc: &[Ty], f: &str, i: &str, _suffix: &str) {
    let (mut kf, mut ki) = (0, 0);
    for (r, t) in results.iter().zip(acc) {
        if *t == Ty::Idx {
            let _ = writeln!(out, "{i}[{ki}] = r{};", r.0);
            ki += 1;
        } else {
            let _ = writeln!(out, "{f}[{kf}] = r{};", r.0);
            kf += 1;
        }
    }
}

/// A generated gather kernel (gradients of selections).
#[derive(Clone, Debug)]
pub struct EmittedGather {
    /// Rust source: an `impl CpuGather<f32|f64> for <name>`.
    pub code: String,
    /// Inputs in kernel order (the slot variable included, with a `Temp` source).
    pub inputs: Vec<KernelInput>,
}

/// Emits `impl CpuGather<f32|f64> for <name>` for a gather step of an instantiated program.
pub fn emit_gather(
    p: &Program,
    g: &keops_ir::program::Gather,
    name: &str,
    opts: &RustOptions,
) -> Result<EmittedGather> {
    let mut l = keops_ir::lower::Lower::new();
    let (block, inputs) = keops_ir::lower::lower_formula(&mut l, &p.graph, &[g.formula])?;
    let (block, tys) = keops_ir::lower::expand_block_math(&l.tys, &block, opts.precision);
    let rt = &opts.runtime;
    let f = float(opts.precision);
    let slot_dim = p.graph.var(g.slot_var).dim.as_known().unwrap_or(1);
    let out_dim = p.graph.known_dim(g.formula).unwrap_or(0);
    let (mut wo, mut wi, mut wp) = (Vec::new(), Vec::new(), Vec::new());
    let (mut no, mut ni, mut np, mut ns) = (0, 0, 0, 0);
    let mut bind = Vec::new();
    for input in &inputs {
        let (arr, counter) = if input.var == g.slot_var {
            ("slot", &mut ns)
        } else if input.cat == Cat::P {
            wp.push(input.dim);
            ("params", &mut np)
        } else if input.cat == g.owner {
            wo.push(input.dim);
            ("owner", &mut no)
        } else {
            wi.push(input.dim);
            ("other", &mut ni)
        };
        for _ in 0..input.dim {
            bind.push(format!("{arr}[{}]", *counter));
            *counter += 1;
        }
    }
    let list = |v: &[usize]| {
        v.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    let _ = writeln!(out, "impl {rt}::gather::CpuGather<{f}> for {name} {{");
    let _ = writeln!(
        out,
        "fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {{ (vec![{}], vec![{}], vec![{}]) }}",
        list(&wo),
        list(&wi),
        list(&wp)
    );
    let _ = writeln!(
        out,
        "fn slot_dim(&self) -> usize {{ {slot_dim} }}\nfn out_dim(&self) -> usize {{ {out_dim} }}"
    );
    let _ = writeln!(
        out,
        "fn eval(&self, owner: &[{f}], other: &[{f}], params: &[{f}], slot: &[{f}], out: &mut [{f}]) {{"
    );
    for (reg, e) in block.params.iter().zip(&bind) {
        let _ = writeln!(out, "let r{} = {e};", reg.0);
    }
    for i in &block.insts {
        let args: Vec<String> = i.args.iter().map(|a| format!("r{}", a.0)).collect();
        let ty = tys.get(i.dst.0 as usize).copied().unwrap_or(Ty::F);
        let _ = writeln!(
            out,
            "let r{}: {} = {};",
            i.dst.0,
            rust_ty(ty, opts.precision),
            expr(i.op, &args, opts.precision, rt)
        );
    }
    for (k, r) in block.results.iter().enumerate() {
        let _ = writeln!(out, "out[{k}] = r{};", r.0);
    }
    let _ = writeln!(out, "}}\n}}");
    Ok(EmittedGather { code: out, inputs })
}
