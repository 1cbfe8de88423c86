//! Dimensions of formulas: known integers or polynomials over symbolic dimensions.
//!
//! A variable whose width is not declared gets a fresh symbol. Operations combine
//! dimensions with `+` and `*` (Concat, TensorProd, ...), so a dimension is kept as a
//! polynomial with integer coefficients over symbols. [`DimSolver`] unifies them; what
//! stays symbolic becomes a const generic in the `keops!` macro.

use std::collections::BTreeMap;
use std::fmt;

/// A symbolic dimension (an undeclared width), numbered within one [`crate::Program`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SymId(pub u32);

/// A product of symbols (sorted, with repetition), the empty product being 1.
type Monomial = Vec<SymId>;

/// A dimension: a polynomial over [`SymId`]s with integer coefficients, in normal form
/// (monomials sorted, no zero coefficient), so structural equality is equality.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Dim {
    terms: BTreeMap<Monomial, i64>,
}

impl Dim {
    /// A known dimension (past `i64::MAX`, [`Dim::overflowed`]).
    pub fn known(n: usize) -> Dim {
        let mut terms = BTreeMap::new();
        if n != 0 {
            terms.insert(Vec::new(), i64::try_from(n).unwrap_or(i64::MAX));
        }
        Dim { terms }
    }

    /// What arithmetic that overflows gives: the known dimension `i64::MAX`, past every
    /// limit of [`crate::limits`], so that whoever checks a width reports it (the
    /// infallible [`Dim::add`], [`Dim::mul`], ... never panic; the `checked_` forms say
    /// `None` instead).
    pub fn overflowed() -> Dim {
        Dim::known(usize::MAX)
    }

    /// The largest absolute value of a coefficient (0 for the dimension 0): a width whose
    /// symbols are all at least 1 is at least its positive coefficients, so a coefficient
    /// past [`crate::limits::MAX_WIDTH`] is a width past it.
    pub fn max_coefficient(&self) -> u64 {
        self.terms
            .values()
            .map(|c| c.unsigned_abs())
            .max()
            .unwrap_or(0)
    }

    /// The dimension 1 (scalars).
    pub fn one() -> Dim {
        Dim::known(1)
    }

    /// A symbolic dimension.
    pub fn sym(s: SymId) -> Dim {
        let mut terms = BTreeMap::new();
        terms.insert(vec![s], 1);
        Dim { terms }
    }

    /// The value, when no symbol is left and it is non-negative.
    pub fn as_known(&self) -> Option<usize> {
        match self.terms.len() {
            0 => Some(0),
            1 => {
                let (m, c) = self.terms.iter().next()?;
                (m.is_empty() && *c >= 0).then_some(*c as usize)
            }
            _ => None,
        }
    }

    /// True when this is exactly the known dimension `n`.
    pub fn is(&self, n: usize) -> bool {
        self.as_known() == Some(n)
    }

    /// The symbol, when this dimension is exactly one symbol.
    pub fn as_sym(&self) -> Option<SymId> {
        if self.terms.len() != 1 {
            return None;
        }
        let (m, c) = self.terms.iter().next()?;
        (m.len() == 1 && *c == 1).then(|| m[0])
    }

    /// The symbols this dimension mentions.
    pub fn syms(&self) -> Vec<SymId> {
        let mut out: Vec<SymId> = self.terms.keys().flatten().copied().collect();
        out.sort();
        out.dedup();
        out
    }

    /// True when no symbol is left.
    pub fn is_known(&self) -> bool {
        self.terms.keys().all(|m| m.is_empty())
    }

    /// Adds `c` to the coefficient of `m`; `None` when it overflows.
    fn add_term(&mut self, m: Monomial, c: i64) -> Option<()> {
        let entry = self.terms.entry(m.clone()).or_insert(0);
        *entry = entry.checked_add(c)?;
        if *entry == 0 {
            self.terms.remove(&m);
        }
        Some(())
    }

    /// Sum of two dimensions; `None` when a coefficient overflows.
    pub fn checked_add(&self, other: &Dim) -> Option<Dim> {
        let mut out = self.clone();
        for (m, c) in &other.terms {
            out.add_term(m.clone(), *c)?;
        }
        Some(out)
    }

