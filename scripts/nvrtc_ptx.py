"""Compiles a CUDA source file to PTX with NVRTC (PyPI `nvidia-cuda-nvrtc-cu12`, runs without
a GPU), as KeOps does at run time: `python3 nvrtc_ptx.py SRC.cu OUT.ptx [options...]`
(e.g. `--use_fast_math -arch=compute_90`). Used by scripts/sass-keops-vs-ours.sh."""
import ctypes
import glob
import os
import sys

lib = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "nvidia",
                             "cuda_nvrtc", "lib", "libnvrtc.so.*"))
nvrtc = ctypes.CDLL(lib[0])
src, out, opts = sys.argv[1], sys.argv[2], [o.encode() for o in sys.argv[3:]]
prog = ctypes.c_void_p()


def check(code, what):
    if code != 0:
        nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
        sys.exit(f"{what}: {nvrtc.nvrtcGetErrorString(code).decode()}")


check(nvrtc.nvrtcCreateProgram(ctypes.byref(prog), open(src, "rb").read(), b"keops.cu",
                               0, None, None), "nvrtcCreateProgram")
arr = (ctypes.c_char_p * len(opts))(*opts)
code = nvrtc.nvrtcCompileProgram(prog, len(opts), arr)
size = ctypes.c_size_t()
nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
log = ctypes.create_string_buffer(size.value)
nvrtc.nvrtcGetProgramLog(prog, log)
if code != 0:
    sys.exit(f"nvrtcCompileProgram failed:\n{log.value.decode()}")
nvrtc.nvrtcGetPTXSize(prog, ctypes.byref(size))
ptx = ctypes.create_string_buffer(size.value)
check(nvrtc.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
open(out, "wb").write(ptx.value)
