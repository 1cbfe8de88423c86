#!/usr/bin/env bash
# Installs NVIDIA's ptxas (the PTX assembler, which runs without a GPU) from the PyPI wheel
# nvidia-cuda-nvcc-cu12 into .venv-ptxas at the workspace root, and prints its path.
# The ptxas test (keops-gpu-kernels/tests/ptxas.rs) finds it there; CI runs this script.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${PTXAS_VENV:-$ROOT/.venv-ptxas}
# Pinned: the PTX ISA and architectures the tests assemble for are checked with this version.
VERSION=12.9.86
if [ ! -x "$VENV/bin/ptxas" ] || ! "$VENV/bin/ptxas" --version | grep -q "V${VERSION%.*}"; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "nvidia-cuda-nvcc-cu12==$VERSION" >&2
    bin=$("$VENV/bin/python" -c 'import nvidia.cuda_nvcc, os; print(os.path.join(list(nvidia.cuda_nvcc.__path__)[0], "bin"))')
    ln -sf "$bin/ptxas" "$VENV/bin/ptxas"
fi
"$VENV/bin/ptxas" --version >&2
echo "$VENV/bin/ptxas"