    /// Difference of two dimensions; `None` when a coefficient overflows.
    pub fn checked_sub(&self, other: &Dim) -> Option<Dim> {
        let mut out = self.clone();
        for (m, c) in &other.terms {
            out.add_term(m.clone(), c.checked_neg()?)?;
        }
        Some(out)
    }

    /// Product of two dimensions; `None` when a coefficient overflows.
    pub fn checked_mul(&self, other: &Dim) -> Option<Dim> {
        let mut out = Dim::default();
        for (m1, c1) in &self.terms {
            for (m2, c2) in &other.terms {
                let mut m: Monomial = m1.iter().chain(m2.iter()).copied().collect();
                m.sort();
                out.add_term(m, c1.checked_mul(*c2)?)?;
            }
        }
        Some(out)
    }

    /// Sum of two dimensions ([`Dim::overflowed`] when a coefficient overflows).
    pub fn add(&self, other: &Dim) -> Dim {
        self.checked_add(other).unwrap_or_else(Dim::overflowed)
    }

    /// Difference of two dimensions (may be negative while solving; [`Dim::overflowed`]
    /// when a coefficient overflows).
    pub fn sub(&self, other: &Dim) -> Dim {
        self.checked_sub(other).unwrap_or_else(Dim::overflowed)
    }

    /// Product of two dimensions ([`Dim::overflowed`] when a coefficient overflows).
    pub fn mul(&self, other: &Dim) -> Dim {
        self.checked_mul(other).unwrap_or_else(Dim::overflowed)
    }

    /// Multiply by a known factor ([`Dim::overflowed`] when a coefficient overflows).
    pub fn scale(&self, k: usize) -> Dim {
        match i64::try_from(k) {
            Ok(k) => self.mul(&Dim::known(k as usize)),
            Err(_) => Dim::overflowed(),
        }
    }

    /// Replace symbols by their bindings ([`Dim::overflowed`] when a coefficient
    /// overflows).
    pub fn subst(&self, bind: &dyn Fn(SymId) -> Option<Dim>) -> Dim {
        let checked = || {
            let mut out = Dim::default();
            for (m, c) in &self.terms {
                // The unbound symbols stay a monomial; the bound ones multiply in (most
                // monomials have none: no intermediate polynomial then).
                let mut free: Monomial = Vec::new();
                let mut bound: Option<Dim> = None;
                for s in m {
                    match bind(*s) {
                        None => free.push(*s),
                        Some(f) => {
                            bound = Some(match bound {
                                None => f,
                                Some(b) => b.checked_mul(&f)?,
                            })
                        }
                    }
                }
                match bound {
                    None => out.add_term(free, *c)?,
                    Some(b) => {
                        let mut factor = Dim::default();
                        factor.terms.insert(free, *c);
                        out = out.checked_add(&b.checked_mul(&factor)?)?;
                    }
                }
            }
            Some(out)
        };
        checked().unwrap_or_else(Dim::overflowed)
    }

    /// Exact division by a known integer, when every coefficient is divisible.
    fn div_exact(&self, k: i64) -> Option<Dim> {
        if k == 0 {
            return None;
        }
        let mut out = Dim::default();
        for (m, c) in &self.terms {
            if c.checked_rem(k)? != 0 {
                return None;
            }
            out.terms.insert(m.clone(), c.checked_div(k)?);
        }
        Some(out)
    }

    /// True when every coefficient is non-negative (a possible width).
    fn nonnegative(&self) -> bool {
        self.terms.values().all(|c| *c >= 0)
    }

