//! The import layering of the crates (issue 13): each crate's modules import downwards,
//! and the only import loops are the ones listed below, each with its reason.
//!
//! The analysis is textual: a module is a file of `src/`
//! (`lib.rs` is the crate root, `a/mod.rs` is `a`), and module `m` imports module `n`
//! when, in `m`'s code with its comments and string literals removed,
//! - a `use` declaration names a path into `n` (`use crate::n::X`, `use super::X`,
//!   `use child::X` for a child `mod child;` of `m`, brace groups expanded), or
//! - any `crate::...` or `super::...` path in the code (types, calls, `$crate::`,
//!   `pub(in crate::...)`) leads into `n`, or
//! - `child::` appears for a child module `mod child;` declared in `m`.
//!
//! A path leads into the longest module its prefix names: `crate::lower::Lower` is an
//! import of `lower` (its `mod.rs`, which re-exports `Lower`), `crate::lower::builder::Lower`
//! one of `lower::builder`; so a module that imports a re-export depends on the module
//! that re-exports it. A path naming no module below the root (`crate::Program`, a
//! re-export of `lib.rs`) counts for nothing: the root is above everything.
//!
//! Two refinements over the script, which agree with it on the crates checked here:
//! `super::` inside an inline module (`mod tests { use super::*; }`) is read relative to
//! that inline module, and `self::` paths in `use` declarations count. A module's
//! import of itself is not an edge.
//!
//! The test finds the strongly connected components of each crate's import graph
//! (Tarjan) and requires every one with more than one module to be exactly one of the
//! crate's allowed cycles, and every allowed cycle to be there: a loop that grows, shrinks
//! or appears fails, and prints its modules and the edges between them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An import loop a crate keeps on purpose.
struct AllowedCycle {
    /// The modules of the loop, exactly.
    modules: &'static [&'static str],
    /// Why the loop is the honest shape of the code.
    why: &'static str,
}

/// The crates whose layering is checked (a directory of the workspace each), with their
/// allowed cycles. Adding a crate is one line.
const CRATES: &[(&str, &[AllowedCycle])] = &[
    (
        "keops-ir",
        &[AllowedCycle {
            modules: &[
                "builder",
                "diff",
                "ops",
                "ops::calculus",
                "ops::complex",
                "ops::elementwise",
                "ops::indexing",
                "ops::linalg",
                "ops::special",
                "ops::vector",
                "simplify",
            ],
            why: "the formula algebra: the builder builds nodes by the operation table \
                  (dimension rules, sugar expansion, constant folding) and the \
                  construction-time rewrite rules, while the table's derivatives and \
                  expansions and the rewrite rules build nodes with the builder, and Grad \
                  expands through diff (see builder.rs and ops/mod.rs)",
        }],
    ),
    ("keops-gpu-kernels", &[]),
    ("keops-codegen", &[]),
    ("keops-macros", &[]),
    ("keops-runtime", &[]),
    ("keops-runtime/fake-cuda", &[]),
    ("keops-runtime/ptx-interp", &[]),
    (".", &[]),
];

