"""Peak memory of training: the growth of the resident set (peak RSS minus the RSS before the
model is built, with the framework imported and the data loaded) over building 784-128-64-10
and training it for some epochs on the MNIST split, batch 1024 by default. Each framework runs
in a fresh process of its own, so that one's peak cannot hide another's; several processes
each, the median reported.

    python benchmarks/measure_fit_rss.py [--peers nnfast-cpp torch-eager] [--runs 3]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys


def current_rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def one_run(peer: str, batch: int, epochs: int) -> int:
    """KiB of RSS growth over building and training `peer` in this process."""
    from nnfast import datasets
    from nnfast.bench import train_bench
    (X, y), _ = datasets.load_mnist_split()
    if peer.startswith("torch"):
        import torch  # noqa: F401  (imported before the baseline, as a user's script has it)
    notes: dict = {}
    before = current_rss_kib()
    trainer, = train_bench.make_trainers([peer], train_bench.ARCHITECTURES["784-128-64-10"], X, y,
                                         batch, notes)
    for _ in range(epochs):
        trainer.epoch()
    if notes:
        raise RuntimeError(notes)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", nargs="+", default=["nnfast-cpp", "torch-eager"])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's peer
    args = parser.parse_args()
    if args.one:
        print(one_run(args.one, args.batch, args.epochs))
        return 0
    growth = {p: [] for p in args.peers}
    for _ in range(args.runs):
        for peer in args.peers:
            out = subprocess.run([sys.executable, __file__, "--one", peer, "--batch", str(args.batch),
                                  "--epochs", str(args.epochs)], capture_output=True, text=True, check=True)
            growth[peer].append(int(out.stdout.split()[-1]))
    medians = {p: statistics.median(g) for p, g in growth.items()}
    base = medians.get("torch-eager")
    for peer, kib in medians.items():
        ratio = f", {kib / base:.2f}x torch-eager" if base else ""
        print(f"{peer}: RSS growth {kib / 1024:.1f} MiB (runs: {', '.join(f'{g / 1024:.1f}' for g in growth[peer])}){ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
