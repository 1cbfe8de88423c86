//! The text form: programs print in KeOps syntax and parse back to the same formula.
//!
//! A forward kernel prints as declarations then the reduction, separated by `;`:
//! `x = Vi(0, 3); y = Vj(1, 3); Sum_Reduction(Exp(-SqDist(x, y)), 0)`, or in the concise
//! syntax when all its variables are concise: `x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))`.
//! Programs of several steps (gradients) print one step per line, for reading.

use crate::dim::{Dim, DimConstraint, SymId};
use crate::graph::{Cat, Graph, Node, NodeId, Param, VarSource};
use crate::ops::Print;
use crate::program::{Program, Step};
use crate::reduction::ReductionKind;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write};

const ATOM: u8 = 6;
const UNARY: u8 = 5;

/// Prints formulas of a graph.
pub struct Printer<'g> {
    graph: &'g Graph,
    /// The names of width symbols in the text (`D0`, `D1`, ...), by symbol.
    names: HashMap<SymId, SymId>,
}

impl<'g> Printer<'g> {
    /// A printer for formulas of `graph`.
    pub fn new(graph: &'g Graph) -> Self {
        Printer {
            graph,
            names: HashMap::new(),
        }
    }

    /// A width with its symbols named as in the text.
    fn width(&self, d: &Dim) -> Dim {
        d.subst(&|s| self.names.get(&s).map(|t| Dim::sym(*t)))
    }

    /// The text of a formula.
    pub fn formula(&self, n: NodeId) -> String {
        let mut s = String::new();
        let _ = self.write(&mut s, n);
        s
    }

    fn precedence(&self, n: NodeId) -> u8 {
        match self.graph.node(n) {
            Node::Const(b) if f64::from_bits(*b) < 0.0 => UNARY,
            Node::Op(op, _, _) => match op.spec().prim().map(|p| p.print) {
                Some(Print::Infix(_, p)) => p,
                Some(Print::Prefix(_)) => UNARY,
                _ => ATOM,
            },
            _ => ATOM,
        }
    }