    /// The terms `(coefficient, symbols)` of the polynomial (`3 * D0 * D1` is
    /// `(3, [D0, D1])`, a constant has no symbol), highest degree first as the text form
    /// writes them ("D0*D1 + 2"); none for 0. Code generators write a width from them.
    pub fn terms(&self) -> Vec<(i64, &[SymId])> {
        let mut terms: Vec<(i64, &[SymId])> =
            self.terms.iter().map(|(m, c)| (*c, m.as_slice())).collect();
        terms.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1.cmp(b.1)));
        terms
    }

    /// Writes the dimension with symbols named by `name`.
    pub fn write_with(
        &self,
        f: &mut dyn fmt::Write,
        name: &dyn Fn(SymId) -> String,
    ) -> fmt::Result {
        if self.terms.is_empty() {
            return write!(f, "0");
        }
        for (i, (c, m)) in self.terms().into_iter().enumerate() {
            if i > 0 {
                write!(f, "{}", if c < 0 { " - " } else { " + " })?;
            } else if c < 0 {
                write!(f, "-")?;
            }
            let a = c.unsigned_abs();
            if m.is_empty() {
                write!(f, "{a}")?;
                continue;
            }
            if a != 1 {
                write!(f, "{a}*")?;
            }
            for (k, s) in m.iter().enumerate() {
                if k > 0 {
                    write!(f, "*")?;
                }
                write!(f, "{}", name(*s))?;
            }
        }
        Ok(())
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim::known(n)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_with(f, &|s| format!("D{}", s.0))
    }
}

impl fmt::Debug for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A condition on dimensions that could not be decided while they were symbolic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DimConstraint {
    /// The two dimensions must be equal.
    Eq(Dim, Dim),
    /// The first dimension must be at least the given value.
    AtLeast(Dim, usize),
    /// The first dimension must be at most the given value.
    AtMost(Dim, usize),
    /// The dimension must be a multiple of the given one.
    MultipleOf(Dim, Dim),
}

impl DimConstraint {
    /// Applies bindings to both sides.
    pub fn subst(&self, s: &DimSolver) -> DimConstraint {
        match self {
            DimConstraint::Eq(a, b) => DimConstraint::Eq(s.resolve(a), s.resolve(b)),
            DimConstraint::AtLeast(a, n) => DimConstraint::AtLeast(s.resolve(a), *n),
            DimConstraint::AtMost(a, n) => DimConstraint::AtMost(s.resolve(a), *n),
            DimConstraint::MultipleOf(a, b) => {
                DimConstraint::MultipleOf(s.resolve(a), s.resolve(b))
            }
        }
    }

    /// `Some(true)` when satisfied, `Some(false)` when violated, `None` while symbolic.
    pub fn decide(&self) -> Option<bool> {
        match self {
            DimConstraint::Eq(a, b) => {
                if a == b {
                    Some(true)
                } else {
                    Some(a.as_known()? == b.as_known()?)
                }
            }
            DimConstraint::AtLeast(a, n) => Some(a.as_known()? >= *n),
            DimConstraint::AtMost(a, n) => Some(a.as_known()? <= *n),
            DimConstraint::MultipleOf(a, b) => {
                let (a, b) = (a.as_known()?, b.as_known()?);
                Some(b != 0 && a % b == 0)
            }
        }
    }
}

/// Unification state for symbolic dimensions.
#[derive(Clone, Debug, Default)]
pub struct DimSolver {
    /// Number of symbols created so far.
    count: u32,
    /// Bindings, kept fully resolved (no bound symbol appears on a right-hand side).
    bindings: BTreeMap<SymId, Dim>,
    /// Conditions left for later (instantiation, or const assertions in the macro).
    pub deferred: Vec<Deferred>,
    /// Set by a dimension rule whose result is past a limit of [`crate::limits`] (its
    /// error is a string, as every rule's): the checker makes that error a
    /// [`crate::ErrorKind::Limit`] ([`DimSolver::take_past_limit`]).
    past_limit: bool,
}

/// A condition left for later, with what imposed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deferred {
    /// The condition.
    pub c: DimConstraint,
    /// The operation that imposed it (empty when unknown).
    pub why: String,
}

impl std::fmt::Display for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.c {
            DimConstraint::Eq(a, b) => write!(f, "{a} = {b}")?,
            DimConstraint::AtLeast(a, n) => write!(f, "{a} >= {n}")?,
            DimConstraint::AtMost(a, n) => write!(f, "{a} <= {n}")?,
            DimConstraint::MultipleOf(a, b) => write!(f, "{a} is a multiple of {b}")?,
        }
        if !self.why.is_empty() {
            write!(f, " (required by {})", self.why)?;
        }
        Ok(())
    }
}

