//! The reduction table ([`REDUCTIONS`]) is complete and consistent: every row's name
//! parses in both syntaxes and prints back, its columns agree with each other, and its
//! widths are those of its lowered hooks. The numerical checks of every row are in
//! `reductions.rs` (naive loops, lowered hooks against the reference) and `gradients.rs`
//! (finite differences), which also check that they cover every row of the table.

mod support;

use keops_ir::Dim;
use keops_ir::lower::{Lower, SumMode, lower_hooks};
use keops_ir::reduction::{
    Backward, CpuTile, REDUCTIONS, ReductionId, ReductionKind, Rule, Selected, Weight,
};
use support::parse;

/// Every row with K = 3 (ignored by the rows without K).
fn kinds() -> Vec<ReductionKind> {
    ReductionId::ALL.iter().map(|id| id.with_k(3)).collect()
}

/// A formula for `kind` in the concise syntax (`out_i`: reduced over j), with its widths
/// declared: F has width `fdim` (1 where the rule needs a scalar), G width 2.
fn formula(kind: ReductionKind, fdim: usize, weighted: bool, out_i: bool) -> String {
    let (suffix, f) = if out_i {
        ("_j", "x_i - y_j")
    } else {
        ("_i", "y_j - x_i")
    };
    let f = if kind.needs_scalar_formula() {
        format!("Sum({f})")
    } else {
        f.to_string()
    };
    let mut s = format!(
        "x_i: {fdim}; y_j: {fdim}; g_j: 2; {}{suffix}({f}",
        kind.name()
    );
    if let Some(k) = kind.k() {
        s.push_str(&format!(", {k}"));
    }
    if weighted {
        s.push_str(", g_j");
    }
    s.push(')');
    s
}

/// The weightings a row accepts.
fn weightings(kind: ReductionKind) -> Vec<bool> {
    match kind.spec().weight {
        Weight::None => vec![false],
        Weight::Optional => vec![false, true],
        Weight::Required => vec![true],
    }
}

#[test]
fn the_table_is_indexed_by_its_ids_and_names() {
    assert_eq!(REDUCTIONS.len(), ReductionId::ALL.len());
    for (k, id) in ReductionId::ALL.iter().enumerate() {
        assert_eq!(*id as usize, k);
        let spec = id.spec();
        assert!(std::ptr::eq(spec, &REDUCTIONS[k]));
        assert_eq!(
            ReductionId::from_name(spec.name),
            Some(*id),
            "{}",
            spec.name
        );
        for k in [1, 4] {
            let kind = id.with_k(k);
            assert_eq!(kind.id(), *id);
            assert_eq!(kind.k(), spec.takes_k.then_some(k), "{}", spec.name);
            assert_eq!(kind.slots(), if spec.takes_k { k } else { 1 });
        }
    }
    let mut names: Vec<&str> = REDUCTIONS.iter().map(|r| r.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), REDUCTIONS.len(), "two rows share a name");
}

#[test]
fn the_columns_agree_with_each_other() {
    for kind in kinds() {
        let spec = kind.spec();
        let name = spec.name;
        // Each rule has its gradient rule; selections without values have none.
        let backward = match spec.rule {
            Rule::Sum => Backward::Linear,
            Rule::LogSumExp => Backward::LogSumExp,
            Rule::SoftMaxWeight => Backward::SoftMaxWeight,
            Rule::Select { output, .. } if output.values() => Backward::Selected,
            Rule::Select { .. } => Backward::Zero,
        };
        assert_eq!(spec.backward, backward, "{name}: backward");
        assert_eq!(
            spec.backward == Backward::Zero,
            !kind.has_values(),
            "{name}"
        );
        // The CPU tile follows the rule.
        let tiles: &[CpuTile] = match spec.rule {
            Rule::Select { .. } => &[CpuTile::Select],
            Rule::LogSumExp => &[CpuTile::TwoPassLogSumExp, CpuTile::Lanes],
            Rule::Sum | Rule::SoftMaxWeight => &[CpuTile::Lanes],
        };
        assert!(tiles.contains(&spec.cpu_tile), "{name}: CPU tile");
        // Tile sums are for sums only; weights for the exponential reductions, whose F
        // is a scalar.
        assert!(!spec.gpu.tile_sums || kind.is_sum(), "{name}: tile sums");
        assert_eq!(kind.takes_weight(), kind.needs_scalar_formula(), "{name}");
        assert_eq!(kind.selects(), matches!(spec.rule, Rule::Select { .. }));
        // A selection without indices has a variant with them, of the same order and K,
        // which its gradient uses.
        match (spec.rule, kind.with_indices()) {
            (Rule::Select { order, output }, Some(with)) => {
                assert!(!output.indices(), "{name}");
                assert_eq!(
                    with.rule(),
                    Rule::Select {
                        order,
                        output: Selected::Both
                    },
                    "{name}"
                );
                assert_eq!(with.k(), kind.k(), "{name}");
            }
            (Rule::Select { output, .. }, None) => assert!(output.indices(), "{name}"),
            (_, with) => assert_eq!(with, None, "{name}"),
        }
    }
}

