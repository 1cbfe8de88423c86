//! # keops-ir: the keops-rs formula compiler
//!
//! KeOps computes reductions of symbolic M x N matrices,
//! `a_i = Reduction_j F(p, x_i, y_j)`, without ever storing the matrix. This crate is
//! the language every part of keops-rs shares (the code generator of the `keops!` macro,
//! the PTX generator and the run-time formula API); code generation itself is in
//! `keops-codegen` and `keops-gpu-kernels`. Its stages are named modules:
//!
//! 1. [`parse`]: tokens (from the macro, or a run-time string) to a syntax tree, for both
//!    the KeOps string syntax (`x = Vi(3); Sum_Reduction(F, 0)`) and the concise syntax
//!    (`Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)`);
//! 2. [`check`]: names, argument positions and dimensions (by unification; unknown widths
//!    stay symbolic), producing a [`Program`] over a hash-consed formula DAG ([`graph`]);
//! 3. [`diff`] and [`Program::grad`]: symbolic differentiation of formulas and reductions;
//!    [`simplify`]: a named table of rewrite rules;
//! 4. [`eval`]: the reference evaluator, oracle of every backend;
//! 5. [`lower`]: flat scalar code for the CPU and PTX emitters.
//!
//! Every operation is declared once, in the table of [`ops`], and every reduction once, in
//! the table of [`reduction`]. `docs/architecture.md` (in the repository) says where each
//! stage lives and which files a new operation or reduction touches.
//!
//! ```
//! use keops_ir::{Program, eval::{Array, EvalOptions}};
//! let p: Program = "Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)".parse().unwrap();
//! let x = [0.0, 1.0];            // two points in dimension 1
//! let y = [0.0, 2.0, 4.0];       // three points
//! let b = [1.0, 1.0, 1.0];
//! let out = p.evaluate(&[Array::new(&x, 2, 1), Array::new(&y, 3, 1), Array::new(&b, 3, 1)], &EvalOptions::default()).unwrap();
//! assert!((out.values[0] - (1.0 + (-4.0f64).exp() + (-16.0f64).exp())).abs() < 1e-12);
//! ```

pub mod builder;
pub mod check;
pub mod diff;
pub mod dim;
pub mod display;
pub mod error;
pub mod eval;
pub mod graph;
pub mod limits;
pub mod lower;
pub mod ops;
pub mod parse;
pub mod program;
pub mod real;
pub mod reduction;
pub mod simplify;

pub use check::Declarations;
pub use dim::{Dim, SymId};
pub use error::{Error, ErrorKind, FormulaError, TokRange};
pub use graph::{Cat, NodeId, VarId};
pub use ops::Op;
pub use parse::Source;
pub use program::{ArgInfo, BufInfo, Program, Step};
pub use real::Real;
pub use reduction::{INDEX_NONE, ReductionKind};

impl Program {
    /// Parses and checks a formula text (declarations, then the formula, separated by `;`).
    /// Errors render the text with a caret under the culprit.
    pub fn parse(text: &str) -> std::result::Result<Program, FormulaError> {
        let src = Source::from_text(text)?;
        check::check_source(&src, &Declarations::default()).map_err(|e| src.render(&e))
    }

    /// Parses a formula with a KeOps alias list, as pykeops' `Genred(formula, aliases)`:
    /// `Program::parse_with_aliases("Sum_Reduction(Exp(-SqDist(x, y)), 0)", &["x = Vi(3)", "y = Vj(3)"])`.
    pub fn parse_with_aliases(
        formula: &str,
        aliases: &[&str],
    ) -> std::result::Result<Program, FormulaError> {
        let mut text = String::new();
        for a in aliases {
            text.push_str(a);
            text.push_str("; ");
        }
        text.push_str(formula);
        Program::parse(&text)
    }
}

impl Program {
    /// The program the runtime gets back from `Program::parse(&self.to_string())`, with
    /// the same arguments (their widths' symbols may be renumbered). The `keops!` macro
    /// compiles this one rather than the program built from its tokens, so that kernels
    /// regenerated at run time from the formula's text (generic widths, the emulated
    /// backend) are the macro's, step for step. Reading a text can simplify a formula
    /// further (widths that were unknown while it was built are known then), so the text
    /// is read back until it no longer changes: the result's text parses to itself.
    pub fn canonical(&self) -> std::result::Result<Program, Error> {
        let internal =
            |what: String| Error::new(ErrorKind::Limit, format!("internal error: {what}"));
        let mut text = self.to_string();
        // Each round can only simplify; a few rounds reach the fixed point.
        for _ in 0..4 {
            let c = Program::parse(&text).map_err(|e| {
                internal(format!(
                    "the formula's text form `{text}` does not parse back: {e}"
                ))
            })?;
            if !same_arguments(&c.args, &self.args) {
                return Err(internal(format!(
                    "the formula's text form `{text}` parses back with other arguments"
                )));
            }
            let again = c.to_string();
            if again == text {
                return Ok(c);
            }
            text = again;
        }
        Err(internal(format!(
            "the formula's text form `{text}` changes each time it is read"
        )))
    }
}

/// Whether two argument lists are the same up to a renaming of the width symbols: some
/// one-to-one map of `a`'s symbols to `b`'s makes every width equal (`x: D0*D1, y: D0`
/// is `x: D0*D1, y: D1`). Programs have a few symbols; the search is bounded.
fn same_arguments(a: &[ArgInfo], b: &[ArgInfo]) -> bool {
    fn symbols(args: &[ArgInfo]) -> Vec<SymId> {
        let mut out: Vec<SymId> = args.iter().flat_map(|a| a.dim.syms()).collect();
        out.sort();
        out.dedup();
        out
    }
    fn search(
        a: &[ArgInfo],
        b: &[ArgInfo],
        from: &[SymId],
        to: &[SymId],
        chosen: &mut Vec<SymId>,
        budget: &mut u32,
    ) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if chosen.len() == from.len() {
            let map = |s: SymId| {
                from.iter()
                    .position(|f| *f == s)
                    .map(|k| Dim::sym(chosen[k]))
            };
            return a.iter().zip(b).all(|(x, y)| x.dim.subst(&map) == y.dim);
        }
        for t in to {
            if !chosen.contains(t) {
                chosen.push(*t);
                if search(a, b, from, to, chosen, budget) {
                    return true;
                }
                chosen.pop();
            }
        }
        false
    }
    if a.len() != b.len()
        || a.iter()
            .zip(b)
            .any(|(x, y)| x.name != y.name || x.cats != y.cats || x.concise != y.concise)
    {
        return false;
    }
    let (from, to) = (symbols(a), symbols(b));
    from.len() == to.len() && search(a, b, &from, &to, &mut Vec::new(), &mut 100_000)
}

impl std::str::FromStr for Program {
    type Err = FormulaError;
    fn from_str(s: &str) -> std::result::Result<Program, FormulaError> {
        Program::parse(s)
    }
}
