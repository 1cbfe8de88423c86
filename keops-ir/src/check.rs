//! Stage 2: syntax tree to checked [`Program`].
//!
//! Resolves names (aliases, inline `Var(...)`, concise `x_i` / `y_j` / parameters),
//! assigns argument positions, builds the formula DAG through the [`Builder`] (so every
//! operation's dimension rule runs and sugar expands), and locates every error at the
//! tokens that caused it.

use crate::builder::Builder;
use crate::dim::{Dim, DimSolver};
use crate::dim::{DimConstraint, SymId};
use crate::error::{Error, ErrorKind, Result, TokRange};
use crate::graph::{Cat, Graph, Node, NodeId, Param, VarId, VarInfo, VarSource};
use crate::limits::{self, MAX_ARG_INDEX, MAX_K, MAX_WIDTH, past_limit};
use crate::ops::{Op, ParamKind};
use crate::parse::{BinOp, Expr, ExprKind, Item, Parser, Source, UnOp};
use crate::program::{ArgInfo, BufInfo, Program, Reduce, Step};
use crate::reduction::{ReductionId, Weight};
use std::collections::HashMap;

/// Declared dimensions for concise variables, given outside the formula text (the
/// macro's item form `gauss(x_i: 3, y_j, b_j: 1)`), with the argument order.
#[derive(Clone, Debug, Default)]
pub struct Declarations {
    /// `(name, dimension, tokens)` in argument order.
    pub vars: Vec<(String, Option<usize>, Option<TokRange>)>,
    /// Build formulas exactly as written, without the simplification rules (to test the
    /// rules, and to show what they do).
    pub unsimplified: bool,
}

/// What the top-level of a formula text is.
enum Top {
    /// A program (a reduction, or a gradient of one).
    Program(Program),
}

struct Checker<'s> {
    src: &'s Source,
    graph: Graph,
    dims: DimSolver,
    /// Names (aliases and concise names) to variables.
    names: HashMap<String, VarId>,
    /// Whether aliases were declared (then unknown plain names are errors).
    alias_mode: bool,
    /// Arguments by position.
    args: Vec<Option<ArgInfo>>,
    /// Positions taken by aliases or inline variables.
    explicit: HashMap<usize, (Cat, Dim, Option<TokRange>)>,
    /// Whether to skip the simplification rules.
    unsimplified: bool,
    /// Concise base names in argument order: declared ones first, then by first use.
    concise: Vec<String>,
    /// Arguments of concise base names.
    concise_args: HashMap<String, ArgInfo>,
    /// Declared dimensions of concise base names.
    concise_dims: HashMap<String, (Dim, Option<TokRange>)>,
    /// Width symbols named in the text (`D0` in `x_i: D0`): one symbol per name.
    width_names: HashMap<String, SymId>,
}

/// Concise variables get provisional positions from here until all explicit positions
/// are known; [`Checker::finish_args`] renumbers them.
const CONCISE_BASE: usize = usize::MAX / 2;

fn err(kind: ErrorKind, msg: impl Into<String>, at: TokRange) -> Error {
    Error::new(kind, msg).at(at)
}

/// Splits a concise name into base and category: `x_i` -> (`x`, I).
pub fn concise_name(name: &str) -> (String, Cat) {
    if let Some(b) = name.strip_suffix("_i").filter(|b| !b.is_empty()) {
        (b.to_string(), Cat::I)
    } else if let Some(b) = name.strip_suffix("_j").filter(|b| !b.is_empty()) {
        (b.to_string(), Cat::J)
    } else {
        (name.to_string(), Cat::P)
    }
}

/// Parses and checks a whole formula text: aliases, declarations and the formula.
pub fn check_source(src: &Source, decls: &Declarations) -> Result<Program> {
    let items = Parser::new(src).items()?;
    check_items(src, &items, decls)
}

/// Checks parsed items.
pub fn check_items(src: &Source, items: &[Item], decls: &Declarations) -> Result<Program> {
    let mut c = Checker {
        src,
        graph: Graph::new(),
        dims: DimSolver::new(),
        names: HashMap::new(),
        alias_mode: false,
        args: Vec::new(),
        explicit: HashMap::new(),
        unsimplified: decls.unsimplified,
        concise: Vec::new(),
        concise_args: HashMap::new(),
        concise_dims: HashMap::new(),
        width_names: HashMap::new(),
    };
    for (name, dim, at) in &decls.vars {
        let at = at.unwrap_or_default();
        let d = dim.map(|d| i64::try_from(d).unwrap_or(i64::MAX));
        let dim = d
            .map(|d| c.known_width(d, &format!("the dimension of `{name}`"), at))
            .transpose()?;
        c.declare(name, dim.map(|d| (d, at)), at)?;
    }
    let mut formula = None;
    let mut alias_index = 0;
    for (k, item) in items.iter().enumerate() {
        match item {
            Item::Alias {
                name,
                name_at,
                decl,
            } => {
                if formula.is_some() {
                    return Err(err(
                        ErrorKind::Syntax,
                        "declarations must come before the formula",
                        *name_at,
                    ));
                }
                c.alias(name, *name_at, decl, alias_index)?;
                alias_index += 1;
            }
            Item::Declare { name, name_at, dim } => {
                if formula.is_some() {
                    return Err(err(
                        ErrorKind::Syntax,
                        "declarations must come before the formula",
                        *name_at,
                    ));
                }
                let dim = match dim {
                    Some(e) => Some((c.width_of(e, &format!("the dimension of `{name}`"))?, e.at)),
                    None => None,
                };
                c.declare(name, dim, *name_at)?;
            }
            // `Var(position, dimension, category);` before the formula declares an
            // argument the formula need not use: the text form of a program whose
            // simplified formula dropped an inline `Var` keeps its signature so.
            // `D0*D1 == 2;`, `D0 >= 3;`, `D0 <= 4;`: a condition on widths, which the text
            // form of a generic program states when an operation that imposed it was
            // simplified away.
            Item::Formula(e) if k + 1 < items.len() && is_width_condition(e) => {
                if formula.is_some() {
                    return Err(err(
                        ErrorKind::Syntax,
                        "declarations must come before the formula",
                        e.at,
                    ));
                }
                c.width_condition(e)?;
            }
            Item::Formula(e) if k + 1 < items.len() && is_var_call(e) => {
                if formula.is_some() {
                    return Err(err(
                        ErrorKind::Syntax,
                        "declarations must come before the formula",
                        e.at,
                    ));
                }
                c.var_decl(e, None, None)?;
            }
            Item::Formula(e) => {
                if formula.is_some() {
                    return Err(err(ErrorKind::Syntax, "only one formula is allowed", e.at)
                        .help("separate declarations with `;` and put the formula last"));
                }
                formula = Some(e);
            }
        }
    }
    let Some(formula) = formula else {
        let at = TokRange::one(src.toks.len().saturating_sub(1) as u32);
        return Err(err(ErrorKind::Syntax, "there is no formula", at)
            .help("write a reduction, e.g. `Sum_j(Exp(-SqDist(x_i, y_j)))`"));
    };
    let Top::Program(mut p) = c.top(formula)?;
    p.dims.check_deferred().map_err(|d| {
        Error::new(
            ErrorKind::Dimension,
            format!("the dimensions cannot satisfy {d}"),
        )
        .at(formula.at)
    })?;
    p.graph.resolve_dims(&p.dims);
    for a in &mut p.args {
        a.dim = p.dims.resolve(&a.dim);
    }
    for b in &mut p.bufs {
        b.values = p.dims.resolve(&b.values);
        b.indices = p.dims.resolve(&b.indices);
    }
    Ok(p)
}

