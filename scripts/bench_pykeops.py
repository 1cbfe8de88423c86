#!/usr/bin/env python3
"""The pykeops side of scripts/bench_vs_pykeops.sh: the three computations of
benches/throughput.rs, on the same data (same generator, same seeds), CPU backend.

    python scripts/bench_pykeops.py [--m M] [--n N] [--reps R] [--warmup W] [--f64]
                                    [--only gaussian,argkmin,logsumexp]

Every kernel is called once untimed (which also compiles it the first time; the result is
checked against a direct f64 computation on a few rows), then timed R times. Each timed
call prints a tab-separated line `SAMPLE  pykeops  <kernel>  <dtype>  <M>  <N>  <seconds>`;
`INFO` lines tell the OpenMP threads and how many cores were busy.
"""

import argparse
import ctypes
import os
import sys
import time

import numpy as np

G = 50.0  # 1 / (2 sigma^2), sigma = 0.1
K = 10
CHECKED_ROWS = 8
KERNELS = ["gaussian", "argkmin", "logsumexp"]


def uniform(seed, count):
    """SplitMix64 stream, exactly as `uniform` in benches/throughput.rs: values k = 0..count
    of `seed`, top 24 bits, in [0, 1) (exact in float32)."""
    k = np.arange(1, count + 1, dtype=np.uint64)
    z = np.uint64(seed) + k * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def data(m, n):
    x = uniform(1, 3 * m).reshape(m, 3)
    y = uniform(2, 3 * n).reshape(n, 3)
    b = (2.0 * uniform(3, n) - 1.0).reshape(n, 1)
    return x, y, b


