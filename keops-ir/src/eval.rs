//! The reference evaluator: a plain, obviously correct interpreter of programs.
//!
//! It is the oracle of every other backend. It evaluates the formula DAG node by node
//! for every pair (i, j), with the operation table's reference values, and runs the
//! reductions' init / accumulate / finalize. No tiling, no parallelism, no cleverness,
//! except the float32 summation schemes a user can choose.

use crate::dim::Dim;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::{Cat, Graph, Node, NodeId, VarId, VarSource};
use crate::limits::{MAX_EVAL_VALUES, MAX_WIDTH, MAX_WORK, past_limit};
use crate::program::{CotSrc, Gather, Program, Reduce, Step};
use crate::real::Real;
use crate::reduction::INDEX_NONE;
use std::collections::HashMap;

pub use crate::ops::{apply_op, apply_op_into};

/// An input array: `rows` rows of `dim` values, row-major.
#[derive(Copy, Clone, Debug)]
pub struct Array<'a, R> {
    /// The values.
    pub data: &'a [R],
    /// Number of rows.
    pub rows: usize,
    /// Values per row.
    pub dim: usize,
}

impl<'a, R> Array<'a, R> {
    /// An array of `rows` rows, the width being `data.len() / rows`.
    pub fn new(data: &'a [R], rows: usize, dim: usize) -> Self {
        Array { data, rows, dim }
    }
}

/// A result: values and indices per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Output<R> {
    /// Number of rows.
    pub rows: usize,
    /// Values per row.
    pub vdim: usize,
    /// Values, row-major.
    pub values: Vec<R>,
    /// Indices per row.
    pub idim: usize,
    /// Indices, row-major ([`INDEX_NONE`] where nothing was selected).
    pub indices: Vec<u64>,
}

/// How float sums accumulate.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SumScheme {
    /// One running sum.
    Direct,
    /// Partial sums over tiles of j, added to the running sum (KeOps' default for
    /// float32: the error grows with N / tile + tile instead of N).
    #[default]
    Blocked,
    /// Compensated (Kahan) summation.
    Kahan,
    /// Accumulate in f64 whatever the precision.
    F64,
}

/// Options of the reference evaluator.
#[derive(Copy, Clone, Debug)]
pub struct EvalOptions {
    /// Summation scheme of Sum reductions.
    pub sum: SumScheme,
    /// Tile size of the blocked scheme.
    pub tile: usize,
    /// Number of i rows, when no argument tells.
    pub m: Option<usize>,
    /// Number of j rows, when no argument tells.
    pub n: Option<usize>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            sum: SumScheme::Blocked,
            tile: 256,
            m: None,
            n: None,
        }
    }
}

fn input(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Input, msg)
}

/// `rows x width` values, checked against [`MAX_EVAL_VALUES`]; `what` names the array.
fn values_of(rows: usize, width: usize, what: &dyn Fn() -> String) -> Result<usize> {
    rows.checked_mul(width)
        .filter(|n| *n <= MAX_EVAL_VALUES)
        .ok_or_else(|| {
            past_limit(
                format!("{}: {rows} rows x {width} values per row =", what()),
                (rows as u128) * (width as u128),
                MAX_EVAL_VALUES,
            )
        })
}

/// An empty vector with room for `n` values, or an error when the memory cannot be had
/// (instead of the abort of `Vec::with_capacity`).
fn reserve<T>(n: usize, what: &dyn Fn() -> String) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::new(
            ErrorKind::Limit,
            format!("{}: cannot allocate {n} values", what()),
        )
    })?;
    Ok(v)
}

/// `n` copies of `x`, allocated as [`reserve`] does.
fn filled<T: Clone>(n: usize, x: T, what: &dyn Fn() -> String) -> Result<Vec<T>> {
    let mut v = reserve(n, what)?;
    v.resize(n, x);
    Ok(v)
}

/// The `len` values from `row * len` in `data`, if they are there.
fn row_slice<T>(data: &[T], row: usize, len: usize) -> Option<&[T]> {
    let start = row.checked_mul(len)?;
    data.get(start..start.checked_add(len)?)
}

