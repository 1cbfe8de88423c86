#!/usr/bin/env bash
# Machine instructions per (i, j) pair of the GPU kernels of keops-rs and of KeOps 2.3, side
# by side, for the three benchmark reductions (f32, fast math, sm_90), without a GPU:
# keops-rs' PTX (show_ptx) and KeOps' CUDA source (keopscore's generator, compiled to PTX
# with NVRTC from PyPI, as pykeops does) both go through ptxas 12.9 and nvdisasm 13.5; the
# count is the innermost loop divided by its shared-memory loads (scripts/sass_loop.py).
# Needs .venv-bench (scripts/bench_vs_pykeops.sh makes it) for keopscore.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
[ -x .venv-ptxas/bin/ptxas ] || scripts/install-ptxas.sh >/dev/null
if [ ! -d .venv-sass ]; then python3 -m venv .venv-sass; fi
.venv-sass/bin/pip install -q nvidia-cuda-nvdisasm==13.5.37 nvidia-cuda-nvrtc-cu12==12.9.86
NVDISASM=$(find .venv-sass -name nvdisasm -type f | head -1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
count() { python3 scripts/sass_loop.py "$1" LDS --brief; }
printf '%-32s %10s %10s\n' "reduction (f32, fast math)" keops-rs "KeOps 2.3"
while IFS='|' read -r name ours keops aliases; do
    cargo run -q --release -p keops-gpu-kernels --example show_ptx -- --fast-math "$ours" > "$TMP/o.ptx"
    .venv-ptxas/bin/ptxas -arch=sm_90 -O3 "$TMP/o.ptx" -o "$TMP/o.cubin"
    "$NVDISASM" -c "$TMP/o.cubin" 2>/dev/null > "$TMP/o.sass"
    .venv-bench/bin/python scripts/keops_cuda_source.py "$keops" "$aliases" 2>/dev/null > "$TMP/k.cu"
    .venv-sass/bin/python scripts/nvrtc_ptx.py "$TMP/k.cu" "$TMP/k.ptx" --use_fast_math -arch=compute_90
    .venv-ptxas/bin/ptxas -arch=sm_90 -O3 "$TMP/k.ptx" -o "$TMP/k.cubin"
    "$NVDISASM" -c "$TMP/k.cubin" 2>/dev/null > "$TMP/k.sass"
    printf '%-32s %10s %10s\n' "$name" "$(count "$TMP/o.sass")" "$(count "$TMP/k.sass")"
done <<'LIST'
Gaussian D=3|x_i: 3; y_j: 3; b_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)|Sum_Reduction(Exp(-SqDist(x,y))*b,0)|x=Var(0,3,0);y=Var(1,3,1);b=Var(2,1,1)
LogSumExp D=3|x_i: 3; y_j: 3; LogSumExp_j(-SqDist(x_i, y_j))|Max_SumShiftExp_Reduction(-SqDist(x,y),0)|x=Var(0,3,0);y=Var(1,3,1)
LIST
