//! The CPU driver of gathers: sums of a formula over selected pairs only, the gradients
//! of Min, Max and KMin reductions (through the indices they selected).
//!
//! For every row `r` of the axis that selected (the owner) and every slot `s` of its
//! index row, with `j = indices[r][s]` (skipped when no index was selected), the kernel
//! evaluates its formula at `(r, j)` with a per-slot cotangent `weight[r][s] * basis(s mod
//! D)`, and the result is added to row `r` of the output (owner-indexed output) or row
//! `j` (the other index).

use crate::error::{InputError, InputGroup, Result, Shape};
use crate::gpu::resident::{fetch_stale, with_fetched};
use crate::kernel::KeopsFloat;
use crate::view::{View, check_views};

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
            v.copy_row(j, &mut bufs.other[off..off + v.cols]);
            off += v.cols;
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
    check_views(InputGroup::Owner, &a.owner, &wo, None)?;
    check_views(InputGroup::Other, &a.other, &wi, None)?;
    check_views(InputGroup::Params, &a.params, &wp, None)?;
    let (rows, width) = (a.indices.rows, a.indices.idim);
    if rows != a.n_owner {
        return Err(InputError::Selections {
            expected: Shape::new(a.n_owner, width),
            got: Shape::new(rows, width),
        }
        .into());
    }
    let slot_width = k.slot_dim();
    if !width.is_multiple_of(slot_width.max(1)) {
        return Err(InputError::SelectionSlots { width, slot_width }.into());
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
        .flat_map(|v| (0..v.cols).map(move |c| v.at(0, c)))
        .collect();
    let new_bufs = |r: Option<usize>| {
        let mut owner = vec![T::zero(); wo.iter().sum()];
        if let Some(r) = r {
            let mut off = 0;
            for v in &a.owner {
                v.copy_row(r, &mut owner[off..off + v.cols]);
                off += v.cols;
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
            v.copy_row(r, &mut bufs.owner[off..off + v.cols]);
            off += v.cols;
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
