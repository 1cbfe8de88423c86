//! The CPU emitter for kernels whose widths are left to the caller (const generics).
//!
//! When the formula leaves a width undeclared, the macro cannot lower the whole formula to
//! scalars; it emits one piece of code per formula node instead. A node whose width (and
//! whose arguments' widths) are known is lowered with its row of the operation table, as
//! in the known-width emitter; a node of an undeclared width `D` is a loop `for k in 0..D`
//! around the lowering of one coordinate (element-wise operations), or a fold (sums, norms,
//! distances, extremes). After monomorphization `D` is a constant and LLVM unrolls and
//! vectorizes as for declared widths. Reductions over an undeclared width run their
//! one-coordinate hooks in a loop over coordinates.

use super::rust::{expr, float, lanes, rust_ty, zero};
use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Cat, Graph, Node, NodeId, Param, VarSource};
use crate::lower::{
    Block, Inst, KernelInput, Lower, Precision, Reg, SOp, SumMode, Ty, lower_hooks,
};
use crate::ops::Op;
use crate::ops::{LowerArgs, Lowering};
use crate::program::{Program, Reduce};
use crate::reduction::ReductionKind;
use std::collections::{HashMap, HashSet};
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

/// Value of a node in the generated code: a name, its width, and whether it is uniform
/// (the same for every lane).
#[derive(Clone)]
struct Value {
    name: String,
    dim: Dim,
    uniform: bool,
}

impl Value {
    /// Component `k` (a Rust expression) for lane access or not.
    fn at(&self, k: &str, lane: bool) -> String {
        let k = if self.dim.is(1) { "0" } else { k };
        if self.uniform || !lane {
            format!("{}[{k}]", self.name)
        } else {
            format!("{}[{k}][l]", self.name)
        }
    }
}

struct Emitter<'p> {
    p: Precision,
    out: String,
    lanes: usize,
    _g: &'p Graph,
}

impl Emitter<'_> {
    /// Declares a node array: `[[T; L]; n]` (varying) or `[T; n]` (uniform).
    fn decl(&mut self, name: &str, len: &str, uniform: bool) {
        let f = float(self.p);
        let z = zero(Ty::F, self.p);
        if uniform {
            let _ = writeln!(self.out, "let mut {name}: [{f}; {len}] = [{z}; {len}];");
        } else {
            let _ = writeln!(
                self.out,
                "let mut {name}: [[{f}; L]; {len}] = [[{z}; L]; {len}];"
            );
        }
    }

    /// Emits a scalar block whose parameters are bound to expressions; returns the Rust
    /// expressions of its results. `lane`: inside a lane loop (varying operands indexed).
    fn block(
        &mut self,
        b: &Block,
        tys: &[Ty],
        bind: &[(String, bool)],
        uniform_out: &mut Vec<bool>,
    ) -> Vec<String> {
        let mut uniform: HashSet<Reg> = HashSet::new();
        for (p, (e, u)) in b.params.iter().zip(bind) {
            let _ = writeln!(self.out, "let r{} = {e};", p.0);
            if *u {
                uniform.insert(*p);
            }
        }
        for i in &b.insts {
            self.inst(i, tys, &mut uniform);
        }
        uniform_out.clear();
        b.results
            .iter()
            .map(|r| {
                uniform_out.push(uniform.contains(r));
                format!("r{}", r.0)
            })
            .collect()
    }

    fn inst(&mut self, i: &Inst, tys: &[Ty], uniform: &mut HashSet<Reg>) {
        let varying = i.args.iter().any(|a| !uniform.contains(a));
        let ty = tys.get(i.dst.0 as usize).copied().unwrap_or(Ty::F);
        let t = rust_ty(ty, self.p);
        if varying {
            let args: Vec<String> = i
                .args
                .iter()
                .map(|a| {
                    if uniform.contains(a) {
                        format!("r{}", a.0)
                    } else {
                        format!("r{}[l]", a.0)
                    }
                })
                .collect();
            let e = expr(i.op, &args, self.p);
            let z = zero(ty, self.p);
            let _ = writeln!(
                self.out,
                "let mut r{0}: [{t}; L] = [{z}; L]; for l in 0..L {{ r{0}[l] = {e}; }}",
                i.dst.0
            );
        } else {
            let args: Vec<String> = i.args.iter().map(|a| format!("r{}", a.0)).collect();
            let e = expr(i.op, &args, self.p);
            let _ = writeln!(self.out, "let r{}: {t} = {e};", i.dst.0);
            uniform.insert(i.dst);
        }
    }
}

