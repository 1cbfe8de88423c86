#!/usr/bin/env bash
# keops-rs against pykeops 2.3 (CPU backend), side by side in one run, and optionally the
# peak memory of a 1,000,000 x 1,000,000 Gaussian convolution. See BENCHMARKS.md.
#
#   scripts/bench_vs_pykeops.sh                 # throughput table, M = N = 20000, float32
#   scripts/bench_vs_pykeops.sh --memory        # ... then the peak-memory measurement
#   scripts/bench_vs_pykeops.sh --memory-only   # only the peak-memory measurement
#
# Settings (environment):
#   BENCH_M, BENCH_N       sizes (default 20000, N = M)
#   BENCH_ROUNDS           alternations pykeops / keops-rs (default 3; the order flips each round)
#   BENCH_REPS             timed calls per kernel and round, after one untimed warm-up (default 3)
#   BENCH_F64=1            float64 instead of float32
#   BENCH_ONLY             a comma-separated subset of gaussian,argkmin,logsumexp
#   KEOPS_WHEELS           folder with the keopscore / pykeops 2.3 wheels (default ../shared/wheels)
#   BENCH_VENV             the Python venv (default .venv-bench, created when missing)
#   KEOPS_CACHE_FOLDER     pykeops' build cache (default $BENCH_VENV/keops-cache[-<hash of CXXFLAGS>])
#   OMP_NUM_THREADS, RAYON_NUM_THREADS   thread counts (default: all cores on both sides)
#   CXXFLAGS               extra flags for pykeops' g++ (default none: pykeops' own -O3 -fopenmp,
#                          without -march=native; CXXFLAGS=-march=native lets g++ use AVX-512)
#   MEM_M, MEM_N           sizes of the memory run (default 1000000 each)
#   MEM_TIMEOUT            seconds after which the memory run is stopped (default 600)
#   MEM_FULL_N             N of a second, complete memory run with M = MEM_M (default 10000;
#                          0 to skip): memory is O(M + N), so it reaches every allocation that
#                          depends on M even when the big run is stopped early
#   BENCH_LOG              where the raw output goes (default target/bench_vs_pykeops.log)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

throughput=1
memory=0
for a in "$@"; do
    case "$a" in
    --memory) memory=1 ;;
    --memory-only) memory=1 throughput=0 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "unknown argument: $a (try --help)" >&2
        exit 2
        ;;
    esac
done

M=${BENCH_M:-20000}
N=${BENCH_N:-$M}
ROUNDS=${BENCH_ROUNDS:-3}
REPS=${BENCH_REPS:-3}
WHEELS=${KEOPS_WHEELS:-$ROOT/../shared/wheels}
VENV=${BENCH_VENV:-$ROOT/.venv-bench}
LOG=${BENCH_LOG:-$ROOT/target/bench_vs_pykeops.log}
# pykeops' cache does not key its binaries on CXXFLAGS: one cache per set of flags
cache_suffix=""
[ -n "${CXXFLAGS:-}" ] && cache_suffix="-$(printf '%s' "$CXXFLAGS" | md5sum | cut -c1-8)"
export KEOPS_CACHE_FOLDER=${KEOPS_CACHE_FOLDER:-$VENV/keops-cache$cache_suffix}
common=(--m "$M" --n "$N" --reps "$REPS")
[ "${BENCH_F64:-0}" != 0 ] && common+=(--f64)
[ -n "${BENCH_ONLY:-}" ] && common+=(--only "$BENCH_ONLY")

echo "== machine"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "nproc: $(nproc)"
echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" \
    "(family $(sed -n 's/^cpu family\t*: //p' /proc/cpuinfo 2>/dev/null | head -1)," \
    "model $(sed -n 's/^model\t*: //p' /proc/cpuinfo 2>/dev/null | head -1))"
echo "flags: $(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "rustc: $(rustc --version)"
echo "g++: $(g++ --version 2>/dev/null | head -1)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (modified)')"

if [ "$throughput" = 1 ]; then
    # -- the venv: pykeops and keopscore 2.3 from the wheels, numpy and pybind11 from PyPI
    if ! "$VENV/bin/python" -c 'import pykeops, keopscore, numpy, pybind11' 2>/dev/null; then
        echo "== creating $VENV"
        for w in keopscore pykeops; do
            if ! ls "$WHEELS"/$w-2.3-*.whl >/dev/null 2>&1; then
                echo "no $w 2.3 wheel in $WHEELS (set KEOPS_WHEELS)" >&2
                exit 1
            fi
        done
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        "$VENV/bin/pip" install --quiet "$WHEELS"/keopscore-2.3-*.whl "$WHEELS"/pykeops-2.3-*.whl numpy pybind11
    fi
    mkdir -p "$KEOPS_CACHE_FOLDER" "$(dirname "$LOG")"
    echo "python: $("$VENV/bin/python" -c 'import sys, numpy, pykeops, keopscore; print(sys.version.split()[0], "numpy", numpy.__version__, "pykeops", pykeops.__version__, "keopscore", keopscore.__version__)' 2>&1 | grep -v 'CUDA libraries')"

    echo "== building the bench binary"
    cargo bench --bench throughput --no-run --quiet

    echo "== M = $M, N = $N: $ROUNDS rounds of (1 warm-up + $REPS timed calls) per kernel and side"
    : >"$LOG"
    run_rust() { cargo bench --bench throughput --quiet -- "${common[@]}" 2>&1 | tee -a "$LOG" | grep -v -e '^SAMPLE' -e 'cores_busy'; }
    run_py() { "$VENV/bin/python" scripts/bench_pykeops.py "${common[@]}" 2>&1 | tee -a "$LOG" | grep -v -e '^SAMPLE' -e 'cores_busy' -e 'CUDA libraries not found'; }
    for r in $(seq 1 "$ROUNDS"); do
        echo "-- round $r/$ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
        printf 'ROUND\t%s\n' "$r" >>"$LOG"
        if [ $((r % 2)) = 1 ]; then
            run_py
            run_rust
        else
            run_rust
            run_py
        fi
    done

    echo "== summary (medians over all timed calls of all rounds; raw output in $LOG)"
    "$VENV/bin/python" - "$LOG" <<'EOF'
