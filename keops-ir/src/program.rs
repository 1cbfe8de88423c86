//! Programs: the checked form of a kernel, as a list of steps over buffers.
//!
//! A forward kernel is one [`Reduce`] step. Its gradient with respect to an argument is
//! another program ([`Program::grad`]): the forward steps it needs (a LogSumExp for the
//! softmax weights, an ArgMin for the selected indices) followed by new reductions whose
//! formulas are symbolic gradients. Variables of a formula are bound to user arguments
//! or to earlier buffers, so gradients of gradients work the same way.

use crate::builder::Builder;
use crate::dim::{Dim, DimSolver};
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Cat, Graph, NodeId, VarId, VarInfo, VarSource};
use crate::reduction::{self, ReductionKind};
use crate::{diff, simplify};
use std::collections::{BTreeMap, HashSet};

/// A user argument (one array).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgInfo {
    /// Name in the source, if any.
    pub name: Option<String>,
    /// Width.
    pub dim: Dim,
    /// How it is indexed: one of I, J, P; both I and J when the same array is used as
    /// `x_i` and `x_j` (then M = N).
    pub cats: Vec<Cat>,
    /// Whether it was named in the concise syntax (`x_i`), not by an alias.
    pub concise: bool,
}

impl ArgInfo {
    /// Row category of the data: I, J or P (I when used as both I and J).
    pub fn rows(&self) -> Cat {
        self.cats.first().copied().unwrap_or(Cat::P)
    }
}

/// An intermediate or output array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufInfo {
    /// Row category: I (M rows), J (N rows) or P (one row).
    pub rows: Cat,
    /// Values per row.
    pub values: Dim,
    /// Indices per row.
    pub indices: Dim,
}

/// A reduction step.
#[derive(Clone, Debug, PartialEq)]
pub struct Reduce {
    /// Which reduction.
    pub kind: ReductionKind,
    /// Index of the output: I (tag 0, reduce over j) or J (tag 1, reduce over i).
    pub out_rows: Cat,
    /// The formula F.
    pub formula: NodeId,
    /// The second formula G of weighted LogSumExp and SumSoftMaxWeight.
    pub weight: Option<NodeId>,
    /// Output buffer.
    pub out: usize,
}

/// A cotangent source: data (an argument or a buffer's values) and how it is indexed
/// (P when one row is broadcast to all).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CotSrc {
    /// Where the data is.
    pub source: VarSource,
    /// How it is indexed.
    pub cat: Cat,
}

/// A sum over selected pairs only: the gradient of Min/Max/KMin reductions.
///
/// For every row `r` of the `owner` axis and every slot `s` of the index buffer, with
/// `j = indices[r][s]` (skipped when [`crate::reduction::INDEX_NONE`]), the formula is
/// evaluated at `(r, j)` with `slot_var = weight[r][s] * basis(s mod D)`, and added to
/// row `r` (when `out_rows == owner`) or row `j` (otherwise) of the output.
#[derive(Clone, Debug, PartialEq)]
pub struct Gather {
    /// Axis of the rows that selected the pairs.
    pub owner: Cat,
    /// Axis of the output rows: `owner` or the other one.
    pub out_rows: Cat,
    /// Buffer whose index part holds the selections, `k * D` per row.
    pub indices: usize,
    /// Slots per coordinate (K).
    pub k: usize,
    /// The per-slot cotangent variable of the formula (dimension D).
    pub slot_var: VarId,
    /// Sources summed to give the per-slot weights (`k * D` per owner row).
    pub weight: Vec<CotSrc>,
    /// The formula.
    pub formula: NodeId,
    /// Output buffer.
    pub out: usize,
}

/// A step of a program.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A reduction of a formula over i or j.
    Reduce(Reduce),
    /// A sum over selected pairs.
    Gather(Gather),
    /// Sums the rows of `src` into the one row of `out` (parameter gradients).
    SumRows {
        /// Source buffer.
        src: usize,
        /// Output buffer.
        out: usize,
    },
    /// Element-wise sum of two buffers of the same shape.
    Add {
        /// First buffer.
        a: usize,
        /// Second buffer.
        b: usize,
        /// Output buffer.
        out: usize,
    },
    /// A constant buffer (zero gradients).
    Fill {
        /// The value.
        value: f64,
        /// Output buffer.
        out: usize,
    },
}

