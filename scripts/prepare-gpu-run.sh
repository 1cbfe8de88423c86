#!/usr/bin/env bash
# Prepares `.gpu/` (git-ignored) for a run on the lent GPU machine (see docs/gpu.md): the
# release test binaries and the throughput bench, built here (the GPU machine has no Rust),
# the pykeops 2.3 wheels, and `.gpu/run.sh`, the one command to run there:
#
#   scripts/prepare-gpu-run.sh
#   # device tool: run, carry [".gpu"], command: bash .gpu/run.sh
#
# Logs go to $OUT (they come back with the run's files).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
rm -rf .gpu && mkdir -p .gpu/tests .gpu/whl
cargo test --workspace --release --all-features --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import sys,json
for line in sys.stdin:
    m = json.loads(line)
    # Only the suites that touch the GPU path (the compiler tests are backend-free), to stay
    # under the 64 MiB carried to the GPU machine.
    wanted = {"backends", "bad_input", "generic_widths", "matrix_args", "simt",
              "keops_runtime", "keops_gpu_kernels"}
    if m.get("executable") and m.get("profile", {}).get("test") and m["target"]["name"] in wanted:
        print(m["executable"])' \
    | while read -r exe; do cp "$exe" .gpu/tests/; done
cargo bench --bench throughput --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import sys,json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m["target"]["name"] == "throughput":
        print(m["executable"])' \
    | while read -r exe; do cp "$exe" .gpu/throughput; done
strip .gpu/tests/* .gpu/throughput 2>/dev/null || true
cp "${KEOPS_WHEELS:-$ROOT/../shared/wheels}"/*.whl .gpu/whl/
cp scripts/bench_pykeops.py .gpu/
cat > .gpu/run.sh <<'RUN'
#!/usr/bin/env bash
# Runs on the GPU machine: the test suite with the GPU required, then the benchmarks side
# by side with pykeops 2.3 (GPU backend) and a dense PyTorch baseline.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
cd "$(dirname "$0")"
{ date -u; nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; } | tee "$OUT/machine.txt"
export KEOPS_REQUIRE_GPU=1
for t in tests/*; do
    echo "== $t" | tee -a "$OUT/tests.txt"
    "$t" --test-threads 4 2>&1 | tail -15 | tee -a "$OUT/tests.txt"
done
python3 -m pip install -q --no-index --no-deps --target /tmp/site whl/*.whl && export PYTHONPATH=/tmp/site
for size in 10000 100000 1000000; do
    reps=5; [ "$size" = 1000000 ] && reps=3
    for round in 1 2; do
        ./throughput --m $size --reps $reps --backend gpu --fast-math 2>&1 | tee -a "$OUT/bench-keops-rs.txt"
        ./throughput --m $size --reps $reps --backend gpu 2>&1 | tee -a "$OUT/bench-keops-rs-exact.txt"
        python3 bench_pykeops.py --m $size --reps $reps --backend GPU --torch-dense 2>&1 | tee -a "$OUT/bench-pykeops.txt"
    done
done
RUN
chmod +x .gpu/run.sh
du -sh .gpu