#[test]
fn every_name_parses_in_both_syntaxes_and_prints_back() {
    for kind in kinds() {
        for weighted in weightings(kind) {
            for out_i in [true, false] {
                let text = formula(kind, 2, weighted, out_i);
                let p = parse(&text);
                let r = p.reductions().next().expect("one reduction");
                assert_eq!(r.kind, kind, "{text}");
                assert_eq!(r.weight.is_some(), weighted, "{text}");
                let back = parse(&p.to_string());
                assert_eq!(back.to_string(), p.to_string(), "{text}");
                assert_eq!(back.reductions().next().map(|r| r.kind), Some(kind));
            }
        }
        // The KeOps string syntax: `Name_Reduction(F, [K,] tag[, G])`.
        let f = if kind.needs_scalar_formula() {
            "Sum(x - y)"
        } else {
            "x - y"
        };
        let k = kind.k().map(|k| format!("{k}, ")).unwrap_or_default();
        let g = if kind.spec().weight == Weight::Required {
            ", g"
        } else {
            ""
        };
        let text = format!(
            "x = Vi(2); y = Vj(2); g = Vj(2); {}_Reduction({f}, {k}0{g})",
            kind.name()
        );
        let p = parse(&text);
        assert_eq!(p.reductions().next().map(|r| r.kind), Some(kind), "{text}");
    }
}

#[test]
fn a_missing_or_extra_weight_is_an_error() {
    for kind in kinds() {
        let extra = format!(
            "{}, g_j, g_j)",
            formula(kind, 1, true, true).trim_end_matches(')')
        );
        assert!(
            keops_ir::Program::parse(&extra).is_err(),
            "{extra} should be refused"
        );
        match kind.spec().weight {
            Weight::Required => {
                let e = keops_ir::Program::parse(&formula(kind, 1, false, true)).unwrap_err();
                assert!(
                    e.to_string().contains("needs a second formula G"),
                    "{}: {e}",
                    kind.name()
                );
            }
            Weight::None => {
                let text = formula(kind, 1, true, true);
                assert!(keops_ir::Program::parse(&text).is_err(), "{text}");
            }
            Weight::Optional => {}
        }
    }
}

#[test]
fn widths_are_those_of_the_lowered_hooks() {
    for kind in kinds() {
        for fdim in [1, 2, 3] {
            let fdim = if kind.needs_scalar_formula() { 1 } else { fdim };
            for weighted in weightings(kind) {
                let gdim = if weighted { 2 } else { 1 };
                let hooks = lower_hooks(
                    &mut Lower::new(),
                    kind,
                    fdim,
                    gdim,
                    weighted,
                    SumMode::Plain,
                );
                let (nf, ni) = kind.acc_width(fdim, gdim);
                assert_eq!(hooks.acc.len(), nf + ni, "{kind}: accumulator");
                let (ov, oi) = kind.output_width(fdim, gdim);
                assert_eq!((hooks.out_values, hooks.out_indices), (ov, oi), "{kind}");
                assert_eq!(ov > 0, kind.has_values(), "{kind}");
                assert_eq!(oi > 0, kind.has_indices(), "{kind}");
                let (dv, di) = kind.output_dims(&Dim::known(fdim), &Dim::known(gdim));
                assert_eq!(
                    (dv.as_known(), di.as_known()),
                    (Some(ov), Some(oi)),
                    "{kind}"
                );
                // The shared registers come first and are floats.
                assert!(kind.shared_state() <= nf, "{kind}");
                // The checked program has the same output widths.
                let p = parse(&formula(kind, fdim, weighted, true));
                let info = p.output_info();
                assert_eq!(
                    (info.values.as_known(), info.indices.as_known()),
                    (Some(ov), Some(oi)),
                    "{kind}"
                );
            }
        }
    }
}
