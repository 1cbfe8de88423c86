//! The CPU emitter for kernels whose widths are left to the caller (const generics).
//!
//! When the formula leaves a width undeclared, the macro cannot lower the whole formula to
//! scalars; it emits one piece of code per formula node instead, each node's value an
//! array `[T; D]`. A node whose width (and whose arguments' widths) are known is lowered
//! with its row of the operation table, as in the known-width emitter; a node of an
//! undeclared width `D` is a loop `for k in 0..D` around the lowering of one coordinate
//! (element-wise operations), or a fold (sums, norms, distances, extremes). Nodes that
//! depend only on the output row and the parameters are computed once per tile; the
//! others inside one loop over the lanes of a chunk, which LLVM vectorizes once `D` is a
//! constant after monomorphization. Reductions over an undeclared width run their
//! one-coordinate hooks in a loop over coordinates.

use crate::cpu::{expr, float, lanes, rust_ty, zero};
use keops_ir::dim::Dim;
use keops_ir::error::{Error, ErrorKind, Result};
use keops_ir::graph::{Cat, Graph, Node, NodeId, Param, VarId, VarSource};
use keops_ir::lower::{
    Block, Inst, KernelInput, Lower, Precision, Reg, SOp, SumMode, Ty, lower_hooks,
};
use keops_ir::ops::{LowerArgs, Lowering, Op};
use keops_ir::program::{Program, Reduce};
use keops_ir::reduction::ReductionKind;
use std::collections::HashMap;
use std::fmt::Write;

/// Rust expression of a dimension, with symbol `s` written `D{s}`.
pub fn dim_expr(d: &Dim) -> String {
    let mut s = String::new();
    let _ = d.write_with(&mut s, &|x| format!("D{}", x.0));
    s
}

fn array_len(d: &Dim, what: &str) -> Result<String> {
    if d.as_known().is_some() || d.as_sym().is_some() {
        Ok(dim_expr(d))
    } else {
        Err(Error::new(
            ErrorKind::Dimension,
            format!("{what} has the width {d}, which generated code cannot hold in an array"),
        )
        .help("declare the widths of the variables involved (e.g. `x_i: 3`)"))
    }
}

/// A node's value in the generated code: an array `[T; dim]` named `name`.
#[derive(Clone)]
struct Value {
    name: String,
    dim: Dim,
    /// Whether it depends only on the output row and the parameters.
    uniform: bool,
}

impl Value {
    /// Component `k` (a Rust expression); a width-1 value broadcasts.
    fn at(&self, k: &str) -> String {
        if self.dim.is(1) {
            format!("{}[0]", self.name)
        } else {
            format!("{}[{k}]", self.name)
        }
    }
}

/// Writes scalar code: the hoisted part (once per tile) and the per-lane part.
struct Emitter {
    p: Precision,
    /// Path of the runtime crate.
    rt: String,
    hoisted: String,
    lane: String,
}

/// Writes `let rX: T = expr;` statements for a block whose parameters are bound.
fn write_block(
    out: &mut String,
    b: &Block,
    tys: &[Ty],
    bind: &[String],
    p: Precision,
    rt: &str,
) -> Vec<String> {
    for (reg, e) in b.params.iter().zip(bind) {
        let _ = writeln!(out, "let r{} = {e};", reg.0);
    }
    write_insts(out, &b.insts, tys, p, rt);
    b.results.iter().map(|r| format!("r{}", r.0)).collect()
}

fn write_insts(out: &mut String, insts: &[Inst], tys: &[Ty], p: Precision, rt: &str) {
    for i in insts {
        let args: Vec<String> = i.args.iter().map(|a| format!("r{}", a.0)).collect();
        let ty = tys.get(i.dst.0 as usize).copied().unwrap_or(Ty::F);
        let _ = writeln!(
            out,
            "let r{}: {} = {};",
            i.dst.0,
            rust_ty(ty, p),
            expr(i.op, &args, p, rt)
        );
    }
}

