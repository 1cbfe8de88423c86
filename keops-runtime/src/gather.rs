//! The CPU driver of gathers: sums of a formula over selected pairs only, the gradients
//! of Min, Max and KMin reductions (through the indices they selected).
//!
//! For every row `r` of the axis that selected (the owner) and every slot `s` of its
//! index row, with `j = indices[r][s]` (skipped when no index was selected), the kernel
//! evaluates its formula at `(r, j)` with a per-slot cotangent `weight[r][s] * basis(s mod
//! D)`, and the result is added to row `r` of the output (owner-indexed output) or row
//! `j` (the other index).

use crate::error::{InputError, InputGroup, KeopsError, Result, Shape};
use crate::gpu::resident::{fetch_stale, with_fetched};
use crate::kernel::KeopsFloat;
use crate::view::{View, check_shape, check_views};

// The kernel interface, at the path generated code names it by.
pub use crate::kernel::{CpuGather, GatherArgs};
use keops_ir::INDEX_NONE;
use keops_ir::eval::Output;
use rayon::prelude::*;

fn gather_row<T: KeopsFloat, K: CpuGather<T>>(
    k: &K,
    a: &GatherArgs<'_, T>,
    r: usize,
    bufs: &mut GatherBufs<T>,
    mut emit: impl FnMut(usize, &[T]),
) {
    let d = k.slot_dim();
    let width = a.indices.idim;
    for s in 0..width {
        let j = a.indices.indices[r * width + s];
        if j == INDEX_NONE {
            continue;
        }
        let j = j as usize;
        let mut w = T::zero();
        for (v, broadcast) in &a.weights {
            w = w + v.at(if *broadcast { 0 } else { r }, s);
        }
        bufs.slot.fill(T::zero());
        bufs.slot[s % d] = w;
        let mut off = 0;
        for v in &a.other {
            v.copy_row(j, &mut bufs.other[off..off + v.cols()]);
            off += v.cols();
        }
        k.eval(
            &bufs.owner,
            &bufs.other,
            &bufs.params,
            &bufs.slot,
            &mut bufs.out,
        );
        emit(j, &bufs.out);
    }
}

struct GatherBufs<T> {
    owner: Vec<T>,
    other: Vec<T>,
    params: Vec<T>,
    slot: Vec<T>,
    out: Vec<T>,
}

