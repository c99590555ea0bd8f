"""Where does OpenMP start to pay? Times cpp kernels on 1 thread and on 2 forced threads.

    NNFAST_TEST_HOOKS=1 python setup.py build_ext --inplace --force   # the hook it needs
    python benchmarks/measure_omp_threshold.py [--calls 300]

For each kernel class (cheap: relu, sgd_update; costly: tanh, softmax) and each element
count n, it times single calls of the kernel alternately on one thread and on two (the
threshold and the contention backoff disabled through
_core._set_min_work_per_thread_override(0), which only a build with NNFAST_TEST_HOOKS=1
has), and prints two statistics of those calls:

  p10     the 10th percentile: what the machine gives when the other core is free;
  median  what it gives while other processes share the cores (a team member that is not
          running delays the whole region by a scheduler time slice, milliseconds).

The crossover is the smallest n at which two threads are faster. Cells where two threads
take more than 10x longer are stalls (a team member descheduled), counted separately.
kMin*ElementsPerThread in csrc/common/threading.h is about the p10 crossover n / 2.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from nnfast import _core

SIZES = [1 << k for k in range(10, 21)]


def kernels(n, rng):
    x = rng.standard_normal(n).astype(np.float32)
    out = np.empty_like(x)
    p, g, v = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    logits = rng.standard_normal((max(n // 10, 1), 10)).astype(np.float32)
    probs = np.empty_like(logits)
    return {
        "cheap: relu": lambda: _core.activation_forward("relu", x, out),
        "cheap: sgd_update (momentum)": lambda: _core.sgd_update(p, g, v, lr=1e-3, momentum=0.9),
        "costly: tanh": lambda: _core.activation_forward("tanh", x, out),
        "costly: softmax (n/10, 10)": lambda: _core.activation_forward("softmax", logits, probs),
    }


def call_times(fn, threads, calls):
    _core.set_num_threads(threads)
    _core._set_min_work_per_thread_override(0 if threads > 1 else -1)
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return times


def measure(calls):
    rng = np.random.default_rng(0)
    results = {}
    for n in SIZES:
        for name, fn in kernels(n, rng).items():
            one, two = [], []
            for _ in range(10):  # alternate in slices, so machine noise hits both alike
                one += call_times(fn, 1, calls // 10)
                two += call_times(fn, 2, calls // 10)
            p10 = [statistics.quantiles(t, n=10)[0] / 1e3 for t in (one, two)]
            median = [statistics.median(t) / 1e3 for t in (one, two)]
            results.setdefault(name, []).append((n, *p10, *median))
    _core._set_min_work_per_thread_override(-1)
    _core.set_num_threads(0)
    return results


def crossover(rows):
    """Smallest n at which two threads are faster."""
    return next((n for n, one, two in rows if two < one), None)


def stalls(rows):
    return sum(two > 10 * one for _, one, two in rows)


def describe(n):
    return "none" if n is None else f"{n} elements ({n // 2} per thread)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per size and thread count")
    args = parser.parse_args()
    if not hasattr(_core, "_set_min_work_per_thread_override"):
        raise SystemExit(f"{_core.__file__} has no benchmark hooks: rebuild it with "
                         "NNFAST_TEST_HOOKS=1 (see the top of this script)")
    load_before = os.getloadavg()[0]
    results = measure(args.calls)
    print(f"{os.cpu_count()} cpus; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {args.calls} calls per cell; times in us")
    for name, rows in results.items():
        print(f"\n{name}\n{'n':>9} {'p10 1t':>9} {'p10 2t':>9} {'2t/1t':>6}"
              f" {'median 1t':>10} {'median 2t':>10} {'2t/1t':>6}")
        for n, p1, p2, m1, m2 in rows:
            print(f"{n:>9} {p1:>9.2f} {p2:>9.2f} {p2 / p1:>6.2f} {m1:>10.2f} {m2:>10.2f} {m2 / m1:>6.2f}")
        p10, median = [r[:3] for r in rows], [(r[0], r[3], r[4]) for r in rows]
        print(f"crossover (p10):    {describe(crossover(p10))}; stalled sizes: {stalls(p10)}")
        print(f"crossover (median): {describe(crossover(median))}; stalled sizes: {stalls(median)}")


if __name__ == "__main__":
    main()
