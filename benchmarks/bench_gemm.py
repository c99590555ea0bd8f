"""GEMM benchmark: nnfast's C++ GEMM against numpy.matmul (OpenBLAS) at the same thread count.

    python benchmarks/bench_gemm.py                 # the table
    python benchmarks/bench_gemm.py --write          # ... also written to benchmarks/RESULTS_gemm_<isa>.md
    python benchmarks/bench_gemm.py --quick          # fewer rounds
    python benchmarks/bench_gemm.py --interleaved    # 2 threads, the libraries alternating
    python benchmarks/bench_gemm.py --cases forward dense --threads 2   # some rows only
    pytest benchmarks/bench_gemm.py --benchmark-enable   # pytest-benchmark view of a few cases

Cases: the MLP layers (M x K x N) forward (NN), their weight gradient dW = X^T dY (TN) and
input gradient dX = dY W^T (NT), at 1 and 2 threads; 1024^3 float32 against one core's FMA
peak, measured in the same run by a tiny FMA loop (nnfast._core._fma_peak_gflops); and the
fused Dense forward act(X W + b) in one call against np.maximum(X @ W + b, 0).

Every case is checked against NumPy before it is timed. The machine may be shared, so the
two sides take turns in five blocks of short samples, and the table reports medians; each
block starts once the other side's threads have gone idle (see settle()). --interleaved
times them as a user's script calls them instead: one call of each in turn, a short pause
after each, the other library's threads still awake (see time_interleaved()).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np

from nnfast import _core

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

MLP_LAYERS = [(1, 784, 128), (64, 784, 128), (64, 128, 64), (256, 784, 128), (1024, 784, 128), (256, 128, 10)]
SAMPLE_SECONDS = 0.004  # short samples: a time slice lost to another process spoils few
# One table per microkernel ISA: which one a machine runs decides the kernel measured, and
# the shared machines change from session to session (AVX2 on AMD Zen, AVX-512 on Intel).
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS_gemm_{isa}.md")


def layer_cases(layers=MLP_LAYERS):
    """(label, M, K, N, trans_a, trans_b) for each layer's forward, dW and dX products."""
    for m, k, n in layers:
        yield "forward", m, k, n, False, False
        yield "dW", k, m, n, True, False
        yield "dX", m, n, k, False, True


