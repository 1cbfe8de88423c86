//! Stage 1: tokens to syntax tree.
//!
//! One parser over `proc_macro2` tokens serves the `keops!` macro (its token input) and
//! run-time strings (lexed to tokens first, with line/column positions). Both syntaxes of
//! the spec are accepted: KeOps strings with aliases (`x = Vi(3); Sum_Reduction(F, 0)`) and
//! the concise form (`Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)`, `x_i: 3`).

use crate::error::{Error, ErrorKind, FormulaError, LineCol, Result, TokRange};
use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use std::str::FromStr;

/// Kind of a flattened token.
#[derive(Clone, Debug, PartialEq)]
pub enum TokKind {
    /// An identifier.
    Ident(String),
    /// An integer literal.
    Int(i64),
    /// A floating-point literal.
    Float(f64),
    /// A punctuation character; `joint` when glued to the next one (`<=`, `**`).
    Punct(char, bool),
    /// An opening delimiter: `(`, `[` or `{`.
    Open(char),
    /// A closing delimiter.
    Close(char),
    /// A literal that is neither an integer nor a float (strings, chars).
    OtherLiteral(String),
}

/// One token with its span.
#[derive(Clone, Debug)]
pub struct Tok {
    /// What it is.
    pub kind: TokKind,
    /// Where it is (compiler span in the macro, fallback span with line/column otherwise).
    pub span: Span,
}

impl Tok {
    fn text(&self) -> String {
        match &self.kind {
            TokKind::Ident(s) | TokKind::OtherLiteral(s) => s.clone(),
            TokKind::Int(i) => i.to_string(),
            TokKind::Float(x) => format!("{x:?}"),
            TokKind::Punct(c, _) | TokKind::Open(c) | TokKind::Close(c) => c.to_string(),
        }
    }
}

/// The tokens of one formula text (or macro input), for parsing and error reporting.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The original text, for run-time formulas.
    pub text: Option<String>,
    /// Flattened tokens; groups become `Open` / `Close` pairs.
    pub toks: Vec<Tok>,
}

fn flatten(ts: TokenStream, out: &mut Vec<Tok>) {
    for tt in ts {
        match tt {
            TokenTree::Ident(i) => out.push(Tok {
                kind: TokKind::Ident(i.to_string()),
                span: i.span(),
            }),
            TokenTree::Punct(p) => out.push(Tok {
                kind: TokKind::Punct(p.as_char(), p.spacing() == proc_macro2::Spacing::Joint),
                span: p.span(),
            }),
            TokenTree::Literal(l) => {
                let text = l.to_string();
                let kind = literal_kind(&text);
                out.push(Tok {
                    kind,
                    span: l.span(),
                });
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ('(', ')'),
                    Delimiter::Bracket => ('[', ']'),
                    Delimiter::Brace => ('{', '}'),
                    Delimiter::None => {
                        crate::limits::deep(|| flatten(g.stream(), out));
                        continue;
                    }
                };
                out.push(Tok {
                    kind: TokKind::Open(open),
                    span: g.span_open(),
                });
                crate::limits::deep(|| flatten(g.stream(), out));
                out.push(Tok {
                    kind: TokKind::Close(close),
                    span: g.span_close(),
                });
            }
        }
    }
}

fn literal_kind(text: &str) -> TokKind {
    let t = text.replace('_', "");
    let int_body = t.trim_end_matches(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E');
    let int_body = [
        "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize",
    ]
    .iter()
    .find_map(|s| t.strip_suffix(s))
    .unwrap_or(int_body);
    if !int_body.is_empty()
        && int_body.chars().all(|c| c.is_ascii_digit())
        && let Ok(i) = int_body.parse::<i64>()
    {
        return TokKind::Int(i);
    }
    let float_body = t
        .strip_suffix("f32")
        .or_else(|| t.strip_suffix("f64"))
        .unwrap_or(&t);
    match float_body.parse::<f64>() {
        Ok(x)
            if float_body
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == '.') =>
        {
            TokKind::Float(x)
        }
        _ => TokKind::OtherLiteral(text.to_string()),
    }
}