impl Step {
    /// Output buffer of the step.
    pub fn out(&self) -> usize {
        match self {
            Step::Reduce(r) => r.out,
            Step::Gather(g) => g.out,
            Step::SumRows { out, .. } | Step::Add { out, .. } | Step::Fill { out, .. } => *out,
        }
    }
}

/// A checked kernel: formulas, arguments, buffers and steps.
#[derive(Clone, Debug)]
pub struct Program {
    /// Formulas and variables.
    pub graph: Graph,
    /// Symbolic dimensions and their pending conditions.
    pub dims: DimSolver,
    /// User arguments, by position.
    pub args: Vec<ArgInfo>,
    /// Buffers.
    pub bufs: Vec<BufInfo>,
    /// Steps, in execution order.
    pub steps: Vec<Step>,
    /// The buffer returned.
    pub output: usize,
}

impl Program {
    /// The reduction steps (one for a forward kernel).
    pub fn reductions(&self) -> impl Iterator<Item = &Reduce> {
        self.steps.iter().filter_map(|s| match s {
            Step::Reduce(r) => Some(r),
            _ => None,
        })
    }

    /// The formulas of all steps.
    pub fn roots(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        for s in &self.steps {
            match s {
                Step::Reduce(r) => {
                    out.push(r.formula);
                    out.extend(r.weight);
                }
                Step::Gather(g) => out.push(g.formula),
                _ => {}
            }
        }
        out
    }

    /// Number of distinct formula nodes (the shared DAG) of all steps.
    pub fn node_count(&self) -> usize {
        self.graph.count(&self.roots())
    }

    /// The output buffer's description.
    pub fn output_info(&self) -> &BufInfo {
        &self.bufs[self.output]
    }

    /// Simplifies every formula with the rule table.
    pub fn simplify(&mut self) -> Result<()> {
        let roots = self.roots();
        let mut b = Builder::new(&mut self.graph, &mut self.dims);
        let new = simplify::simplify(&mut b, &roots)?;
        let mut it = new.into_iter();
        for s in &mut self.steps {
            match s {
                Step::Reduce(r) => {
                    r.formula = it.next().unwrap_or(r.formula);
                    if let Some(w) = &mut r.weight {
                        *w = it.next().unwrap_or(*w);
                    }
                }
                Step::Gather(g) => g.formula = it.next().unwrap_or(g.formula),
                _ => {}
            }
        }
        Ok(())
    }

    /// Argument position by name (`x`, `x_i`; a shared `x_i`/`x_j` answers to both).
    pub fn arg_position(&self, name: &str) -> Option<usize> {
        self.args
            .iter()
            .position(|a| a.name.as_deref() == Some(name))
            .or_else(|| {
                let base = name
                    .strip_suffix("_i")
                    .or_else(|| name.strip_suffix("_j"))?;
                self.args
                    .iter()
                    .position(|a| a.name.as_deref() == Some(base))
            })
    }

    fn new_buf(&mut self, rows: Cat, values: Dim, indices: Dim) -> usize {
        self.bufs.push(BufInfo {
            rows,
            values,
            indices,
        });
        self.bufs.len() - 1
    }

    fn buffer_var(&mut self, buf: usize, cat: Cat) -> NodeId {
        let dim = self.bufs[buf].values.clone();
        self.data_var(None, cat, dim, VarSource::Buffer(buf))
    }

    /// The variable reading `source` indexed by `cat`, reused when it exists so that
    /// formulas built at different times share their nodes.
    fn data_var(&mut self, name: Option<String>, cat: Cat, dim: Dim, source: VarSource) -> NodeId {
        match self
            .graph
            .vars
            .iter()
            .position(|v| v.source == source && v.cat == cat)
        {
            Some(k) => self.graph.var_node(VarId(k as u32)),
            None => {
                self.graph
                    .add_var(VarInfo {
                        name,
                        cat,
                        dim,
                        source,
                        declared_at: None,
                    })
                    .1
            }
        }
    }

    fn source_var(&mut self, src: CotSrc, dim: Dim) -> NodeId {
        let name = match src.source {
            VarSource::Arg(p) => {
                let arg = &mut self.args[p];
                if src.cat != Cat::P && !arg.cats.contains(&src.cat) {
                    // The array is now also read along the other index (then M = N).
                    arg.cats.push(src.cat);
                    arg.cats.sort();
                }
                let suffix = if arg.cats.len() > 1 {
                    if src.cat == Cat::I { "_i" } else { "_j" }
                } else {
                    ""
                };
                arg.name.as_ref().map(|n| format!("{n}{suffix}"))
            }
            _ => None,
        };
        self.data_var(name, src.cat, dim, src.source)
    }