/// Lowers one coordinate of an element-wise operation into a block with one parameter
/// per argument, math expanded for the precision.
fn scalar_block(op: Op, params: &[Param], nargs: usize, p: Precision) -> Result<(Block, Vec<Ty>)> {
    let prim = op.spec().prim().ok_or_else(|| {
        Error::new(
            ErrorKind::Limit,
            format!("{} should have been expanded", op.name()),
        )
    })?;
    let mut l = Lower::new();
    let regs: Vec<Reg> = (0..nargs).map(|_| l.param(Ty::F)).collect();
    let r = match prim.lower {
        Lowering::Unary(f) => f(&mut l, params, regs[0]),
        Lowering::Binary(f) => f(&mut l, params, regs[0], regs[1]),
        Lowering::Ternary(f) => f(&mut l, params, regs[0], regs[1], regs[2]),
        Lowering::Vector(_) => {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("{} is not element-wise", op.name()),
            ));
        }
    };
    let b = l.finish(regs, vec![r]);
    Ok(keops_ir::lower::expand_block_math(&l.tys, &b, p))
}

/// Lowers a node whose widths are all known, as in the known-width emitter.
fn known_block(
    op: Op,
    params: &[Param],
    arg_dims: &[usize],
    out_dim: usize,
    p: Precision,
) -> Result<(Block, Vec<Ty>)> {
    let prim = op.spec().prim().ok_or_else(|| {
        Error::new(
            ErrorKind::Limit,
            format!("{} should have been expanded", op.name()),
        )
    })?;
    let mut l = Lower::new();
    let args: Vec<Vec<Reg>> = arg_dims
        .iter()
        .map(|d| (0..*d).map(|_| l.param(Ty::F)).collect())
        .collect();
    let pick = |a: &Vec<Reg>, k: usize| if a.len() == 1 { a[0] } else { a[k] };
    let res: Vec<Reg> = match prim.lower {
        Lowering::Unary(f) => (0..out_dim)
            .map(|k| f(&mut l, params, pick(&args[0], k)))
            .collect(),
        Lowering::Binary(f) => (0..out_dim)
            .map(|k| f(&mut l, params, pick(&args[0], k), pick(&args[1], k)))
            .collect(),
        Lowering::Ternary(f) => (0..out_dim)
            .map(|k| {
                f(
                    &mut l,
                    params,
                    pick(&args[0], k),
                    pick(&args[1], k),
                    pick(&args[2], k),
                )
            })
            .collect(),
        Lowering::Vector(f) => f(
            &mut l,
            &LowerArgs {
                args: &args,
                params,
                out_dim,
            },
        ),
    };
    let all: Vec<Reg> = args.into_iter().flatten().collect();
    let b = l.finish(all, res);
    Ok(keops_ir::lower::expand_block_math(&l.tys, &b, p))
}

/// Emits the formula nodes under `roots`; returns the values of the roots.
/// `sources[v]` gives the expression of component `{k}` of variable `v`, and whether it
/// is uniform.
fn emit_formula(
    e: &mut Emitter,
    g: &Graph,
    roots: &[NodeId],
    sources: &HashMap<VarId, (String, bool)>,
) -> Result<Vec<Value>> {
    let mut vals: HashMap<NodeId, Value> = HashMap::new();
    let f = float(e.p);
    for n in g.topo(roots) {
        let dim = g.dim(n).clone();
        let name = format!("n{}", n.0);
        let len = array_len(&dim, "a sub-expression")?;
        let (code, uniform) = match g.node(n) {
            Node::Var(v) => {
                let (src, uniform) = &sources[v];
                (
                    format!(
                        "let {name}: [{f}; {len}] = core::array::from_fn(|k| {});\n",
                        src.replace("{k}", "k")
                    ),
                    *uniform,
                )
            }
            Node::Const(b) => (
                format!(
                    "let {name}: [{f}; 1] = [{}];\n",
                    expr(SOp::Const(*b), &[], e.p, "")
                ),
                true,
            ),
            Node::Zero(_) => (
                format!(
                    "let {name}: [{f}; {len}] = [{}; {len}];\n",
                    zero(Ty::F, e.p)
                ),
                true,
            ),
            Node::Op(op, args, params) => {
                let avals: Vec<Value> = args.iter().map(|a| vals[a].clone()).collect();
                let uniform = avals.iter().all(|a| a.uniform);
                (
                    op_code(*op, params, &avals, &dim, &name, &len, e.p, &e.rt)?,
                    uniform,
                )
            }
        };
        if uniform {
            e.hoisted.push_str(&code);
        } else {
            e.lane.push_str(&code);
        }
        vals.insert(n, Value { name, dim, uniform });
    }
    Ok(roots.iter().map(|r| vals[r].clone()).collect())
}