def operands(m, k, n, trans_a, trans_b, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calls_per_sample(fn):
    fn()
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    return max(1, int(SAMPLE_SECONDS / once))


def settle():
    """Wait until neither library's leftovers compete with the next timing: OpenBLAS's idle
    threads keep spinning for about 0.1 s after a call, and 2-thread nnfast regions that
    meet them can make nnfast run on one thread for a while (contention_stats())."""
    time.sleep(0.2)
    while _core.contention_stats()["backing_off"]:
        time.sleep(0.05)


def time_pair(fn_a, fn_b, rounds, threads, blocks=5):
    """Median seconds per call of each, and the speed ratio: the median over paired samples of
    time_b / time_a, sample i of one side against sample i of the other, taken a fraction of
    a second apart. (A ratio of the two sides' medians moves with the host's slow and fast
    phases, which last seconds on these shared machines: one binary ran at 54 and at 86
    GFLOP/s minutes apart.) time_pair.contended: how many of nnfast's regions met a
    descheduled thread meanwhile.

    With one thread the sides alternate sample by sample. With more, they take turns in
    `blocks` blocks of samples, with a settle() at every switch: interleaving call by call
    would time each side against the other's spinning threads."""
    contended = _core.contention_stats()["contended_regions"]
    na, nb = calls_per_sample(fn_a), calls_per_sample(fn_b)
    blocks = rounds if threads == 1 else blocks
    per_block = -(-rounds // blocks)
    ta, tb = [], []
    for _ in range(blocks):
        for fn, n, times in ((fn_a, na, ta), (fn_b, nb, tb)):
            if threads > 1:
                settle()
            fn()
            for _ in range(per_block):
                t = time.perf_counter()
                for _ in range(n):
                    fn()
                times.append((time.perf_counter() - t) / n)
    time_pair.contended = _core.contention_stats()["contended_regions"] - contended
    ratio = statistics.median(b / a for a, b in zip(ta, tb))
    return statistics.median(ta), statistics.median(tb), ratio


def time_interleaved(fn_a, fn_b, samples, pause):
    """As time_pair, for the two libraries called in turn as a user's script calls them: one
    call of each, `pause` seconds of sleep after each (the script's own work), so each call
    meets the other library's threads still spinning or just gone to sleep. The ratio is the
    median over the pairs of time_b / time_a."""
    contended = _core.contention_stats()["contended_regions"]
    fn_a()
    fn_b()
    ta, tb = [], []
    for _ in range(samples):
        for fn, times in ((fn_a, ta), (fn_b, tb)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
            time.sleep(pause)
    time_pair.contended = _core.contention_stats()["contended_regions"] - contended
    ratio = statistics.median(b / a for a, b in zip(ta, tb))
    return statistics.median(ta), statistics.median(tb), ratio


def timer(pause):
    """time_pair, or with a pause (seconds) time_interleaved, as f(fn_a, fn_b, rounds, threads)."""
    if pause is None:
        return time_pair
    return lambda fn_a, fn_b, rounds, threads: time_interleaved(fn_a, fn_b, rounds, pause)


def check(got, expected, k, what):
    tol = 4 * k * np.finfo(np.float32).eps * (np.abs(expected).max() + 1)
    err = np.abs(got.astype(np.float64) - expected).max()
    if not err <= tol:
        raise AssertionError(f"{what}: nnfast differs from NumPy by {err:.3g} (> {tol:.3g})")


class Limits:
    """nnfast and OpenBLAS both at `threads`."""

    def __init__(self, threads):
        self.threads = threads

    def __enter__(self):
        self.saved = _core.get_num_threads()
        _core.set_num_threads(self.threads)
        self.ctx = threadpool_limits(self.threads, user_api="blas") if threadpool_limits else None
        if self.ctx:
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx:
            self.ctx.__exit__(*exc)
        _core.set_num_threads(self.saved)


def gemm_row(label, m, k, n, trans_a, trans_b, threads, rounds, peak, timed=time_pair):
    a, b = operands(m, k, n, trans_a, trans_b)
    opa, opb = (a.T if trans_a else a), (b.T if trans_b else b)
    out, out_np = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
    with Limits(threads):
        _core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b)
        check(out, opa.astype(np.float64) @ opb, k, f"{label} {m}x{k}x{n}")
        t_nf, t_np, ratio = timed(
            lambda: _core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b),
            lambda: np.matmul(opa, opb, out=out_np), rounds, threads)
    flops = 2.0 * m * n * k
    return dict(case=label, shape=f"{m}x{k}x{n}", trans=("T" if trans_a else "N") + ("T" if trans_b else "N"),
                threads=threads, nnfast=flops / t_nf * 1e-9, peer=flops / t_np * 1e-9, ratio=ratio,
                peak_pct=100 * flops / t_nf * 1e-9 / (peak * threads), contended=time_pair.contended)


def dense_row(m, k, n, threads, rounds, peak, timed=time_pair):
    x, w = operands(m, k, n, False, False)
    bias = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    out = np.empty((m, n), np.float32)
    with Limits(threads):
        _core.gemm(x, w, out, bias=bias, activation="relu")
        check(out, np.maximum(x.astype(np.float64) @ w + bias, 0), k, f"dense {m}x{k}x{n}")
        t_nf, t_np, ratio = timed(
            lambda: _core.gemm(x, w, out, bias=bias, activation="relu"),
            lambda: np.maximum(x @ w + bias, 0), rounds, threads)
    flops = 2.0 * m * n * k
    return dict(case="dense+relu", shape=f"{m}x{k}x{n}", trans="NN", threads=threads,
                nnfast=flops / t_nf * 1e-9, peer=flops / t_np * 1e-9, ratio=ratio,
                peak_pct=100 * flops / t_nf * 1e-9 / (peak * threads), contended=time_pair.contended)


def fma_peak(rounds):
    return statistics.median(_core._fma_peak_gflops(0.02) for _ in range(rounds))


def big_row(threads, rounds, timed=time_pair):
    """1024^3, and one core's FMA peak measured just before it."""
    m = k = n = 1024
    a, b = operands(m, k, n, False, False)
    out, out_np = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
    peak = fma_peak(rounds)
    with Limits(threads):
        _core.gemm(a, b, out)
        check(out, a.astype(np.float64) @ b, k, "1024^3")
        t_nf, t_np, ratio = timed(lambda: _core.gemm(a, b, out),
                                  lambda: np.matmul(a, b, out=out_np), rounds, threads)
    flops = 2.0 * m * n * k
    nf = flops / t_nf * 1e-9
    return dict(case="square", shape="1024x1024x1024", trans="NN", threads=threads, nnfast=nf,
                peer=flops / t_np * 1e-9, ratio=ratio, peak_pct=100 * nf / (peak * threads),
                contended=time_pair.contended), peak


CASES = ("square", "forward", "dW", "dX", "dense")


def run(rounds, thread_counts=(1, 2), cases=CASES, pause=None):
    timed = timer(pause)
    rows = []
    big_rounds = max(rounds, 15) if pause is None else rounds
    if "square" in cases and 1 in thread_counts:
        square, peak = big_row(1, big_rounds, timed)
        rows.append(square)
    else:
        peak = fma_peak(15)
    for threads in thread_counts:
        for label, m, k, n, ta, tb in layer_cases():
            if label in cases:
                rows.append(gemm_row(label, m, k, n, ta, tb, threads, rounds, peak, timed))
                print(format_row(rows[-1]), file=sys.stderr, flush=True)
    for threads in thread_counts:
        for m, k, n in MLP_LAYERS if "dense" in cases else ():
            rows.append(dense_row(m, k, n, threads, rounds, peak, timed))
            print(format_row(rows[-1]), file=sys.stderr, flush=True)
    if "square" in cases and 2 in thread_counts:
        rows.append(big_row(2, big_rounds, timed)[0])
    return rows, peak


HEADER = ("| case | shape (M x K x N) | trans | threads | nnfast GFLOP/s | OpenBLAS GFLOP/s "
          "| ratio | % of peak | contended |\n|---|---|---|---:|---:|---:|---:|---:|---:|")


def format_row(r):
    return (f"| {r['case']} | {r['shape']} | {r['trans']} | {r['threads']} | {r['nnfast']:.1f} "
            f"| {r['peer']:.1f} | {r['ratio']:.2f} | {r['peak_pct']:.0f}% | {r['contended']} |")


def report(rows, peak, command, pause=None):
    isa = _core.gemm_isa()
    timing = ("the two sides called in turn, one call each with a "
              f"{pause * 1e3:g} ms pause after it (a user's script between calls); ratio = the "
              "median over those pairs" if pause is not None else
              "ratio = the median over paired samples (taken a fraction of a second apart)")
    lines = [
        f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); nnfast ISA: {isa}; "
        f"FMA peak (one core, {isa} float32): {peak:.1f} GFLOP/s",
        f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}; command: `{command}`",
        "Peer: numpy.matmul (OpenBLAS " + blas_version() + "), same thread count via threadpoolctl. "
        f"GFLOP/s from median times; {timing} "
        "of OpenBLAS time / nnfast time (> 1: nnfast faster); "
        "% of peak = nnfast GFLOP/s / (FMA peak x threads). "
        "dense+relu compares one fused call with np.maximum(x @ W + b, 0). contended: nnfast's "
        "parallel regions that met a descheduled thread while the row was timed (two in four "
        "make nnfast run on one thread for 50 to 400 ms, see contention_stats()).",
        "",
        HEADER,
    ]
    lines += [format_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def blas_version():
    if threadpool_limits is None:
        return "version unknown"
    from threadpoolctl import threadpool_info
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return f"{lib.get('version')}, {lib.get('architecture')} kernels"
    return "version unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="samples per side and row (31; interleaved 101)")
    parser.add_argument("--quick", action="store_true", help="9 rounds")
    parser.add_argument("--interleaved", action="store_true",
                        help="call the libraries in turn with a pause after each call; "
                             "2 threads and 101 pairs per row unless told")
    parser.add_argument("--pause", type=float, default=2.0, help="ms, with --interleaved")
    parser.add_argument("--threads", type=int, nargs="+", choices=(1, 2))
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    results = RESULTS.format(isa=_core.gemm_isa())
    parser.add_argument("--write", action="store_true", help=f"also write {results}")
    args = parser.parse_args(argv)
    if args.write and (args.interleaved or args.threads or args.cases != CASES):
        parser.error(f"--write records the full block-wise table in {results}")
    rounds = args.rounds or (9 if args.quick else 101 if args.interleaved else 31)
    pause = args.pause * 1e-3 if args.interleaved else None
    threads = tuple(args.threads or ((2,) if args.interleaved else (1, 2)))
    rows, peak = run(rounds, threads, args.cases, pause)
    text = report(rows, peak, "python benchmarks/bench_gemm.py" + "".join(" " + a for a in (argv or sys.argv[1:])),
                  pause)
    print(text)
    if args.write:
        with open(results, "w") as f:
            f.write("# GEMM benchmark\n\n" + text)


# ----------------------------------------------------------------------- pytest-benchmark view
try:
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("case", list(layer_cases(MLP_LAYERS[:2])), ids=lambda c: f"{c[0]}-{c[1]}x{c[2]}x{c[3]}")
    @pytest.mark.parametrize("impl", ["nnfast", "openblas"])
    def test_gemm(benchmark, case, impl):
        label, m, k, n, ta, tb = case
        a, b = operands(m, k, n, ta, tb)
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        out = np.empty((m, n), np.float32)
        with Limits(1):
            if impl == "nnfast":
                _core.gemm(a, b, out, trans_a=ta, trans_b=tb)
                check(out, opa.astype(np.float64) @ opb, k, label)
                benchmark(_core.gemm, a, b, out, trans_a=ta, trans_b=tb)
            else:
                benchmark(np.matmul, opa, opb, out=out)


if __name__ == "__main__":
    main()
