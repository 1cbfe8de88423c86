//! The text form: programs print in KeOps syntax and parse back to the same formula.
//!
//! A forward kernel prints as declarations then the reduction, separated by `;`:
//! `x = Vi(0, 3); y = Vj(1, 3); Sum_Reduction(Exp(-SqDist(x, y)), 0)`, or in the concise
//! syntax when all its variables are concise: `x_i: 3; y_j: 3; Sum_j(Exp(-SqDist(x_i, y_j)))`.
//! Programs of several steps (gradients) print one step per line, for reading.

use crate::graph::{Cat, Graph, Node, NodeId, Param, VarSource};
use crate::ops::Print;
use crate::program::{Program, Step};
use crate::reduction::ReductionKind;
use std::fmt::{self, Write};

const ATOM: u8 = 6;
const UNARY: u8 = 5;

/// Prints formulas of a graph.
pub struct Printer<'g> {
    graph: &'g Graph,
}

impl<'g> Printer<'g> {
    /// A printer for formulas of `graph`.
    pub fn new(graph: &'g Graph) -> Self {
        Printer { graph }
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
                Node::Zero(d) => write!(out, "Zero({d})")?,
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

    /// Whether every argument is named in the concise syntax.
    fn all_concise(&self) -> bool {
        self.args.iter().all(|a| a.concise)
    }

    fn write_header(&self, out: &mut String) -> fmt::Result {
        let concise = self.all_concise();
        for (pos, a) in self.args.iter().enumerate() {
            if a.concise {
                let name = a.name.clone().unwrap_or_default();
                let full = match a.cats.first() {
                    Some(Cat::I) => format!("{name}_i"),
                    Some(Cat::J) => format!("{name}_j"),
                    _ => name,
                };
                match a.dim.as_known() {
                    Some(d) => write!(out, "{full}: {d}; ")?,
                    None => write!(out, "{full}; ")?,
                }
            } else if let Some(name) = &a.name {
                for c in &a.cats {
                    write!(out, "{name} = {}({pos}, {}); ", cat_decl(*c), a.dim)?;
                }
            }
        }
        let _ = concise;
        Ok(())
    }
}

fn reduction_call(
    p: &Program,
    kind: ReductionKind,
    out_rows: Cat,
    f: NodeId,
    g: Option<NodeId>,
    concise: bool,
) -> String {
    let pr = Printer::new(&p.graph);
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
        let mut header = String::new();
        self.write_header(&mut header)?;
        if let [Step::Reduce(r)] = self.steps.as_slice() {
            return write!(
                f,
                "{header}{}",
                reduction_call(
                    self,
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
                    reduction_call(self, r.kind, r.out_rows, r.formula, r.weight, false)
                )?,
                Step::Gather(g) => writeln!(
                    f,
                    "buf{} = Gather(owner {:?}, rows {:?}, indices buf{}, K {}, {})",
                    g.out,
                    g.owner,
                    g.out_rows,
                    g.indices,
                    g.k,
                    self.formula_text(g.formula)
                )?,
                Step::SumRows { src, out } => writeln!(f, "buf{out} = SumRows(buf{src})")?,
                Step::Add { a, b, out } => writeln!(f, "buf{out} = buf{a} + buf{b}")?,
                Step::Fill { value, out } => writeln!(f, "buf{out} = Fill({value})")?,
            }
        }
        write!(f, "return buf{}", self.output)
    }
}
