"""What fit()'s one compiled call per epoch saves on the cpp backend: one-epoch fit() calls of
784-128-64-10 on the MNIST split, run with one call per epoch (no callback acts between
batches) and with one call per batch (a callback with an empty on_batch_loss forces it),
alternating in the same process; the median of the paired ratios. Both paths give bitwise
the same weights (tests/test_fused_step.py), so the ratio is the per-batch Python's share.

    python benchmarks/epoch_in_one_call.py [--batch 64 1024] [--rounds 15]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import nnfast
from nnfast import datasets, nn, optim


class EmptyBatchCallback(nnfast.Callback):
    """Acts between batches (doing nothing), so fit() makes one call per batch."""

    def on_batch_loss(self, model, epoch, batch, loss):
        pass


def mlp():
    return nn.Sequential(nn.Dense(784, 128, seed=0), nn.ReLU(), nn.Dense(128, 64, seed=1),
                         nn.ReLU(), nn.Dense(64, 10, seed=2))


def measure(X, y, batch: int, rounds: int) -> dict[str, list[float]]:
    """Seconds of each one-epoch fit() call, per path."""
    models = {"epoch": mlp(), "batch": mlp()}
    optimizers = {path: optim.Adam(lr=1e-3) for path in models}
    seconds: dict[str, list[float]] = {path: [] for path in models}
    for r in range(rounds + 1):  # round 0 warms both up and is not counted
        for path in ("epoch", "batch") if r % 2 else ("batch", "epoch"):
            start = time.perf_counter()
            models[path].fit(X, y, optimizer=optimizers[path], epochs=1, batch_size=batch,
                             verbose=0, seed=r,
                             callbacks=[EmptyBatchCallback()] if path == "batch" else None)
            if r:
                seconds[path].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    (X, y), _ = datasets.load_mnist_split()
    X = np.ascontiguousarray(X, dtype=np.float32)
    print(f"nnfast {nnfast.__version__}, {nnfast.get_num_threads()} threads, {len(X)} samples, "
          f"medians of {args.rounds} rounds")
    print("| batch | one call per epoch, samples/s | one call per batch, samples/s | paired ratio |")
    print("| --- | --- | --- | --- |")
    for batch in args.batch:
        s = measure(X, y, batch, args.rounds)
        ratio = statistics.median(b / e for e, b in zip(s["epoch"], s["batch"]))
        print(f"| {batch} | {len(X) / statistics.median(s['epoch']):,.0f} | "
              f"{len(X) / statistics.median(s['batch']):,.0f} | {ratio:.3f}x |")


if __name__ == "__main__":
    main()