/// Runs a gather on the CPU.
pub fn gather<T: KeopsFloat, K: CpuGather<T>>(k: &K, a: &GatherArgs<'_, T>) -> Result<Output<T>> {
    let (wo, wi, wp) = k.widths();
    check_views(InputGroup::Owner, &a.owner, &wo, Some(a.n_owner))?;
    check_views(InputGroup::Other, &a.other, &wi, Some(a.n_other))?;
    check_views(InputGroup::Params, &a.params, &wp, Some(1))?;
    let (rows, width) = (a.indices.rows, a.indices.idim);
    if rows != a.n_owner {
        return Err(InputError::Selections {
            expected: Shape::new(a.n_owner, width),
            got: Shape::new(rows, width),
        }
        .into());
    }
    if Some(a.indices.indices.len()) != rows.checked_mul(width) {
        return Err(KeopsError::internal(format!(
            "selections of {rows} rows of {width} indices hold {} indices",
            a.indices.indices.len()
        )));
    }
    let slot_width = k.slot_dim();
    if !width.is_multiple_of(slot_width.max(1)) {
        return Err(InputError::SelectionSlots { width, slot_width }.into());
    }
    // The indices select rows of the other index.
    if let Some(&index) = a
        .indices
        .indices
        .iter()
        .find(|j| **j != INDEX_NONE && **j >= a.n_other as u64)
    {
        let rows = a.n_other;
        return Err(InputError::SelectedIndex { index, rows }.into());
    }
    for (index, (v, broadcast)) in a.weights.iter().enumerate() {
        let rows = if *broadcast { 1 } else { a.n_owner };
        check_shape(v, InputGroup::Cotangents, index, rows, width)?;
    }
    // Device arrays that kernels wrote on their device: their values, fetched.
    let weight_views: Vec<View<'_, T>> = a.weights.iter().map(|(v, _)| *v).collect();
    let fetched = [
        fetch_stale(&a.owner)?,
        fetch_stale(&a.other)?,
        fetch_stale(&a.params)?,
        fetch_stale(&weight_views)?,
    ];
    let a = &GatherArgs {
        owner: with_fetched(&a.owner, &fetched[0])?,
        other: with_fetched(&a.other, &fetched[1])?,
        params: with_fetched(&a.params, &fetched[2])?,
        weights: with_fetched(&weight_views, &fetched[3])?
            .into_iter()
            .zip(&a.weights)
            .map(|(v, (_, broadcast))| (v, *broadcast))
            .collect(),
        ..a.clone()
    };
    let vdim = k.out_dim();
    let params: Vec<T> = a
        .params
        .iter()
        .flat_map(|v| (0..v.cols()).map(move |c| v.at(0, c)))
        .collect();
    let new_bufs = |r: Option<usize>| {
        let mut owner = vec![T::zero(); wo.iter().sum()];
        if let Some(r) = r {
            let mut off = 0;
            for v in &a.owner {
                v.copy_row(r, &mut owner[off..off + v.cols()]);
                off += v.cols();
            }
        }
        GatherBufs {
            owner,
            other: vec![T::zero(); wi.iter().sum()],
            params: params.clone(),
            slot: vec![T::zero(); k.slot_dim()],
            out: vec![T::zero(); vdim],
        }
    };
    let fill_owner = |bufs: &mut GatherBufs<T>, r: usize| {
        let mut off = 0;
        for v in &a.owner {
            v.copy_row(r, &mut bufs.owner[off..off + v.cols()]);
            off += v.cols();
        }
    };
    if a.to_owner {
        let mut values = vec![T::zero(); a.n_owner * vdim];
        values
            .par_chunks_mut(vdim.max(1))
            .enumerate()
            .for_each(|(r, row)| {
                let mut bufs = new_bufs(Some(r));
                gather_row(k, a, r, &mut bufs, |_, v| {
                    for (o, x) in row.iter_mut().zip(v) {
                        *o = *o + *x;
                    }
                });
            });
        Ok(Output {
            rows: a.n_owner,
            vdim,
            values,
            idim: 0,
            indices: vec![],
        })
    } else {
        // Scattered: each thread sums into its own copy, then the copies are added.
        let threads = rayon::current_num_threads().max(1);
        let chunk = a.n_owner.div_ceil(threads).max(1);
        let parts: Vec<Vec<T>> = (0..a.n_owner.div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut part = vec![T::zero(); a.n_other * vdim];
                let mut bufs = new_bufs(None);
                for r in c * chunk..((c + 1) * chunk).min(a.n_owner) {
                    fill_owner(&mut bufs, r);
                    gather_row(k, a, r, &mut bufs, |j, v| {
                        for (o, x) in part[j * vdim..(j + 1) * vdim].iter_mut().zip(v) {
                            *o = *o + *x;
                        }
                    });
                }
                part
            })
            .collect();
        let mut values = vec![T::zero(); a.n_other * vdim];
        for p in parts {
            for (o, x) in values.iter_mut().zip(p) {
                *o = *o + x;
            }
        }
        Ok(Output {
            rows: a.n_other,
            vdim,
            values,
            idim: 0,
            indices: vec![],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::KeopsError;

    /// `owner * other * slot` at each selected pair (widths 1).
    struct Product;

    impl CpuGather<f64> for Product {
        fn widths(&self) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
            (vec![1], vec![1], vec![])
        }
        fn slot_dim(&self) -> usize {
            1
        }
        fn out_dim(&self) -> usize {
            1
        }
        fn eval(&self, owner: &[f64], other: &[f64], _: &[f64], slot: &[f64], out: &mut [f64]) {
            out[0] = owner[0] * other[0] * slot[0];
        }
    }

    fn selections(rows: usize, idim: usize, indices: Vec<u64>) -> Output<f64> {
        Output {
            rows,
            vdim: 0,
            values: vec![],
            idim,
            indices,
        }
    }

    /// Every input of the CPU gather is checked against the others before any is read:
    /// views of other shapes, selected indices beyond the selected rows, cotangents of
    /// another shape are input errors, not reads out of bounds.
    #[test]
    fn gather_inputs_are_checked_before_any_read() {
        let (owner, other, w) = ([2.0, 3.0], [1.0, 10.0, 100.0], [1.0, 0.5]);
        let owner = View::row_major(&owner, 2, 1).unwrap();
        let other = View::row_major(&other, 3, 1).unwrap();
        let weights = View::row_major(&w, 2, 1).unwrap();
        let good = selections(2, 1, vec![0, 2]);
        let args = |indices, owner, other, weights| GatherArgs {
            owner: vec![owner],
            other: vec![other],
            params: vec![],
            indices,
            weights: vec![weights],
            n_owner: 2,
            n_other: 3,
            to_owner: true,
        };
        let out = gather(&Product, &args(&good, owner, other, (weights, false))).unwrap();
        assert_eq!(out.values, vec![2.0, 3.0 * 100.0 * 0.5]);
        let input = |r: Result<Output<f64>>| match r {
            Err(KeopsError::Input(e)) => e,
            other => panic!("expected an input error, got {other:?}"),
        };
        // A selected index beyond the 3 rows of the other index.
        let beyond = selections(2, 1, vec![0, 3]);
        assert_eq!(
            input(gather(
                &Product,
                &args(&beyond, owner, other, (weights, false))
            )),
            InputError::SelectedIndex { index: 3, rows: 3 }
        );
        // Fewer rows than the index has, for each group.
        let short = other.rows_range(..2).unwrap();
        assert_eq!(
            input(gather(
                &Product,
                &args(&good, owner, short, (weights, false))
            )),
            InputError::InputRows {
                group: InputGroup::Other,
                index: 0,
                expected: 3,
                got: 2
            }
        );
        let short = owner.rows_range(..1).unwrap();
        assert_eq!(
            input(gather(
                &Product,
                &args(&good, short, other, (weights, false))
            )),
            InputError::InputRows {
                group: InputGroup::Owner,
                index: 0,
                expected: 2,
                got: 1
            }
        );
        // Cotangents: one row per owner row (or one, broadcast), one value per slot.
        let one = weights.rows_range(..1).unwrap();
        assert_eq!(
            input(gather(&Product, &args(&good, owner, other, (one, false)))),
            InputError::InputRows {
                group: InputGroup::Cotangents,
                index: 0,
                expected: 2,
                got: 1
            }
        );
        assert!(gather(&Product, &args(&good, owner, other, (one, true))).is_ok());
        let wide = View::row_major(&[1.0, 2.0, 3.0, 4.0], 2, 2).unwrap();
        assert_eq!(
            input(gather(&Product, &args(&good, owner, other, (wide, false)))),
            InputError::InputWidth {
                group: InputGroup::Cotangents,
                index: 0,
                expected: 1,
                got: 2
            }
        );
        // Selections whose indices do not fill their shape.
        let torn = selections(2, 1, vec![0]);
        let e = gather(&Product, &args(&torn, owner, other, (weights, false))).unwrap_err();
        assert!(e.to_string().contains("hold 1 indices"), "{e}");
    }
}
