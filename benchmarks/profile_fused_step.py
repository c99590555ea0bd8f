"""Where a fused training step's time goes: the step timed alone against the GEMMs it runs,
each called alone at the same shapes (forward with its fused bias+ReLU, weight gradient
X^T dY, input gradient dY W^T; the first layer needs no input gradient).

    python benchmarks/profile_fused_step.py [--threads 2]

What the GEMMs do not explain is the rest of the step: the row gather, activations'
backward, the loss, bias gradients and the optimizer update.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import nnfast
from nnfast import _core, fused, losses, nn, optim

CASES = (([784, 128, 64, 10], 64), ([784, 128, 64, 10], 1024), ([784, 256, 128, 10], 1024))


def median_us(fn, calls: int = 50, rounds: int = 5) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return 1e6 * statistics.median(times)


def step_us(sizes, batch, rng) -> float:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [nn.Dense(a, b, seed=i), nn.ReLU()] if i < len(sizes) - 2 else [nn.Dense(a, b, seed=i)]
    model = nn.Sequential(*layers)
    X = rng.random((8 * batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], len(X))
    with nnfast.backend("cpp"):
        trainer = fused.FusedTrainer(model, losses.get("cross_entropy"),
                                     optim.Adam(model.parameters(), lr=1e-3))
        idx = np.arange(batch)
        return median_us(lambda: trainer.step(X, y, idx))


def gemm_us(sizes, batch, rng) -> list[tuple[float, float, float]]:
    parts = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        x, w = rng.random((batch, a), dtype=np.float32), rng.random((a, b), dtype=np.float32)
        dy, bias = rng.random((batch, b), dtype=np.float32), np.zeros(b, np.float32)
        out, dw, dx = np.empty((batch, b), np.float32), np.empty((a, b), np.float32), np.empty((batch, a), np.float32)
        forward = median_us(lambda: _core.gemm(x, w, out, bias=bias, activation="relu"))
        weight_grad = median_us(lambda: _core.gemm(x, dy, dw, trans_a=True))
        input_grad = median_us(lambda: _core.gemm(dy, w, dx, trans_b=True)) if i else 0.0
        parts.append((forward, weight_grad, input_grad))
    return parts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    nnfast.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{args.threads} thread(s); times in microseconds, medians of 5 x 50 calls")
    for sizes, batch in CASES:
        step = step_us(sizes, batch, rng)
        parts = gemm_us(sizes, batch, rng)
        total = sum(map(sum, parts))
        print(f"{'-'.join(map(str, sizes))} batch {batch}: step {step:,.0f}, its GEMMs alone "
              f"{total:,.0f} ({100 * total / step:.0f}%), {batch / step * 1e6:,.0f} samples/s")
        for layer, (fwd, wgrad, igrad) in enumerate(parts, 1):
            print(f"    layer {layer}: forward {fwd:,.0f}, weight gradient {wgrad:,.0f}, "
                  f"input gradient {igrad:,.0f}")
        print(f"    contended regions so far: {_core.contention_stats()['contended_regions']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
