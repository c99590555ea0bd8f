"""The Numba backend's GEMM against np.matmul (OpenBLAS), in one process.

Shapes: the six products of one training step of a 784-128-64-10 MLP at batch 64 and 256
(forward x @ W, weight gradient x.T @ g, input gradient g @ W.T), and squares. Each result
is checked against NumPy in float64 before timing; each time is the best of several
repeats of CPU time on the calling thread when single-threaded (robust to a busy machine),
of wall time otherwise.

    python benchmarks/bench_numba_gemm.py [--threads 1 2] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from publish import invocation, publish

# (label, M, N, K, trans_a, trans_b)
SHAPES = [(f"{kind} b{batch}", *dims)
          for batch in (64, 256)
          for kind, dims in (("fwd 784x128", (batch, 128, 784, False, False)),
                             ("wgrad 784x128", (784, 128, batch, True, False)),
                             ("fwd 128x64", (batch, 64, 128, False, False)),
                             ("wgrad 128x64", (128, 64, batch, True, False)),
                             ("igrad 64x128", (batch, 128, 64, False, True)),
                             ("fwd 64x10", (batch, 10, 64, False, False)))]
SHAPES += [(f"square {s}", s, s, s, False, False) for s in (256, 512, 1024)]


def operands(m, n, k, trans_a, trans_b, dtype, rng):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def best_seconds(fn, clock, budget=0.3):
    fn()
    reps = 1
    while True:  # enough calls per repeat to fill a tenth of the budget
        start = clock()
        for _ in range(reps):
            fn()
        if clock() - start > budget / 10 or reps > 1 << 16:
            break
        reps *= 4
    times = []
    for _ in range(7):
        start = clock()
        for _ in range(reps):
            fn()
        times.append((clock() - start) / reps)
    return min(times)


def run(threads, dtypes):
    import nnfast
    from threadpoolctl import threadpool_limits
    backend = nnfast.get_backend("numba")
    backend.set_num_threads(threads)
    threadpool_limits(threads)
    clock = time.thread_time if threads == 1 else time.perf_counter
    rng = np.random.default_rng(0)
    rows = []
    for dtype in dtypes:
        for label, m, n, k, ta, tb in SHAPES:
            a, b = operands(m, n, k, ta, tb, dtype, rng)
            opa, opb = (a.T if ta else a), (b.T if tb else b)
            out = np.empty((m, n), dtype)
            backend.gemm(a, b, out, trans_a=ta, trans_b=tb)
            expected = opa.astype(np.float64) @ opb.astype(np.float64)
            tol = 4 * k * np.finfo(dtype).eps * (np.abs(opa) @ np.abs(opb)).astype(np.float64)
            assert np.all(np.abs(out - expected) <= tol + np.finfo(dtype).tiny), label
            flops = 2.0 * m * n * k
            t_numba = best_seconds(lambda: backend.gemm(a, b, out, trans_a=ta, trans_b=tb), clock)
            t_numpy = best_seconds(lambda: np.matmul(opa, opb, out=out), clock)
            rows.append((threads, np.dtype(dtype).name, label, (m, n, k), flops / t_numba / 1e9,
                         flops / t_numpy / 1e9))
            print(f"{threads} thr {rows[-1][1]:8s} {label:18s} numba {rows[-1][4]:7.1f} GF/s  "
                  f"np.matmul {rows[-1][5]:7.1f} GF/s  ratio {rows[-1][4] / rows[-1][5]:.2f}", flush=True)
    return rows


def markdown(rows, command) -> str:
    from nnfast.backends.numba_backend import _microkernel
    from nnfast.bench.train_bench import cpu_model
    import datetime
    lines = ["## Numba GEMM vs np.matmul (OpenBLAS)", "",
             f"- machine: {cpu_model()}, {os.cpu_count()} cores; microkernel {_microkernel.MR} rows x "
             f"{_microkernel.PANEL_BYTES} bytes of columns ({_microkernel.VECTOR_BYTES}-byte vectors)",
             f"- date: {datetime.date.today().isoformat()}", f"- command: `{command}`",
             "- GF/s = 2 M N K / time; best of 7 repeats (thread CPU time with 1 thread, wall time "
             "otherwise); results checked against float64 NumPy first", "",
             "| threads | dtype | product | M, N, K | numba GF/s | np.matmul GF/s | numba / matmul |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for threads, dtype, label, dims, g_numba, g_numpy in rows:
        lines.append(f"| {threads} | {dtype} | {label} | {', '.join(map(str, dims))} | {g_numba:.1f} | "
                     f"{g_numpy:.1f} | {g_numba / g_numpy:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, os.cpu_count() or 1])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--markdown", help="write the table to this file")
    args = parser.parse_args(argv)
    rows = []
    for threads in dict.fromkeys(args.threads):
        rows += run(threads, [np.dtype(d) for d in args.dtypes])
    command = invocation("bench_numba_gemm.py", argv)
    text = markdown(rows, command)
    publish(text, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