    /// The gradient of `<E, output>` with respect to the argument at `pos`, where the
    /// cotangent `E` (shaped like the output values) becomes a new last argument named
    /// `cotangent_name`. The result has the shape of the argument.
    ///
    /// The name must be a name of the formula language (one identifier, not the name of
    /// an operation) that no argument answers to ([`Program::arg_position`]: an earlier
    /// gradient's cotangent is an argument too), so that the gradient's text form reads
    /// back as the same program; anything else is an [`ErrorKind::Declaration`] error
    /// naming it.
    pub fn grad(&self, pos: usize, cotangent_name: &str) -> Result<Program> {
        self.check_cotangent_name(cotangent_name)?;
        let out = &self.bufs[self.output];
        let mut with_cot = self.clone();
        // Index-only outputs (ArgMin...) take a cotangent shaped like their indices; their
        // gradient is zero.
        let shape = if out.values.is(0) {
            out.indices.clone()
        } else {
            out.values.clone()
        };
        with_cot.args.push(ArgInfo {
            name: Some(cotangent_name.to_string()),
            dim: shape,
            cats: vec![out.rows],
            concise: false,
        });
        with_cot.into_grad(pos, self.args.len())
    }

    /// Checks the name [`Program::grad`] gives its cotangent argument.
    fn check_cotangent_name(&self, name: &str) -> Result<()> {
        let invalid = |why: String| {
            Error::new(ErrorKind::Declaration, format!("the cotangent name {why}")).help(format!(
                "name the cotangent with a name no argument has, e.g. `{}`",
                self.fresh_name("e")
            ))
        };
        if name.is_empty() {
            return Err(invalid("is empty".into()));
        }
        let one_ident = match name.parse::<proc_macro2::TokenStream>() {
            Ok(ts) => {
                let mut it = ts.into_iter();
                matches!(
                    (it.next(), it.next()),
                    (Some(proc_macro2::TokenTree::Ident(i)), None)
                        if i == name && !name.starts_with("r#")
                )
            }
            Err(_) => false,
        };
        if !one_ident {
            return Err(invalid(format!("`{name}` is not a name")));
        }
        if crate::ops::Op::from_name(name).is_some() {
            return Err(invalid(format!("`{name}` is the name of an operation")));
        }
        if let Some(p) = self.arg_position(name) {
            let what = match self.args[p].name.as_deref() {
                Some(n) if n != name => format!(" (`{n}`)"),
                _ => String::new(),
            };
            return Err(invalid(format!(
                "`{name}` is already the name of argument {p}{what}"
            )));
        }
        Ok(())
    }

    /// `base`, or `base` followed by the first number that makes it a name no argument
    /// answers to.
    fn fresh_name(&self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 0usize;
        while self.arg_position(&name).is_some() {
            name = format!("{base}{k}");
            k += 1;
        }
        name
    }

    /// The gradient program of argument `pos` as keops-rs compiles it: [`Program::grad`],
    /// simplified, and instantiated when its widths are all known. The `keops!` macro
    /// generates its kernels from it and the runtime regenerates the same kernels from it
    /// (generic widths, the emulated backend), so both call this one function.
    pub fn gradient_program(&self, pos: usize, cotangent_name: &str) -> Result<Program> {
        let mut g = self.grad(pos, cotangent_name)?;
        g.simplify()?;
        let widths: Option<Vec<usize>> = g.args.iter().map(|a| a.dim.as_known()).collect();
        match widths {
            Some(w) => g.instantiate(&w),
            None => Ok(g),
        }
    }

    /// Like [`Program::grad`], with the cotangent already an argument (at `cot_pos`),
    /// as in KeOps' `Grad(Sum_Reduction(F, 0), x, e)` with `e` declared.
    pub fn grad_into(&self, pos: usize, cot_pos: usize) -> Result<Program> {
        self.clone().into_grad(pos, cot_pos)
    }