/// Why two dimensions cannot be unified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Left-hand side, resolved.
    pub left: Dim,
    /// Right-hand side, resolved.
    pub right: Dim,
}

impl DimSolver {
    /// A fresh solver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that a dimension rule failed on a limit of [`crate::limits`].
    pub fn note_past_limit(&mut self) {
        self.past_limit = true;
    }

    /// Whether a dimension rule failed on a limit since the last call (and clears it).
    pub fn take_past_limit(&mut self) -> bool {
        std::mem::take(&mut self.past_limit)
    }

    /// A fresh symbol.
    pub fn fresh(&mut self) -> SymId {
        let s = SymId(self.count);
        self.count += 1;
        s
    }

    /// Number of symbols created.
    pub fn sym_count(&self) -> u32 {
        self.count
    }

    /// The dimension with every bound symbol replaced.
    pub fn resolve(&self, d: &Dim) -> Dim {
        d.subst(&|s| self.bindings.get(&s).cloned())
    }

    /// The binding of a symbol, if any.
    pub fn binding(&self, s: SymId) -> Option<&Dim> {
        self.bindings.get(&s)
    }

    fn bind(&mut self, s: SymId, value: Dim) {
        let single = |x: SymId| (x == s).then(|| value.clone());
        for v in self.bindings.values_mut() {
            *v = v.subst(&single);
        }
        for d in &mut self.deferred {
            d.c = match &d.c {
                DimConstraint::Eq(a, b) => DimConstraint::Eq(a.subst(&single), b.subst(&single)),
                DimConstraint::AtLeast(a, n) => DimConstraint::AtLeast(a.subst(&single), *n),
                DimConstraint::AtMost(a, n) => DimConstraint::AtMost(a.subst(&single), *n),
                DimConstraint::MultipleOf(a, b) => {
                    DimConstraint::MultipleOf(a.subst(&single), b.subst(&single))
                }
            };
        }
        self.bindings.insert(s, value);
    }

    /// Makes `a` and `b` equal, binding symbols where the equation is solvable for one of
    /// them; an equation that stays undecidable is deferred.
    pub fn unify(&mut self, a: &Dim, b: &Dim) -> Result<(), Mismatch> {
        let (ra, rb) = (self.resolve(a), self.resolve(b));
        let diff = ra.sub(&rb);
        if diff.terms.is_empty() {
            return Ok(());
        }
        let mismatch = || Mismatch {
            left: ra.clone(),
            right: rb.clone(),
        };
        if diff.is_known() {
            return Err(mismatch());
        }
        // Look for a symbol that appears only linearly, in a single monomial.
        let syms = diff.syms();
        for s in syms {
            let linear = diff
                .terms
                .iter()
                .filter(|(m, _)| m.contains(&s))
                .collect::<Vec<_>>();
            if linear.len() != 1 || linear[0].0.len() != 1 {
                continue;
            }
            let c = *linear[0].1;
            let mut rest = diff.clone();
            rest.terms.remove(&vec![s]);
            // c*s + rest = 0  =>  s = -rest / c
            let Some(value) = rest.scale_signed(-1).div_exact(c) else {
                if rest.is_known() {
                    return Err(mismatch());
                }
                continue;
            };
            if !value.nonnegative() || value.terms.is_empty() {
                if value.is_known() {
                    return Err(mismatch());
                }
                continue;
            }
            self.bind(s, value);
            return Ok(());
        }
        self.deferred.push(Deferred {
            c: DimConstraint::Eq(ra, rb),
            why: String::new(),
        });
        Ok(())
    }

    /// Records a condition; fails at once when it is already violated.
    pub fn require(&mut self, c: DimConstraint) -> Result<(), DimConstraint> {
        let c = c.subst(self);
        match c.decide() {
            Some(true) => Ok(()),
            Some(false) => Err(c),
            None => {
                self.deferred.push(Deferred {
                    c,
                    why: String::new(),
                });
                Ok(())
            }
        }
    }