impl Program {
    /// A copy with every symbolic dimension fixed by the widths of the arguments.
    pub fn instantiate(&self, widths: &[usize]) -> Result<Program> {
        if widths.len() != self.args.len() {
            return Err(input(format!(
                "the kernel takes {} arguments, {} were given",
                self.args.len(),
                widths.len()
            )));
        }
        for (k, w) in widths.iter().enumerate() {
            if *w > MAX_WIDTH {
                return Err(past_limit(
                    format!("the width of argument {k},"),
                    w,
                    MAX_WIDTH,
                ));
            }
        }
        let mut p = self.clone();
        for (k, (a, w)) in self.args.iter().zip(widths).enumerate() {
            p.dims.unify(&a.dim, &Dim::known(*w)).map_err(|m| {
                input(format!(
                    "argument {k}{} has {w} values per row, the formula needs {}",
                    a.name
                        .as_ref()
                        .map(|n| format!(" (`{n}`)"))
                        .unwrap_or_default(),
                    m.left
                ))
            })?;
        }
        p.dims.check_deferred().map_err(|d| {
            input(format!(
                "the argument widths violate a condition of the formula: {d}"
            ))
        })?;
        if let Some(d) = p.dims.deferred.first() {
            return Err(input(format!(
                "the argument widths leave a dimension undetermined: {d}"
            )));
        }
        p.graph.resolve_dims(&p.dims);
        for a in &mut p.args {
            a.dim = p.dims.resolve(&a.dim);
        }
        for b in &mut p.bufs {
            b.values = p.dims.resolve(&b.values);
            b.indices = p.dims.resolve(&b.indices);
        }
        p.check_widths()?;
        Ok(p)
    }