#[test]
fn every_import_loop_is_an_allowed_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for (krate, allowed) in CRATES {
        let files = crate_sources(&root.join(krate).join("src"));
        assert!(!files.is_empty(), "{krate}: no source files found");
        let graph = import_graph(&files);
        let cycles = cycles(&graph);
        for cycle in &cycles {
            if !allowed.iter().any(|a| same_modules(a.modules, cycle)) {
                failures.push(format!(
                    "{krate}: import loop of {} modules not in the allowed list:\n{}",
                    cycle.len(),
                    describe(&graph, cycle)
                ));
            }
        }
        for a in *allowed {
            if !cycles.iter().any(|c| same_modules(a.modules, c)) {
                failures.push(format!(
                    "{krate}: the allowed loop {:?} ({}) is not in the code as listed \
                     (it changed: update the list)",
                    a.modules, a.why
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn same_modules(allowed: &[&str], cycle: &BTreeSet<String>) -> bool {
    allowed.len() == cycle.len() && allowed.iter().all(|m| cycle.contains(*m))
}

/// The modules of a loop, each with its imports inside the loop.
fn describe(graph: &BTreeMap<String, BTreeSet<String>>, cycle: &BTreeSet<String>) -> String {
    cycle
        .iter()
        .map(|m| {
            let inside: Vec<&str> = graph[m]
                .iter()
                .filter(|n| cycle.contains(*n))
                .map(String::as_str)
                .collect();
            format!("  {} -> {}", name(m), inside.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn name(m: &str) -> &str {
    if m.is_empty() { "(crate root)" } else { m }
}

// ------------------------------------------------------------------ the modules

/// Every `.rs` file under `src`, by module path (`""` for `lib.rs` and `main.rs`).
fn crate_sources(src: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        for entry in entries {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut segs: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    segs.last().map(String::as_str),
                    Some("lib" | "main" | "mod")
                ) {
                    segs.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                files.insert(segs.join("::"), text);
            }
        }
    }
    files
}

// ------------------------------------------------------------------ comments and strings

/// The code without comments (replaced by a space) and with every string and character
/// literal emptied (`""`, `' '`), so that neither can make an edge.
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let word = |k: usize| k < c.len() && (c[k].is_alphanumeric() || c[k] == '_');
    while i < c.len() {
        let prev_word = i > 0 && word(i - 1);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if !prev_word && raw_string_start(&c, i).is_some() {
            // r"..", r#".."#, br"..", cr"..": no escapes, ends at `"` and the same hashes.
            let (quote, hashes) = raw_string_start(&c, i).unwrap();
            i = quote + 1;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|h| c.get(i + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && char_literal_end(&c, i).is_some() {
            i = char_literal_end(&c, i).unwrap();
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// For a raw string starting at `i` (`r`, `br` or `cr`, hashes, quote): the index of its
/// opening quote and its number of hashes.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut k = i;
    if matches!(c[k], 'b' | 'c') {
        k += 1;
    }
    if c.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let mut hashes = 0;
    while c.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    (c.get(k) == Some(&'"')).then_some((k, hashes))
}

/// The index after a character literal opening at `i` (`'a'`, `'\n'`, `'\u{..}'`), or
/// `None` for a lifetime or a label.
fn char_literal_end(c: &[char], i: usize) -> Option<usize> {
    if c.get(i + 1) == Some(&'\\') {
        let mut k = i + 2;
        while k < c.len() && c[k] != '\'' && c[k] != '\n' {
            k += 1;
        }
        return (c.get(k) == Some(&'\'')).then_some(k + 1);
    }
    (c.get(i + 2) == Some(&'\'')).then_some(i + 3)
}

// ------------------------------------------------------------------ the edges

/// The module path `base` with `ups` trailing segments removed.
fn up(base: &[String], ups: usize) -> Vec<String> {
    base[..base.len().saturating_sub(ups)].to_vec()
}

/// The longest module that a prefix of `path` names, if any.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    let segs: Vec<&str> = path
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    (1..=segs.len())
        .rev()
        .map(|k| segs[..k].join("::"))
        .find(|cand| modules.contains(cand))
}

fn split_path(p: &str) -> Vec<String> {
    p.split("::").map(|s| s.trim().to_string()).collect()
}

/// The paths of a use tree (`a::{b, c::{d, e as f}}` gives `a::b`, `a::c::d`, `a::c::e`).
fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{')
        && tree.ends_with('}')
    {
        let prefix = &tree[..open];
        let inner = &tree[open + 1..tree.len() - 1];
        let mut parts = Vec::new();
        let (mut depth, mut cur) = (0, String::new());
        for ch in inner.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if ch == ',' && depth == 0 {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(ch);
            }
        }
        parts.push(cur);
        return parts
            .iter()
            .filter(|p| !p.trim().is_empty())
            .flat_map(|p| expand_use(p))
            .map(|p| format!("{prefix}{p}"))
            .collect();
    }
    let path = tree.split(" as ").next().unwrap_or("");
    vec![path.split_whitespace().collect::<String>()]
}

/// Positions of the word `w` in `s` (not inside a longer identifier).
fn words<'a>(s: &'a str, w: &'a str) -> impl Iterator<Item = usize> + 'a {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    s.match_indices(w).map(|(k, _)| k).filter(move |&k| {
        let b = s.as_bytes();
        (k == 0 || !is_word(b[k - 1])) && b.get(k + w.len()).is_none_or(|c| !is_word(*c))
    })
}

/// The identifier starting at `k`.
fn ident_at(s: &str, k: usize) -> &str {
    let end = s[k..]
        .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
        .map_or(s.len(), |e| k + e);
    &s[k..end]
}

/// The path (`[\w:]*`) starting at `k`.
fn path_at(s: &str, k: usize) -> &str {
    let end = s[k..]
        .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == ':'))
        .map_or(s.len(), |e| k + e);
    &s[k..end]
}

/// For each byte of `code`, the inline modules (`mod name { .. }`) it is in.
fn inline_modules(code: &str) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut at = Vec::with_capacity(b.len());
    let mut pending: Option<String> = None;
    let mods: BTreeMap<usize, String> = words(code, "mod")
        .filter_map(|k| {
            let rest = &code[k + 3..];
            let name_at = k + 3 + (rest.len() - rest.trim_start().len());
            let name = ident_at(code, name_at);
            let after = code[name_at + name.len()..].trim_start();
            (!name.is_empty() && after.starts_with('{'))
                .then(|| (name_at + name.len(), name.to_string()))
        })
        .collect();
    for (k, ch) in b.iter().enumerate() {
        if let Some(n) = mods.get(&k) {
            pending = Some(n.clone());
        }
        match ch {
            b'{' => {
                depth += 1;
                if let Some(n) = pending.take() {
                    open.push((n, depth));
                }
            }
            b'}' => {
                if open.last().is_some_and(|(_, d)| *d == depth) {
                    open.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        at.push(open.iter().map(|(n, _)| n.clone()).collect());
    }
    at
}

/// The modules that module `m` (source `text`) imports.
fn edges_of(m: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = strip(text);
    let base: Vec<String> = if m.is_empty() { vec![] } else { split_path(m) };
    let inline = inline_modules(&code);
    let here = |k: usize| -> Vec<String> {
        let mut p = base.clone();
        p.extend(inline.get(k).cloned().unwrap_or_default());
        p
    };
    let children: BTreeSet<&str> = words(&code, "mod")
        .filter_map(|k| {
            let rest = &code[k + 3..];
            let name_at = k + 3 + (rest.len() - rest.trim_start().len());
            let name = ident_at(&code, name_at);
            let after = code[name_at + name.len()..].trim_start();
            (!name.is_empty() && after.starts_with(';')).then_some(name)
        })
        .collect();
    let child_path = |p: &str| -> Vec<String> {
        let mut v = base.clone();
        v.extend(split_path(p));
        v
    };
    let mut deps = BTreeSet::new();
    let mut add = |p: Vec<String>| {
        if let Some(r) = resolve(&p, modules) {
            deps.insert(r);
        }
    };
    // `use` declarations.
    for k in words(&code, "use") {
        let after = &code[k + 3..];
        if !after.starts_with(char::is_whitespace) {
            continue;
        }
        let Some(end) = after.find(';') else { continue };
        for full in expand_use(&after[..end]) {
            let segs = split_path(&full);
            let ups = segs.iter().take_while(|s| *s == "super").count();
            if segs[0] == "crate" {
                add(segs[1..].to_vec());
            } else if ups > 0 {
                let mut p = up(&here(k), ups);
                p.extend(segs[ups..].iter().cloned());
                add(p);
            } else if segs[0] == "self" {
                let mut p = here(k);
                p.extend(segs[1..].iter().cloned());
                add(p);
            } else if children.contains(segs[0].as_str()) {
                add(child_path(&full));
            }
        }
    }
    // `crate::` paths anywhere (`$crate::` and `pub(in crate::..)` included).
    for k in words(&code, "crate") {
        if code[k + 5..].starts_with("::") {
            add(split_path(path_at(&code, k + 7)));
        }
    }
    // `super::` chains anywhere, each read from its first `super`.
    for k in words(&code, "super") {
        let before = &code[..k];
        if before.ends_with("super::") || !code[k + 5..].starts_with("::") {
            continue;
        }
        let chain = path_at(&code, k);
        let segs = split_path(chain);
        let ups = segs.iter().take_while(|s| *s == "super").count();
        let mut p = up(&here(k), ups);
        p.extend(segs[ups..].iter().cloned());
        add(p);
    }
    // `child::` for a child module declared with `mod child;`.
    for child in &children {
        let found = code.match_indices(&format!("{child}::")).any(|(k, _)| {
            k == 0 || {
                let b = code.as_bytes()[k - 1];
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            }
        });
        if found {
            add(child_path(child));
        }
    }
    deps.remove(m);
    deps
}

/// The import graph of a crate: every module with the modules it imports.
fn import_graph(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(m, text)| {
            let mut e = edges_of(m, text, &modules);
            e.remove("");
            (m.clone(), e)
        })
        .collect()
}

// ------------------------------------------------------------------ the loops

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<BTreeSet<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = BTreeSet::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on_stack.remove(w);
                    comp.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

// ------------------------------------------------------------------ the analysis itself

fn graph_of(files: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    import_graph(&files)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn edges_come_from_code_only() {
    let g = graph_of(&[
        ("", "pub mod a;\npub mod b;\npub mod c;"),
        (
            "a",
            "// use crate::b;\n/* crate::c::X /* nested */ crate::c */\n\
             const S: &str = \"crate::b::Y\"; const R: &str = r#\"crate::c\"#;\n\
             fn f<'a>(x: &'a u8) -> char { let _ = '\"'; 'x' }",
        ),
        ("b", "fn f() -> crate::c::T { todo!() }"),
        ("c", ""),
    ]);
    assert_eq!(g["a"], set(&[]));
    assert_eq!(g["b"], set(&["c"]));
}

#[test]
fn use_trees_super_and_children() {
    let g = graph_of(&[
        ("", "mod x;\nmod y;"),
        (
            "x",
            "mod p;\nmod q;\nuse crate::{y::{A, B as C}, z};\nuse p::D;\nfn f() { q::g() }",
        ),
        ("x::p", "use super::super::y::E;"),
        (
            "x::q",
            "#[cfg(test)]\nmod tests {\n    use super::*;\n}\nuse super::p::F;",
        ),
        ("y", "pub(in crate::x) struct A;"),
    ]);
    assert_eq!(g["x"], set(&["x::p", "x::q", "y"]));
    assert_eq!(g["x::p"], set(&["y"]));
    // `super` inside `mod tests` is `x::q` itself.
    assert_eq!(g["x::q"], set(&["x::p"]));
    assert_eq!(g["y"], set(&["x"]));
    assert_eq!(cycles(&g), vec![set(&["x", "x::p", "x::q", "y"])]);
}
