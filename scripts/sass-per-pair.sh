#!/usr/bin/env bash
# Machine instructions per (i, j) pair in the inner loop of a generated reduction kernel,
# read from the SASS that ptxas makes of it (no GPU needed): the innermost loop whose body
# holds the most special-function instructions (ptxas unrolls the tile loop), its instructions
# divided by its MUFU count (one per pair for the Gaussian kernel). With --per-load: the
# innermost loop with the most shared-memory loads, divided by their count (one per pair
# when a staged tile row is one 16-byte vector, e.g. y_j of width 3, or y_j and b_j of
# widths 3 and 1).
#
#   scripts/sass-per-pair.sh [--arch sm_90] [--per-load] [show_ptx options] FORMULA
#   scripts/sass-per-pair.sh --fast-math "x_i: 3; y_j: 3; b_j: 1; Sum_j(Exp(-SqDist(x_i, y_j)) * b_j)"
#
# Installs ptxas (scripts/install-ptxas.sh) and nvdisasm (PyPI `nvidia-cuda-nvdisasm`, into
# .venv-sass) on first use.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ARCH=sm_90
if [ "${1:-}" = "--arch" ]; then ARCH=$2; shift 2; fi
PER=MUFU
if [ "${1:-}" = "--per-load" ]; then PER=LDS; shift; fi
[ -x .venv-ptxas/bin/ptxas ] || scripts/install-ptxas.sh >/dev/null
if [ ! -d .venv-sass ]; then
    python3 -m venv .venv-sass
    .venv-sass/bin/pip install -q nvidia-cuda-nvdisasm==13.5.37
fi
NVDISASM=$(find .venv-sass -name nvdisasm -type f | head -1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cargo run -q --release -p keops-gpu-kernels --example show_ptx -- "$@" > "$TMP/k.ptx"
.venv-ptxas/bin/ptxas -arch="$ARCH" -O3 "$TMP/k.ptx" -o "$TMP/k.cubin"
"$NVDISASM" -c "$TMP/k.cubin" 2>/dev/null > "$TMP/k.sass"
python3 scripts/sass_loop.py "$TMP/k.sass" "$PER"