    /// [`Program::grad_into`], consuming the program (whose graph the gradient extends:
    /// one copy of the graph less).
    fn into_grad(self, pos: usize, cot_pos: usize) -> Result<Program> {
        let target = self.args.get(pos).ok_or_else(|| {
            Error::new(
                ErrorKind::Differentiation,
                format!("there is no argument at position {pos}"),
            )
        })?;
        if pos == cot_pos {
            return Err(Error::new(
                ErrorKind::Differentiation,
                "the cotangent cannot be the variable of differentiation",
            ));
        }
        let target_rows = target.rows();
        let target_dim = target.dim.clone();
        // The forward steps, read while the gradient steps are appended to `g`.
        let steps = self.steps.clone();
        let output = self.output;
        let out = self.bufs[output].clone();
        let mut g = self;
        if out.values.is(0) {
            // Indices are piecewise constant: the gradient is zero.
            let zero = g.new_buf(target_rows, target_dim, Dim::known(0));
            g.steps.push(Step::Fill {
                value: 0.0,
                out: zero,
            });
            g.output = zero;
            g.prune();
            return Ok(g);
        }

        // Which buffers depend on the target argument.
        let mut needs: HashSet<usize> = HashSet::new();
        for s in &steps {
            let depends = match s {
                Step::Reduce(r) => {
                    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
                    g.graph
                        .vars_of(&roots)
                        .iter()
                        .any(|v| g.var_requires(*v, pos, &needs))
                }
                Step::Gather(ga) => {
                    g.graph
                        .vars_of(&[ga.formula])
                        .iter()
                        .any(|v| g.var_requires(*v, pos, &needs))
                        || ga
                            .weight
                            .iter()
                            .any(|w| source_requires(w.source, pos, &needs))
                }
                Step::SumRows { src, .. } => needs.contains(src),
                Step::Add { a, b, .. } => needs.contains(a) || needs.contains(b),
                Step::Fill { .. } => false,
            };
            if depends {
                needs.insert(s.out());
            }
        }

        let mut bw = Backward {
            pos,
            needs,
            cot: BTreeMap::new(),
            pending: BTreeMap::new(),
            contributions: Vec::new(),
        };
        bw.cot.insert(
            output,
            vec![CotSrc {
                source: VarSource::Arg(cot_pos),
                cat: out.rows,
            }],
        );
        for step in steps.iter().rev() {
            g.flush(&mut bw, Dest::Buffer(step.out()))?;
            let Some(c) = bw.cot.remove(&step.out()) else {
                continue;
            };
            if !bw.needs.contains(&step.out()) {
                continue;
            }
            match step {
                Step::SumRows { src, .. } => {
                    for s in c {
                        bw.cot.entry(*src).or_default().push(CotSrc {
                            source: s.source,
                            cat: Cat::P,
                        });
                    }
                }
                Step::Add { a, b, .. } => {
                    // Row r of each input receives the cotangent of row r of the sum; an
                    // input indexed by j (x_j use of a shared array) reads it as j-indexed.
                    for input in [*a, *b] {
                        let rows = g.bufs[input].rows;
                        let entry = bw.cot.entry(input).or_default();
                        entry.extend(c.iter().map(|s| CotSrc {
                            source: s.source,
                            cat: if s.cat == Cat::P { Cat::P } else { rows },
                        }));
                    }
                }
                Step::Fill { .. } => {}
                Step::Reduce(r) => g.reduce_backward(r, &c, &mut bw)?,
                Step::Gather(ga) => g.gather_backward(ga, &c, &mut bw)?,
            }
        }
        g.flush(&mut bw, Dest::Arg)?;
        let contributions = bw.contributions;

        // Sum the contributions (x_i and x_j uses of one array add up).
        let result = match contributions.split_first() {
            None => {
                let out = g.new_buf(target_rows, target_dim, Dim::known(0));
                g.steps.push(Step::Fill { value: 0.0, out });
                out
            }
            Some((first, rest)) => {
                let mut acc = *first;
                for b in rest {
                    let out = g.new_buf(target_rows, target_dim.clone(), Dim::known(0));
                    g.steps.push(Step::Add { a: acc, b: *b, out });
                    acc = out;
                }
                acc
            }
        };
        g.output = result;
        g.prune();
        Ok(g)
    }

    fn var_requires(&self, v: VarId, pos: usize, needs: &HashSet<usize>) -> bool {
        source_requires(self.graph.var(v).source, pos, needs)
    }