impl Checker<'_> {
    fn snippet(&self, at: TokRange) -> String {
        self.src.snippet(at)
    }

    fn int_of(&self, e: &Expr, what: &str) -> Result<i64> {
        match &e.kind {
            ExprKind::Int(i) => Ok(*i),
            ExprKind::Unary(UnOp::Neg, inner) => match inner.kind {
                ExprKind::Int(i) => Ok(-i),
                _ => Err(err(
                    ErrorKind::Parameter,
                    format!("{what} must be an integer, found `{}`", self.snippet(e.at)),
                    e.at,
                )),
            },
            _ => Err(err(
                ErrorKind::Parameter,
                format!("{what} must be an integer, found `{}`", self.snippet(e.at)),
                e.at,
            )),
        }
    }

    /// A known width `d` (of `what`), checked: at least 1, at most [`MAX_WIDTH`].
    fn known_width(&self, d: i64, what: &str, at: TokRange) -> Result<Dim> {
        if d < 1 {
            return Err(err(
                ErrorKind::Declaration,
                format!("{what} must be at least 1, found {d}"),
                at,
            ));
        }
        if d as u64 > MAX_WIDTH as u64 {
            return Err(past_limit(format!("{what},"), d, MAX_WIDTH).at(at));
        }
        Ok(Dim::known(d as usize))
    }

    /// A condition on widths: `a == b`, `a >= n`, `a <= n` or `MultipleOf(a, b)`.
    fn width_condition(&mut self, e: &Expr) -> Result<()> {
        if let ExprKind::Call { args, .. } = &e.kind {
            let [a, b] = args.as_slice() else {
                return Err(err(
                    ErrorKind::Arity,
                    "MultipleOf takes two widths: MultipleOf(D0, 2)",
                    e.at,
                ));
            };
            let (a, b) = (self.width_of(a, "a width")?, self.width_of(b, "a width")?);
            let text = self.snippet(e.at);
            return self
                .dims
                .require(DimConstraint::MultipleOf(a, b))
                .map_err(|_| {
                    err(
                        ErrorKind::Dimension,
                        format!("the widths cannot satisfy `{text}`"),
                        e.at,
                    )
                });
        }
        let ExprKind::Binary(op, l, r) = &e.kind else {
            return Ok(());
        };
        let a = self.width_of(l, "a width")?;
        if *op != BinOp::Eq {
            // A bound: an integer (which may be below 1: the condition then fails when
            // the program is instantiated, as the original's did).
            let n = self.int_of(r, "a bound on a width")?;
            let n = usize::try_from(n).map_err(|_| {
                err(
                    ErrorKind::Dimension,
                    format!("a bound on a width must be non-negative, found {n}"),
                    r.at,
                )
            })?;
            let c = if *op == BinOp::Ge {
                DimConstraint::AtLeast(a, n)
            } else {
                DimConstraint::AtMost(a, n)
            };
            let text = self.snippet(e.at);
            return self.dims.require(c).map(|_| ()).map_err(|_| {
                err(
                    ErrorKind::Dimension,
                    format!("the widths cannot satisfy `{text}`"),
                    e.at,
                )
            });
        }
        let b = self.width_of(r, "a width")?;
        let text = self.snippet(e.at);
        let failed = || {
            err(
                ErrorKind::Dimension,
                format!("the widths cannot satisfy `{text}`"),
                e.at,
            )
        };
        self.dims.unify(&a, &b).map_err(|_| failed())
    }

    /// A width: an integer, or a polynomial of named width symbols (`D0`, `2*D1 + 1`,
    /// `D0*D1`, `D0 - 2`), the form generic programs print their widths in. One name is
    /// one symbol throughout the text.
    fn width_of(&mut self, e: &Expr, what: &str) -> Result<Dim> {
        let d = self.polynomial_of(e, what)?;
        match d.as_known() {
            Some(n) => self.known_width(n as i64, what, e.at),
            None if d.is_known() => self.known_width(-1, what, e.at),
            None => Ok(d),
        }
    }

    fn polynomial_of(&mut self, e: &Expr, what: &str) -> Result<Dim> {
        limits::deep(|| match &e.kind {
            ExprKind::Name(n) if is_width_symbol(n) => {
                let s = match self.width_names.get(n) {
                    Some(s) => *s,
                    None => {
                        let s = self.dims.fresh();
                        self.width_names.insert(n.clone(), s);
                        s
                    }
                };
                Ok(Dim::sym(s))
            }
            ExprKind::Binary(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul), l, r) => {
                let l = self.polynomial_of(l, what)?;
                let r = self.polynomial_of(r, what)?;
                Ok(match op {
                    BinOp::Add => l.add(&r),
                    BinOp::Sub => l.sub(&r),
                    _ => l.mul(&r),
                })
            }
            ExprKind::Unary(UnOp::Neg, inner) if !matches!(inner.kind, ExprKind::Int(_)) => {
                Ok(Dim::default().sub(&self.polynomial_of(inner, what)?))
            }
            _ => {
                let d = self.int_of(e, what).map_err(|_| {
                    err(
                        ErrorKind::Parameter,
                        format!(
                            "{what} must be an integer or a polynomial of width symbols (`D0`, `2*D1 + 1`), found `{}`",
                            self.snippet(e.at)
                        ),
                        e.at,
                    )
                })?;
                Ok(if d >= 0 {
                    Dim::known(d as usize)
                } else {
                    Dim::default().sub(&Dim::known(d.unsigned_abs() as usize))
                })
            }
        })
    }

    /// Registers a variable at an explicit position (alias or inline `Var`).
    fn explicit_var(
        &mut self,
        name: Option<String>,
        pos: usize,
        cat: Cat,
        d: Dim,
        at: TokRange,
    ) -> Result<VarId> {
        if let Some((c2, d2, at2)) = self.explicit.get(&pos).cloned() {
            if d2 != d {
                return Err(err(
                    ErrorKind::Declaration,
                    format!("argument {pos} is declared with two dimensions: {d2} and {d}"),
                    at,
                )
                .help(format!(
                    "use one dimension for argument {pos}{}",
                    at2.map(|a| format!(" (first declared as `{}`)", self.snippet(a)))
                        .unwrap_or_default()
                )));
            }
            if c2 == cat {
                // Same variable again (inline Var repeated): reuse.
                if let Some(v) = self
                    .graph
                    .vars
                    .iter()
                    .position(|v| v.source == VarSource::Arg(pos) && v.cat == cat)
                    && (name.is_none() || self.graph.vars[v].name == name)
                {
                    return Ok(VarId(v as u32));
                }
            } else if c2 == Cat::P || cat == Cat::P {
                return Err(err(
                    ErrorKind::Declaration,
                    format!(
                        "argument {pos} is declared both as a parameter and as an indexed variable"
                    ),
                    at,
                )
                .help("give the parameter and the variable different positions"));
            }
        }
        self.explicit.insert(pos, (cat, d.clone(), Some(at)));
        if self.args.len() <= pos {
            self.args.resize(pos + 1, None);
        }
        let entry = self.args[pos].get_or_insert_with(|| ArgInfo {
            name: name.clone(),
            dim: d.clone(),
            cats: vec![],
            concise: false,
        });
        if entry.name.is_none() {
            // Declared first as an inline `Var`, then by an alias: the alias names it.
            entry.name.clone_from(&name);
        }
        if !entry.cats.contains(&cat) {
            entry.cats.push(cat);
            entry.cats.sort();
        }
        let (v, _) = self.graph.add_var(VarInfo {
            name,
            cat,
            dim: d,
            source: VarSource::Arg(pos),
            declared_at: Some(at),
        });
        Ok(v)
    }

    /// `Vi(d)`, `Vi(pos, d)`, `Vj(...)`, `Pm(...)`, `Var(pos, d, cat)`.
    fn var_decl(
        &mut self,
        decl: &Expr,
        default_pos: Option<usize>,
        name: Option<String>,
    ) -> Result<VarId> {
        let ExprKind::Call {
            name: kind, args, ..
        } = &decl.kind
        else {
            return Err(err(
                ErrorKind::Declaration,
                format!(
                    "expected a declaration such as Vi(3), Vj(3), Pm(1) or Var(0, 3, 0), found `{}`",
                    self.snippet(decl.at)
                ),
                decl.at,
            ));
        };
        // The position and the dimension, with their tokens (for the limits below).
        let mut pos_at = decl.at;
        let dim_at;
        let (pos, dim, cat) = match (kind.as_str(), args.len()) {
            ("Var", 3) => {
                let pos = self.int_of(&args[0], "the position")?;
                let dim = self.width_of(&args[1], &format!("the dimension of {kind}"))?;
                (pos_at, dim_at) = (args[0].at, args[1].at);
                let cat = match self.int_of(&args[2], "the category")? {
                    0 => Cat::I,
                    1 => Cat::J,
                    2 => Cat::P,
                    c => {
                        return Err(err(
                            ErrorKind::Declaration,
                            format!(
                                "the category of Var must be 0 (i), 1 (j) or 2 (parameter), found {c}"
                            ),
                            args[2].at,
                        ));
                    }
                };
                (pos, dim, cat)
            }
            ("Vi" | "Vj" | "Pm", n @ (1 | 2)) => {
                let cat = match kind.as_str() {
                    "Vi" => Cat::I,
                    "Vj" => Cat::J,
                    _ => Cat::P,
                };
                if n == 2 {
                    pos_at = args[0].at;
                    dim_at = args[1].at;
                    (
                        self.int_of(&args[0], "the position")?,
                        self.width_of(&args[1], &format!("the dimension of {kind}"))?,
                        cat,
                    )
                } else {
                    dim_at = args[0].at;
                    let Some(p) = default_pos else {
                        return Err(err(
                            ErrorKind::Declaration,
                            format!(
                                "an inline {kind}(...) needs its position: {kind}(position, dimension)"
                            ),
                            decl.at,
                        ));
                    };
                    (
                        p as i64,
                        self.width_of(&args[0], &format!("the dimension of {kind}"))?,
                        cat,
                    )
                }
            }
            ("Var" | "Vi" | "Vj" | "Pm", n) => {
                let sig = if kind == "Var" {
                    "Var(position, dimension, category)"
                } else {
                    "Vi(dimension) or Vi(position, dimension)"
                };
                return Err(err(
                    ErrorKind::Arity,
                    format!(
                        "{kind} takes {} arguments, found {n}",
                        if kind == "Var" { "3" } else { "1 or 2" }
                    ),
                    decl.at,
                )
                .help(format!("write {sig}")));
            }
            _ => {
                return Err(err(ErrorKind::Declaration, format!("`{kind}` is not a variable declaration"), decl.at)
                    .help("declare variables with Vi(dim), Vj(dim), Pm(dim), Vi(position, dim) or Var(position, dim, category)"));
            }
        };
        if pos < 0 {
            return Err(err(
                ErrorKind::Declaration,
                format!("the position must be non-negative, found {pos}"),
                decl.at,
            ));
        }
        if pos as u64 > MAX_ARG_INDEX as u64 {
            return Err(past_limit(format!("{kind} index"), pos, MAX_ARG_INDEX)
                .at(pos_at)
                .help("arguments are numbered from 0, one position per argument"));
        }
        if let Some(d) = dim.as_known()
            && d > MAX_WIDTH
        {
            return Err(past_limit(format!("{kind} dimension"), d, MAX_WIDTH).at(dim_at));
        }
        self.explicit_var(name, pos as usize, cat, dim, decl.at)
    }

    fn alias(&mut self, name: &str, at: TokRange, decl: &Expr, index: usize) -> Result<()> {
        if self.names.contains_key(name) {
            return Err(err(
                ErrorKind::Declaration,
                format!("`{name}` is declared twice"),
                at,
            )
            .help("give each alias a different name"));
        }
        if Op::from_name(name).is_some() {
            return Err(err(
                ErrorKind::Declaration,
                format!("`{name}` is the name of an operation"),
                at,
            )
            .help("choose another name for the variable"));
        }
        self.alias_mode = true;
        let v = self.var_decl(decl, Some(index), Some(name.to_string()))?;
        self.names.insert(name.to_string(), v);
        Ok(())
    }

    fn declare(&mut self, name: &str, dim: Option<(Dim, TokRange)>, at: TokRange) -> Result<()> {
        let (base, cat) = concise_name(name);
        if let Some((d, dat)) = dim {
            if let Some((prev, _)) = self.concise_dims.get(&base)
                && *prev != d
            {
                return Err(err(
                    ErrorKind::Declaration,
                    format!("`{name}` is declared with two dimensions: {prev} and {d}"),
                    dat,
                )
                .help(format!(
                    "`{base}_i` and `{base}_j` are the same array and have the same dimension"
                )));
            }
            self.concise_dims.insert(base.clone(), (d, Some(dat)));
        }
        self.concise_arg(&base, cat, at)?;
        Ok(())
    }

    /// The argument of a concise base name, created on first use.
    fn concise_arg(&mut self, base: &str, cat: Cat, at: TokRange) -> Result<(usize, Dim)> {
        let idx = match self.concise.iter().position(|n| n == base) {
            Some(i) => i,
            None => {
                self.concise.push(base.to_string());
                self.concise.len() - 1
            }
        };
        let dim = match self.concise_dims.get(base) {
            Some((d, _)) => d.clone(),
            None => {
                // One symbol per base name: `x_i` and `x_j` share their width.
                let d = Dim::sym(self.dims.fresh());
                self.concise_dims
                    .insert(base.to_string(), (d.clone(), None));
                d
            }
        };
        let entry = self
            .concise_args
            .entry(base.to_string())
            .or_insert_with(|| ArgInfo {
                name: Some(base.to_string()),
                dim: dim.clone(),
                cats: vec![],
                concise: true,
            });
        if !entry.cats.is_empty() && entry.cats.contains(&Cat::P) != (cat == Cat::P) {
            return Err(err(
                ErrorKind::Declaration,
                format!("`{base}` is used both as a parameter and as an indexed variable"),
                at,
            )
            .help("parameters have no `_i`/`_j` suffix; rename one of them"));
        }
        if !entry.cats.contains(&cat) {
            entry.cats.push(cat);
            entry.cats.sort();
        }
        entry.dim = dim.clone();
        Ok((CONCISE_BASE + idx, dim))
    }

    /// Resolves a plain name to a variable node.
    fn name(&mut self, name: &str, at: TokRange) -> Result<NodeId> {
        if let Some(v) = self.names.get(name) {
            return Ok(self.graph.var_node(*v));
        }
        let (base, cat) = concise_name(name);
        if self.alias_mode && cat == Cat::P && !self.concise.contains(&base) {
            let mut known: Vec<&String> = self.names.keys().collect();
            known.sort();
            let close: Vec<&String> = known
                .iter()
                .copied()
                .filter(|k| crate::ops::edit_distance(k, name) <= 2)
                .collect();
            let help = if let Some(c) = close.first() {
                format!(
                    "did you mean `{c}`? Declared variables: {}",
                    known
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!("declare it, e.g. `{name} = Vi(3)`, `{name} = Vj(3)` or `{name} = Pm(1)`")
            };
            return Err(err(
                ErrorKind::UnknownVariable,
                format!("unknown variable `{name}`"),
                at,
            )
            .help(help));
        }
        let (pos, dim) = self.concise_arg(&base, cat, at)?;
        let (v, node) = self.graph.add_var(VarInfo {
            name: Some(name.to_string()),
            cat,
            dim,
            source: VarSource::Arg(pos),
            declared_at: Some(at),
        });
        self.names.insert(name.to_string(), v);
        Ok(node)
    }

    fn builder(&mut self) -> Builder<'_> {
        let mut b = Builder::new(&mut self.graph, &mut self.dims);
        b.simplify = !self.unsimplified;
        b
    }

    fn op(&mut self, op: Op, args: &[NodeId], params: Vec<Param>, at: TokRange) -> Result<NodeId> {
        let built = self.builder().op(op, args, params);
        // A dimension rule that failed on a limit of `crate::limits` says so here.
        let past_limit = self.dims.take_past_limit();
        built.map_err(|e| {
            // The sub-expression's text only on error: it is as long as the formula.
            let snippet = self.snippet(at);
            let e = if e.kind == ErrorKind::Dimension && past_limit {
                Error {
                    kind: ErrorKind::Limit,
                    message: format!("{} in `{snippet}`", e.message),
                    help: e.help.clone().or_else(|| {
                        Some(format!(
                            "widths are at most {MAX_WIDTH} (keops_ir::limits::MAX_WIDTH)"
                        ))
                    }),
                    ..e
                }
            } else if e.kind == ErrorKind::Dimension && e.at.is_none() {
                let help = e.help.clone().unwrap_or_else(|| {
                    "check the widths of the variables involved; declare them (e.g. `x_i: 3`) or select coordinates with Elem/Extract"
                        .to_string()
                });
                Error {
                    message: format!("{} in `{snippet}`", e.message),
                    help: Some(help),
                    ..e
                }
            } else {
                e
            };
            e.at(at)
        })
    }

    /// The node of an expression; one level of the recursion over the syntax tree (any
    /// depth runs on any stack: [`crate::limits::deep`]).
    fn expr(&mut self, e: &Expr) -> Result<NodeId> {
        crate::limits::deep(|| self.expr_level(e))
    }

    fn expr_level(&mut self, e: &Expr) -> Result<NodeId> {
        match &e.kind {
            ExprKind::Name(n) => self.name(n, e.at),
            ExprKind::Int(i) => Ok(self.graph.constant(*i as f64)),
            ExprKind::Float(x) => Ok(self.graph.constant(*x)),
            ExprKind::List(_) => Err(err(
                ErrorKind::Syntax,
                "a list is only allowed as a parameter (TensorDot dimensions)",
                e.at,
            )),
            ExprKind::Unary(UnOp::Plus, a) => self.expr(a),
            ExprKind::Unary(UnOp::Neg, a) => {
                if let ExprKind::Int(i) = a.kind {
                    return Ok(self.graph.constant(-(i as f64)));
                }
                if let ExprKind::Float(x) = a.kind {
                    return Ok(self.graph.constant(-x));
                }
                let a = self.expr(a)?;
                self.op(Op::Minus, &[a], vec![], e.at)
            }
            ExprKind::Binary(..) => self.chain(e),
            ExprKind::Call {
                name,
                name_at,
                args,
            } => self.call(name, *name_at, args, e.at),
        }
    }

    /// A binary operation, and those nested on its left: the parser builds `a + b + c`
    /// as `(a + b) + c`, so the left spine of a long chain is walked with a loop, not
    /// recursed into (the right operands are recursed into).
    fn chain(&mut self, e: &Expr) -> Result<NodeId> {
        let mut spine = Vec::new();
        let mut leftmost = e;
        while let ExprKind::Binary(op, l, r) = &leftmost.kind {
            spine.push((*op, &**r, leftmost.at));
            leftmost = l;
        }
        let mut acc = self.expr(leftmost)?;
        for (op, r, at) in spine.into_iter().rev() {
            let r = self.expr(r)?;
            acc = self.binary(op, acc, r, at)?;
        }
        Ok(acc)
    }

    /// The node of `l op r`.
    fn binary(&mut self, op: BinOp, l: NodeId, r: NodeId, at: TokRange) -> Result<NodeId> {
        let (op, l, r) = match op {
            BinOp::Add => (Op::Add, l, r),
            BinOp::Sub => (Op::Subtract, l, r),
            BinOp::Mul => (Op::Mult, l, r),
            BinOp::Div => (Op::Divide, l, r),
            BinOp::Dot => (Op::Scalprod, l, r),
            BinOp::Lt => (Op::LessThan, l, r),
            BinOp::Le => (Op::LessOrEqual, l, r),
            BinOp::Gt => (Op::LessThan, r, l),
            BinOp::Ge => (Op::LessOrEqual, r, l),
            BinOp::Eq => (Op::Equal, l, r),
            BinOp::Ne => (Op::NotEqual, l, r),
        };
        self.op(op, &[l, r], vec![], at)
    }

    fn call(
        &mut self,
        name: &str,
        name_at: TokRange,
        args: &[Expr],
        at: TokRange,
    ) -> Result<NodeId> {
        match name {
            "Var" | "Vi" | "Vj" | "Pm" => {
                let decl = Expr {
                    kind: ExprKind::Call {
                        name: name.to_string(),
                        name_at,
                        args: args.to_vec(),
                    },
                    at,
                };
                let v = self.var_decl(&decl, None, None)?;
                return Ok(self.graph.var_node(v));
            }
            "IntCst" | "IntInv" | "Zero" => {
                if args.len() != 1 {
                    return Err(err(
                        ErrorKind::Arity,
                        format!("{name} takes one integer, found {} arguments", args.len()),
                        at,
                    ));
                }
                if name == "Zero" {
                    // A width, symbolic in the text form of generic programs (`Zero(D0)`).
                    // Zero's width is its parameter: an error in it is a parameter error.
                    let d =
                        self.width_of(&args[0], "the dimension of Zero")
                            .map_err(|e| match e.kind {
                                ErrorKind::Declaration => Error {
                                    kind: ErrorKind::Parameter,
                                    ..e
                                },
                                _ => e,
                            })?;
                    return Ok(self.builder().zero(d));
                }
                let n = self.int_of(&args[0], "the argument")?;
                return match name {
                    "IntCst" => Ok(self.graph.constant(n as f64)),
                    "IntInv" if n == 0 => Err(err(
                        ErrorKind::Parameter,
                        "IntInv(0) is a division by zero",
                        at,
                    )),
                    _ => Ok(self.graph.constant(1.0 / n as f64)),
                };
            }
            "RatCst" => {
                if args.len() != 2 {
                    return Err(err(
                        ErrorKind::Arity,
                        format!("RatCst takes two integers, found {} arguments", args.len()),
                        at,
                    ));
                }
                let (p, q) = (
                    self.int_of(&args[0], "the numerator")?,
                    self.int_of(&args[1], "the denominator")?,
                );
                if q == 0 {
                    return Err(err(
                        ErrorKind::Parameter,
                        "RatCst with a zero denominator",
                        args[1].at,
                    ));
                }
                return Ok(self.graph.constant(p as f64 / q as f64));
            }
            _ => {}
        }
        if reduction_name(name).is_some() {
            return Err(err(
                ErrorKind::Reduction,
                format!("the reduction {name} cannot be used inside a formula"),
                name_at,
            )
            .help("a kernel has one reduction, at the top: Sum_j(F), not F(Sum_j(G))"));
        }
        let Some(op) = Op::from_name(name) else {
            let sugg = Op::suggestions(name);
            let help = if sugg.is_empty() {
                "see the operation table in the formula language reference".to_string()
            } else {
                format!(
                    "did you mean {}?",
                    sugg.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )
            };
            return Err(err(
                ErrorKind::UnknownOperation,
                format!("unknown operation `{name}`"),
                name_at,
            )
            .help(help));
        };
        let spec = op.spec();
        let min = spec.arity
            + spec
                .params
                .iter()
                .filter(|k| **k != ParamKind::OptList)
                .count();
        let max = spec.arity + spec.params.len();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else {
                format!("{min} or {max}")
            };
            return Err(err(
                ErrorKind::Arity,
                format!(
                    "{name} takes {expected} argument{}, found {}",
                    if max == 1 { "" } else { "s" },
                    args.len()
                ),
                at,
            )
            .help(format!("the signature is {}", spec.signature)));
        }
        if matches!(
            op,
            Op::Grad
                | Op::Diff
                | Op::Laplacian
                | Op::Divergence
                | Op::GradMatrix
                | Op::TraceOperator
        ) {
            let v = &args[1];
            let is_var = matches!(&v.kind, ExprKind::Name(_))
                || matches!(&v.kind, ExprKind::Call { name, .. } if matches!(name.as_str(), "Var" | "Vi" | "Vj" | "Pm"));
            if !is_var {
                return Err(err(
                    ErrorKind::Differentiation,
                    format!(
                        "{name} differentiates with respect to a variable, not an expression: `{}`",
                        self.snippet(v.at)
                    ),
                    v.at,
                )
                .help(format!("write a variable's name, e.g. {name}(f, x_i, ...)")));
            }
        }
        let mut nodes = Vec::new();
        for a in &args[..spec.arity] {
            nodes.push(self.expr(a)?);
        }
        let mut params = Vec::new();
        for (a, kind) in args[spec.arity..].iter().zip(spec.params) {
            params.push(match kind {
                ParamKind::Int => Param::Int(
                    self.int_of(a, &format!("the parameter of {name}"))
                        .map_err(|e| {
                            let help = if op == Op::Pow {
                                "use Powf(f, g) for a real exponent".to_string()
                            } else {
                                format!("the signature is {}", spec.signature)
                            };
                            e.help(help)
                        })?,
                ),
                ParamKind::List | ParamKind::OptList => match &a.kind {
                    ExprKind::List(items) => Param::List(
                        items
                            .iter()
                            .map(|i| self.int_of(i, "a list entry"))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    _ => Param::List(vec![
                        self.int_of(a, &format!("the list parameter of {name}"))?,
                    ]),
                },
            });
        }
        // Integer exponents and decimal counts are 32-bit in every backend: past that, an
        // error rather than a silently truncated exponent.
        let int_param = match op {
            Op::Pow => Some("exponent"),
            Op::Round => Some("number of decimals"),
            _ => None,
        };
        if let (Some(what), Some(Param::Int(m))) = (int_param, params.first())
            && i32::try_from(*m).is_err()
        {
            let limit = if *m < 0 { i32::MIN } else { i32::MAX };
            return Err(err(
                ErrorKind::Parameter,
                format!("{name}: the {what} {m} is past the limit {limit}"),
                args[spec.arity].at,
            ));
        }
        self.op(op, &nodes, params, at)
    }

    /// The program of a reduction, or of the gradient of one (which recurses, once per
    /// nested `Grad`).
    fn top(&mut self, e: &Expr) -> Result<Top> {
        crate::limits::deep(|| self.top_level(e))
    }

    fn top_level(&mut self, e: &Expr) -> Result<Top> {
        let ExprKind::Call {
            name,
            name_at,
            args,
        } = &e.kind
        else {
            return Err(err(ErrorKind::Reduction, "the formula has no reduction", e.at)
                .help("wrap it in a reduction: `Sum_j(F)` (output indexed by i) or `Sum_Reduction(F, 0)`"));
        };
        if matches!(name.as_str(), "Grad" | "Diff")
            && args.len() == 3
            && let ExprKind::Call { name: inner, .. } = &args[0].kind
            && (reduction_name(inner).is_some() || matches!(inner.as_str(), "Grad"))
        {
            if name == "Diff" {
                return Err(err(
                    ErrorKind::Differentiation,
                    "Diff of a reduction is not supported",
                    *name_at,
                )
                .help("use Grad(reduction, variable, cotangent), the reverse mode"));
            }
            return self.grad_of_reduction(&args[0], &args[1], &args[2]);
        }
        let Some((id, suffix_out)) = reduction_name(name) else {
            return Err(err(ErrorKind::Reduction, "the formula has no reduction", e.at)
                .help("wrap it in a reduction: `Sum_j(F)` (output indexed by i) or `Sum_Reduction(F, 0)`"));
        };
        let mut rest: &[Expr] = args;
        let Some((f_expr, tail)) = rest.split_first() else {
            return Err(err(
                ErrorKind::Arity,
                format!("{name} needs a formula"),
                e.at,
            ));
        };
        rest = tail;
        self.missing_parameter(name, id, suffix_out, rest, e.at)?;
        let mut k = 1;
        if id.spec().takes_k {
            let Some((k_expr, tail)) = rest.split_first() else {
                return Err(err(
                    ErrorKind::Arity,
                    format!("{name} needs K, the number of values to keep"),
                    e.at,
                )
                .help(format!(
                    "write {name}(F, K{})",
                    if suffix_out.is_none() { ", tag" } else { "" }
                )));
            };
            let kv = self.int_of(k_expr, "K")?;
            if kv < 1 {
                return Err(err(
                    ErrorKind::Reduction,
                    format!("{name}: K must be at least 1, found {kv}"),
                    k_expr.at,
                )
                .help(format!(
                    "K is the number of values kept per row, e.g. {name}(F, 10{})",
                    if suffix_out.is_none() { ", 0" } else { "" }
                )));
            }
            if kv as u64 > MAX_K as u64 {
                return Err(past_limit(format!("{name}: K ="), kv, MAX_K)
                    .at(k_expr.at)
                    .help("K is the number of values kept per row"));
            }
            k = kv as usize;
            rest = tail;
        }
        let kind = id.with_k(k);
        let out_rows = match suffix_out {
            Some(c) => c,
            None => {
                let Some((tag, tail)) = rest.split_first() else {
                    return Err(err(
                        ErrorKind::Arity,
                        format!(
                            "{name} needs a tag: 0 for an output indexed by i (sum over j), 1 for an output indexed by j"
                        ),
                        e.at,
                    ));
                };
                rest = tail;
                match self.int_of(tag, "the tag")? {
                    0 => Cat::I,
                    1 => Cat::J,
                    t => {
                        return Err(err(ErrorKind::Reduction, format!("the tag of {name} must be 0 or 1, found {t}"), tag.at)
                            .help("tag 0: output indexed by i (reduce over j); tag 1: output indexed by j (reduce over i)"));
                    }
                }
            }
        };
        let weight_expr = match (kind.spec().weight, rest) {
            (Weight::Required, []) => {
                return Err(err(
                    ErrorKind::Arity,
                    format!("{name} needs a second formula G: {}(F, G)", kind.name()),
                    e.at,
                ));
            }
            (Weight::None | Weight::Optional, []) => None,
            (Weight::Optional | Weight::Required, [g]) => Some(g),
            (Weight::None, _) | (Weight::Optional | Weight::Required, _) => {
                let at = rest[0].at.join(rest[rest.len() - 1].at);
                return Err(err(
                    ErrorKind::Arity,
                    format!("{name} has too many arguments"),
                    at,
                ));
            }
        };
        let formula = self.expr(f_expr)?;
        let weight = match weight_expr {
            Some(g) => Some(self.expr(g)?),
            None => None,
        };
        let fdim = self.graph.dim(formula).clone();
        if kind.needs_scalar_formula() {
            self.dims.unify(&fdim, &Dim::one()).map_err(|m| {
                err(
                    ErrorKind::Reduction,
                    format!(
                        "{} needs a scalar formula F, found dimension {}",
                        kind.name(),
                        m.left
                    ),
                    f_expr.at,
                )
                .help("use Sum(F), Norm2(F) or Elem(F, k) to make it scalar, or another reduction")
            })?;
        }
        let gdim = weight
            .map(|w| self.graph.dim(w).clone())
            .unwrap_or_else(Dim::one);
        let (values, indices) = kind.output_dims(&fdim, &gdim);
        let over = |d: &Dim| match d.as_known() {
            Some(n) => n > MAX_WIDTH,
            None => d.max_coefficient() > MAX_WIDTH as u64,
        };
        if over(&values) || over(&indices) {
            let width = if over(&values) { &values } else { &indices };
            return Err(err(
                ErrorKind::Limit,
                format!(
                    "{name}: the output width {} x {fdim} = {width} (K values per coordinate of F) is past the limit {MAX_WIDTH}",
                    kind.slots()
                ),
                e.at,
            )
            .help("choose a smaller K, or reduce fewer coordinates at a time"));
        }
        self.finish_args()?;
        let program = Program {
            graph: std::mem::take(&mut self.graph),
            dims: std::mem::take(&mut self.dims),
            args: self
                .args
                .iter()
                .map(|a| {
                    a.clone().unwrap_or(ArgInfo {
                        name: None,
                        dim: Dim::known(0),
                        cats: vec![],
                        concise: false,
                    })
                })
                .collect(),
            bufs: vec![BufInfo {
                rows: out_rows,
                values,
                indices,
            }],
            steps: vec![Step::Reduce(Reduce {
                kind,
                out_rows,
                formula,
                weight,
                out: 0,
            })],
            output: 0,
        };
        Ok(Top::Program(program))
    }

    /// The reductions' parameters that are missing although the call has an argument in
    /// their place: in `KMin_Reduction(F, 0)` the integer is the tag (0 or 1) and K is
    /// missing; in `SumSoftMaxWeight_Reduction(F, G)` the tag is. Errors at the call.
    fn missing_parameter(
        &self,
        name: &str,
        id: ReductionId,
        suffix_out: Option<Cat>,
        rest: &[Expr],
        at: TokRange,
    ) -> Result<()> {
        if suffix_out.is_some() {
            return Ok(());
        }
        let spec = id.spec();
        let int = |e: &Expr| match &e.kind {
            ExprKind::Int(i) => Some(*i),
            _ => None,
        };
        match rest {
            [only] if spec.takes_k && matches!(int(only), Some(0 | 1)) => {
                let tag = int(only).unwrap_or(0);
                Err(err(
                    ErrorKind::Arity,
                    format!(
                        "{name} is missing K, the number of values to keep: it takes K and then the tag, and `{tag}` is read as the tag"
                    ),
                    at,
                )
                .help(format!("write {name}(F, K, {tag}), e.g. {name}(F, 10, {tag})")))
            }
            [only, ..] if !spec.takes_k && spec.weight != Weight::None && int(only).is_none() => {
                Err(err(
                    ErrorKind::Arity,
                    format!(
                        "{name} is missing its tag: it takes F, the tag (0 or 1), then G, and `{}` is where the tag goes",
                        self.snippet(only.at)
                    ),
                    at,
                )
                .help(format!(
                    "write {name}(F, 0, G) for an output indexed by i, {name}(F, 1, G) for one indexed by j"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Gives concise variables the free positions, in order, and checks there is no gap.
    fn finish_args(&mut self) -> Result<()> {
        let mut next = 0;
        let mut renumber = HashMap::new();
        for (idx, base) in self.concise.iter().enumerate() {
            while self.explicit.contains_key(&next) {
                next += 1;
            }
            renumber.insert(CONCISE_BASE + idx, next);
            if self.args.len() <= next {
                self.args.resize(next + 1, None);
            }
            self.args[next] = self.concise_args.get(base).cloned();
            next += 1;
        }
        for v in &mut self.graph.vars {
            if let VarSource::Arg(p) = v.source
                && let Some(q) = renumber.get(&p)
            {
                v.source = VarSource::Arg(*q);
            }
        }
        for (p, a) in self.args.iter().enumerate() {
            if a.is_none() {
                // Point at the first declaration past the gap.
                let beyond = self
                    .explicit
                    .iter()
                    .filter(|(q, _)| **q > p)
                    .min_by_key(|(q, _)| **q)
                    .and_then(|(_, (_, _, at))| *at);
                let e = Error::new(
                    ErrorKind::Declaration,
                    format!("argument position {p} is never declared"),
                )
                .help("number the positions of Vi/Vj/Pm/Var declarations from 0 without gaps");
                return Err(match beyond {
                    Some(at) => e.at(at),
                    None => e,
                });
            }
        }
        Ok(())
    }

    fn grad_of_reduction(&mut self, red: &Expr, v: &Expr, e: &Expr) -> Result<Top> {
        let Top::Program(mut forward) = self.top(red)?;
        let ExprKind::Name(vname) = &v.kind else {
            return Err(err(
                ErrorKind::Differentiation,
                "Grad of a reduction is taken with respect to a variable name",
                v.at,
            ));
        };
        let pos = forward.arg_position(vname).ok_or_else(|| {
            err(
                ErrorKind::UnknownVariable,
                format!("unknown variable `{vname}`"),
                v.at,
            )
            .help("differentiate with respect to an argument of the reduction")
        })?;
        let ExprKind::Name(ename) = &e.kind else {
            return Err(err(ErrorKind::Differentiation, "the cotangent of Grad of a reduction must be a variable name", e.at)
                .help("declare it like the output, e.g. `e = Vi(3)` for an output of dimension 3 indexed by i"));
        };
        let out = forward.output_info().clone();
        let mut g = match forward.arg_position(ename) {
            Some(p) => {
                let a = forward.args[p].clone();
                let ok_dim = forward.dims.unify(&a.dim, &out.values).is_ok();
                if !ok_dim || a.cats != vec![out.rows] {
                    return Err(err(
                        ErrorKind::Differentiation,
                        format!(
                            "the cotangent `{ename}` must be shaped like the output: dimension {} indexed by {}",
                            out.values,
                            if out.rows == Cat::I { "i" } else { "j" }
                        ),
                        e.at,
                    ));
                }
                forward.grad_into(pos, p)
            }
            None => forward.grad(pos, ename),
        }
        .map_err(|err| err.at(v.at))?;
        g.graph.resolve_dims(&g.dims);
        Ok(Top::Program(g))
    }
}

/// A reduction name: its row of the table, and the output category from a `_i`/`_j`
/// suffix (None for the `_Reduction` form with a tag).
fn reduction_name(name: &str) -> Option<(ReductionId, Option<Cat>)> {
    let (base, out) = if let Some(b) = name.strip_suffix("_Reduction") {
        (b, None)
    } else if let Some(b) = name.strip_suffix("_j") {
        (b, Some(Cat::I))
    } else if let Some(b) = name.strip_suffix("_i") {
        (b, Some(Cat::J))
    } else {
        return None;
    };
    ReductionId::from_name(base).map(|id| (id, out))
}

/// Whether `e` is a condition on widths (`D0*D1 == 2`, `D0 >= 3`, `D0 <= 4`,
/// `MultipleOf(D0, 2)`): a comparison whose sides mention width symbols, or `MultipleOf`.
fn is_width_condition(e: &Expr) -> bool {
    if matches!(&e.kind, ExprKind::Call { name, .. } if name == "MultipleOf") {
        return true;
    }
    fn mentions_symbol(e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Name(n) => is_width_symbol(n),
            ExprKind::Binary(BinOp::Add | BinOp::Sub | BinOp::Mul, l, r) => {
                limits::deep(|| mentions_symbol(l) || mentions_symbol(r))
            }
            ExprKind::Unary(UnOp::Neg, e) => mentions_symbol(e),
            _ => false,
        }
    }
    matches!(&e.kind, ExprKind::Binary(BinOp::Eq | BinOp::Ge | BinOp::Le, l, r)
        if mentions_symbol(l) || mentions_symbol(r))
}

/// Whether `e` is a call `Var(...)`.
fn is_var_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call { name, .. } if name == "Var")
}

/// Whether `n` names a width symbol in the text form (`D` and digits: `D0`, `D12`).
fn is_width_symbol(n: &str) -> bool {
    n.len() > 1 && n.starts_with('D') && n[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Whether the node is a variable (for callers that need one).
pub fn is_var(g: &Graph, n: NodeId) -> bool {
    matches!(g.node(n), Node::Var(_))
}
