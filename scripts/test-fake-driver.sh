#!/usr/bin/env bash
# The runtime's GPU code path (cudarc's driver calls, module loading, launch plans, device
# arrays, pieces beyond device memory, lost contexts) run against the CPU model of the
# CUDA driver (keops-runtime/fake-cuda), whose kernels are executed by the PTX
# interpreter from the very PTX the macro embedded. It is not a GPU: it checks what the
# driver sees, not speed. Usage: scripts/test-fake-driver.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p keops-fake-cuda
# The build directory: CARGO_TARGET_DIR when set (relative to the repository root, as
# cargo reads it), else target/.
dir="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/fake-cuda"
mkdir -p "$dir"
ln -sf ../release/libkeops_fake_cuda.so "$dir/libcuda.so"
export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# A missing GPU fails the suite instead of skipping its GPU runs.
export KEOPS_REQUIRE_GPU=1
unset KEOPS_BACKEND

# The numerical suite on Cpu, Emulated and Gpu(0), then the other suites with Auto
# choosing the (fake) GPU.
cargo test --release --all-features --test backends --test generic_widths --test matrix_args --test bad_input --test edge_values --test views
cargo test --release --all-features -p keops-runtime
# A device of 64 KB: the data goes through in pieces. One test at a time: device arrays
# made by a test take memory that another test's call may have counted on. (The test of
# selection gradients on the device is left out: one of its gathers needs 110 KB whole in
# every piece, so it runs on the CPU on such a device, as that test checks with a limit.)
KEOPS_FAKE_CUDA_MEMORY=65536 cargo test --release --all-features --test backends -- \
    --test-threads=1 --skip device_arrays_are_read_in_place_on_their_device \
    --skip selection_gradients_run_on_the_device
# The doc examples, on Auto.
cargo test --release --all-features --doc
# A kernel fault: the error, then ContextLost, then Auto on the CPU.
KEOPS_FAKE_CUDA_FAULT_AT_LAUNCH=2 cargo test --release --all-features --test gpu_context_loss
# The README's example on Auto: it must report the GPU.
cargo run --release --example gaussian_conv -- 3000 2000 | tee "$dir"/gaussian_conv.txt
grep -q "fake CUDA device" "$dir"/gaussian_conv.txt
# The examples that check their own results (against loops in f64), at small sizes.
# (Their output goes to files first: `grep -q` stops reading at the first match.)
cargo run --release --example knn -- 200 3000 > "$dir"/knn.txt
grep -q "brute-force check (f64) of 20 rows: passed" "$dir"/knn.txt
cargo run --release --example kmeans -- 3000 10 > "$dir"/kmeans.txt
grep -q "checked against plain loops in f64" "$dir"/kmeans.txt