def checked_rows(m):
    return sorted({k * (m - 1) // (CHECKED_ROWS - 1) for k in range(CHECKED_ROWS)})


def sqdist_rows(x, y, rows):
    return ((x[rows, None, :] - y[None, :, :]) ** 2).sum(-1)  # (rows, N), float64


def check(name, out, x, y, b, f64):
    """Raises if `out` disagrees with the f64 computation; returns the worst error."""
    rows = checked_rows(x.shape[0])
    d2 = sqdist_rows(x, y, rows)
    tol = 1e-9 if f64 else 1e-3
    if name == "gaussian":
        terms = np.exp(-G * d2) * b[:, 0][None, :]
        exact, scale = terms.sum(1), np.abs(terms).sum(1)
        err = np.abs(out[rows, 0] - exact) / np.maximum(scale, 1e-300)
    elif name == "logsumexp":
        v = -G * d2
        mx = v.max(1)
        exact = mx + np.log(np.exp(v - mx[:, None]).sum(1))
        err = np.abs(out[rows, 0] - exact) / np.maximum(np.abs(exact), 1.0)
    else:
        tol = 1e-12 if f64 else 1e-5
        idx = np.asarray(out[rows]).astype(np.int64)
        kk = min(K, y.shape[0])
        if any(len(set(r[:kk])) != kk or r[:kk].min() < 0 or r[:kk].max() >= y.shape[0] for r in idx):
            raise AssertionError(f"{name}: bad indices {idx}")
        got = np.take_along_axis(d2, idx[:, :kk], 1)
        exact = np.sort(d2, 1)[:, :kk]
        err = np.abs(got - exact)
    if not np.all(err <= tol):
        raise AssertionError(f"{name}: WRONG RESULT against the f64 computation, errors {err}")
    return float(err.max())


def omp_threads():
    """OpenMP's thread count in this process (the libgomp pykeops' kernels link to)."""
    for lib in ("libgomp.so.1", "libomp.so", "libiomp5.so"):
        try:
            return int(ctypes.CDLL(lib).omp_get_max_threads()), lib
        except (OSError, AttributeError):
            continue
    return None, None


def main():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--m", type=int, default=int(env("KEOPS_BENCH_M") or 20000))
    p.add_argument("--n", type=int, default=int(env("KEOPS_BENCH_N") or 0) or None)
    p.add_argument("--reps", type=int, default=int(env("KEOPS_BENCH_REPS") or 5))
    p.add_argument("--warmup", type=int, default=int(env("KEOPS_BENCH_WARMUP") or 1))
    p.add_argument("--f64", action="store_true", default=(env("KEOPS_BENCH_F64") or "0") != "0")
    p.add_argument("--only", default=env("KEOPS_BENCH_ONLY") or "")
    p.add_argument("--backend", default=env("KEOPS_BENCH_BACKEND") or "CPU", choices=["CPU", "GPU"],
                   help="pykeops backend (GPU: numpy arrays copied to the device and back at every call, as keops-rs does)")
    p.add_argument("--torch-dense", action="store_true",
                   help="also time a dense PyTorch Gaussian convolution on the GPU (exp(-g |x-y|^2) @ b with the "
                        "M x N matrix stored; data resident on the device), when the matrix fits in 1/4 of the memory")
    a = p.parse_args()
    m, n = a.m, a.n or a.m
    only = [k for k in a.only.split(",") if k] or KERNELS
    dtype = np.float64 if a.f64 else np.float32
    dname = "f64" if a.f64 else "f32"

    import pykeops
    from pykeops.numpy import Genred

    pykeops.set_verbose(False)
    x64, y64, b64 = data(m, n)
    x, y, b = (v.astype(dtype) for v in (x64, y64, b64))
    g = np.array([G], dtype=dtype)
    aliases = ["x = Vi(3)", "y = Vj(3)"]
    kernels = {
        "gaussian": (
            Genred("Exp(-g * SqDist(x, y)) * b", aliases + ["b = Vj(1)", "g = Pm(1)"], reduction_op="Sum", axis=1),
            (x, y, b, g),
        ),
        "argkmin": (
            Genred("SqDist(x, y)", aliases, reduction_op="ArgKMin", axis=1, opt_arg=K),
            (x, y),
        ),
        "logsumexp": (
            Genred("-g * SqDist(x, y)", aliases + ["g = Pm(1)"], reduction_op="LogSumExp", axis=1),
            (x, y, g),
        ),
    }

    print(
        f"pykeops {pykeops.__version__} throughput: M = {m}, N = {n}, D = 3, "
        f"{'float64' if a.f64 else 'float32'}, {a.backend} backend, {max(a.warmup, 1)} warm-up + {a.reps} timed calls "
        f"per kernel (median), OMP_NUM_THREADS={env('OMP_NUM_THREADS', 'unset')}, CXXFLAGS={env('CXXFLAGS', '')!r}",
        flush=True,
    )
    threads_reported = False
    for name in KERNELS:
        if name not in only:
            continue
        fn, args = kernels[name]
        t0 = time.perf_counter()
        first = fn(*args, backend=a.backend)
        first_s = time.perf_counter() - t0
        worst = check(name, first, x64, y64, b64, a.f64)
        if not threads_reported:
            threads, lib = omp_threads()
            print(f"INFO\tpykeops\tthreads\t{threads}\t({lib}: omp_get_max_threads)", flush=True)
            threads_reported = True
        for _ in range(1, a.warmup):
            fn(*args, backend=a.backend)
        times = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(a.reps):
            t = time.perf_counter()
            fn(*args, backend=a.backend)
            s = time.perf_counter() - t
            times.append(s)
            print(f"SAMPLE\tpykeops\t{name}\t{dname}\t{m}\t{n}\t{s:.6f}", flush=True)
        cores = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        med = float(np.median(times))
        print(
            f"{name:<10} {dname}  median {med:8.4f} s  (min {min(times):.4f}, max {max(times):.4f}, "
            f"first call {first_s:.4f})  {m * n / med:10.4e} pairs/s  cores busy {cores:.2f}  "
            f"check ok (worst error {worst:.1e} on {len(checked_rows(m))} rows)",
            flush=True,
        )
        print(f"INFO\tpykeops\tcores_busy_{name}\t{cores:.2f}", flush=True)
    if a.torch_dense and "gaussian" in only:
        torch_dense(x, y, b, g, m, n, a, dname)


def torch_dense(x, y, b, g, m, n, a, dname):
    """The Gaussian convolution with the M x N kernel matrix stored, on the GPU."""
    import torch

    if not torch.cuda.is_available():
        print("INFO\ttorch\tdense\tno CUDA device", flush=True)
        return
    free, _ = torch.cuda.mem_get_info()
    if m * n * x.itemsize * 3 > free / 4:
        print(f"INFO\ttorch\tdense\tskipped: the {m} x {n} matrix does not fit", flush=True)
        return
    xt, yt, bt = (torch.from_numpy(v).cuda() for v in (x, y, b))
    gt = float(g[0])

    def run():
        return torch.exp(-gt * torch.cdist(xt, yt) ** 2) @ bt

    run()
    torch.cuda.synchronize()
    times = []
    for _ in range(a.reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        s = start.elapsed_time(end) / 1000.0
        times.append(s)
        print(f"SAMPLE\ttorch-dense\tgaussian\t{dname}\t{m}\t{n}\t{s:.6f}", flush=True)
    med = float(np.median(times))
    print(f"torch-dense gaussian {dname}  median {med:8.4f} s  {m * n / med:10.4e} pairs/s (data on the device)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
