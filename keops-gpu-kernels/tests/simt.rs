//! The generated GPU kernels, run by the SIMT interpreter, against the reference
//! evaluator: every operation (hand-checked values with special values, and gradients at
//! random points), every reduction over i and j, the 1D and 2D schemes with several block
//! and tile sizes, chunked wide formulas, f32 and f64. The interpreter fails on races,
//! out-of-bounds accesses, uninitialized registers and broken barriers, so that a logic
//! bug of a generated kernel fails here, without a GPU.

#[path = "../../keops-ir/tests/common/mod.rs"]
mod common;
#[path = "../../keops-ir/tests/op_cases/mod.rs"]
mod op_cases;
mod ptx_launcher;

use common::{all_close, ij_program_text, no_panic, report, sample};
use keops_gpu_kernels::gather::compile_gather;
use keops_gpu_kernels::launch::{DeviceLimits, PlanOptions};
use keops_gpu_kernels::module::InputSource;
use keops_gpu_kernels::scheme::{KernelOptions, ReductionKernels, reduction_kernels};
use keops_gpu_kernels::simt::{Kir, Launcher, run_gather_on, run_reduction_on};
use keops_ir::eval::{Array, BackendStep, EvalOptions, Output};
use keops_ir::graph::VarSource;
use keops_ir::lower::{Precision, SumMode, lower_reduction};
use keops_ir::program::Gather;
use keops_ir::{Cat, Error, ErrorKind, Program, Real, Step};
use op_cases::{GradKind, grad_cases, value_cases};
use ptx_launcher::Ptx;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cell::Cell;

/// A small device: few multiprocessors, so that the automatic plan picks the 2D scheme
/// for moderate sizes; 8 KiB of shared memory by default, 16 KiB with opt-in, so that wide
/// variables get tiles shorter than the block.
const SMALL_GPU: DeviceLimits = DeviceLimits {
    multiprocessors: 3,
    max_block: 1024,
    shared_default: 8 * 1024,
    shared_optin: 16 * 1024,
};

fn precision<R: Real>() -> Precision {
    if R::BITS == 32 {
        Precision::F32
    } else {
        Precision::F64
    }
}

/// Lowers every reduction of `p` and checks what every kernel is built from.
fn kernels_of<R: Real>(
    p: &Program,
    r: &keops_ir::program::Reduce,
    kopts: &KernelOptions,
) -> Result<ReductionKernels, Error> {
    let k = lower_reduction(p, r, SumMode::Plain)?;
    Ok(reduction_kernels(&k, precision::<R>(), kopts, "keops_test"))
}