    /// The sum of the cotangent sources, as a formula node.
    fn cot_node(&mut self, c: &[CotSrc], dim: &Dim) -> Result<NodeId> {
        let mut nodes = Vec::new();
        for s in c {
            nodes.push(self.source_var(*s, dim.clone()));
        }
        let mut b = Builder::new(&mut self.graph, &mut self.dims);
        let mut acc = nodes[0];
        for n in &nodes[1..] {
            acc = b.add(acc, *n)?;
        }
        Ok(acc)
    }

    /// Routes an emitted gradient buffer of variable `w` to its destination.
    fn route(w: &VarInfo, buf: usize, bw: &mut Backward) {
        match w.source {
            VarSource::Arg(p) if p == bw.pos => bw.contributions.push(buf),
            VarSource::Buffer(k) => bw.cot.entry(k).or_default().push(CotSrc {
                source: VarSource::Buffer(buf),
                cat: w.cat,
            }),
            _ => {}
        }
    }

    /// Queues the gradient formula of variable `w` for a Sum reduction over the axis
    /// opposite to `red_rows`; formulas with the same destination and axes are added
    /// into one reduction when flushed.
    fn defer(
        &mut self,
        bw: &mut Backward,
        formula: NodeId,
        w: &VarInfo,
        red_rows: Cat,
    ) -> Result<()> {
        let dest = match w.source {
            VarSource::Arg(p) if p == bw.pos => Dest::Arg,
            VarSource::Buffer(k) => Dest::Buffer(k),
            _ => return Ok(()),
        };
        let rows = if w.cat == Cat::P { red_rows } else { w.cat };
        let key = (dest, w.cat, rows);
        let merged = match bw.pending.remove(&key) {
            None => formula,
            Some((prev, _)) => Builder::new(&mut self.graph, &mut self.dims).add(prev, formula)?,
        };
        bw.pending.insert(key, (merged, w.clone()));
        Ok(())
    }

    /// Emits the queued reductions for one destination.
    fn flush(&mut self, bw: &mut Backward, dest: Dest) -> Result<()> {
        let keys: Vec<PendingKey> = bw.pending.keys().filter(|k| k.0 == dest).copied().collect();
        for key in keys {
            let Some((formula, w)) = bw.pending.remove(&key) else {
                continue;
            };
            if self.graph.is_zero(formula) {
                continue;
            }
            let buf = self.emit_sum(formula, &w, key.2);
            Self::route(&w, buf, bw);
        }
        Ok(())
    }

    /// Emits the reduction of `formula` giving the gradient contribution for `w`.
    fn emit_sum(&mut self, formula: NodeId, w: &VarInfo, red_rows: Cat) -> usize {
        let dim = w.dim.clone();
        if w.cat == Cat::P {
            let tmp = self.new_buf(red_rows, dim.clone(), Dim::known(0));
            self.steps.push(Step::Reduce(Reduce {
                kind: ReductionKind::Sum,
                out_rows: red_rows,
                formula,
                weight: None,
                out: tmp,
            }));
            let out = self.new_buf(Cat::P, dim, Dim::known(0));
            self.steps.push(Step::SumRows { src: tmp, out });
            out
        } else {
            let out = self.new_buf(w.cat, dim, Dim::known(0));
            self.steps.push(Step::Reduce(Reduce {
                kind: ReductionKind::Sum,
                out_rows: w.cat,
                formula,
                weight: None,
                out,
            }));
            out
        }
    }