/// Lowers one operation on one coordinate (element-wise ops) into a block with one
/// parameter per argument, math expanded for the precision.
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
    Ok(crate::lower::expand_block_math(&l.tys, &b, p))
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
    Ok(crate::lower::expand_block_math(&l.tys, &b, p))
}

/// Emits the formula nodes under `roots`; returns the values of the roots.
fn emit_formula(
    e: &mut Emitter<'_>,
    g: &Graph,
    roots: &[NodeId],
    sources: &HashMap<crate::graph::VarId, (Vec<String>, bool)>,
) -> Result<Vec<Value>> {
    let mut vals: HashMap<NodeId, Value> = HashMap::new();
    let f = float(e.p);
    for n in g.topo(roots) {
        let dim = g.dim(n).clone();
        let name = format!("n{}", n.0);
        let v = match g.node(n) {
            Node::Var(v) => {
                let (comps, uniform) = &sources[v];
                let len = array_len(&dim, "a variable")?;
                let _ = writeln!(
                    e.out,
                    "let {name} = core::array::from_fn::<_, {len}, _>(|k| {});",
                    comps[0].replace("{k}", "k")
                );
                Value {
                    name,
                    dim,
                    uniform: *uniform,
                }
            }
            Node::Const(b) => {
                let _ = writeln!(
                    e.out,
                    "let {name}: [{f}; 1] = [{}];",
                    expr(SOp::Const(*b), &[], e.p)
                );
                Value {
                    name,
                    dim,
                    uniform: true,
                }
            }
            Node::Zero(d) => {
                let len = array_len(d, "a zero vector")?;
                let _ = writeln!(
                    e.out,
                    "let {name}: [{f}; {len}] = [{}; {len}];",
                    zero(Ty::F, e.p)
                );
                Value {
                    name,
                    dim,
                    uniform: true,
                }
            }
            Node::Op(op, args, params) => {
                let avals: Vec<Value> = args.iter().map(|a| vals[a].clone()).collect();
                emit_op(e, *op, params, &avals, &dim, &name)?
            }
        };
        vals.insert(n, v);
    }
    Ok(roots.iter().map(|r| vals[r].clone()).collect())
}

