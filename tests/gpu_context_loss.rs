//! A kernel fault on the GPU: the call that faulted returns the driver's error, later calls
//! on the device return `GpuError::ContextLost` naming it, and `Backend::Auto` goes back to
//! the CPU.
//!
//! A fault needs a kernel bug, so this runs where one can be injected: on the CPU model of
//! the CUDA driver (`keops-runtime/fake-cuda`) with `KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH=2`,
//! as `scripts/test-fake-driver.sh` runs it. Elsewhere it says so and checks nothing.

use keops::{Backend, GpuError, KeopsError, Options, keops};

#[test]
fn a_kernel_fault_loses_the_context_and_auto_falls_back_to_the_cpu() {
    if std::env::var("KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH").as_deref() != Ok("2") {
        eprintln!(
            "not run: needs the fake CUDA driver with KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH=2 (scripts/test-fake-driver.sh)"
        );
        return;
    }
    assert!(keops::gpu_available(), "the fake driver is not loaded");
    let gauss = keops!(x_i: 3; y_j: 3; b_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j));
    let x: Vec<[f64; 3]> = (0..40).map(|i| [i as f64 * 0.1, 0.5, -0.25]).collect();
    let y: Vec<[f64; 3]> = (0..30).map(|j| [0.3, j as f64 * 0.05, 0.0]).collect();
    let b: Vec<[f64; 1]> = (0..30).map(|j| [1.0 + j as f64]).collect();
    let want = gauss
        .eval_with(&Options::on(Backend::Cpu), &x, &y, &b)
        .unwrap();
    // One launch per call: the 1D scheme, one chunk.
    let mut gpu = Options::on(Backend::Gpu(0));
    gpu.gpu.plan.slices = Some(1);

    // Launch 1 runs.
    let got = gauss.eval_with(&gpu, &x, &y, &b).unwrap();
    assert_eq!(keops::last_backend(), Some(Backend::Gpu(0)));
    for (g, w) in got.iter().zip(&want) {
        assert!((g[0] - w[0]).abs() <= 1e-12 * w[0].abs(), "{g:?} vs {w:?}");
    }

    // Launch 2 faults: the driver reports it at the next synchronizing call.
    let e = gauss.eval_with(&gpu, &x, &y, &b).unwrap_err();
    assert!(
        matches!(&e, KeopsError::Gpu(GpuError::Driver { name, .. }) if name == "CUDA_ERROR_ILLEGAL_ADDRESS"),
        "{e}"
    );

    // The context is gone: every later GPU call says so, naming the first error.
    let e = gauss.eval_with(&gpu, &x, &y, &b).unwrap_err();
    assert!(
        matches!(&e, KeopsError::Gpu(GpuError::ContextLost { index: 0, first }) if first.contains("CUDA_ERROR_ILLEGAL_ADDRESS")),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("unusable until the process restarts"),
        "{e}"
    );
    let e = keops::DeviceArray::from_rows(Backend::Gpu(0), &x).unwrap_err();
    assert!(
        matches!(e, KeopsError::Gpu(GpuError::ContextLost { .. })),
        "{e}"
    );

    // Auto runs on the CPU from now on.
    assert!(!keops::gpu_available());
    let got = gauss
        .eval_with(&Options::on(Backend::Auto), &x, &y, &b)
        .unwrap();
    assert_eq!(keops::last_backend(), Some(Backend::Cpu));
    assert_eq!(got, want);
}