impl Source {
    /// Tokens from the macro's input.
    pub fn from_tokens(ts: TokenStream) -> Source {
        let mut toks = Vec::new();
        flatten(ts, &mut toks);
        Source { text: None, toks }
    }

    /// Tokens of a run-time formula text.
    pub fn from_text(text: &str) -> std::result::Result<Source, FormulaError> {
        match TokenStream::from_str(text) {
            Ok(ts) => {
                let mut s = Source::from_tokens(ts);
                s.text = Some(text.to_string());
                Ok(s)
            }
            Err(e) => {
                let (err, pos) = match unbalanced(text) {
                    Some((err, at)) => (
                        err,
                        (
                            at,
                            LineCol {
                                line: at.line,
                                column: at.column + 1,
                            },
                        ),
                    ),
                    None => {
                        let span = e.span();
                        let (s, t) = (span.start(), span.end());
                        let err = Error::new(ErrorKind::Syntax, format!("cannot read the formula: {e}"))
                            .help("the text may only contain names, numbers, operators, parentheses, commas and `;`");
                        (
                            err,
                            (
                                LineCol {
                                    line: s.line,
                                    column: s.column,
                                },
                                LineCol {
                                    line: t.line,
                                    column: t.column,
                                },
                            ),
                        )
                    }
                };
                let rendered = crate::error::render(text, &err, Some(pos));
                Err(FormulaError {
                    error: err,
                    rendered,
                })
            }
        }
    }

    /// The spans of the first and last token of a range (for `syn::Error::new_spanned`-like
    /// reporting in the macro).
    pub fn spans(&self, r: TokRange) -> Option<(Span, Span)> {
        let a = self.toks.get(r.start as usize)?;
        let b = self.toks.get(r.end as usize).unwrap_or(a);
        Some((a.span, b.span))
    }

    fn line_cols(&self, r: TokRange) -> Option<(LineCol, LineCol)> {
        let (a, b) = self.spans(r)?;
        let (s, e) = (a.start(), b.end());
        if s.line == 0 {
            return None;
        }
        Some((
            LineCol {
                line: s.line,
                column: s.column,
            },
            LineCol {
                line: e.line,
                column: e.column,
            },
        ))
    }

    /// The source text of a token range, for naming sub-expressions in messages.
    pub fn snippet(&self, r: TokRange) -> String {
        if let (Some(text), Some((s, e))) = (&self.text, self.line_cols(r))
            && let Some(slice) = slice_text(text, s, e)
        {
            return slice;
        }
        let mut out = String::new();
        let toks = self
            .toks
            .get(r.start as usize..=(r.end as usize).min(self.toks.len().saturating_sub(1)));
        let mut prev: Option<&Tok> = None;
        for t in toks.unwrap_or(&[]) {
            let glue = match (&prev.map(|p| &p.kind), &t.kind) {
                (None, _) => true,
                (Some(TokKind::Open(_)), _) => true,
                (_, TokKind::Close(_)) | (_, TokKind::Punct(',', _)) => true,
                (Some(TokKind::Ident(_)), TokKind::Open('(')) => true,
                (Some(TokKind::Punct('-', _)), _)
                    if out.ends_with("(-") || out == "-" || out.ends_with(", -") =>
                {
                    true
                }
                (Some(TokKind::Punct(_, true)), _) => true,
                _ => false,
            };
            if !glue {
                out.push(' ');
            }
            out.push_str(&t.text());
            prev = Some(t);
        }
        out
    }

    /// Renders an error against this source: the text with a caret under the culprit.
    pub fn render(&self, error: &Error) -> FormulaError {
        let pos = error.at.and_then(|r| self.line_cols(r));
        let rendered = match &self.text {
            Some(text) => crate::error::render(text, error, pos),
            None => crate::error::render("", error, None),
        };
        FormulaError {
            error: error.clone(),
            rendered,
        }
    }
}