import sys, statistics
from collections import defaultdict
med = statistics.median
samples, info, rounds = defaultdict(list), defaultdict(list), defaultdict(lambda: defaultdict(list))
r = 0
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "ROUND":
        r = int(f[1])
    elif f[0] == "SAMPLE":
        side, kernel, dtype, m, n, s = f[1:7]
        rate = int(m) * int(n) / float(s)
        samples[(side, kernel)].append(rate)
        rounds[kernel][r].append((side, rate))
    elif f[0] == "INFO":
        info[(f[1], f[2])].append(f[3])
targets = {"gaussian": 5.0, "argkmin": 2.0, "logsumexp": 5.0}
def busy(side, k):
    v = [float(x) for x in info.get((side, f"cores_busy_{k}"), []) if x != "n/a"]
    return f"{med(v):.2f}" if v else "n/a"
def round_ratio(k):
    rs = []
    for _, v in sorted(rounds[k].items()):
        a = [x for s, x in v if s == "rust"]
        b = [x for s, x in v if s == "pykeops"]
        if a and b:
            rs.append(med(a) / med(b))
    return rs
print("throughput in pairs/s: median over all timed calls (best call in brackets)")
print(f"{'kernel':<10} {'keops-rs':>22} {'pykeops':>22} {'ours/pykeops':>13} {'per-round ratios':>22} {'target':>7} {'met':<4} {'cores busy rs/py':>17}")
for k in ["gaussian", "argkmin", "logsumexp"]:
    a, b = samples.get(("rust", k)), samples.get(("pykeops", k))
    if not a or not b:
        continue
    ratio = med(a) / med(b)
    rr = round_ratio(k)
    t = targets[k]
    print(f"{k:<10} {med(a):10.3e} [{max(a):9.3e}] {med(b):10.3e} [{max(b):9.3e}] {ratio:13.3f} "
          f"{' '.join(f'{x:.2f}' for x in rr):>22} {t:6.1f}x {('yes' if ratio >= t else 'no'):<4} "
          f"{busy('rust', k) + ' / ' + busy('pykeops', k):>17}")
print("threads: keops-rs (rayon)", ",".join(sorted(set(info.get(("rust", "threads"), ["?"])))),
      "| pykeops (OpenMP)", ",".join(sorted(set(info.get(("pykeops", "threads"), ["?"])))))
print("samples per kernel and side:", len(next(iter(samples.values()), [])),
      "| cores busy = CPU time / wall time of the timed calls (2.00 = both cores, all the time)")
EOF
fi

if [ "$memory" = 1 ]; then
    MEM_M=${MEM_M:-1000000}
    MEM_N=${MEM_N:-$MEM_M}
    MEM_TIMEOUT=${MEM_TIMEOUT:-600}
    MEM_FULL_N=${MEM_FULL_N:-10000}
    echo "== peak memory, Gaussian convolution (examples/gaussian_conv.rs), float32"
    cargo build --release --example gaussian_conv --quiet
    bin=target/release/examples/gaussian_conv
    measure() { # M N timeout
        local out rc=0
        out=$(/usr/bin/time -v timeout -s INT "$3" "$bin" "$1" "$2" 2>&1) || rc=$?
        echo "$out" | { grep -E '^(time|a\[0\])' || true; } | sed 's/^/    /'
        local kb wall
        kb=$(echo "$out" | sed -n 's/.*Maximum resident set size (kbytes): //p')
        wall=$(echo "$out" | sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p')
        if [ "$rc" = 0 ]; then
            echo "M = $1, N = $2: completed in $wall, peak RSS $kb kB = $((kb / 1024)) MiB"
        elif [ "$rc" = 124 ]; then
            echo "M = $1, N = $2: STOPPED after ${3}s ($wall, not completed), peak RSS until then $kb kB = $((kb / 1024)) MiB"
        else
            echo "M = $1, N = $2: FAILED (exit $rc) after $wall, peak RSS $kb kB"
            echo "$out" | tail -20
        fi
    }
    measure "$MEM_M" "$MEM_N" "$MEM_TIMEOUT"
    if [ "$MEM_FULL_N" != 0 ]; then
        measure "$MEM_M" "$MEM_FULL_N" "$MEM_TIMEOUT"
    fi
    echo "target: < 200 MB (200000 kB) for M = N = 1000000"
fi
