"""Where does OpenMP start to pay? Times cpp kernels on 1 thread and on 2 forced threads.

    python benchmarks/measure_omp_threshold.py [--rounds 7]

For each kernel class (cheap: relu, sgd_update; costly: tanh, softmax) and each element
count n, it times the kernel with one thread, then with two threads at every size (the
threshold disabled through _core._set_min_work_per_thread_override(0)), and prints the
median times of several rounds and the crossover: the smallest n from which two threads
stay faster. kMin*ElementsPerThread in csrc/common/threading.h is that n / 2.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from nnfast import _core

SIZES = [1 << k for k in range(9, 21)]


def kernels(n, rng):
    x = rng.standard_normal(n).astype(np.float32)
    out = np.empty_like(x)
    p, g, v = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    rows = max(n // 10, 1)
    logits = rng.standard_normal((rows, 10)).astype(np.float32)
    probs = np.empty_like(logits)
    return {
        "cheap: relu": lambda: _core.activation_forward("relu", x, out),
        "cheap: sgd_update": lambda: _core.sgd_update(p, g, v, lr=1e-3, momentum=0.9),
        "costly: tanh": lambda: _core.activation_forward("tanh", x, out),
        "costly: softmax (n/10, 10)": lambda: _core.activation_forward("softmax", logits, probs),
    }


def time_call(fn, min_seconds=0.02):
    fn()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls
        calls *= 2


def measure(rounds):
    rng = np.random.default_rng(0)
    results = {}
    for n in SIZES:
        for name, fn in kernels(n, rng).items():
            one, two = [], []
            for _ in range(rounds):  # interleaved, so machine noise hits both alike
                _core.set_num_threads(1)
                one.append(time_call(fn))
                _core.set_num_threads(2)
                _core._set_min_work_per_thread_override(0)
                two.append(time_call(fn))
                _core._set_min_work_per_thread_override(-1)
            results.setdefault(name, []).append((n, statistics.median(one), statistics.median(two)))
    _core.set_num_threads(0)
    return results


def crossover(rows):
    """Smallest n from which two threads are faster at every larger size."""
    best = None
    for n, one, two in reversed(rows):
        if two < one:
            best = n
        else:
            break
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results = measure(args.rounds)
    for name, rows in results.items():
        print(f"\n{name}\n{'n':>9} {'1 thread us':>12} {'2 threads us':>13} {'2t/1t':>7}")
        for n, one, two in rows:
            print(f"{n:>9} {one * 1e6:>12.2f} {two * 1e6:>13.2f} {two / one:>7.2f}")
        n = crossover(rows)
        print(f"crossover: {n} elements ({n // 2 if n else None} per thread)")


if __name__ == "__main__":
    main()