    fn reduce_backward(&mut self, r: &Reduce, c: &[CotSrc], bw: &mut Backward) -> Result<()> {
        let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
        let vars: Vec<VarId> = self
            .graph
            .vars_of(&roots)
            .into_iter()
            .filter(|v| self.var_requires(*v, bw.pos, &bw.needs))
            .collect();
        let backward = r.kind.spec().backward;
        if vars.is_empty() || backward == reduction::Backward::Zero {
            return Ok(());
        }
        let out_dim = self.bufs[r.out].values.clone();
        let cnode = self.cot_node(c, &out_dim)?;
        // Formula-level cotangents of F and G.
        let (wf, wg) = match backward {
            reduction::Backward::Zero => return Ok(()),
            reduction::Backward::Selected => return self.selection_backward(r, c, &vars, bw),
            reduction::Backward::Linear => (cnode, None),
            reduction::Backward::LogSumExp => {
                let lse = self.buffer_var(r.out, r.out_rows);
                let mut b = Builder::new(&mut self.graph, &mut self.dims);
                let shifted = b.sub(r.formula, lse)?;
                let p = b.f1(crate::ops::Op::Exp, shifted)?;
                let cp = b.mul(cnode, p)?;
                match r.weight {
                    None => (cp, None),
                    Some(gw) => {
                        let t = b.mul(cp, gw)?;
                        (b.sum(t)?, Some(cp))
                    }
                }
            }
            reduction::Backward::SoftMaxWeight => {
                let gw = r.weight.ok_or_else(|| {
                    Error::new(ErrorKind::Reduction, "SumSoftMaxWeight without weight")
                })?;
                let lse_buf = self.new_buf(r.out_rows, Dim::one(), Dim::known(0));
                self.steps.push(Step::Reduce(Reduce {
                    kind: ReductionKind::LogSumExp,
                    out_rows: r.out_rows,
                    formula: r.formula,
                    weight: None,
                    out: lse_buf,
                }));
                let lse = self.buffer_var(lse_buf, r.out_rows);
                let a = self.buffer_var(r.out, r.out_rows);
                let mut b = Builder::new(&mut self.graph, &mut self.dims);
                let shifted = b.sub(r.formula, lse)?;
                let p = b.f1(crate::ops::Op::Exp, shifted)?;
                let cg = b.dot(cnode, gw)?;
                let ca = b.dot(cnode, a)?;
                let diff = b.sub(cg, ca)?;
                let wf = b.mul(p, diff)?;
                let wg = b.mul(p, cnode)?;
                (wf, Some(wg))
            }
        };
        for v in vars {
            let w = self.graph.var(v).clone();
            let formula = {
                let mut b = Builder::new(&mut self.graph, &mut self.dims);
                let gf = diff::grad(&mut b, r.formula, v, wf)?;
                match (r.weight, wg) {
                    (Some(gw), Some(e)) => {
                        let gg = diff::grad(&mut b, gw, v, e)?;
                        b.add(gf, gg)?
                    }
                    _ => gf,
                }
            };
            if !self.graph.is_zero(formula) {
                self.defer(bw, formula, &w, r.out_rows)?;
            }
        }
        Ok(())
    }

    fn selection_backward(
        &mut self,
        r: &Reduce,
        c: &[CotSrc],
        vars: &[VarId],
        bw: &mut Backward,
    ) -> Result<()> {
        // The selected indices: from this step when it computes them, else from a
        // forward step of the arg-variant of the same reduction.
        let indices = if r.kind.has_indices() {
            r.out
        } else {
            let kind = r.kind.with_indices().ok_or_else(|| {
                Error::new(
                    ErrorKind::Differentiation,
                    format!(
                        "internal error: {} has no variant with indices in the reduction table",
                        r.kind
                    ),
                )
            })?;
            let values = self.bufs[r.out].values.clone();
            let buf = self.new_buf(r.out_rows, values.clone(), values);
            self.steps.push(Step::Reduce(Reduce {
                kind,
                out_rows: r.out_rows,
                formula: r.formula,
                weight: None,
                out: buf,
            }));
            buf
        };
        let fdim = self.graph.dim(r.formula).clone();
        let (slot, slot_node) = {
            let mut b = Builder::new(&mut self.graph, &mut self.dims);
            b.temp_var(fdim, r.out_rows)
        };
        for &v in vars {
            let w = self.graph.var(v).clone();
            let formula = {
                let mut b = Builder::new(&mut self.graph, &mut self.dims);
                diff::grad(&mut b, r.formula, v, slot_node)?
            };
            if self.graph.is_zero(formula) {
                continue;
            }
            let out_rows = if w.cat == Cat::P { r.out_rows } else { w.cat };
            let mut buf = self.new_buf(out_rows, w.dim.clone(), Dim::known(0));
            self.steps.push(Step::Gather(Gather {
                owner: r.out_rows,
                out_rows,
                indices,
                k: r.kind.slots(),
                slot_var: slot,
                weight: c.to_vec(),
                formula,
                out: buf,
            }));
            if w.cat == Cat::P {
                let summed = self.new_buf(Cat::P, w.dim.clone(), Dim::known(0));
                self.steps.push(Step::SumRows {
                    src: buf,
                    out: summed,
                });
                buf = summed;
            }
            Self::route(&w, buf, bw);
        }
        Ok(())
    }