    /// Labels the conditions deferred since `start` with the operation that imposed them.
    pub fn label_since(&mut self, start: usize, why: &str) {
        for d in self.deferred.iter_mut().skip(start) {
            if d.why.is_empty() {
                d.why = why.to_string();
            }
        }
    }

    /// Re-examines deferred conditions with the current bindings: equations are unified
    /// again (they may now be solvable), the rest decided. Violated ones are errors.
    pub fn check_deferred(&mut self) -> Result<(), Deferred> {
        // Each pass can bind symbols that let another equation be solved.
        for _ in 0..=self.deferred.len() {
            let pending = std::mem::take(&mut self.deferred);
            let before = self.bindings.len();
            for d in pending {
                let c = d.c.subst(self);
                match (&c, c.decide()) {
                    (_, Some(true)) => {}
                    (_, Some(false)) => return Err(Deferred { c, why: d.why }),
                    (DimConstraint::Eq(a, b), None) => {
                        let start = self.deferred.len();
                        if self.unify(a, b).is_err() {
                            return Err(Deferred { c, why: d.why });
                        }
                        self.label_since(start, &d.why);
                    }
                    (_, None) => self.deferred.push(Deferred { c, why: d.why }),
                }
            }
            if self.bindings.len() == before {
                break;
            }
        }
        Ok(())
    }
}

impl Dim {
    /// Multiplication by a signed factor ([`Dim::overflowed`] when a coefficient
    /// overflows).
    fn scale_signed(&self, k: i64) -> Dim {
        let mut out = Dim::default();
        for (m, c) in &self.terms {
            let Some(p) = c.checked_mul(k) else {
                return Dim::overflowed();
            };
            if p != 0 {
                out.terms.insert(m.clone(), p);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_normalizes() {
        let mut s = DimSolver::new();
        let a = Dim::sym(s.fresh());
        let b = Dim::sym(s.fresh());
        assert_eq!(a.add(&b), b.add(&a));
        assert_eq!(a.mul(&b).to_string(), "D0*D1");
        assert_eq!(a.add(&Dim::known(2)).to_string(), "D0 + 2");
        assert_eq!(Dim::known(3).mul(&Dim::known(4)).as_known(), Some(12));
        assert_eq!(a.sub(&a).as_known(), Some(0));
    }

    #[test]
    fn unify_binds_and_resolves() {
        let mut s = DimSolver::new();
        let (x, y, z) = (s.fresh(), s.fresh(), s.fresh());
        s.unify(&Dim::sym(x), &Dim::sym(y)).unwrap();
        s.unify(&Dim::sym(z), &Dim::sym(x).add(&Dim::sym(y)))
            .unwrap();
        s.unify(&Dim::sym(y), &Dim::known(3)).unwrap();
        assert_eq!(s.resolve(&Dim::sym(z)).as_known(), Some(6));
        assert!(s.unify(&Dim::sym(x), &Dim::known(4)).is_err());
    }

    #[test]
    fn unify_solves_linear_equations() {
        let mut s = DimSolver::new();
        let x = s.fresh();
        // 2*x + 1 = 7
        s.unify(&Dim::sym(x).scale(2).add(&Dim::known(1)), &Dim::known(7))
            .unwrap();
        assert_eq!(s.resolve(&Dim::sym(x)).as_known(), Some(3));
        // 2*y = 7 has no integer solution
        let y = s.fresh();
        assert!(s.unify(&Dim::sym(y).scale(2), &Dim::known(7)).is_err());
    }

    #[test]
    fn nonlinear_equations_are_deferred() {
        let mut s = DimSolver::new();
        let x = s.fresh();
        s.unify(&Dim::sym(x).mul(&Dim::sym(x)), &Dim::known(9))
            .unwrap();
        assert_eq!(s.deferred.len(), 1);
        s.unify(&Dim::sym(x), &Dim::known(3)).unwrap();
        assert!(s.check_deferred().is_ok());
        assert!(s.deferred.is_empty());
    }
}
