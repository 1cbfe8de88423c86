//! Errors of every compiler stage, located at the user's tokens.
//!
//! An [`Error`] holds a token range into the [`Source`](crate::parse::Source) it came from, not a span, so that
//! it is `Send + Sync`: the macro maps the range back to `proc_macro2` spans, the
//! run-time API renders it as the formula with a caret under the culprit.

use std::fmt;

/// A range of tokens `[start, end]` (inclusive) in a [`Source`](crate::parse::Source).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TokRange {
    /// First token.
    pub start: u32,
    /// Last token (inclusive).
    pub end: u32,
}

impl TokRange {
    /// A range covering one token.
    pub fn one(i: u32) -> Self {
        TokRange { start: i, end: i }
    }

    /// The smallest range covering both.
    pub fn join(self, other: TokRange) -> Self {
        TokRange {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// What went wrong, by class; the class names the compiler stage and lets tests match
/// errors without comparing message text.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not a formula (unbalanced parentheses, unexpected token, `**`).
    Syntax,
    /// A call names no known operation.
    UnknownOperation,
    /// Wrong number of arguments.
    Arity,
    /// A parameter (integer, list) is missing, of the wrong kind or out of range.
    Parameter,
    /// Dimensions of arguments do not fit the operation.
    Dimension,
    /// A name is neither declared nor a concise `_i` / `_j` variable.
    UnknownVariable,
    /// Conflicting or invalid declarations of variables.
    Declaration,
    /// A reduction is misplaced or misused (nested, bad tag, K = 0, non-scalar LogSumExp).
    Reduction,
    /// The formula cannot be differentiated as asked.
    Differentiation,
    /// Input arrays do not fit the formula (row counts, widths, empty data).
    Input,
    /// A limit of the implementation was hit (size of generated code, depth).
    Limit,
}

/// A compiler error: kind, message, optional hint, and where it is in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Class of the error.
    pub kind: ErrorKind,
    /// What is wrong, naming the operation, dimensions and sub-expression involved.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    /// The offending tokens, when the error comes from source text.
    pub at: Option<TokRange>,
}

impl Error {
    /// A new error without location.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            help: None,
            at: None,
        }
    }

    /// Attaches the offending tokens (keeps an existing, more precise location).
    pub fn at(mut self, range: TokRange) -> Self {
        if self.at.is_none() {
            self.at = Some(range);
        }
        self
    }

    /// Attaches a hint saying what to do.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The message followed by the hint, as one line for the macro's diagnostics.
    pub fn full_message(&self) -> String {
        match &self.help {
            Some(h) => format!("{}\nhelp: {}", self.message, h),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if let Some(h) = &self.help {
            write!(f, " (help: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of the compiler.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A line/column position (line from 1, column from 0, in characters).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct LineCol {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 0.
    pub column: usize,
}

/// An error rendered against the text it came from, for run-time formulas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormulaError {
    /// The error.
    pub error: Error,
    /// The formula text with a caret line under the culprit, when known.
    pub rendered: String,
}

impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

impl std::error::Error for FormulaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Renders `error` against `text`, given the positions of the tokens in the range.
pub(crate) fn render(text: &str, error: &Error, span: Option<(LineCol, LineCol)>) -> String {
    let mut out = format!("error: {}\n", error.message);
    if let Some((start, end)) = span {
        let lines: Vec<&str> = text.lines().collect();
        if let Some(line) = lines.get(start.line.saturating_sub(1)) {
            let gutter = format!("{} | ", start.line);
            let width = if end.line == start.line {
                end.column.saturating_sub(start.column).max(1)
            } else {
                line.chars().count().saturating_sub(start.column).max(1)
            };
            out.push_str(&format!("{gutter}{line}\n"));
            out.push_str(&" ".repeat(gutter.len() + start.column));
            out.push_str(&"^".repeat(width));
            out.push('\n');
        }
    }
    if let Some(h) = &error.help {
        out.push_str(&format!("help: {h}\n"));
    }
    out
}