/// Scalar code computing the array `name` of an operation node.
#[allow(clippy::too_many_arguments)]
fn op_code(
    op: Op,
    params: &[Param],
    args: &[Value],
    dim: &Dim,
    name: &str,
    len: &str,
    p: Precision,
    rt: &str,
) -> Result<String> {
    let f = float(p);
    let prim = op.spec().prim().ok_or_else(|| {
        Error::new(
            ErrorKind::Limit,
            format!("{} should have been expanded", op.name()),
        )
    })?;
    let mut out = format!(
        "let mut {name}: [{f}; {len}] = [{}; {len}];\n",
        zero(Ty::F, p)
    );
    // Widths all known: lower the node as a whole.
    let known: Option<Vec<usize>> = args.iter().map(|a| a.dim.as_known()).collect();
    if let (Some(arg_dims), Some(out_dim)) = (known, dim.as_known()) {
        let (b, tys) = known_block(op, params, &arg_dims, out_dim, p)?;
        let bind: Vec<String> = args
            .iter()
            .zip(&arg_dims)
            .flat_map(|(a, d)| (0..*d).map(move |k| format!("{}[{k}]", a.name)))
            .collect();
        out.push_str("{\n");
        let res = write_block(&mut out, &b, &tys, &bind, p, rt);
        for (k, r) in res.iter().enumerate() {
            let _ = writeln!(out, "{name}[{k}] = {r};");
        }
        out.push_str("}\n");
        return Ok(out);
    }
    match prim.lower {
        Lowering::Unary(_) | Lowering::Binary(_) | Lowering::Ternary(_) => {
            // One coordinate's code in a loop over the undeclared width.
            let (b, tys) = scalar_block(op, params, args.len(), p)?;
            let bind: Vec<String> = args.iter().map(|a| a.at("k")).collect();
            let _ = writeln!(out, "for k in 0..{len} {{");
            let res = write_block(&mut out, &b, &tys, &bind, p, rt);
            let _ = writeln!(out, "{name}[k] = {};\n}}", res[0]);
        }
        Lowering::Vector(_) => {
            let x = |k: &str| args[0].at(k);
            let y = |k: &str| args.get(1).map(|b| b.at(k)).unwrap_or_default();
            let n = dim_expr(&args[0].dim);
            let fold = |term: &dyn Fn(&str) -> String| {
                format!(
                    "let mut s: {f} = {}; for k in 1..{n} {{ s = s + {}; }}\n",
                    term("0"),
                    term("k")
                )
            };
            match op {
                Op::Sum => out.push_str(&(fold(&x) + &format!("{name}[0] = s;\n"))),
                Op::SqNorm2 => out.push_str(
                    &(fold(&|k| format!("({} * {})", x(k), x(k))) + &format!("{name}[0] = s;\n")),
                ),
                Op::Scalprod => out.push_str(
                    &(fold(&|k| format!("({} * {})", x(k), y(k))) + &format!("{name}[0] = s;\n")),
                ),
                Op::SqDist => {
                    let t = |k: &str| format!("(({} - {}) * ({} - {}))", x(k), y(k), x(k), y(k));
                    out.push_str(&(fold(&t) + &format!("{name}[0] = s;\n")));
                }
                Op::Norm2 => out.push_str(
                    &(fold(&|k| format!("({} * {})", x(k), x(k)))
                        + &format!("{name}[0] = s.sqrt();\n")),
                ),
                Op::Normalize => {
                    out.push_str(&fold(&|k| format!("({} * {})", x(k), x(k))));
                    let _ = writeln!(
                        out,
                        "let r: {f} = if s == 0.0 {{ 0.0 }} else {{ 1.0 / s.sqrt() }};"
                    );
                    let _ = writeln!(out, "for k in 0..{n} {{ {name}[k] = {} * r; }}", x("k"));
                }
                Op::Max | Op::Min | Op::ArgMax | Op::ArgMin | Op::MaxMask | Op::MinMask => {
                    // First extreme coordinate, as the scalar lowering (a NaN never wins).
                    let larger = matches!(op, Op::Max | Op::ArgMax | Op::MaxMask);
                    let cmp = if larger {
                        format!("b < {}", x("k"))
                    } else {
                        format!("{} < b", x("k"))
                    };
                    let _ = writeln!(out, "let mut b: {f} = {}; let mut p = 0usize;", x("0"));
                    let _ = writeln!(
                        out,
                        "for k in 1..{n} {{ if {cmp} {{ b = {}; p = k; }} }}",
                        x("k")
                    );
                    let _ = match op {
                        Op::Max | Op::Min => writeln!(out, "{name}[0] = b;"),
                        Op::ArgMax | Op::ArgMin => writeln!(out, "{name}[0] = p as {f};"),
                        _ => writeln!(
                            out,
                            "for k in 0..{n} {{ {name}[k] = if k == p {{ 1.0 }} else {{ 0.0 }}; }}"
                        ),
                    };
                }
                Op::Elem => {
                    let _ = writeln!(out, "{name}[0] = {};", x(&params[0].int().to_string()));
                }
                Op::Extract => {
                    let (s, d) = (params[0].int(), params[1].int());
                    let _ = writeln!(
                        out,
                        "for k in 0..{d} {{ {name}[k] = {}; }}",
                        x(&format!("{s} + k"))
                    );
                }
                Op::ExtractT => {
                    let s = params[0].int();
                    let _ = writeln!(out, "for k in 0..{n} {{ {name}[{s} + k] = {}; }}", x("k"));
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::Dimension,
                        format!(
                            "{} on an undeclared width is not supported by the CPU code generator",
                            op.name()
                        ),
                    )
                    .help(
                        "declare the widths of the variables of this operation (e.g. `x_i: 3`)",
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// A generated kernel for undeclared widths.
pub struct EmittedGeneric {
    /// `impl<const D..> CpuReduce<f32|f64> for Name<D..>`.
    pub code: String,
    /// Inputs in the order the driver binds them.
    pub inputs: Vec<KernelInput>,
}

/// Position in the accumulator of a one-coordinate hook register: base index, and whether
/// it repeats per coordinate.
type Slot = (String, bool);

/// How each register of the one-coordinate hooks maps to the accumulator of a reduction
/// over an undeclared width; float registers first.
fn acc_layout(kind: ReductionKind, nf: usize, ni: usize, n: &str) -> (Vec<Slot>, Vec<Slot>) {
    match kind {
        ReductionKind::LogSumExp => (vec![("0".into(), false), ("1".into(), true)], vec![]),
        ReductionKind::SumSoftMaxWeight => (
            vec![("0".into(), false), ("1".into(), false), ("2".into(), true)],
            vec![],
        ),
        _ => (
            (0..nf).map(|k| (format!("{k} * {n}"), true)).collect(),
            (0..ni).map(|k| (format!("{k} * {n}"), true)).collect(),
        ),
    }
}

/// Emits a kernel whose widths may be const generic parameters `D{sym}`.
pub fn emit_generic(
    p: &Program,
    r: &Reduce,
    name: &str,
    generics: &[String],
    runtime: &str,
    prec: Precision,
) -> Result<EmittedGeneric> {
    let rt = runtime;
    let f = float(prec);
    let nl = lanes(prec);
    let g = &p.graph;
    let fdim = g.dim(r.formula).clone();
    let gdim = r.weight.map(|w| g.dim(w).clone()).unwrap_or_else(Dim::one);
    // The width the reduction loops over: F's for coordinate-wise reductions, G's for the
    // exponential ones (whose F is a scalar).
    let comp = if r.kind.takes_weight() {
        gdim.clone()
    } else {
        fdim.clone()
    };
    let n = array_len(&comp, "the reduced formula")?;
    let weighted = r.weight.is_some();
    let mut l = Lower::new();
    let hooks = lower_hooks(&mut l, r.kind, 1, 1, weighted, SumMode::Plain);
    let (hooks, htys) = keops_ir::lower::expand_hooks_math(&l.tys, &hooks, prec);
    let nf = hooks.acc.iter().filter(|t| **t == Ty::F).count();
    let ni = hooks.acc.len() - nf;
    let (lay_f, lay_i) = acc_layout(r.kind, nf, ni, &n);
    let total_f: Vec<String> = lay_f
        .iter()
        .map(|(_, pc)| if *pc { n.clone() } else { "1".into() })
        .collect();
    let total_f = if total_f.is_empty() {
        "0".to_string()
    } else {
        total_f.join(" + ")
    };
    let total_i = format!("{} * {n}", lay_i.len());
    let (ov, oi) = match r.kind {
        ReductionKind::Sum | ReductionKind::LogSumExp | ReductionKind::SumSoftMaxWeight => {
            (n.clone(), "0".to_string())
        }
        k => {
            let s = k.slots();
            (
                if k.has_values() {
                    format!("{s} * {n}")
                } else {
                    "0".into()
                },
                if k.has_indices() {
                    format!("{s} * {n}")
                } else {
                    "0".into()
                },
            )
        }
    };

    // Inputs, with the expression of their component `{k}`.
    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
    let mut inputs = Vec::new();
    let mut sources = HashMap::new();
    let (mut oo, mut io, mut po) = (String::from("0"), String::from("0"), String::from("0"));
    let (mut ow, mut iw, mut pw) = (Vec::new(), Vec::new(), Vec::new());
    let mut chunk_decls = String::new();
    for v in g.vars_of(&roots) {
        let info = g.var(v);
        let d = array_len(&info.dim, "a variable")?;
        let (src, uniform) = match info.cat {
            Cat::P => {
                let e = format!("t.params[{po} + {{k}}]");
                po = format!("{po} + {d}");
                pw.push(d.clone());
                (e, true)
            }
            c if c == r.out_rows => {
                let e = format!("t.outer[{oo} + {{k}}]");
                oo = format!("{oo} + {d}");
                ow.push(d.clone());
                (e, true)
            }
            _ => {
                // References to the chunk of each component, read in the lane loop.
                let _ = writeln!(
                    chunk_decls,
                    "let y{}: [&[{f}; L]; {d}] = core::array::from_fn(|k| {rt}::simd::chunk::<{f}, L>(t.inner, ({io} + k) * t.stride + base));",
                    v.0
                );
                io = format!("{io} + {d}");
                iw.push(d.clone());
                (format!("y{}[{{k}}][l]", v.0), false)
            }
        };
        if matches!(info.source, VarSource::Temp) {
            return Err(Error::new(
                ErrorKind::Limit,
                "internal error: a placeholder variable reached code generation",
            ));
        }
        sources.insert(v, (src, uniform));
        inputs.push(KernelInput {
            var: v,
            cat: info.cat,
            source: info.source,
            dim: info.dim.as_known().unwrap_or(0),
        });
    }

    let params = generics
        .iter()
        .map(|d| format!("const {d}: usize"))
        .collect::<Vec<_>>()
        .join(", ");
    let args = generics.join(", ");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "impl<{params}> {rt}::cpu::CpuReduce<{f}> for {name}<{args}> {{"
    );
    let _ = writeln!(
        out,
        "fn acc_len(&self) -> (usize, usize) {{ ({total_f}, {total_i}) }}"
    );
    let _ = writeln!(
        out,
        "fn is_sum(&self) -> bool {{ {} }}",
        r.kind == ReductionKind::Sum
    );
    let _ = writeln!(
        out,
        "fn out_len(&self) -> (usize, usize) {{ ({ov}, {oi}) }}"
    );
    let _ = writeln!(
        out,
        "fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {{ (vec![{}], vec![{}], vec![{}]) }}",
        ow.join(", "),
        iw.join(", "),
        pw.join(", ")
    );

    // Position of hook register k for coordinate c in a row accumulator.
    let acc_at = |k: usize, c: &str, fa: &str, ia: &str| -> String {
        let ((base, pc), arr) = if k < nf {
            (&lay_f[k], fa)
        } else {
            (&lay_i[k - nf], ia)
        };
        if *pc {
            format!("{arr}[{base} + {c}]")
        } else {
            format!("{arr}[{base}]")
        }
    };
    let shared: Vec<bool> = (0..hooks.acc.len())
        .map(|k| {
            if k < nf {
                !lay_f[k].1
            } else {
                !lay_i[k - nf].1
            }
        })
        .collect();

    // init: every coordinate from the one-coordinate init block.
    let _ = writeln!(
        out,
        "fn init(&self, acc_f: &mut [{f}], acc_i: &mut [u64]) {{\nfor c in 0..{n} {{"
    );
    let res = write_block(&mut out, &hooks.init, &htys, &[], prec, rt);
    for (k, v) in res.iter().enumerate() {
        let _ = writeln!(out, "{} = {v};", acc_at(k, "c", "acc_f", "acc_i"));
    }
    let _ = writeln!(out, "}}\n}}");

    // merge and finalize run the one-coordinate blocks per coordinate; shared registers
    // (LogSumExp's running maximum) are read from their one slot and written once.
    let a = hooks.acc.len();
    // Opens `for c in 0..n` and merges register `other(j)` of another accumulator into
    // coordinate `c` of `acc_f` / `acc_i`; the caller closes the loop.
    let merge_coordinates = |out: &mut String, other: &dyn Fn(usize) -> String| {
        // Shared registers are read before any coordinate rewrites them.
        for k in (0..a).filter(|k| shared[*k]) {
            let _ = writeln!(out, "let old{k} = {};", acc_at(k, "0", "acc_f", "acc_i"));
        }
        let _ = writeln!(out, "for c in 0..{n} {{");
        let bind: Vec<String> = (0..2 * a)
            .map(|k| {
                if k >= a {
                    other(k - a)
                } else if shared[k] {
                    format!("old{k}")
                } else {
                    acc_at(k, "c", "acc_f", "acc_i")
                }
            })
            .collect();
        let res = write_block(out, &hooks.merge, &htys, &bind, prec, rt);
        for (k, v) in res.iter().enumerate() {
            let _ = writeln!(out, "{} = {v};", acc_at(k, "c", "acc_f", "acc_i"));
        }
    };
    let _ = writeln!(
        out,
        "fn merge(&self, acc_f: &mut [{f}], acc_i: &mut [u64], other_f: &[{f}], other_i: &[u64]) {{"
    );
    merge_coordinates(&mut out, &|j| acc_at(j, "c", "other_f", "other_i"));
    let _ = writeln!(out, "}}\n}}");
    let _ = writeln!(
        out,
        "fn finalize(&self, acc_f: &[{f}], acc_i: &[u64], out_f: &mut [{f}], out_i: &mut [u64]) {{\nfor c in 0..{n} {{"
    );
    let bind: Vec<String> = (0..a).map(|k| acc_at(k, "c", "acc_f", "acc_i")).collect();
    let res = write_block(&mut out, &hooks.finalize, &htys, &bind, prec, rt);
    let (mut kf, mut ki) = (0, 0);
    for (v, reg) in res.iter().zip(&hooks.finalize.results) {
        if htys.get(reg.0 as usize) == Some(&Ty::Idx) {
            let _ = writeln!(out, "out_i[{ki} * {n} + c] = {v};");
            ki += 1;
        } else {
            let _ = writeln!(out, "out_f[{kf} * {n} + c] = {v};");
            kf += 1;
        }
    }
    let _ = writeln!(out, "}}\n}}");

    // tile
    let _ = writeln!(
        out,
        "#[inline]\nfn tile(&self, t: {rt}::cpu::Tile<'_, {f}>, acc_f: &mut [{f}], acc_i: &mut [u64]) {{"
    );
    let _ = writeln!(
        out,
        "struct Body<'a, 'b, {params}> {{ t: {rt}::cpu::Tile<'a, {f}>, acc_f: &'b mut [{f}], acc_i: &'b mut [u64] }}"
    );
    let _ = writeln!(
        out,
        "impl<{params}> {rt}::simd::Kernel for Body<'_, '_, {args}> {{\n#[inline(always)]\nfn run(self) {{"
    );
    let _ = writeln!(
        out,
        "let Body {{ t, acc_f, acc_i }} = self;\nconst L: usize = {nl};"
    );
    let order = r.kind.order();
    let k = r.kind.slots();
    let mut e = Emitter {
        p: prec,
        rt: rt.to_string(),
        hoisted: String::new(),
        lane: String::new(),
    };
    let vals = emit_formula(&mut e, g, &roots, &sources)?;
    out.push_str(&e.hoisted);
    // lane accumulators: per hook register, coordinate and lane
    let _ = writeln!(
        out,
        "let mut la_f = [[[{}; L]; {n}]; {nf}];\nlet mut la_i = [[[0u64; L]; {n}]; {ni}];",
        zero(Ty::F, prec)
    );
    let _ = writeln!(out, "for c in 0..{n} {{");
    let res = write_block(&mut out, &hooks.init, &htys, &[], prec, rt);
    for (k, v) in res.iter().enumerate() {
        if k < nf {
            let _ = writeln!(out, "la_f[{k}][c] = [{v}; L];");
        } else {
            let _ = writeln!(out, "la_i[{}][c] = [{v}; L];", k - nf);
        }
    }
    let _ = writeln!(out, "}}");
    if order.is_some() {
        let _ = writeln!(
            out,
            "let row_worst: [{f}; {n}] = core::array::from_fn(|c| acc_f[{} * {n} + c]);",
            k - 1
        );
    }
    let _ = writeln!(out, "let mut base = 0usize;\nwhile base < t.len {{");
    out.push_str(&chunk_decls);
    // F (and G) values per coordinate and lane
    let fv = &vals[0];
    let fw = array_len(&fv.dim, "the formula")?;
    let _ = writeln!(out, "let mut fv = [[{}; L]; {fw}];", zero(Ty::F, prec));
    let gv = vals.get(1);
    if let Some(gv) = gv {
        let gw = array_len(&gv.dim, "the weight")?;
        let _ = writeln!(out, "let mut gv = [[{}; L]; {gw}];", zero(Ty::F, prec));
    }
    let _ = writeln!(out, "for l in 0..L {{");
    out.push_str(&e.lane);
    let _ = writeln!(out, "for k in 0..{fw} {{ fv[k][l] = {}[k]; }}", fv.name);
    if let Some(gv) = gv {
        let _ = writeln!(
            out,
            "for k in 0..{} {{ gv[k][l] = {}[k]; }}",
            dim_expr(&gv.dim),
            gv.name
        );
    }
    let _ = writeln!(out, "}}");
    // accumulate: one-coordinate hook per coordinate and lane, tail lanes masked
    let fc = if r.kind.takes_weight() || fv.dim.is(1) {
        "0"
    } else {
        "c"
    };
    // Selections: skip chunks without a value that beats both the lane's worst kept value
    // and the row's K-th best so far.
    if let Some(smaller) = order {
        let cmp = if smaller == keops_ir::reduction::Order::Smaller {
            "<="
        } else {
            ">="
        };
        let _ = writeln!(
            out,
            "let mut candidate = false;\nfor c in 0..{n} {{ for l in 0..L {{ candidate |= (fv[{fc}][l] {cmp} la_f[{}][c][l]) & (fv[{fc}][l] {cmp} row_worst[c]); }} }}\nif candidate {{",
            k - 1
        );
    }
    let _ = writeln!(
        out,
        "let full = base + L <= t.len;\nfor c in 0..{n} {{\nfor l in 0..L {{\nif full || base + l < t.len {{"
    );
    let mut bind: Vec<String> = (0..a)
        .map(|k| {
            if k < nf {
                format!("la_f[{k}][c][l]")
            } else {
                format!("la_i[{}][c][l]", k - nf)
            }
        })
        .collect();
    bind.push(format!("fv[{fc}][l]"));
    if let Some(gv) = gv {
        let gc = if gv.dim.is(1) { "0" } else { "c" };
        bind.push(format!("gv[{gc}][l]"));
    }
    bind.push("t.j0 + (base + l) as u64".to_string());
    let res = write_block(&mut out, &hooks.accumulate, &htys, &bind, prec, rt);
    for (k, v) in res.iter().enumerate() {
        if k < nf {
            let _ = writeln!(out, "la_f[{k}][c][l] = {v};");
        } else {
            let _ = writeln!(out, "la_i[{}][c][l] = {v};", k - nf);
        }
    }
    let _ = writeln!(out, "}}\n}}\n}}");
    if order.is_some() {
        let _ = writeln!(out, "}}");
    }
    let _ = writeln!(out, "base += L;\n}}");
    // merge the lanes into the row accumulator, in lane order
    let _ = writeln!(out, "for l in 0..L {{");
    if let Some(smaller) = order {
        // a lane whose best values do not reach the row's worst kept ones changes nothing
        let cmp = if smaller == keops_ir::reduction::Order::Smaller {
            "<="
        } else {
            ">="
        };
        let _ = writeln!(
            out,
            "if !(0..{n}).any(|c| la_f[0][c][l] {cmp} acc_f[{} * {n} + c]) {{ continue; }}",
            k - 1
        );
    }
    merge_coordinates(&mut out, &|j| {
        // a shared register has the same value in every coordinate's copy
        let cc = if shared[j] { "0" } else { "c" };
        if j < nf {
            format!("la_f[{j}][{cc}][l]")
        } else {
            format!("la_i[{}][{cc}][l]", j - nf)
        }
    });
    let _ = writeln!(out, "}}\n}}\n}}\n}}");
    let _ = writeln!(
        out,
        "{rt}::simd::dispatch(Body::<{args}> {{ t, acc_f, acc_i }});\n}}\n}}"
    );
    Ok(EmittedGeneric { code: out, inputs })
}