/// Evaluates `p` with every reduction step run by the SIMT interpreter (the other steps
/// by the reference evaluator); returns the output and the number of kernel runs.
fn simt_eval<R: Real>(
    p: &Program,
    args: &[Array<'_, R>],
    plan: &PlanOptions,
    opts: &EvalOptions,
) -> Result<(Output<R>, usize), String> {
    simt_eval_with(p, args, plan, opts, &KernelOptions::default())
}

/// [`simt_eval`] with code generation options.
fn simt_eval_with<R: Real>(
    p: &Program,
    args: &[Array<'_, R>],
    plan: &PlanOptions,
    opts: &EvalOptions,
    kopts: &KernelOptions,
) -> Result<(Output<R>, usize), String> {
    let runs = Cell::new(0);
    let out = p
        .evaluate_with(args, opts, &mut |step| {
            let r = match step.step {
                Step::Reduce(r) => r,
                Step::Gather(g) => {
                    let out = simt_gather(step, g, kopts)?;
                    runs.set(runs.get() + 1);
                    return Ok(Some(out));
                }
                _ => return Ok(None),
            };
            let rk = kernels_of::<R>(step.program, r, kopts)?;
            let data: Vec<(&[R], usize)> = rk
                .inputs
                .iter()
                .map(|i| step.data(i.source))
                .collect::<Result<_, _>>()?;
            let (n_outer, n_inner) = match rk.out_rows {
                Cat::J => (step.n, step.m),
                _ => (step.m, step.n),
            };
            let sizes = (n_outer, n_inner);
            let (values, indices) = reduction(&Kir, &rk, &data, sizes, plan)?;
            // The printed PTX, run by the PTX interpreter, computes the same bits.
            let (ptx_values, ptx_indices) = reduction(&Ptx, &rk, &data, sizes, plan)?;
            let bits = |v: &[R]| v.iter().map(|x| x.to_bits_i64()).collect::<Vec<_>>();
            if bits(&values) != bits(&ptx_values) || indices != ptx_indices {
                return Err(Error::new(
                    ErrorKind::Input,
                    format!("the PTX interpreter differs from the kernel IR's: {ptx_values:?} {ptx_indices:?} vs {values:?} {indices:?}"),
                ));
            }
            runs.set(runs.get() + 1);
            Ok(Some(Output {
                rows: n_outer,
                vdim: rk.out_values,
                values,
                idim: rk.out_indices,
                indices,
            }))
        })
        .map_err(|e| e.to_string())?;
    Ok((out, runs.get()))
}

/// [`run_reduction_on`] on [`SMALL_GPU`] with `launcher`, whose name its error gives.
fn reduction<R: Real>(
    launcher: &(impl Launcher + std::fmt::Debug),
    rk: &ReductionKernels,
    data: &[(&[R], usize)],
    (n_outer, n_inner): (usize, usize),
    plan: &PlanOptions,
) -> Result<(Vec<R>, Vec<u64>), Error> {
    run_reduction_on(launcher, rk, data, n_outer, n_inner, &SMALL_GPU, plan)
        .map_err(|e| Error::new(ErrorKind::Input, format!("{launcher:?} run failed: {e}")))
}

/// Runs a gather step in the SIMT interpreter (kernel IR and printed PTX, which must
/// agree bit for bit).
fn simt_gather<R: Real>(
    step: BackendStep<'_, '_, R>,
    g: &Gather,
    kopts: &KernelOptions,
) -> Result<Output<R>, Error> {
    let err = |what: String| Error::new(ErrorKind::Input, what);
    let (kernel, meta) = compile_gather(step.program, g, precision::<R>(), kopts, 0)?;
    let data: Vec<(&[R], usize)> = meta
        .inputs
        .iter()
        .map(|i| {
            step.data(match i.source {
                InputSource::Arg(a) => VarSource::Arg(a),
                InputSource::Buffer(b) => VarSource::Buffer(b),
            })
        })
        .collect::<Result<_, _>>()?;
    let indices = step.bufs[g.indices]
        .as_ref()
        .ok_or_else(|| err("the selections are not computed".into()))?;
    let (n_owner, n_other) = match g.owner {
        Cat::I => (step.m, step.n),
        _ => (step.n, step.m),
    };
    // The per-slot weights: the sum of the cotangent sources (one row broadcast for P).
    let mut weights = vec![R::zero(); n_owner * meta.slots];
    for w in &g.weight {
        let (values, _) = step.data(w.source)?;
        for (k, x) in weights.iter_mut().enumerate() {
            let at = if w.cat == Cat::P { k % meta.slots } else { k };
            *x = *x + values[at];
        }
    }
    let sizes = (n_owner, n_other);
    let values = run_gather_on(
        &Kir,
        &kernel,
        &meta,
        &data,
        &indices.indices,
        &weights,
        sizes,
        8,
    )
    .map_err(|e| err(format!("gather, Kir: {e}")))?;
    let ptx_values = run_gather_on(
        &Ptx,
        &kernel,
        &meta,
        &data,
        &indices.indices,
        &weights,
        sizes,
        8,
    )
    .map_err(|e| err(format!("gather, Ptx: {e}")))?;
    let bits = |v: &[R]| v.iter().map(|x| x.to_bits_i64()).collect::<Vec<_>>();
    if bits(&values) != bits(&ptx_values) {
        return Err(err(
            "the PTX interpreter's gather differs from the kernel IR's".into(),
        ));
    }
    Ok(Output {
        rows: if meta.to_owner { n_owner } else { n_other },
        vdim: meta.out_dim,
        values,
        idim: 0,
        indices: vec![],
    })
}

/// Evaluator options of the one-row operation tests: M = N = 1 whatever the variables.
fn one_row() -> EvalOptions {
    EvalOptions {
        m: Some(1),
        n: Some(1),
        ..EvalOptions::default()
    }
}

fn reference<R: Real>(
    p: &Program,
    args: &[Array<'_, R>],
    opts: &EvalOptions,
) -> Result<Output<R>, String> {
    p.evaluate(args, opts).map_err(|e| e.to_string())
}

/// The first mismatch of two outputs, or `None` when they agree.
fn mismatch(
    got: &[f64],
    want: &[f64],
    gi: &[u64],
    wi: &[u64],
    rel: f64,
    abs: f64,
) -> Option<String> {
    if got.len() != want.len() || gi.len() != wi.len() {
        return Some(format!(
            "lengths {} + {} vs {} + {}",
            got.len(),
            gi.len(),
            want.len(),
            wi.len()
        ));
    }
    let bad = (0..got.len())
        .filter(|k| !common::close(got[*k], want[*k], rel, abs))
        .collect::<Vec<_>>();
    if let Some(k) = bad.first() {
        return Some(format!(
            "{} of {} values differ; first at {k}: {} instead of {}",
            bad.len(),
            got.len(),
            got[*k],
            want[*k]
        ));
    }
    let bad = (0..gi.len())
        .filter(|k| gi[*k] != wi[*k])
        .collect::<Vec<_>>();
    bad.first().map(|k| {
        format!(
            "{} of {} indices differ; first at {k}: {} instead of {}",
            bad.len(),
            gi.len(),
            gi[*k],
            wi[*k]
        )
    })
}

fn to_f64<R: Real>(v: &[R]) -> Vec<f64> {
    v.iter().map(|x| x.f64()).collect()
}

fn cast<R: Real>(v: &[f64]) -> Vec<R> {
    v.iter().map(|x| R::of(*x)).collect()
}

/// The plans every reduction is run with: 1D with tiles as long as the block, 1D with
/// tiles shorter than the block (several tiles, a partial last one), 2D with three
/// slices, and the automatic plan of [`SMALL_GPU`].
fn plans() -> Vec<(&'static str, PlanOptions)> {
    vec![
        (
            "1D block 32",
            PlanOptions {
                block: Some(32),
                tile_rows: None,
                slices: Some(1),
            },
        ),
        (
            "1D block 16 tile 5",
            PlanOptions {
                block: Some(16),
                tile_rows: Some(5),
                slices: Some(1),
            },
        ),
        (
            "2D block 16 tile 7 slices 3",
            PlanOptions {
                block: Some(16),
                tile_rows: Some(7),
                slices: Some(3),
            },
        ),
        ("automatic", PlanOptions::default()),
    ]
}

// =====================================================================================
// Every operation
// =====================================================================================

/// Hand-checked values (special values included) of every operation, with the variables
/// alternately in registers (i) and in shared memory (j), in f64 and f32.
#[test]
fn every_operation_value() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for c in value_cases() {
        let text = ij_program_text(c.formula, &c.dims());
        let r = no_panic(|| {
            let p = Program::parse(&text).map_err(|e| format!("does not compile: {e}"))?;
            let args64 = c.args();
            let arrays: Vec<Array<'_, f64>> =
                args64.iter().map(|a| Array::new(a, 1, a.len())).collect();
            let plan = PlanOptions {
                block: Some(4),
                ..PlanOptions::default()
            };
            let (got, n) = simt_eval(&p, &arrays, &plan, &one_row())?;
            if !all_close(&got.values, &c.expected, 1e-12, 1e-14) {
                return Err(format!(
                    "f64: expected {:?}, got {:?}",
                    c.expected, got.values
                ));
            }
            let args32: Vec<Vec<f32>> = args64.iter().map(|a| cast(a)).collect();
            let arrays: Vec<Array<'_, f32>> =
                args32.iter().map(|a| Array::new(a, 1, a.len())).collect();
            let (got, _) = simt_eval(&p, &arrays, &plan, &one_row())?;
            let want = reference(&p, &arrays, &one_row())?;
            if !all_close(&to_f64(&got.values), &to_f64(&want.values), 1e-5, 1e-6) {
                return Err(format!(
                    "f32: reference {:?}, SIMT {:?}",
                    want.values, got.values
                ));
            }
            Ok(n)
        });
        match r {
            Ok(n) => runs += n,
            Err(e) => failures.push(format!("{text}: {e}")),
        }
    }
    report("SIMT values", &failures);
    assert_eq!(runs, value_cases().len(), "one f64 kernel per case");
}

/// Gradients of every differentiable operation (every variable, through i and j) at
/// random points, against the reference evaluator of the same gradient program.
#[test]
fn every_operation_gradient() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for c in grad_cases().into_iter().filter(|c| c.kind == GradKind::Fd) {
        let text = ij_program_text(c.formula, &c.dims());
        let r = no_panic(|| {
            let p = Program::parse(&text).map_err(|e| format!("does not compile: {e}"))?;
            let dout = p.output_info().values.as_known().ok_or("symbolic output")?;
            let mut rng = StdRng::seed_from_u64(text.len() as u64 * 7919);
            let mut n = 0;
            for pos in 0..c.vars.len() {
                let g = p
                    .grad(pos, "cot")
                    .map_err(|e| format!("gradient {pos}: {e}"))?;
                for _ in 0..2 {
                    let mut args = sample(&c.doms(), c.valid, &mut rng)?;
                    args.push((0..dout).map(|_| rng.random_range(-1.0..1.0)).collect());
                    let arrays: Vec<Array<'_, f64>> =
                        args.iter().map(|a| Array::new(a, 1, a.len())).collect();
                    let plan = PlanOptions {
                        block: Some(4),
                        ..PlanOptions::default()
                    };
                    let (got, k) = simt_eval(&g, &arrays, &plan, &one_row())?;
                    let want = reference(&g, &arrays, &one_row())?;
                    if !all_close(&got.values, &want.values, 1e-10, 1e-12) {
                        return Err(format!(
                            "d/d{}: reference {:?}, SIMT {:?} at {args:?}",
                            c.vars[pos].0, want.values, got.values
                        ));
                    }
                    n += k;
                }
            }
            Ok(n)
        });
        match r {
            Ok(n) => runs += n,
            Err(e) => failures.push(format!("{text}: {e}")),
        }
    }
    report("SIMT gradients", &failures);
    assert!(runs > 300, "only {runs} kernels ran");
}

// =====================================================================================
// Every reduction, both directions, every scheme
// =====================================================================================

/// Random rows: `rows x dim` values in [-1, 1), exactly representable in f32 so that the
/// f32 and f64 runs see the same inputs.
fn random(rng: &mut StdRng, rows: usize, dim: usize) -> Vec<f64> {
    (0..rows * dim)
        .map(|_| rng.random_range(-1.0f32..1.0) as f64)
        .collect()
}

/// Runs `text` (string syntax) with random arguments of the given (category, dimension)
/// through every plan in f64 and f32, against the reference evaluator.
fn check_program(
    text: &str,
    vars: &[(char, usize)],
    m: usize,
    n: usize,
    plans: &[(&str, PlanOptions)],
) -> Result<usize, String> {
    let p = Program::parse(text).map_err(|e| format!("does not compile: {e}"))?;
    let mut rng = StdRng::seed_from_u64(text.len() as u64);
    let rows = |c: char| match c {
        'i' => m,
        'j' => n,
        _ => 1,
    };
    let data: Vec<Vec<f64>> = vars
        .iter()
        .map(|(c, d)| random(&mut rng, rows(*c), *d))
        .collect();
    let arrays: Vec<Array<'_, f64>> = data
        .iter()
        .zip(vars)
        .map(|(a, (c, d))| Array::new(a, rows(*c), *d))
        .collect();
    let opts = EvalOptions::default();
    let want = reference(&p, &arrays, &opts)?;
    let data32: Vec<Vec<f32>> = data.iter().map(|a| cast(a)).collect();
    let arrays32: Vec<Array<'_, f32>> = data32
        .iter()
        .zip(vars)
        .map(|(a, (c, d))| Array::new(a, rows(*c), *d))
        .collect();
    let want32 = reference(&p, &arrays32, &opts)?;
    let mut runs = 0;
    for (name, plan) in plans {
        let (got, k) =
            simt_eval(&p, &arrays, plan, &opts).map_err(|e| format!("{name}, f64: {e}"))?;
        if let Some(e) = mismatch(
            &got.values,
            &want.values,
            &got.indices,
            &want.indices,
            1e-11,
            1e-12,
        ) {
            return Err(format!("{name}, f64: {e}"));
        }
        let (got, k32) =
            simt_eval(&p, &arrays32, plan, &opts).map_err(|e| format!("{name}, f32: {e}"))?;
        if let Some(e) = mismatch(
            &to_f64(&got.values),
            &want.values,
            &got.indices,
            &want32.indices,
            2e-4,
            2e-5,
        ) {
            return Err(format!("{name}, f32: {e}"));
        }
        runs += k + k32;
    }
    Ok(runs)
}

/// Every reduction, over j and over i, scalar and vector formulas.
#[test]
fn every_reduction_every_scheme() {
    let reductions = [
        "Sum_Reduction({F}, {A})",
        "Min_Reduction({F}, {A})",
        "Max_Reduction({F}, {A})",
        "ArgMin_Reduction({F}, {A})",
        "ArgMax_Reduction({F}, {A})",
        "Min_ArgMin_Reduction({F}, {A})",
        "Max_ArgMax_Reduction({F}, {A})",
        "KMin_Reduction({F}, 3, {A})",
        "ArgKMin_Reduction({F}, 4, {A})",
        "KMin_ArgKMin_Reduction({F}, 2, {A})",
    ];
    let formulas = [("SqDist(x, y) * c", 1), ("(x - y) * c", 3)];
    let mut failures = Vec::new();
    let mut runs = 0;
    for red in reductions {
        for (f, _) in formulas {
            for axis in [0, 1] {
                let text = format!(
                    "x = Vi(3); y = Vj(3); c = Pm(1); {}",
                    red.replace("{F}", f).replace("{A}", &axis.to_string())
                );
                match no_panic(|| {
                    check_program(&text, &[('i', 3), ('j', 3), ('p', 1)], 37, 53, &plans())
                }) {
                    Ok(n) => runs += n,
                    Err(e) => failures.push(format!("{text}: {e}")),
                }
            }
        }
    }
    // LogSumExp (scalar F; weighted with a vector G) and SumSoftMaxWeight.
    for axis in [0, 1] {
        for red in [
            "LogSumExp_Reduction(-SqDist(x, y) * 4 + Elem(y, 0), {A})",
            "LogSumExp_Reduction(-SqDist(x, y) * 4, {A}, Exp(x - y))",
            "SumSoftMaxWeight_Reduction(-SqDist(x, y) * 4, {A}, Concat(y, x * y))",
        ] {
            let text = format!(
                "x = Vi(3); y = Vj(3); {}",
                red.replace("{A}", &axis.to_string())
            );
            match no_panic(|| check_program(&text, &[('i', 3), ('j', 3)], 37, 53, &plans())) {
                Ok(n) => runs += n,
                Err(e) => failures.push(format!("{text}: {e}")),
            }
        }
    }
    report("SIMT reductions", &failures);
    // 10 selections or sums x 2 formulas x 2 directions + 3 x 2 others, 4 plans, 2 precisions.
    assert_eq!(runs, (10 * 2 * 2 + 3 * 2) * 4 * 2, "kernels run");
}

/// Gradients of selections: the gather kernels (owner-indexed and through inverted
/// lists), against the reference evaluator's gathers, f32 and f64.
#[test]
fn gradients_of_selections_through_gather_kernels() {
    let reductions = [
        "Min_Reduction({F}, {A})",
        "Max_ArgMax_Reduction({F}, {A})",
        "KMin_Reduction({F}, 3, {A})",
        "KMin_ArgKMin_Reduction({F}, 2, {A})",
    ];
    let mut failures = Vec::new();
    let mut runs = 0;
    for red in reductions {
        for f in ["SqDist(x, y) * c", "(x - y) * c + Exp(x * y) / 4"] {
            for axis in [0, 1] {
                let text = format!(
                    "x = Vi(3); y = Vj(3); c = Pm(1); {}",
                    red.replace("{F}", f).replace("{A}", &axis.to_string())
                );
                match no_panic(|| check_gradients(&text, 29, 41)) {
                    Ok(n) => runs += n,
                    Err(e) => failures.push(format!("{text}: {e}")),
                }
            }
        }
    }
    report("SIMT gathers", &failures);
    // 4 reductions x 2 formulas x 2 directions x 3 gradients x 2 precisions, each with a
    // gather (and the forward selection).
    assert!(runs >= 4 * 2 * 2 * 3 * 2 * 2, "only {runs} kernels ran");
}

/// The gradients of `text` with respect to each argument (M = `m`, N = `n`) in the SIMT
/// interpreter against the reference; returns the number of kernel runs.
fn check_gradients(text: &str, m: usize, n: usize) -> Result<usize, String> {
    let p = Program::parse(text).map_err(|e| format!("does not compile: {e}"))?;
    let dout = p.output_info().values.as_known().ok_or("symbolic output")?;
    let mut rng = StdRng::seed_from_u64(text.len() as u64 * 31);
    let (x, y, c) = (random(&mut rng, m, 3), random(&mut rng, n, 3), vec![0.75]);
    let rows = if p.output_info().rows == Cat::I { m } else { n };
    let e = random(&mut rng, rows, dout);
    let mut runs = 0;
    for pos in 0..3 {
        let g = p
            .grad(pos, "cot")
            .map_err(|e| format!("gradient {pos}: {e}"))?;
        let arrays = vec![
            Array::new(&x, m, 3),
            Array::new(&y, n, 3),
            Array::new(&c, 1, 1),
            Array::new(&e, rows, dout),
        ];
        let plan = PlanOptions::default();
        let opts = EvalOptions::default();
        let (got, k) = simt_eval(&g, &arrays, &plan, &opts)?;
        let want = reference(&g, &arrays, &opts)?;
        if let Some(e) = mismatch(&got.values, &want.values, &[], &[], 1e-11, 1e-12) {
            return Err(format!("gradient {pos}, f64: {e}"));
        }
        let cast32 = |v: &[f64]| cast::<f32>(v);
        let (x32, y32, c32, e32) = (cast32(&x), cast32(&y), cast32(&c), cast32(&e));
        let arrays32 = vec![
            Array::new(&x32, m, 3),
            Array::new(&y32, n, 3),
            Array::new(&c32, 1, 1),
            Array::new(&e32, rows, dout),
        ];
        let (got32, k32) = simt_eval(&g, &arrays32, &plan, &opts)?;
        let want32 = reference(&g, &arrays32, &opts)?;
        if let Some(e) = mismatch(
            &to_f64(&got32.values),
            &to_f64(&want32.values),
            &[],
            &[],
            1e-5,
            1e-6,
        ) {
            return Err(format!("gradient {pos}, f32: {e}"));
        }
        runs += k + k32;
    }
    Ok(runs)
}

/// Edge sizes: one row, fewer rows than a block, K larger than N, an empty reduced index.
#[test]
fn edge_sizes() {
    let mut failures = Vec::new();
    for (m, n) in [(1, 1), (1, 40), (40, 1), (17, 2), (3, 0)] {
        for red in [
            "Sum_Reduction(Exp(-SqDist(x, y)) * y, 0)",
            "KMin_ArgKMin_Reduction(SqDist(x, y), 4, 0)",
            "LogSumExp_Reduction(-SqDist(x, y), 0)",
        ] {
            let text = format!("x = Vi(2); y = Vj(2); {red}");
            if let Err(e) = no_panic(|| check_program(&text, &[('i', 2), ('j', 2)], m, n, &plans()))
            {
                failures.push(format!("M = {m}, N = {n}, {text}: {e}"));
            }
        }
    }
    report("SIMT edge sizes", &failures);
}

// =====================================================================================
// Wide formulas: chunks, memory operands, short tiles
// =====================================================================================

fn chunks_of(text: &str, p: Precision) -> usize {
    let prog = Program::parse(text).unwrap();
    let widths: Vec<usize> = prog
        .args
        .iter()
        .map(|a| a.dim.as_known().unwrap())
        .collect();
    let prog = prog.instantiate(&widths).unwrap();
    let r = prog.reductions().next().unwrap();
    let k = lower_reduction(&prog, r, SumMode::Plain).unwrap();
    reduction_kernels(&k, p, &KernelOptions::default(), "t")
        .chunks
        .len()
}

#[test]
fn wide_formulas_are_chunked_and_correct() {
    let plans = [
        (
            "1D block 32",
            PlanOptions {
                block: Some(32),
                tile_rows: None,
                slices: Some(1),
            },
        ),
        (
            "2D block 16 slices 2",
            PlanOptions {
                block: Some(16),
                tile_rows: None,
                slices: Some(2),
            },
        ),
    ];
    /// (program, variables, minimum number of chunks)
    type WideCase = (&'static str, Vec<(char, usize)>, usize);
    let cases: Vec<WideCase> = vec![
        // Gaussian kernel times a 300-wide weight: 300 accumulators split in chunks.
        (
            "x = Vi(3); y = Vj(3); b = Vj(300); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
            vec![('i', 3), ('j', 3), ('j', 300)],
            5,
        ),
        // A 1000-dimensional squared distance: x_i read from memory, short tiles.
        (
            "x = Vi(1000); y = Vj(1000); Sum_Reduction(Exp(-SqDist(x, y) / 300), 0)",
            vec![('i', 1000), ('j', 1000)],
            1,
        ),
        // Coordinate-wise selections of a 200-wide formula.
        (
            "x = Vi(200); y = Vj(200); ArgKMin_Reduction(x - y, 2, 1)",
            vec![('i', 200), ('j', 200)],
            2,
        ),
        (
            "x = Vi(3); y = Vj(3); g = Vj(150); SumSoftMaxWeight_Reduction(-SqDist(x, y), 0, g)",
            vec![('i', 3), ('j', 3), ('j', 150)],
            2,
        ),
        (
            "x = Vi(3); y = Vj(3); g = Vj(150); LogSumExp_Reduction(-SqDist(x, y), 0, Exp(g))",
            vec![('i', 3), ('j', 3), ('j', 150)],
            2,
        ),
    ];
    let mut failures = Vec::new();
    for (text, vars, min_chunks) in &cases {
        let chunks = chunks_of(text, Precision::F32);
        if chunks < *min_chunks {
            failures.push(format!(
                "{text}: {chunks} chunk(s), expected at least {min_chunks}"
            ));
        }
        if let Err(e) = no_panic(|| check_program(text, vars, 19, 23, &plans)) {
            failures.push(format!("{text}: {e}"));
        }
    }
    report("SIMT wide formulas", &failures);
}

// =====================================================================================
// fast_math
// =====================================================================================

/// With `fast_math`, f32 kernels use the approximate instructions and stay within their
/// documented error bounds; f64 kernels are unchanged.
#[test]
fn fast_math_kernels_use_approximate_instructions_within_bounds() {
    let cases = [
        (
            "x = Vi(3); y = Vj(3); b = Vj(2); Sum_Reduction(Exp(-SqDist(x, y)) * b, 0)",
            "ex2.approx.ftz.f32",
        ),
        (
            "x = Vi(3); y = Vj(3); LogSumExp_Reduction(-SqDist(x, y) * 3, 0)",
            "ex2.approx.ftz.f32",
        ),
        (
            "x = Vi(3); y = Vj(3); Sum_Reduction(Log(1 + SqDist(x, y)), 1)",
            "lg2.approx.ftz.f32",
        ),
        (
            "x = Vi(2); y = Vj(2); Sum_Reduction(Sin(x - y) * Cos(x + y), 0)",
            "sin.approx.ftz.f32",
        ),
        (
            "x = Vi(3); y = Vj(3); Sum_Reduction(Rsqrt(1 + SqDist(x, y)) + Inv(2 + x), 0)",
            "rsqrt.approx.ftz.f32",
        ),
    ];
    let fast = KernelOptions {
        fast_math: true,
        ..Default::default()
    };
    let plan = PlanOptions {
        block: Some(32),
        tile_rows: None,
        slices: Some(1),
    };
    let mut failures = Vec::new();
    for (text, instruction) in cases {
        let p = Program::parse(text).unwrap();
        let widths: Vec<usize> = p.args.iter().map(|a| a.dim.as_known().unwrap()).collect();
        let inst = p.instantiate(&widths).unwrap();
        let r = inst.reductions().next().unwrap();
        let ptx32 =
            keops_gpu_kernels::module::compile_reduction(&inst, r, Precision::F32, &fast, "t")
                .unwrap();
        let ptx64 =
            keops_gpu_kernels::module::compile_reduction(&inst, r, Precision::F64, &fast, "t")
                .unwrap();
        if !ptx32.ptx.contains(instruction) || !ptx32.fast_math {
            failures.push(format!("{text}: no {instruction} in the fast f32 module"));
        }
        // Products used once by an addition are fused (the Gaussian's squared distance
        // and its weighted accumulation, the LogSumExp's rescaled sum).
        if text.contains("SqDist") && !text.contains("Rsqrt") && !ptx32.ptx.contains("fma.rn.f32") {
            failures.push(format!(
                "{text}: no contracted multiply-add in the fast f32 module"
            ));
        }
        if ptx64.ptx.contains(".approx") || ptx64.fast_math {
            failures.push(format!(
                "{text}: approximate instructions in the f64 module"
            ));
        }
        let mut rng = StdRng::seed_from_u64(7);
        let rows = |c: Cat| if c == Cat::I { 29 } else { 31 };
        let data: Vec<Vec<f64>> = p
            .args
            .iter()
            .zip(&widths)
            .map(|(a, d)| random(&mut rng, rows(a.rows()), *d))
            .collect();
        let arrays: Vec<Array<'_, f64>> = data
            .iter()
            .zip(&p.args)
            .zip(&widths)
            .map(|((v, a), d)| Array::new(v, rows(a.rows()), *d))
            .collect();
        let want = reference(&p, &arrays, &EvalOptions::default()).unwrap();
        let data32: Vec<Vec<f32>> = data.iter().map(|a| cast(a)).collect();
        let arrays32: Vec<Array<'_, f32>> = data32
            .iter()
            .zip(&p.args)
            .zip(&widths)
            .map(|((v, a), d)| Array::new(v, rows(a.rows()), *d))
            .collect();
        let (got, _) =
            simt_eval_with(&p, &arrays32, &plan, &EvalOptions::default(), &fast).unwrap();
        // Inputs in [-1, 1]: arguments of exp and sin below 12 in magnitude, where the
        // bounds above give relative errors below 2^-17 on each term.
        if let Some(e) = mismatch(
            &to_f64(&got.values),
            &want.values,
            &got.indices,
            &want.indices,
            2e-5,
            2e-5,
        ) {
            failures.push(format!("{text}: {e}"));
        }
    }
    report("fast_math", &failures);
}

// =====================================================================================
// The interpreter catches kernel bugs
// =====================================================================================

mod interpreter {
    use keops_gpu_kernels::kir::{IOp, KBuilder, KInst, KTy, Space, Special};
    use keops_gpu_kernels::simt::{GlobalMemory, Launch, SimtError, launch};
    use keops_ir::lower::Precision;

    /// Thread t stores t in shared word t, then (after a barrier or not) reads word
    /// (t + 1) mod block and writes it to out[t].
    fn rotate(with_barrier: bool, read_past_end: bool) -> keops_gpu_kernels::kir::Kernel {
        let mut b = KBuilder::default();
        let tid = b.reg(KTy::U64);
        b.push(KInst::Special {
            dst: tid,
            sreg: Special::TidX,
        });
        let n = b.reg(KTy::U64);
        b.push(KInst::Special {
            dst: n,
            sreg: Special::NtidX,
        });
        let sh = b.reg(KTy::U64);
        b.push(KInst::SharedBase { dst: sh });
        let mine = b.addr(sh, tid, 8);
        b.push(KInst::Store {
            space: Space::Shared,
            addr: mine,
            offset: 0,
            src: tid,
        });
        if with_barrier {
            b.push(KInst::Bar);
        }
        let one = b.int(1);
        let next = b.iop(IOp::Add, tid, one);
        let wrapped = if read_past_end {
            next
        } else {
            b.iop(IOp::Rem, next, n)
        };
        let theirs = b.addr(sh, wrapped, 8);
        let v = b.reg(KTy::U64);
        b.push(KInst::Load {
            dst: v,
            space: Space::Shared,
            addr: theirs,
            offset: 0,
        });
        let out = b.reg(KTy::U64);
        b.push(KInst::Param { dst: out, index: 0 });
        let dst = b.addr(out, tid, 8);
        b.push(KInst::Store {
            space: Space::Global,
            addr: dst,
            offset: 0,
            src: v,
        });
        b.push(KInst::Ret);
        b.finish("rotate", 1, 8)
    }

    fn run(k: &keops_gpu_kernels::kir::Kernel) -> Result<Vec<u64>, SimtError> {
        let mut mem = GlobalMemory::new();
        let out = mem.alloc(8 * 8);
        launch::<f32>(
            k,
            Precision::F32,
            Launch {
                grid: [1, 1],
                block: 8,
                shared_bytes: 64,
            },
            &[out],
            &mut mem,
        )?;
        Ok(mem.download_u64(out, 8).unwrap())
    }

    #[test]
    fn a_correct_kernel_runs() {
        assert_eq!(
            run(&rotate(true, false)).unwrap(),
            vec![1, 2, 3, 4, 5, 6, 7, 0]
        );
    }

    #[test]
    fn a_missing_barrier_is_a_race() {
        let e = run(&rotate(false, false)).unwrap_err().to_string();
        assert!(e.contains("data race"), "{e}");
    }

    #[test]
    fn an_access_past_shared_memory_is_caught() {
        let e = run(&rotate(true, true)).unwrap_err().to_string();
        assert!(e.contains("past the 64 bytes"), "{e}");
    }

    #[test]
    fn a_barrier_skipped_by_some_threads_is_caught() {
        // Thread 0 returns early; the others wait at the barrier.
        let mut b = KBuilder::default();
        let tid = b.reg(KTy::U64);
        b.push(KInst::Special {
            dst: tid,
            sreg: Special::TidX,
        });
        let one = b.int(1);
        let first = b.cmp(keops_gpu_kernels::kir::ICmp::Lt, tid, one);
        let end = b.label();
        b.push(KInst::Bra {
            target: end,
            pred: Some((first, false)),
        });
        b.push(KInst::Bar);
        b.push(KInst::Label(end));
        b.push(KInst::Ret);
        let k = b.finish("skip", 0, 0);
        let mut mem = GlobalMemory::new();
        let e = launch::<f32>(
            &k,
            Precision::F32,
            Launch {
                grid: [1, 1],
                block: 4,
                shared_bytes: 0,
            },
            &[],
            &mut mem,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("barrier never reached"), "{e}");
    }

    #[test]
    fn an_uninitialized_register_is_caught() {
        let mut b = KBuilder::default();
        let x = b.reg(KTy::U64);
        let y = b.int(1);
        let _ = b.iop(IOp::Add, x, y);
        b.push(KInst::Ret);
        let k = b.finish("uninit", 0, 0);
        let mut mem = GlobalMemory::new();
        let e = launch::<f32>(
            &k,
            Precision::F32,
            Launch {
                grid: [1, 1],
                block: 1,
                shared_bytes: 0,
            },
            &[],
            &mut mem,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("read before it is written"), "{e}");
    }

    #[test]
    fn two_threads_writing_one_output_is_a_race() {
        let mut b = KBuilder::default();
        let out = b.reg(KTy::U64);
        b.push(KInst::Param { dst: out, index: 0 });
        let tid = b.reg(KTy::U64);
        b.push(KInst::Special {
            dst: tid,
            sreg: Special::TidX,
        });
        b.push(KInst::Store {
            space: Space::Global,
            addr: out,
            offset: 0,
            src: tid,
        });
        b.push(KInst::Ret);
        let k = b.finish("clash", 1, 0);
        let mut mem = GlobalMemory::new();
        let o = mem.alloc(8);
        let e = launch::<f32>(
            &k,
            Precision::F32,
            Launch {
                grid: [1, 1],
                block: 2,
                shared_bytes: 0,
            },
            &[o],
            &mut mem,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data race"), "{e}");
    }
}