    /// Checks the widths that the arguments' widths gave values to: every node's, every
    /// buffer's against [`MAX_WIDTH`], and what every operation computes per pair against
    /// [`MAX_WORK`] (the checker checked those it knew).
    fn check_widths(&self) -> Result<()> {
        let g = &self.graph;
        let width = |n: NodeId| g.dim(n).as_known();
        for k in 0..g.len() {
            let n = NodeId(k as u32);
            let Some(out) = width(n) else { continue };
            let name = match g.node(n) {
                Node::Op(op, ..) => op.name(),
                Node::Zero(_) => "Zero",
                Node::Var(_) => "a variable",
                Node::Const(_) => "a constant",
            };
            if out > MAX_WIDTH {
                return Err(past_limit(format!("the width of {name},"), out, MAX_WIDTH));
            }
            if let Node::Op(op, args, params) = g.node(n) {
                let Some(arg_widths) = args.iter().map(|a| width(*a)).collect::<Option<Vec<_>>>()
                else {
                    continue;
                };
                match crate::ops::node_work(*op, &arg_widths, params, out) {
                    Some(w) if w <= MAX_WORK => {}
                    w => {
                        return Err(past_limit(
                            format!("{name}: the number of terms per pair,"),
                            w.map_or("more than 2^64".to_string(), |w| w.to_string()),
                            MAX_WORK,
                        ));
                    }
                }
            }
        }
        for (k, b) in self.bufs.iter().enumerate() {
            for d in [&b.values, &b.indices] {
                if let Some(w) = d.as_known()
                    && w > MAX_WIDTH
                {
                    return Err(past_limit(
                        format!("the width of buffer {k} (an output),"),
                        w,
                        MAX_WIDTH,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Row counts M and N from the arguments (and the options when no argument tells).
    pub fn sizes<R>(&self, args: &[Array<'_, R>], opts: &EvalOptions) -> Result<(usize, usize)> {
        let (mut m, mut n) = (opts.m, opts.n);
        for (k, (a, info)) in args.iter().zip(&self.args).enumerate() {
            for cat in &info.cats {
                let slot = match cat {
                    Cat::I => &mut m,
                    Cat::J => &mut n,
                    _ => {
                        if a.rows != 1 {
                            return Err(input(format!(
                                "argument {k} is a parameter and must have one row, found {}",
                                a.rows
                            )));
                        }
                        continue;
                    }
                };
                match slot {
                    Some(r) if *r != a.rows => {
                        let which = if *cat == Cat::I { "i (M)" } else { "j (N)" };
                        return Err(input(format!(
                            "argument {k} has {} rows, but other variables indexed by {which} have {r}",
                            a.rows
                        )));
                    }
                    _ => *slot = Some(a.rows),
                }
            }
        }
        let m = m.ok_or_else(|| input("the number of rows M is unknown: no argument is indexed by i; give it in the options"))?;
        let n = n.ok_or_else(|| input("the number of rows N is unknown: no argument is indexed by j; give it in the options"))?;
        Ok((m, n))
    }

    /// Evaluates the program with the reference evaluator.
    pub fn evaluate<R: Real>(
        &self,
        args: &[Array<'_, R>],
        opts: &EvalOptions,
    ) -> Result<Output<R>> {
        self.evaluate_with(args, opts, &mut |_| Ok(None))
    }

    /// Evaluates the program, letting `backend` compute the reduction and gather steps it can (it
    /// returns `None` for the reference evaluator to do it): how other backends are
    /// tested on whole programs, gradients included, against the reference.
    pub fn evaluate_with<R: Real>(
        &self,
        args: &[Array<'_, R>],
        opts: &EvalOptions,
        backend: &mut StepBackend<'_, R>,
    ) -> Result<Output<R>> {
        let widths: Vec<usize> = args.iter().map(|a| a.dim).collect();
        let p = self.instantiate(&widths)?;
        for (k, a) in args.iter().enumerate() {
            let n = values_of(a.rows, a.dim, &|| format!("argument {k}"))?;
            if a.data.len() != n {
                return Err(input(format!(
                    "argument {k} has {} values, expected {} rows x {} = {n}",
                    a.data.len(),
                    a.rows,
                    a.dim,
                )));
            }
        }
        let (m, n) = p.sizes(args, opts)?;
        let mut bufs: Vec<Option<Output<R>>> = vec![None; p.bufs.len()];
        for step in &p.steps {
            let rows_of = |c: Cat| match c {
                Cat::I => m,
                Cat::J => n,
                _ => 1,
            };
            let handed = BackendStep {
                program: &p,
                step,
                args,
                bufs: &bufs,
                m,
                n,
            };
            let out = match step {
                Step::Reduce(_) | Step::Gather(_) if let Some(out) = backend(handed)? => out,
                Step::Reduce(r) => reduce(&p, r, args, &bufs, m, n, opts)?,
                Step::Gather(g) => gather(&p, g, args, &bufs, m, n)?,
                Step::SumRows { src, out } => {
                    let s = bufs[*src]
                        .as_ref()
                        .ok_or_else(|| input("internal: buffer used before it is computed"))?;
                    let mut v = filled(s.vdim, R::zero(), &|| "a sum of rows".to_string())?;
                    for r in 0..s.rows {
                        let row = row_slice(&s.values, r, s.vdim).ok_or_else(|| {
                            input("internal: a buffer has fewer values than rows x width")
                        })?;
                        for (a, x) in v.iter_mut().zip(row) {
                            *a = *a + *x;
                        }
                    }
                    let _ = out;
                    Output {
                        rows: 1,
                        vdim: s.vdim,
                        values: v,
                        idim: 0,
                        indices: vec![],
                    }
                }
                Step::Add { a, b, .. } => {
                    let (a, b) = (bufs[*a].as_ref(), bufs[*b].as_ref());
                    let (Some(a), Some(b)) = (a, b) else {
                        return Err(input("internal: buffer used before it is computed"));
                    };
                    Output {
                        values: a
                            .values
                            .iter()
                            .zip(&b.values)
                            .map(|(x, y)| *x + *y)
                            .collect(),
                        ..a.clone()
                    }
                }
                Step::Fill { value, out } => {
                    let info = &p.bufs[*out];
                    let rows = rows_of(info.rows);
                    let vdim = info.values.as_known().unwrap_or(0);
                    let what = || format!("buffer {out}");
                    let len = values_of(rows, vdim, &what)?;
                    Output {
                        rows,
                        vdim,
                        values: filled(len, R::of(*value), &what)?,
                        idim: 0,
                        indices: vec![],
                    }
                }
            };
            bufs[step.out()] = Some(out);
        }
        bufs[p.output]
            .take()
            .ok_or_else(|| input("internal: the output was not computed"))
    }
}

/// A backend computing reduction and gather steps for [`Program::evaluate_with`]
/// (`None`: let the reference evaluator do it).
pub type StepBackend<'b, R> = dyn FnMut(BackendStep<'_, '_, R>) -> Result<Option<Output<R>>> + 'b;

/// A reduction or gather step handed to another backend by [`Program::evaluate_with`].
#[derive(Copy, Clone, Debug)]
pub struct BackendStep<'a, 'd, R> {
    /// The instantiated program.
    pub program: &'a Program,
    /// The step ([`Step::Reduce`] or [`Step::Gather`]).
    pub step: &'a Step,
    /// The arguments.
    pub args: &'a [Array<'d, R>],
    /// Outputs of the earlier steps.
    pub bufs: &'a [Option<Output<R>>],
    /// Number of i rows.
    pub m: usize,
    /// Number of j rows.
    pub n: usize,
}

impl<'a, R> BackendStep<'a, '_, R> {
    /// The data of a kernel input: its values (row-major) and its number of rows.
    pub fn data(&self, source: VarSource) -> Result<(&'a [R], usize)> {
        match source {
            VarSource::Arg(a) => {
                let arr = self
                    .args
                    .get(a)
                    .ok_or_else(|| input(format!("argument {a} is missing")))?;
                Ok((arr.data, arr.rows))
            }
            VarSource::Buffer(b) => {
                let out = self
                    .bufs
                    .get(b)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| input("internal: buffer used before it is computed"))?;
                Ok((&out.values, out.rows))
            }
            VarSource::Temp => Err(input("internal: a kernel reads a placeholder variable")),
        }
    }
}

/// Evaluation plan of formulas: node order and value offsets.
struct Plan {
    order: Vec<NodeId>,
    offset: HashMap<NodeId, (usize, usize)>,
    size: usize,
}

impl Plan {
    fn new(g: &Graph, roots: &[NodeId]) -> Result<Plan> {
        let order = g.topo(roots);
        let mut offset = HashMap::new();
        let mut size = 0usize;
        for n in &order {
            let d = g
                .known_dim(*n)
                .ok_or_else(|| input("internal: symbolic dimension at evaluation"))?;
            offset.insert(*n, (size, d));
            size = size
                .checked_add(d)
                .filter(|s| *s <= MAX_EVAL_VALUES)
                .ok_or_else(|| {
                    past_limit(
                        "the values of the formula's nodes for one pair, at least",
                        size as u128 + d as u128,
                        MAX_EVAL_VALUES,
                    )
                })?;
        }
        Ok(Plan {
            order,
            offset,
            size,
        })
    }

    /// Computes every node; `bind(v)` gives the value of variable `v`.
    fn run<'a, R: Real>(&self, g: &Graph, vals: &mut [R], bind: &dyn Fn(VarId) -> &'a [R]) {
        let mut scratch: Vec<R> = Vec::new();
        for n in &self.order {
            let (o, d) = self.offset[n];
            match g.node(*n) {
                Node::Var(v) => vals[o..o + d].copy_from_slice(&bind(*v)[..d]),
                Node::Const(b) => vals[o] = R::of(f64::from_bits(*b)),
                Node::Zero(_) => vals[o..o + d].fill(R::zero()),
                Node::Op(op, args, params) => {
                    scratch.clear();
                    let mut ranges = Vec::with_capacity(args.len());
                    for a in args {
                        let (ao, ad) = self.offset[a];
                        ranges.push((scratch.len(), ad));
                        scratch.extend_from_slice(&vals[ao..ao + ad]);
                    }
                    let refs: Vec<&[R]> =
                        ranges.iter().map(|(s, l)| &scratch[*s..*s + *l]).collect();
                    apply_op_into(*op, &refs, params, &mut vals[o..o + d]);
                }
            }
        }
    }

    fn get<'v, R>(&self, vals: &'v [R], n: NodeId) -> &'v [R] {
        let (o, d) = self.offset[&n];
        &vals[o..o + d]
    }
}

/// Where a variable's row comes from.
fn row_of<'a, R>(
    p: &Program,
    v: VarId,
    args: &[Array<'a, R>],
    bufs: &'a [Option<Output<R>>],
    r_i: usize,
    r_j: usize,
) -> Option<&'a [R]> {
    let info = p.graph.var(v);
    let row = match info.cat {
        Cat::I => r_i,
        Cat::J => r_j,
        _ => 0,
    };
    match info.source {
        VarSource::Arg(k) => {
            let a = args.get(k)?;
            row_slice(a.data, row, a.dim)
        }
        VarSource::Buffer(k) => {
            let b = bufs.get(k)?.as_ref()?;
            row_slice(&b.values, row, b.vdim)
        }
        VarSource::Temp => None,
    }
}

fn reduce<R: Real>(
    p: &Program,
    r: &Reduce,
    args: &[Array<'_, R>],
    bufs: &[Option<Output<R>>],
    m: usize,
    n: usize,
    opts: &EvalOptions,
) -> Result<Output<R>> {
    let roots: Vec<NodeId> = std::iter::once(r.formula).chain(r.weight).collect();
    let plan = Plan::new(&p.graph, &roots)?;
    let vars = p.graph.vars_of(&roots);
    let fdim = p.graph.known_dim(r.formula).unwrap_or(0);
    let gdim = r.weight.and_then(|w| p.graph.known_dim(w)).unwrap_or(1);
    let (rows, inner) = if r.out_rows == Cat::I { (m, n) } else { (n, m) };
    let (vdim, idim) = r.kind.output_width(fdim, gdim);
    let what = || format!("the output of {}", r.kind.name());
    let mut out = Output {
        rows,
        vdim,
        values: reserve(values_of(rows, vdim, &what)?, &what)?,
        idim,
        indices: reserve(values_of(rows, idim, &what)?, &what)?,
    };
    let nodes = || "the values of the formula's nodes".to_string();
    let mut vals = filled(plan.size, R::zero(), &nodes)?;
    let ones = vec![R::one(); gdim];
    for row in 0..rows {
        let mut acc = r.kind.init::<R>(fdim, gdim);
        let mut tile = r.kind.init::<R>(fdim, gdim);
        let mut comp = vec![R::zero(); fdim];
        let mut acc64 = vec![0f64; fdim];
        for t in 0..inner {
            let (ri, rj) = if r.out_rows == Cat::I {
                (row, t)
            } else {
                (t, row)
            };
            let mut rows_of_vars: HashMap<VarId, &[R]> = HashMap::new();
            for v in &vars {
                let data = row_of(p, *v, args, bufs, ri, rj)
                    .ok_or_else(|| input("internal: a variable has no data"))?;
                rows_of_vars.insert(*v, data);
            }
            plan.run(&p.graph, &mut vals, &|v| rows_of_vars[&v]);
            let f = plan.get(&vals, r.formula);
            let g = match r.weight {
                Some(w) => plan.get(&vals, w),
                None => &ones,
            };
            if r.kind.is_sum() {
                match opts.sum {
                    SumScheme::Direct => r.kind.accumulate(&mut acc, f, g, t as u64),
                    SumScheme::Blocked => {
                        r.kind.accumulate(&mut tile, f, g, t as u64);
                        if (t + 1) % opts.tile.max(1) == 0 {
                            r.kind.merge(&mut acc, &tile);
                            tile = r.kind.init(fdim, gdim);
                        }
                    }
                    SumScheme::Kahan => {
                        for ((s, c), x) in acc.vals.iter_mut().zip(comp.iter_mut()).zip(f) {
                            let y = *x - *c;
                            let t2 = *s + y;
                            *c = (t2 - *s) - y;
                            *s = t2;
                        }
                    }
                    SumScheme::F64 => {
                        for (s, x) in acc64.iter_mut().zip(f) {
                            *s += x.f64();
                        }
                    }
                }
            } else {
                r.kind.accumulate(&mut acc, f, g, t as u64);
            }
        }
        if r.kind.is_sum() {
            match opts.sum {
                SumScheme::Blocked => r.kind.merge(&mut acc, &tile),
                SumScheme::F64 => acc.vals = acc64.iter().map(|x| R::of(*x)).collect(),
                _ => {}
            }
        }
        let (v, i) = r.kind.finalize(&acc);
        out.values.extend(v);
        out.indices.extend(i);
    }
    Ok(out)
}

fn cot_value<R: Real>(
    src: &CotSrc,
    args: &[Array<'_, R>],
    bufs: &[Option<Output<R>>],
    row: usize,
    k: usize,
) -> R {
    let row = if src.cat == Cat::P { 0 } else { row };
    match src.source {
        VarSource::Arg(a) => args
            .get(a)
            .and_then(|a| row_slice(a.data, row, a.dim)?.get(k))
            .copied()
            .unwrap_or(R::zero()),
        VarSource::Buffer(b) => bufs
            .get(b)
            .and_then(|b| b.as_ref())
            .and_then(|b| row_slice(&b.values, row, b.vdim)?.get(k))
            .copied()
            .unwrap_or(R::zero()),
        VarSource::Temp => R::zero(),
    }
}

fn gather<R: Real>(
    p: &Program,
    ga: &Gather,
    args: &[Array<'_, R>],
    bufs: &[Option<Output<R>>],
    m: usize,
    n: usize,
) -> Result<Output<R>> {
    let plan = Plan::new(&p.graph, &[ga.formula])?;
    let vars = p.graph.vars_of(&[ga.formula]);
    let d = p.graph.var(ga.slot_var).dim.as_known().unwrap_or(1).max(1);
    let slots = ga.k.checked_mul(d).ok_or_else(|| {
        past_limit(
            "the slots of a gather,",
            ga.k as u128 * d as u128,
            MAX_WIDTH,
        )
    })?;
    let (owner_rows, other_rows) = if ga.owner == Cat::I { (m, n) } else { (n, m) };
    let out_rows = if ga.out_rows == ga.owner {
        owner_rows
    } else {
        other_rows
    };
    let vdim = p.graph.known_dim(ga.formula).unwrap_or(0);
    let idx = bufs[ga.indices]
        .as_ref()
        .ok_or_else(|| input("internal: indices used before they are computed"))?;
    let what = || "the output of a gather".to_string();
    let mut out = filled(values_of(out_rows, vdim, &what)?, R::zero(), &what)?;
    let nodes = || "the values of the formula's nodes".to_string();
    let mut vals = filled(plan.size, R::zero(), &nodes)?;
    let mut slot_val = vec![R::zero(); d];
    let bad = || input("internal: the selected indices do not fit the gather");
    for r in 0..owner_rows {
        let selected = row_slice(&idx.indices, r, idx.idim).ok_or_else(bad)?;
        for s in 0..slots {
            let j = *selected.get(s).ok_or_else(bad)?;
            if j == INDEX_NONE {
                continue;
            }
            let j = usize::try_from(j).map_err(|_| bad())?;
            let w = ga
                .weight
                .iter()
                .fold(R::zero(), |acc, src| acc + cot_value(src, args, bufs, r, s));
            slot_val.fill(R::zero());
            slot_val[s % d] = w;
            let (ri, rj) = if ga.owner == Cat::I { (r, j) } else { (j, r) };
            let mut rows_of_vars: HashMap<VarId, &[R]> = HashMap::new();
            for v in &vars {
                if *v == ga.slot_var {
                    continue;
                }
                let data = row_of(p, *v, args, bufs, ri, rj)
                    .ok_or_else(|| input("internal: a variable has no data"))?;
                rows_of_vars.insert(*v, data);
            }
            let slot_ref: &[R] = &slot_val;
            plan.run(&p.graph, &mut vals, &|v| {
                if v == ga.slot_var {
                    slot_ref
                } else {
                    rows_of_vars[&v]
                }
            });
            let target = if ga.out_rows == ga.owner { r } else { j };
            let start = target.checked_mul(vdim).ok_or_else(bad)?;
            let row = out
                .get_mut(start..start.checked_add(vdim).ok_or_else(bad)?)
                .ok_or_else(bad)?;
            for (o, x) in row.iter_mut().zip(plan.get(&vals, ga.formula)) {
                *o = *o + *x;
            }
        }
    }
    Ok(Output {
        rows: out_rows,
        vdim,
        values: out,
        idim: 0,
        indices: vec![],
    })
}