    fn gather_backward(&mut self, ga: &Gather, c: &[CotSrc], bw: &mut Backward) -> Result<()> {
        if ga
            .weight
            .iter()
            .any(|w| source_requires(w.source, bw.pos, &bw.needs))
        {
            return Err(Error::new(
                ErrorKind::Differentiation,
                "differentiating the gradient of a Min/Max/KMin reduction with respect to its own cotangent is not supported",
            )
            .help("differentiate with respect to the other arguments, or use a Sum/LogSumExp reduction"));
        }
        let out_dim = self.bufs[ga.out].values.clone();
        let cnode = self.cot_node(c, &out_dim)?;
        let vars: Vec<VarId> = self
            .graph
            .vars_of(&[ga.formula])
            .into_iter()
            .filter(|v| self.var_requires(*v, bw.pos, &bw.needs))
            .collect();
        for v in vars {
            let w = self.graph.var(v).clone();
            let formula = {
                let mut b = Builder::new(&mut self.graph, &mut self.dims);
                diff::grad(&mut b, ga.formula, v, cnode)?
            };
            if self.graph.is_zero(formula) {
                continue;
            }
            let out_rows = if w.cat == Cat::P { ga.owner } else { w.cat };
            let mut buf = self.new_buf(out_rows, w.dim.clone(), Dim::known(0));
            self.steps.push(Step::Gather(Gather {
                out_rows,
                formula,
                out: buf,
                weight: ga.weight.clone(),
                ..ga.clone()
            }));
            if w.cat == Cat::P {
                let summed = self.new_buf(Cat::P, w.dim.clone(), Dim::known(0));
                self.steps.push(Step::SumRows {
                    src: buf,
                    out: summed,
                });
                buf = summed;
            }
            Self::route(&w, buf, bw);
        }
        Ok(())
    }

    /// Drops steps whose buffers the output does not need.
    fn prune(&mut self) {
        let mut live: HashSet<usize> = HashSet::from([self.output]);
        let mut keep = vec![false; self.steps.len()];
        for (k, s) in self.steps.iter().enumerate().rev() {
            if !live.contains(&s.out()) {
                continue;
            }
            keep[k] = true;
            let mut uses = Vec::new();
            match s {
                Step::Reduce(r) => {
                    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
                    uses.extend(
                        self.graph
                            .vars_of(&roots)
                            .into_iter()
                            .map(|v| self.graph.var(v).source),
                    );
                }
                Step::Gather(g) => {
                    uses.extend(
                        self.graph
                            .vars_of(&[g.formula])
                            .into_iter()
                            .map(|v| self.graph.var(v).source),
                    );
                    uses.extend(g.weight.iter().map(|w| w.source));
                    live.insert(g.indices);
                }
                Step::SumRows { src, .. } => {
                    live.insert(*src);
                }
                Step::Add { a, b, .. } => {
                    live.insert(*a);
                    live.insert(*b);
                }
                Step::Fill { .. } => {}
            }
            for u in uses {
                if let VarSource::Buffer(k) = u {
                    live.insert(k);
                }
            }
        }
        let mut k = 0;
        self.steps.retain(|_| {
            k += 1;
            keep[k - 1]
        });
    }
}

/// Where a gradient contribution goes: the target argument, or the cotangent of a buffer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Dest {
    Arg,
    Buffer(usize),
}

/// Pending reductions are keyed by destination, category of the variable, and rows of
/// the reduction's output.
type PendingKey = (Dest, Cat, Cat);

/// State of the backward pass of [`Program::grad`].
struct Backward {
    /// The argument differentiated.
    pos: usize,
    /// Buffers that depend on it.
    needs: HashSet<usize>,
    /// Cotangent sources of buffers.
    cot: BTreeMap<usize, Vec<CotSrc>>,
    /// Gradient formulas waiting to be emitted as one Sum reduction per key.
    pending: BTreeMap<PendingKey, (NodeId, VarInfo)>,
    /// Buffers whose sum is the gradient.
    contributions: Vec<usize>,
}

fn source_requires(s: VarSource, pos: usize, needs: &HashSet<usize>) -> bool {
    match s {
        VarSource::Arg(p) => p == pos,
        VarSource::Buffer(k) => needs.contains(&k),
        VarSource::Temp => false,
    }
}