    /// Writes the formula at `root`. Iterative (a stack of pieces still to write), so
    /// that formulas of any depth print without exhausting the thread's stack.
    fn write(&self, out: &mut String, root: NodeId) -> fmt::Result {
        let mut todo = vec![Piece::Node(root)];
        while let Some(piece) = todo.pop() {
            let n = match piece {
                Piece::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Piece::Param(p) => {
                    write_param(out, p)?;
                    continue;
                }
                Piece::Node(n) => n,
            };
            match self.graph.node(n) {
                Node::Var(v) => {
                    let info = self.graph.var(*v);
                    match (&info.name, info.source) {
                        (Some(name), _) => out.push_str(name),
                        (None, VarSource::Arg(p)) => {
                            write!(out, "Var({p}, {}, {})", info.dim, info.cat.keops_number())?
                        }
                        (None, VarSource::Buffer(k)) => {
                            write!(out, "buf{k}_{}", cat_suffix(info.cat))?
                        }
                        (None, VarSource::Temp) => write!(out, "slot{}", v.0)?,
                    }
                }
                Node::Const(b) => write_number(out, f64::from_bits(*b))?,
                Node::Zero(d) if d.is(1) => out.push('0'),
                Node::Zero(d) => write!(out, "Zero({})", self.width(d))?,
                Node::Op(op, args, params) => {
                    // Pieces are pushed last first.
                    let prim = op.spec().prim();
                    match prim.map(|p| p.print) {
                        Some(Print::Infix(sym, prec)) => {
                            let (l, r) = (args[0], args[1]);
                            let left_parens =
                                self.precedence(l) < prec || (prec == 1 && self.precedence(l) == 1);
                            push_operand(&mut todo, r, self.precedence(r) <= prec);
                            todo.push(Piece::Text(" "));
                            todo.push(Piece::Text(sym));
                            todo.push(Piece::Text(" "));
                            push_operand(&mut todo, l, left_parens);
                        }
                        Some(Print::Prefix(sym))
                            if !matches!(self.graph.node(args[0]), Node::Const(_)) =>
                        {
                            push_operand(&mut todo, args[0], self.precedence(args[0]) < UNARY);
                            todo.push(Piece::Text(sym));
                        }
                        _ => {
                            write!(out, "{}(", op.name())?;
                            todo.push(Piece::Text(")"));
                            for p in params.iter().rev() {
                                todo.push(Piece::Param(p));
                                todo.push(Piece::Text(", "));
                            }
                            for (k, a) in args.iter().enumerate().rev() {
                                todo.push(Piece::Node(*a));
                                if k > 0 {
                                    todo.push(Piece::Text(", "));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether two conditions say the same (an equation read either way round).
fn same_condition(a: &DimConstraint, b: &DimConstraint) -> bool {
    match (a, b) {
        (DimConstraint::Eq(a1, a2), DimConstraint::Eq(b1, b2)) => {
            let (d, e) = (a1.sub(a2), b1.sub(b2));
            d == e || d == Dim::default().sub(&e)
        }
        _ => a == b,
    }
}

/// What remains to be written of a formula.
enum Piece<'g> {
    /// A sub-formula.
    Node(NodeId),
    /// Text.
    Text(&'static str),
    /// An integer parameter.
    Param(&'g Param),
}

/// Pushes an operand, in parentheses when `parens`, last piece first.
fn push_operand(todo: &mut Vec<Piece<'_>>, n: NodeId, parens: bool) {
    if parens {
        todo.push(Piece::Text(")"));
        todo.push(Piece::Node(n));
        todo.push(Piece::Text("("));
    } else {
        todo.push(Piece::Node(n));
    }
}

fn write_number(out: &mut String, x: f64) -> fmt::Result {
    if x.is_infinite() {
        // A literal past the largest float (`1e3000`) reads as infinity; `inf` would read
        // as a variable.
        return out.write_str(if x > 0.0 { "1e999" } else { "-1e999" });
    }
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        write!(out, "{}", x as i64)
    } else {
        write!(out, "{x:?}")
    }
}

fn write_param(out: &mut String, p: &Param) -> fmt::Result {
    match p {
        Param::Int(i) => write!(out, "{i}"),
        Param::List(l) => {
            out.push('(');
            for (k, x) in l.iter().enumerate() {
                if k > 0 {
                    out.push_str(", ");
                }
                write!(out, "{x}")?;
            }
            if l.len() == 1 {
                out.push(',');
            }
            out.push(')');
            Ok(())
        }
    }
}

fn cat_suffix(c: Cat) -> &'static str {
    match c {
        Cat::I => "i",
        Cat::J => "j",
        _ => "p",
    }
}

fn cat_decl(c: Cat) -> &'static str {
    match c {
        Cat::I => "Vi",
        Cat::J => "Vj",
        _ => "Pm",
    }
}

impl Program {
    /// The text of a formula node of this program.
    pub fn formula_text(&self, n: NodeId) -> String {
        Printer::new(&self.graph).formula(n)
    }

    /// A printer naming the width symbols `D0`, `D1`, ... in the order they first show in
    /// the text (arguments, then conditions, then zeros), so that the text of a program
    /// read back from its text is the same text.
    fn printer(&self, conditions: &[DimConstraint]) -> Printer<'_> {
        let mut pr = Printer::new(&self.graph);
        let mut order: Vec<SymId> = Vec::new();
        let mut see = |d: &Dim| {
            for s in self.dims.resolve(d).syms() {
                if !order.contains(&s) {
                    order.push(s);
                }
            }
        };
        for a in &self.args {
            see(&a.dim);
        }
        for c in conditions {
            match c {
                DimConstraint::Eq(a, b) | DimConstraint::MultipleOf(a, b) => {
                    see(a);
                    see(b);
                }
                DimConstraint::AtLeast(a, _) | DimConstraint::AtMost(a, _) => see(a),
            }
        }
        for n in self.zeros() {
            if let Node::Zero(d) = self.graph.node(n) {
                see(d);
            }
        }
        pr.names = order
            .into_iter()
            .enumerate()
            .map(|(k, s)| (s, SymId(k as u32)))
            .collect();
        pr
    }

    /// The zero nodes of the formulas, in the order they print.
    fn zeros(&self) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut todo: Vec<NodeId> = self.roots().into_iter().rev().collect();
        while let Some(n) = todo.pop() {
            if !seen.insert(n) {
                continue;
            }
            match self.graph.node(n) {
                Node::Zero(_) => out.push(n),
                Node::Op(_, a, _) => todo.extend(a.iter().rev().copied()),
                _ => {}
            }
        }
        out
    }

    /// Whether every argument is named in the concise syntax.
    fn all_concise(&self) -> bool {
        self.args.iter().all(|a| a.concise)
    }

    /// Writes the declarations: every argument, in position order, with its width (a
    /// polynomial of width symbols `D0`, `2*D1 + 1` when generic, so that arguments
    /// sharing a width still share it when read back). An argument's aliases are declared
    /// by name; an index (i, j or parameter) under which it has no name, as an inline
    /// `Var` or one the simplified formula no longer uses, as `Var(position, width,
    /// category);`, so that the text keeps the program's signature.
    fn write_header(
        &self,
        pr: &Printer<'_>,
        conditions: &[DimConstraint],
        out: &mut String,
    ) -> fmt::Result {
        for (pos, a) in self.args.iter().enumerate() {
            let dim = pr.width(&a.dim);
            if a.concise {
                // Every index it is used under (`x_i` and `x_j` are one argument): the
                // formula may no longer use one of them.
                let name = a.name.clone().unwrap_or_default();
                for c in &a.cats {
                    let full = match c {
                        Cat::I => format!("{name}_i"),
                        Cat::J => format!("{name}_j"),
                        _ => name.clone(),
                    };
                    write!(out, "{full}: {dim}; ")?;
                }
                continue;
            }
            // The alias that names the argument first, so that it names it when read.
            let mut cats = a.cats.clone();
            cats.sort_by_key(|c| {
                !self
                    .graph
                    .vars
                    .iter()
                    .any(|v| v.source == VarSource::Arg(pos) && v.cat == *c && v.name == a.name)
            });
            for c in &cats {
                let mut named = false;
                for v in &self.graph.vars {
                    if v.source == VarSource::Arg(pos)
                        && v.cat == *c
                        && let Some(name) = &v.name
                    {
                        write!(out, "{name} = {}({pos}, {dim}); ", cat_decl(*c))?;
                        named = true;
                    }
                }
                if !named {
                    write!(out, "Var({pos}, {dim}, {}); ", c.keops_number())?;
                }
            }
        }
        for c in conditions {
            match c {
                DimConstraint::Eq(a, b) => write!(out, "{} == {}; ", pr.width(a), pr.width(b))?,
                DimConstraint::AtLeast(a, n) => write!(out, "{} >= {n}; ", pr.width(a))?,
                DimConstraint::AtMost(a, n) => write!(out, "{} <= {n}; ", pr.width(a))?,
                DimConstraint::MultipleOf(a, b) => {
                    write!(out, "MultipleOf({}, {}); ", pr.width(a), pr.width(b))?
                }
            }
        }
        Ok(())
    }

    /// The conditions on widths the text must state, once each: the bounds and
    /// divisibility conditions on the arguments' widths (`D0 >= 3`, `MultipleOf(D0, 2)`),
    /// and the equations that determine a width the text shows only in a `Zero` (an
    /// operation that fixed it was simplified away), with those that determine the other
    /// widths they mention. The other conditions belong to an operation the text prints,
    /// which imposes them again when read (a condition stated twice is kept once).
    fn width_conditions(&self) -> Vec<DimConstraint> {
        let args: HashSet<SymId> = self.args.iter().flat_map(|a| a.dim.syms()).collect();
        let mut free: HashSet<SymId> = HashSet::new();
        for n in self.zeros() {
            if let Node::Zero(d) = self.graph.node(n) {
                free.extend(
                    self.dims
                        .resolve(d)
                        .syms()
                        .into_iter()
                        .filter(|s| !args.contains(s)),
                );
            }
        }
        let conditions: Vec<DimConstraint> = self
            .dims
            .deferred
            .iter()
            .map(|d| d.c.subst(&self.dims))
            .collect();
        let mut out: Vec<DimConstraint> = Vec::new();
        // Conditions on the arguments' widths alone.
        for c in &conditions {
            let syms = match c {
                DimConstraint::AtLeast(a, _) | DimConstraint::AtMost(a, _) => a.syms(),
                DimConstraint::MultipleOf(a, b) | DimConstraint::Eq(a, b) => {
                    [a.syms(), b.syms()].concat()
                }
            };
            if syms.iter().all(|s| args.contains(s)) && !out.iter().any(|o| same_condition(o, c)) {
                out.push(c.clone());
            }
        }
        // Equations reaching the free widths, to a fixed point.
        let mut grew = true;
        while grew {
            grew = false;
            for c in &conditions {
                let syms = match c {
                    DimConstraint::Eq(a, b) | DimConstraint::MultipleOf(a, b) => {
                        [a.syms(), b.syms()].concat()
                    }
                    DimConstraint::AtLeast(a, _) | DimConstraint::AtMost(a, _) => a.syms(),
                };
                if syms.iter().any(|s| free.contains(s))
                    && !out.iter().any(|o| same_condition(o, c))
                {
                    free.extend(syms.into_iter().filter(|s| !args.contains(s)));
                    out.push(c.clone());
                    grew = true;
                }
            }
        }
        out
    }
}

fn reduction_call(
    pr: &Printer<'_>,
    kind: ReductionKind,
    out_rows: Cat,
    f: NodeId,
    g: Option<NodeId>,
    concise: bool,
) -> String {
    let mut s = String::new();
    if concise {
        let suffix = if out_rows == Cat::I { "_j" } else { "_i" };
        let _ = write!(s, "{}{suffix}({}", kind.name(), pr.formula(f));
        if let Some(k) = kind.k() {
            let _ = write!(s, ", {k}");
        }
    } else {
        let _ = write!(s, "{}_Reduction({}", kind.name(), pr.formula(f));
        if let Some(k) = kind.k() {
            let _ = write!(s, ", {k}");
        }
        let _ = write!(s, ", {}", if out_rows == Cat::I { 0 } else { 1 });
    }
    if let Some(g) = g {
        let _ = write!(s, ", {}", pr.formula(g));
    }
    s.push(')');
    s
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conditions = self.width_conditions();
        let pr = self.printer(&conditions);
        let mut header = String::new();
        self.write_header(&pr, &conditions, &mut header)?;
        if let [Step::Reduce(r)] = self.steps.as_slice() {
            return write!(
                f,
                "{header}{}",
                reduction_call(
                    &pr,
                    r.kind,
                    r.out_rows,
                    r.formula,
                    r.weight,
                    self.all_concise()
                )
            );
        }
        writeln!(f, "{}", header.trim_end())?;
        for s in &self.steps {
            match s {
                Step::Reduce(r) => writeln!(
                    f,
                    "buf{} = {}",
                    r.out,
                    reduction_call(&pr, r.kind, r.out_rows, r.formula, r.weight, false)
                )?,
                Step::Gather(g) => writeln!(
                    f,
                    "buf{} = Gather(owner {:?}, rows {:?}, indices buf{}, K {}, {})",
                    g.out,
                    g.owner,
                    g.out_rows,
                    g.indices,
                    g.k,
                    pr.formula(g.formula)
                )?,
                Step::SumRows { src, out } => writeln!(f, "buf{out} = SumRows(buf{src})")?,
                Step::Add { a, b, out } => writeln!(f, "buf{out} = buf{a} + buf{b}")?,
                Step::Fill { value, out } => writeln!(f, "buf{out} = Fill({value})")?,
            }
        }
        write!(f, "return buf{}", self.output)
    }
}