fn emit_op(
    e: &mut Emitter<'_>,
    op: Op,
    params: &[Param],
    args: &[Value],
    dim: &Dim,
    name: &str,
) -> Result<Value> {
    let uniform = args.iter().all(|a| a.uniform);
    let prim = op.spec().prim().ok_or_else(|| {
        Error::new(
            ErrorKind::Limit,
            format!("{} should have been expanded", op.name()),
        )
    })?;
    let known: Option<Vec<usize>> = args.iter().map(|a| a.dim.as_known()).collect();
    let len = array_len(dim, op.name())?;
    e.decl(name, &len, uniform);
    // Widths all known: lower the node as a whole.
    if let (Some(arg_dims), Some(out_dim)) = (known, dim.as_known()) {
        let (b, btys) = known_block(op, params, &arg_dims, out_dim, e.p)?;
        let _ = writeln!(e.out, "{{");
        if uniform {
            let bind: Vec<(String, bool)> = args
                .iter()
                .flat_map(|a| {
                    (0..a.dim.as_known().unwrap_or(0)).map(|k| (format!("{}[{k}]", a.name), true))
                })
                .collect();
            let mut u = Vec::new();
            let res = e.block(&b, &btys, &bind, &mut u);
            for (k, r) in res.iter().enumerate() {
                let _ = writeln!(e.out, "{name}[{k}] = {r};");
            }
        } else {
            let bind: Vec<(String, bool)> = args
                .iter()
                .flat_map(|a| {
                    (0..a.dim.as_known().unwrap_or(0))
                        .map(move |k| (format!("{}[{k}]", a.name), a.uniform))
                })
                .collect();
            let mut u = Vec::new();
            let res = e.block(&b, &btys, &bind, &mut u);
            for (k, (r, ru)) in res.iter().zip(&u).enumerate() {
                if *ru {
                    let _ = writeln!(e.out, "{name}[{k}] = [{r}; L];");
                } else {
                    let _ = writeln!(e.out, "{name}[{k}] = {r};");
                }
            }
        }
        let _ = writeln!(e.out, "}}");
        return Ok(Value {
            name: name.to_string(),
            dim: dim.clone(),
            uniform,
        });
    }
    let lane_loop = |e: &mut Emitter<'_>, body: &str| {
        if uniform {
            let _ = writeln!(e.out, "{{ {body} }}");
        } else {
            let _ = writeln!(e.out, "for l in 0..L {{ {body} }}");
        }
    };
    let dst = |k: &str| {
        if uniform {
            format!("{name}[{k}]")
        } else {
            format!("{name}[{k}][l]")
        }
    };
    let f = float(e.p);
    match prim.lower {
        Lowering::Unary(_) | Lowering::Binary(_) | Lowering::Ternary(_) => {
            // One coordinate's code in a loop over the (undeclared) width.
            let (b, btys) = scalar_block(op, params, args.len(), e.p)?;
            let _ = writeln!(e.out, "for k in 0..{len} {{");
            let bind: Vec<(String, bool)> =
                args.iter().map(|a| (a.at("k", false), a.uniform)).collect();
            let mut u = Vec::new();
            let res = e.block(&b, &btys, &bind, &mut u);
            if uniform || u[0] {
                if uniform {
                    let _ = writeln!(e.out, "{name}[k] = {};", res[0]);
                } else {
                    let _ = writeln!(e.out, "{name}[k] = [{}; L];", res[0]);
                }
            } else {
                let _ = writeln!(e.out, "{name}[k] = {};", res[0]);
            }
            let _ = writeln!(e.out, "}}");
        }
        Lowering::Vector(_) => {
            let a = &args[0];
            let n = dim_expr(&a.dim);
            let x = |k: &str| a.at(k, true);
            let y = |k: &str| args.get(1).map(|b| b.at(k, true)).unwrap_or_default();
            let fold = |e: &mut Emitter<'_>, term: &dyn Fn(&str) -> String| {
                let body = format!(
                    "let mut s: {f} = {}; for k in 1..{n} {{ s = s + {}; }} {} = s;",
                    term("0"),
                    term("k"),
                    dst("0")
                );
                lane_loop(e, &body);
            };
            match op {
                Op::Sum => fold(e, &|k| x(k)),
                Op::SqNorm2 => fold(e, &|k| format!("({} * {})", x(k), x(k))),
                Op::Scalprod => fold(e, &|k| format!("({} * {})", x(k), y(k))),
                Op::SqDist => fold(e, &|k| {
                    format!("(({} - {}) * ({} - {}))", x(k), y(k), x(k), y(k))
                }),
                Op::Norm2 => {
                    let body = format!(
                        "let mut s: {f} = {} * {}; for k in 1..{n} {{ s = s + {} * {}; }} {} = s.sqrt();",
                        x("0"),
                        x("0"),
                        x("k"),
                        x("k"),
                        dst("0")
                    );
                    lane_loop(e, &body);
                }
                Op::Normalize => {
                    let body = format!(
                        "let mut s: {f} = {} * {}; for k in 1..{n} {{ s = s + {} * {}; }} let r = if s == 0.0 {{ 0.0 }} else {{ 1.0 / s.sqrt() }}; for k in 0..{n} {{ {} = {} * r; }}",
                        x("0"),
                        x("0"),
                        x("k"),
                        x("k"),
                        dst("k"),
                        x("k")
                    );
                    lane_loop(e, &body);
                }
                Op::Max | Op::Min | Op::ArgMax | Op::ArgMin | Op::MaxMask | Op::MinMask => {
                    let larger = matches!(op, Op::Max | Op::ArgMax | Op::MaxMask);
                    let cmp = if larger {
                        format!("b < {}", x("k"))
                    } else {
                        format!("{} < b", x("k"))
                    };
                    let write = match op {
                        Op::Max | Op::Min => format!("{} = b;", dst("0")),
                        Op::ArgMax | Op::ArgMin => format!("{} = p as {f};", dst("0")),
                        _ => format!(
                            "for k in 0..{n} {{ {} = if k == p {{ 1.0 }} else {{ 0.0 }}; }}",
                            dst("k")
                        ),
                    };
                    let body = format!(
                        "let mut b: {f} = {}; let mut p = 0usize; for k in 1..{n} {{ if {cmp} {{ b = {}; p = k; }} }} {write}",
                        x("0"),
                        x("k")
                    );
                    lane_loop(e, &body);
                }
                Op::Elem => {
                    let m = params[0].int();
                    lane_loop(e, &format!("{} = {};", dst("0"), x(&m.to_string())));
                }
                Op::Extract => {
                    let (s, d) = (params[0].int(), params[1].int());
                    lane_loop(
                        e,
                        &format!(
                            "for k in 0..{d} {{ {} = {}; }}",
                            dst("k"),
                            x(&format!("{s} + k"))
                        ),
                    );
                }
                Op::ExtractT => {
                    let s = params[0].int();
                    lane_loop(
                        e,
                        &format!(
                            "for k in 0..{n} {{ {} = {}; }}",
                            dst(&format!("{s} + k")),
                            x("k")
                        ),
                    );
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
    Ok(Value {
        name: name.to_string(),
        dim: dim.clone(),
        uniform,
    })
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
/// over an undeclared width: `(base, per_component)`; float registers first.
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
    // exponential ones.
    let comp = if r.kind.takes_weight() {
        gdim.clone()
    } else {
        fdim.clone()
    };
    let n = array_len(&comp, "the reduced formula")?;
    let weighted = r.weight.is_some();
    let mut l = Lower::new();
    let hooks = lower_hooks(&mut l, r.kind, 1, 1, weighted, SumMode::Plain);
    let (hooks, htys) = crate::lower::expand_hooks_math(&l.tys, &hooks, prec);
    let nf = hooks.acc.iter().filter(|t| **t == Ty::F).count();
    let ni = hooks.acc.len() - nf;
    let (lay_f, lay_i) = acc_layout(r.kind, nf, ni, &n);
    let acc_len_f: Vec<String> = lay_f
        .iter()
        .map(|(b, pc)| {
            if *pc {
                n.to_string()
            } else {
                let _ = b;
                "1".to_string()
            }
        })
        .collect();
    let total_f = if acc_len_f.is_empty() {
        "0".to_string()
    } else {
        acc_len_f.join(" + ")
    };
    let total_i = if lay_i.is_empty() {
        "0".to_string()
    } else {
        format!("{} * {n}", lay_i.len())
    };
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

    // Inputs, with their component expressions.
    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
    let mut inputs = Vec::new();
    let mut sources = HashMap::new();
    let (mut oo, mut io, mut po) = (String::from("0"), String::from("0"), String::from("0"));
    let (mut ow, mut iw, mut pw) = (Vec::new(), Vec::new(), Vec::new());
    for v in g.vars_of(&roots) {
        let info = g.var(v);
        let d = dim_expr(&info.dim);
        array_len(&info.dim, "a variable")?;
        let (expr_, uniform) = match info.cat {
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
                let e = format!(
                    "{rt}::simd::load::<{f}, L>(t.inner, ({io} + {{k}}) * t.stride + base)"
                );
                io = format!("{io} + {d}");
                iw.push(d.clone());
                (e, false)
            }
        };
        sources.insert(v, (vec![expr_], uniform));
        inputs.push(KernelInput {
            var: v,
            cat: info.cat,
            source: info.source,
            dim: info.dim.as_known().unwrap_or(0),
        });
    }
    if inputs.iter().any(|i| matches!(i.source, VarSource::Temp)) {
        return Err(Error::new(
            ErrorKind::Limit,
            "internal error: a placeholder variable reached code generation",
        ));
    }

    let params = generics
        .iter()
        .map(|d| format!("const {d}: usize"))
        .collect::<Vec<_>>()
        .join(", ");
    let args = generics.join(", ");
    let mut e = Emitter {
        p: prec,
        out: String::new(),
        lanes: nl,
        _g: g,
    };
    let _ = e.lanes;
    let _ = writeln!(
        e.out,
        "impl<{params}> {rt}::cpu::CpuReduce<{f}> for {name}<{args}> {{"
    );
    let _ = writeln!(
        e.out,
        "fn acc_len(&self) -> (usize, usize) {{ ({total_f}, {total_i}) }}"
    );
    let _ = writeln!(
        e.out,
        "fn out_len(&self) -> (usize, usize) {{ ({ov}, {oi}) }}"
    );
    let _ = writeln!(
        e.out,
        "fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {{ (vec![{}], vec![{}], vec![{}]) }}",
        ow.join(", "),
        iw.join(", "),
        pw.join(", ")
    );

    // Per-register positions in the row accumulator, for coordinate c.
    let pos_f = |k: usize, c: &str| -> String {
        let (b, pc) = &lay_f[k];
        if *pc { format!("{b} + {c}") } else { b.clone() }
    };
    let pos_i = |k: usize, c: &str| -> String {
        let (b, pc) = &lay_i[k];
        if *pc { format!("{b} + {c}") } else { b.clone() }
    };
    let acc_expr = |k: usize, c: &str, f_: &str, i_: &str| -> (String, bool) {
        if k < nf {
            (format!("{f_}[{}]", pos_f(k, c)), lay_f[k].1)
        } else {
            (format!("{i_}[{}]", pos_i(k - nf, c)), lay_i[k - nf].1)
        }
    };
    let kinds: Vec<bool> = (0..hooks.acc.len())
        .map(|k| if k < nf { lay_f[k].1 } else { lay_i[k - nf].1 })
        .collect();

    // init: every coordinate from the one-coordinate init block.
    let _ = writeln!(
        e.out,
        "fn init(&self, acc_f: &mut [{f}], acc_i: &mut [u64]) {{ for c in 0..{n} {{"
    );
    let mut u = Vec::new();
    let res = e.block(&hooks.init, &htys, &[], &mut u);
    for (k, r_) in res.iter().enumerate() {
        let (dst, _) = acc_expr(k, "c", "acc_f", "acc_i");
        let _ = writeln!(e.out, "{dst} = {r_};");
    }
    let _ = writeln!(e.out, "}} }}");

    // merge and finalize: shared registers outside the coordinate loop.
    let _ = writeln!(
        e.out,
        "fn merge(&self, acc_f: &mut [{f}], acc_i: &mut [u64], other_f: &[{f}], other_i: &[u64]) {{"
    );
    coordinate_loop(
        &mut e,
        &hooks.merge,
        &htys,
        &n,
        &kinds,
        &|k, c| {
            let a = hooks.acc.len();
            if k < a {
                acc_expr(k, c, "acc_f", "acc_i").0
            } else {
                acc_expr(k - a, c, "other_f", "other_i").0
            }
        },
        &|k, c, v| format!("{} = {v};", acc_expr(k, c, "acc_f", "acc_i").0),
    );
    let _ = writeln!(e.out, "}}");
    let _ = writeln!(
        e.out,
        "fn finalize(&self, acc_f: &[{f}], acc_i: &[u64], out_f: &mut [{f}], out_i: &mut [u64]) {{"
    );
    let out_kinds: Vec<bool> = hooks.finalize.results.iter().map(|_| true).collect();
    let fin_f = hooks
        .finalize
        .results
        .iter()
        .filter(|r| htys.get(r.0 as usize) != Some(&Ty::Idx))
        .count();
    coordinate_loop(
        &mut e,
        &hooks.finalize,
        &htys,
        &n,
        &kinds,
        &|k, c| acc_expr(k, c, "acc_f", "acc_i").0,
        &|k, c, v| {
            if k < fin_f {
                format!("out_f[{k} * {n} + {c}] = {v};")
            } else {
                format!("out_i[{} * {n} + {c}] = {v};", k - fin_f)
            }
        },
    );
    let _ = out_kinds;
    let _ = writeln!(e.out, "}}");

    // tile
    let _ = writeln!(
        e.out,
        "#[inline]\nfn tile(&self, t: {rt}::cpu::Tile<'_, {f}>, acc_f: &mut [{f}], acc_i: &mut [u64]) {{"
    );
    let _ = writeln!(
        e.out,
        "struct Body<'a, 'b, {params}> {{ t: {rt}::cpu::Tile<'a, {f}>, acc_f: &'b mut [{f}], acc_i: &'b mut [u64] }}"
    );
    let _ = writeln!(
        e.out,
        "impl<{params}> {rt}::simd::Kernel for Body<'_, '_, {args}> {{\n#[inline(always)]\nfn run(self) {{"
    );
    let _ = writeln!(
        e.out,
        "let Body {{ t, acc_f, acc_i }} = self;\nconst L: usize = {nl};"
    );
    // lane accumulators: one array of lanes per hook register and coordinate
    let _ = writeln!(
        e.out,
        "let mut la_f = [[[{}; L]; {n}]; {nf}];",
        zero(Ty::F, prec)
    );
    let _ = writeln!(e.out, "let mut la_i = [[[0u64; L]; {n}]; {ni}];");
    let _ = writeln!(e.out, "for c in 0..{n} {{");
    let mut u = Vec::new();
    let res = e.block(&hooks.init, &htys, &[], &mut u);
    for (k, r_) in res.iter().enumerate() {
        if k < nf {
            let _ = writeln!(e.out, "la_f[{k}][c] = [{r_}; L];");
        } else {
            let _ = writeln!(e.out, "la_i[{}][c] = [{r_}; L];", k - nf);
        }
    }
    let _ = writeln!(e.out, "}}");
    let _ = writeln!(e.out, "let mut base = 0usize;\nwhile base < t.len {{");
    let vals = emit_formula(&mut e, g, &roots, &sources)?;
    let _ = writeln!(
        e.out,
        "let mut jl = [0u64; L]; for l in 0..L {{ jl[l] = t.j0 + (base + l) as u64; }}"
    );
    let _ = writeln!(e.out, "let full = base + L <= t.len;");
    // accumulate: one-coordinate hook per coordinate; shared registers (LogSumExp's max)
    // hold the same value in every coordinate's slot, updated once (from coordinate 0).
    let fv = &vals[0];
    let gv = vals.get(1);
    let _ = writeln!(e.out, "for c in 0..{n} {{");
    let mut bind: Vec<(String, bool)> = (0..hooks.acc.len())
        .map(|k| {
            if k < nf {
                (format!("la_f[{k}][c]"), false)
            } else {
                (format!("la_i[{}][c]", k - nf), false)
            }
        })
        .collect();
    // F's coordinate: c for coordinate-wise reductions, 0 for the exponential ones.
    let fc = if r.kind.takes_weight() { "0" } else { "c" };
    bind.push((lane_array(fv, fc, nl), fv.uniform));
    if weighted && let Some(gv) = gv {
        bind.push((lane_array(gv, "c", nl), gv.uniform));
    }
    bind.push(("jl".to_string(), false));
    let mut u = Vec::new();
    let res = e.block(&hooks.accumulate, &htys, &bind, &mut u);
    for (k, (r_, ru)) in res.iter().zip(&u).enumerate() {
        let dst = if k < nf {
            format!("la_f[{k}][c]")
        } else {
            format!("la_i[{}][c]", k - nf)
        };
        let src = if *ru { r_.clone() } else { format!("{r_}[l]") };
        let _ = writeln!(
            e.out,
            "for l in 0..L {{ if full || base + l < t.len {{ {dst}[l] = {src}; }} }}"
        );
    }
    let _ = writeln!(e.out, "}}");
    let _ = writeln!(e.out, "base += L;\n}}");
    // merge lanes into the row accumulator
    let _ = writeln!(e.out, "for l in 0..L {{");
    coordinate_loop(
        &mut e,
        &hooks.merge,
        &htys,
        &n,
        &kinds,
        &|k, c| {
            let a = hooks.acc.len();
            if k < a {
                acc_expr(k, c, "acc_f", "acc_i").0
            } else {
                let j = k - a;
                // shared registers are the same in every coordinate: read coordinate 0
                let cc = if kinds[j] { c } else { "0" };
                if j < nf {
                    format!("la_f[{j}][{cc}][l]")
                } else {
                    format!("la_i[{}][{cc}][l]", j - nf)
                }
            }
        },
        &|k, c, v| format!("{} = {v};", acc_expr(k, c, "acc_f", "acc_i").0),
    );
    let _ = writeln!(e.out, "}}\n}}\n}}");
    let _ = writeln!(
        e.out,
        "{rt}::simd::dispatch(Body::<{args}> {{ t, acc_f, acc_i }});\n}}\n}}"
    );
    Ok(EmittedGeneric {
        code: e.out,
        inputs,
    })
}

/// A node's coordinate as a lane array expression.
fn lane_array(v: &Value, c: &str, _nl: usize) -> String {
    let c = if v.dim.is(1) { "0" } else { c };
    format!("{}[{c}]", v.name)
}

/// Emits a scalar hook block (merge or finalize) over coordinates: instructions that only
/// depend on shared registers run once, the rest in a loop over the coordinates.
fn coordinate_loop(
    e: &mut Emitter<'_>,
    b: &Block,
    tys: &[Ty],
    n: &str,
    kinds: &[bool],
    param: &dyn Fn(usize, &str) -> String,
    store: &dyn Fn(usize, &str, &str) -> String,
) {
    let per: Vec<bool> = (0..b.params.len())
        .map(|k| kinds.get(k % kinds.len().max(1)).copied().unwrap_or(true))
        .collect();
    let mut comp: HashSet<Reg> = b
        .params
        .iter()
        .zip(&per)
        .filter(|(_, p)| **p)
        .map(|(r, _)| *r)
        .collect();
    let (mut shared_insts, mut comp_insts) = (Vec::new(), Vec::new());
    for i in &b.insts {
        if i.args.iter().any(|a| comp.contains(a)) {
            comp.insert(i.dst);
            comp_insts.push(i.clone());
        } else {
            shared_insts.push(i.clone());
        }
    }
    let mut uniform: HashSet<Reg> = HashSet::new();
    for (k, (p, pc)) in b.params.iter().zip(&per).enumerate() {
        if !*pc {
            let _ = writeln!(e.out, "let r{} = {};", p.0, param(k, "0"));
        }
        uniform.insert(*p);
    }
    for i in &shared_insts {
        e.inst(i, tys, &mut uniform);
    }
    // Results of shared registers are stored once; per-coordinate ones in the loop.
    for (k, r) in b.results.iter().enumerate() {
        if !comp.contains(r) && !kinds.get(k).copied().unwrap_or(true) {
            let _ = writeln!(e.out, "{}", store(k, "0", &format!("r{}", r.0)));
        }
    }
    let _ = writeln!(e.out, "for c in 0..{n} {{");
    for (k, (p, pc)) in b.params.iter().zip(&per).enumerate() {
        if *pc {
            let _ = writeln!(e.out, "let r{} = {};", p.0, param(k, "c"));
        }
    }
    for i in &comp_insts {
        e.inst(i, tys, &mut uniform);
    }
    for (k, r) in b.results.iter().enumerate() {
        if comp.contains(r) || kinds.get(k).copied().unwrap_or(true) {
            let _ = writeln!(e.out, "{}", store(k, "c", &format!("r{}", r.0)));
        }
    }
    let _ = writeln!(e.out, "}}");
}
