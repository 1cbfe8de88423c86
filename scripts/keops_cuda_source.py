"""Prints the CUDA source that KeOps 2.3 (keopscore) generates for a reduction: the 1D
scheme, float, fast math, as pykeops would compile it with NVRTC. Runs without a GPU (the
CUDA checks of keopscore are bypassed: only its code generator is used).

    python3 keops_cuda_source.py "Sum_Reduction(Exp(-SqDist(x,y))*b,0)" "x=Var(0,3,0);y=Var(1,3,1);b=Var(2,1,1)"
"""
import contextlib
import importlib
import sys

# keopscore reports on stdout that it found no CUDA: keep stdout for the source.
with contextlib.redirect_stdout(sys.stderr):
    kc = importlib.import_module("keopscore.config")
kc.cuda_config.get_cuda_version = lambda *a, **k: 12080
kc.cuda_config.get_gpu_props = lambda *a, **k: (1, "")
with contextlib.redirect_stdout(sys.stderr):
    from keopscore.mapreduce.gpu.GpuReduc1D import GpuReduc1D
    from keopscore.mapreduce.MapReduce import MapReduce
formula, aliases = sys.argv[1], sys.argv[2].split(";")
obj = object.__new__(GpuReduc1D)
# red_formula_string, aliases, nargs, dtype, dtypeacc, sum_scheme, tagHostDevice = 1 (data
# on the device), tagCpuGpu = 1 (GPU), tag1D2D = 0 (1D), use_half = 0, use_fast_math = 1
# (pykeops' default), device_id = 0.
MapReduce.__init__(obj, formula, aliases, len(aliases), "float", "float", "block_sum", 1, 1, 0, 0, 1, 0)
obj.dimy = obj.varloader.dimy
obj.get_code()
print(obj.code)