/// The first unbalanced delimiter of a text, with its position (the lexer only says
/// that the text does not lex).
fn unbalanced(text: &str) -> Option<(Error, LineCol)> {
    let mut stack: Vec<(char, LineCol)> = Vec::new();
    for (line_no, line) in text.split('\n').enumerate() {
        for (column, c) in line.chars().enumerate() {
            let at = LineCol {
                line: line_no + 1,
                column,
            };
            match c {
                '(' | '[' | '{' => stack.push((c, at)),
                ')' | ']' | '}' => {
                    let open = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    match stack.pop() {
                        Some((o, _)) if o == open => {}
                        Some((o, oat)) => {
                            let e = Error::new(
                                ErrorKind::Syntax,
                                format!("`{c}` does not match the `{o}` opened before it"),
                            )
                            .help(format!(
                                "close the `{o}` at line {}, column {} first",
                                oat.line,
                                oat.column + 1
                            ));
                            return Some((e, at));
                        }
                        None => {
                            let e = Error::new(
                                ErrorKind::Syntax,
                                format!("too many `{c}`: this one closes nothing"),
                            )
                            .help(format!("remove it, or add the missing `{open}`"));
                            return Some((e, at));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    stack.pop().map(|(o, at)| {
        let close = match o {
            '(' => ')',
            '[' => ']',
            _ => '}',
        };
        (
            Error::new(ErrorKind::Syntax, format!("`{o}` is never closed"))
                .help(format!("add the missing `{close}`")),
            at,
        )
    })
}

fn slice_text(text: &str, s: LineCol, e: LineCol) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::new();
    for l in s.line..=e.line {
        let line: Vec<char> = lines.get(l - 1)?.chars().collect();
        let from = if l == s.line { s.column } else { 0 };
        let to = if l == e.line {
            e.column.min(line.len())
        } else {
            line.len()
        };
        if from > to {
            return None;
        }
        if l != s.line {
            out.push('\n');
        }
        out.extend(&line[from..to]);
    }
    Some(out)
}

/// Unary operators.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-f`
    Neg,
    /// `+f`
    Plus,
}

/// Binary operators of the formula syntax.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `|`, the scalar product
    Dot,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A node of the syntax tree.
///
/// A formula can be nested to any depth, so what Rust would derive recursively is
/// written here without unbounded recursion: `Drop` empties the tree through a worklist,
/// `Clone`, `PartialEq` and `Debug` go one level at a time through
/// [`crate::limits::deep`].
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// The tokens it spans.
    pub at: TokRange,
}

impl Expr {
    /// A node without children, left in place of the children a drop takes out.
    fn hollow() -> Expr {
        Expr {
            kind: ExprKind::Int(0),
            at: TokRange::default(),
        }
    }
}

/// Whether a node kind holds sub-expressions.
fn has_children(kind: &ExprKind) -> bool {
    match kind {
        ExprKind::Name(_) | ExprKind::Int(_) | ExprKind::Float(_) => false,
        ExprKind::List(v) | ExprKind::Call { args: v, .. } => !v.is_empty(),
        ExprKind::Unary(..) | ExprKind::Binary(..) => true,
    }
}

/// Moves the sub-expressions that have children of their own out of `kind` into `out`
/// (those without are dropped in place, which does not recurse).
fn take_children(kind: &mut ExprKind, out: &mut Vec<Expr>) {
    let mut take = |e: &mut Expr| {
        if has_children(&e.kind) {
            out.push(std::mem::replace(e, Expr::hollow()));
        }
    };
    match kind {
        ExprKind::Name(_) | ExprKind::Int(_) | ExprKind::Float(_) => {}
        ExprKind::List(v) | ExprKind::Call { args: v, .. } => v.iter_mut().for_each(take),
        ExprKind::Unary(_, a) => take(a),
        ExprKind::Binary(_, a, b) => {
            take(a);
            take(b);
        }
    }
}

impl Drop for Expr {
    fn drop(&mut self) {
        if !has_children(&self.kind) {
            return;
        }
        // Iterative: a tree 100,000 levels deep must not overflow the stack as it drops.
        let mut work = Vec::new();
        take_children(&mut self.kind, &mut work);
        while let Some(mut e) = work.pop() {
            take_children(&mut e.kind, &mut work);
            // `e` drops here with only childless sub-expressions left.
        }
    }
}

impl Clone for Expr {
    fn clone(&self) -> Expr {
        crate::limits::deep(|| Expr {
            kind: self.kind.clone(),
            at: self.at,
        })
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        crate::limits::deep(|| self.at == other.at && self.kind == other.kind)
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::limits::deep(|| {
            f.debug_struct("Expr")
                .field("kind", &self.kind)
                .field("at", &self.at)
                .finish()
        })
    }
}

/// Syntax tree node kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A name: variable, alias or parameter.
    Name(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A tuple or list `(a, b)` / `[a, b]` (TensorDot dimension lists).
    List(Vec<Expr>),
    /// A call `Name(args)`.
    Call {
        /// Operation or reduction name.
        name: String,
        /// Tokens of the name.
        name_at: TokRange,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// Unary operator.
    Unary(UnOp, Box<Expr>),
    /// Binary operator.
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

/// One item of a formula text: an alias, a concise declaration, or the formula.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `x = Vi(3)`, `b = Vj(1, 4)`, `g = Pm(1)`, `x = Var(0, 3, 0)`.
    Alias {
        /// Alias name.
        name: String,
        /// Tokens of the name.
        name_at: TokRange,
        /// The declaration call.
        decl: Expr,
    },
    /// `x_i: 3`, or `x_i` alone to fix the argument order; the width may be a polynomial
    /// of width symbols (`x_i: D0`, `x_i: 2*D1 + 1`), as generic programs print.
    Declare {
        /// Variable name.
        name: String,
        /// Tokens of the name.
        name_at: TokRange,
        /// Declared width.
        dim: Option<Expr>,
    },
    /// The formula.
    Formula(Expr),
}

/// The parser state over a token slice.
pub struct Parser<'s> {
    toks: &'s [Tok],
    pos: usize,
    end: usize,
}

fn syntax(msg: impl Into<String>, at: TokRange) -> Error {
    Error::new(ErrorKind::Syntax, msg).at(at)
}

impl<'s> Parser<'s> {
    /// A parser over all tokens of a source.
    pub fn new(src: &'s Source) -> Self {
        Parser {
            toks: &src.toks,
            pos: 0,
            end: src.toks.len(),
        }
    }

    /// A parser over the tokens `[start, end)` of a source.
    pub fn sub(src: &'s Source, start: usize, end: usize) -> Self {
        Parser {
            toks: &src.toks,
            pos: start,
            end: end.min(src.toks.len()),
        }
    }

    /// Current token index.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn peek(&self) -> Option<&'s TokKind> {
        (self.pos < self.end).then(|| &self.toks[self.pos].kind)
    }

    fn peek_at(&self, k: usize) -> Option<&'s TokKind> {
        (self.pos + k < self.end).then(|| &self.toks[self.pos + k].kind)
    }

    fn here(&self) -> TokRange {
        TokRange::one(
            self.pos
                .min(self.end.saturating_sub(1))
                .min(self.toks.len().saturating_sub(1)) as u32,
        )
    }

    fn prev(&self) -> TokRange {
        TokRange::one(self.pos.saturating_sub(1) as u32)
    }

    /// True when every token was consumed.
    pub fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if let Some(TokKind::Punct(p, _)) = self.peek()
            && *p == c
        {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expect_close(&mut self, c: char, open_at: TokRange) -> Result<()> {
        match self.peek() {
            Some(TokKind::Close(p)) if *p == c => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(syntax(
                format!("expected `{c}` to close the group opened here"),
                open_at,
            )
            .at(self.here())
            .help("check the number of arguments and the separating commas")),
        }
    }

    /// Parses `item (; item)*` up to the end; the last item should be the formula.
    pub fn items(&mut self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        loop {
            if self.at_end() {
                break;
            }
            items.push(self.item()?);
            if self.at_end() {
                break;
            }
            if !self.eat_punct(';') {
                let at = self.here();
                return Err(syntax("expected `;` between declarations and the formula", at)
                    .help("write aliases and declarations first, each followed by `;`, then the formula"));
            }
        }
        Ok(items)
    }

    /// One item: an alias `x = Vi(3)`, a declaration `x_i: 3`, or a formula.
    pub fn item(&mut self) -> Result<Item> {
        if let Some(TokKind::Ident(name)) = self.peek() {
            let name_at = self.here();
            match self.peek_at(1) {
                Some(TokKind::Punct('=', false)) => {
                    self.pos += 2;
                    let decl = self.expr()?;
                    return Ok(Item::Alias {
                        name: name.clone(),
                        name_at,
                        decl,
                    });
                }
                Some(TokKind::Punct(':', false)) => {
                    self.pos += 2;
                    let at = self.here();
                    if self.at_end() || matches!(self.peek(), Some(TokKind::Punct(';', _))) {
                        return Err(syntax(
                            format!("expected the dimension of `{name}` after `:`"),
                            at,
                        )
                        .help(format!("write `{name}: 3` for a variable of dimension 3")));
                    }
                    // A width: an integer, or in the text form of generic programs a
                    // polynomial of width symbols (`D0`, `2*D1 + 1`), checked by the checker.
                    let dim = self.expr()?;
                    return Ok(Item::Declare {
                        name: name.clone(),
                        name_at,
                        dim: Some(dim),
                    });
                }
                Some(TokKind::Punct(';', _)) => {
                    // a bare name followed by `;` fixes the argument order
                    self.pos += 1;
                    return Ok(Item::Declare {
                        name: name.clone(),
                        name_at,
                        dim: None,
                    });
                }
                _ => {}
            }
        }
        Ok(Item::Formula(self.expr()?))
    }

    /// A full expression.
    pub fn expr(&mut self) -> Result<Expr> {
        // Nested parentheses and calls recurse through here: any depth runs on any stack.
        crate::limits::deep(|| self.comparison())
    }

    fn comparison(&mut self) -> Result<Expr> {
        let lhs = self.dot()?;
        let op = match (self.peek(), self.peek_at(1)) {
            (Some(TokKind::Punct('<', true)), Some(TokKind::Punct('=', _))) => Some((BinOp::Le, 2)),
            (Some(TokKind::Punct('>', true)), Some(TokKind::Punct('=', _))) => Some((BinOp::Ge, 2)),
            (Some(TokKind::Punct('=', true)), Some(TokKind::Punct('=', _))) => Some((BinOp::Eq, 2)),
            (Some(TokKind::Punct('!', true)), Some(TokKind::Punct('=', _))) => Some((BinOp::Ne, 2)),
            (Some(TokKind::Punct('<', _)), _) => Some((BinOp::Lt, 1)),
            (Some(TokKind::Punct('>', _)), _) => Some((BinOp::Gt, 1)),
            _ => None,
        };
        let Some((op, n)) = op else { return Ok(lhs) };
        self.pos += n;
        let rhs = self.dot()?;
        let at = lhs.at.join(rhs.at);
        Ok(Expr {
            kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
            at,
        })
    }

    fn dot(&mut self) -> Result<Expr> {
        let mut lhs = self.additive()?;
        while matches!(self.peek(), Some(TokKind::Punct('|', _))) {
            if matches!(self.peek_at(1), Some(TokKind::Punct('|', _))) {
                return Err(syntax("`||` is not formula syntax", self.here())
                    .help("use `f | g` for the scalar product"));
            }
            self.pos += 1;
            let rhs = self.additive()?;
            let at = lhs.at.join(rhs.at);
            lhs = Expr {
                kind: ExprKind::Binary(BinOp::Dot, Box::new(lhs), Box::new(rhs)),
                at,
            };
        }
        Ok(lhs)
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut lhs = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(TokKind::Punct('+', _)) => BinOp::Add,
                Some(TokKind::Punct('-', _)) => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.multiplicative()?;
            let at = lhs.at.join(rhs.at);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                at,
            };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let op = match (self.peek(), self.peek_at(1)) {
                (Some(TokKind::Punct('*', true)), Some(TokKind::Punct('*', _))) => {
                    return Err(syntax("`**` is not KeOps formula syntax", TokRange { start: self.pos as u32, end: self.pos as u32 + 1 })
                        .help("use Pow(f, n) for an integer power, Powf(f, g) for a real power, Square(f) or Sqrt(f)"));
                }
                (Some(TokKind::Punct('*', _)), _) => BinOp::Mul,
                (Some(TokKind::Punct('/', _)), _) => BinOp::Div,
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.unary()?;
            let at = lhs.at.join(rhs.at);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                at,
            };
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        let start = self.here();
        let op = match self.peek() {
            Some(TokKind::Punct('-', _)) => UnOp::Neg,
            Some(TokKind::Punct('+', _)) => UnOp::Plus,
            _ => return self.primary(),
        };
        self.pos += 1;
        // `- - - x` recurses here without going through `expr`.
        let arg = crate::limits::deep(|| self.unary())?;
        let at = start.join(arg.at);
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(arg)),
            at,
        })
    }

    fn primary(&mut self) -> Result<Expr> {
        let at = self.here();
        let Some(kind) = self.peek() else {
            return Err(syntax(
                "the formula ends too early: expected an expression",
                self.prev(),
            )
            .help("complete the expression, e.g. `Sum_j(Exp(-SqDist(x_i, y_j)))`"));
        };
        match kind {
            TokKind::Int(i) => {
                self.pos += 1;
                Ok(Expr { kind: ExprKind::Int(*i), at })
            }
            TokKind::Float(x) => {
                self.pos += 1;
                Ok(Expr { kind: ExprKind::Float(*x), at })
            }
            TokKind::Ident(name) => {
                self.pos += 1;
                if matches!(self.peek(), Some(TokKind::Open('('))) {
                    let open = self.here();
                    self.pos += 1;
                    let args = self.args(')', open)?;
                    let at = at.join(self.prev());
                    Ok(Expr { kind: ExprKind::Call { name: name.clone(), name_at: TokRange::one(at.start), args }, at })
                } else {
                    Ok(Expr { kind: ExprKind::Name(name.clone()), at })
                }
            }
            TokKind::Open('(') => {
                self.pos += 1;
                let mut items = self.args(')', at)?;
                let full = at.join(self.prev());
                // `(f)` groups; `(a, b)` and `(a,)` are tuples (TensorDot lists).
                let trailing_comma = matches!(self.toks.get(self.pos.saturating_sub(2)).map(|t| &t.kind), Some(TokKind::Punct(',', _)));
                if items.len() == 1 && !trailing_comma {
                    let mut e = items.pop().unwrap_or(Expr { kind: ExprKind::List(vec![]), at: full });
                    e.at = full;
                    Ok(e)
                } else {
                    Ok(Expr { kind: ExprKind::List(items), at: full })
                }
            }
            TokKind::Open('[') => {
                self.pos += 1;
                let items = self.args(']', at)?;
                Ok(Expr { kind: ExprKind::List(items), at: at.join(self.prev()) })
            }
            TokKind::Close(c) => Err(syntax(format!("unexpected `{c}`: expected an expression"), at)
                .help("an argument is missing, or there is one closing parenthesis too many")),
            other => Err(syntax(format!("unexpected `{}`: expected an expression", self.toks[self.pos].text()), at).help(
                match other {
                    TokKind::Punct('^', _) => "there is no `^` operator: use Pow(f, n) or Square(f)".to_string(),
                    TokKind::OtherLiteral(_) => "only numbers are allowed as literals".to_string(),
                    _ => "expected a variable, a number, a call such as Exp(f), or a parenthesized expression".to_string(),
                },
            )),
        }
    }

    fn args(&mut self, close: char, open_at: TokRange) -> Result<Vec<Expr>> {
        let mut args = Vec::new();
        loop {
            if let Some(TokKind::Close(c)) = self.peek()
                && *c == close
            {
                self.pos += 1;
                return Ok(args);
            }
            if self.at_end() {
                return Err(syntax(
                    format!("`{}` is never closed", if close == ')' { '(' } else { '[' }),
                    open_at,
                ));
            }
            args.push(self.expr()?);
            if !self.eat_punct(',') {
                self.expect_close(close, open_at)?;
                return Ok(args);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Vec<Item> {
        let src = Source::from_text(s).unwrap();
        Parser::new(&src).items().unwrap()
    }

    #[test]
    fn precedence() {
        let items = parse("a + b * c | d - e");
        let Item::Formula(e) = &items[0] else {
            panic!()
        };
        let ExprKind::Binary(BinOp::Dot, l, r) = &e.kind else {
            panic!("{e:?}")
        };
        assert!(matches!(l.kind, ExprKind::Binary(BinOp::Add, _, _)));
        assert!(matches!(r.kind, ExprKind::Binary(BinOp::Sub, _, _)));
    }

    #[test]
    fn aliases_and_declarations() {
        let items = parse("x = Vi(3); y_j: 4; z_i; Sum_Reduction(x, 0)");
        assert!(matches!(&items[0], Item::Alias { name, .. } if name == "x"));
        assert!(matches!(
            &items[1],
            Item::Declare {
                dim: Some(Expr {
                    kind: ExprKind::Int(4),
                    ..
                }),
                ..
            }
        ));
        assert!(matches!(&items[2], Item::Declare { dim: None, .. }));
        assert!(matches!(&items[3], Item::Formula(_)));
    }

    #[test]
    fn tuples_and_grouping() {
        let items = parse("TensorDot(a, b, (2, 2), [2,2], (1,), (0))");
        let Item::Formula(Expr {
            kind: ExprKind::Call { args, .. },
            ..
        }) = &items[0]
        else {
            panic!()
        };
        assert!(matches!(&args[2].kind, ExprKind::List(v) if v.len() == 2));
        assert!(matches!(&args[3].kind, ExprKind::List(v) if v.len() == 2));
        assert!(matches!(&args[4].kind, ExprKind::List(v) if v.len() == 1));
        assert!(matches!(&args[5].kind, ExprKind::Int(0)));
    }

    #[test]
    fn snippet_and_caret() {
        let src = Source::from_text("Sum_j(Exp(-SqDist(x_i, y_j)))").unwrap();
        let e = Error::new(ErrorKind::Dimension, "bad").at(TokRange { start: 5, end: 10 });
        assert_eq!(
            src.snippet(TokRange { start: 5, end: 10 }),
            "SqDist(x_i, y_j)"
        );
        let r = src.render(&e).rendered;
        // "1 | " then 11 columns before `SqDist`, then one caret per character.
        assert!(
            r.contains(&format!("\n{}{}\n", " ".repeat(4 + 11), "^".repeat(16))),
            "{r}"
        );
    }

    #[test]
    fn power_operator_is_refused() {
        let src = Source::from_text("x_i ** 2").unwrap();
        let err = Parser::new(&src).items().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Syntax);
        assert!(err.help.unwrap().contains("Pow"));
    }
}
