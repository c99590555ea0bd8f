#!/usr/bin/env python3
"""Smoke test of an installed nnfast wheel, run from outside the checkout: the package is
the installed one, its compiled backend loads with the OpenMP runtime the wheel bundles,
the shipped MNIST files load, and a small network trains on the compiled kernels.

    python scripts/smoke_test.py [--expect-isa generic]   (after `pip install nnfast-*.whl`)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nnfast
from nnfast import datasets, nn, optim

CHECKOUT = Path(__file__).resolve().parent.parent
# 62 steps (kept few: this also runs under CPU emulation) reach 0.86-0.89 for seeds 0-2;
# chance is 0.1, so a wrong kernel fails while a correct one has room to spare.
TRAIN_SAMPLES = 4000
MIN_ACCURACY = 0.75


def fail(message: str) -> None:
    sys.exit(f"smoke test FAILED: {message}")


def main() -> None:
    parser = argparse.ArgumentParser(description="smoke test of an installed nnfast wheel")
    parser.add_argument("--expect-isa", help="fail unless the GEMM picked this microkernel ISA")
    args = parser.parse_args()
    report = nnfast.info()
    package = Path(nnfast.__file__).resolve().parent
    if package.parent == CHECKOUT:
        fail(f"nnfast was imported from the checkout {package}, not from the installed wheel")
    if not report["install"].startswith("wheel "):
        fail(f"expected a portable wheel install, got: {report['install']}")
    if report["backend"] != "cpp":
        fail(f"the compiled backend is not the default: {report['backends']}")
    if sys.platform in ("linux", "darwin") and "bundled in the wheel" not in report["openmp_lib"]:
        fail(f"the extension does not use the OpenMP runtime bundled in the wheel: "
             f"{report['openmp_lib']}")
    if args.expect_isa and report["gemm_isa"] != args.expect_isa:
        fail(f"expected the '{args.expect_isa}' GEMM microkernels, got '{report['gemm_isa']}'")

    (X, y), (X_test, y_test) = datasets.load_mnist_split()
    model = nn.Sequential(nn.Dense(784, 64, seed=0), nn.ReLU(), nn.Dense(64, 10, seed=1))
    start = time.perf_counter()
    X, y = X[:TRAIN_SAMPLES], y[:TRAIN_SAMPLES]
    model.fit(X, y, loss="cross_entropy", optimizer=optim.Adam(lr=3e-3), epochs=1, batch_size=64,
              seed=0, verbose=0)
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(X_test, y_test)["accuracy"]
    print(f"smoke test: nnfast {nnfast.__version__} from {package}\n"
          f"  install  {report['install']}\n  openmp   {report['openmp_lib']}\n"
          f"  isa      {report['gemm_isa']}\n"
          f"  784-64-10, 1 epoch of {len(X):,} MNIST digits on '{report['backend']}' in {seconds:.2f} s: "
          f"test accuracy {accuracy:.4f}")
    if not accuracy >= MIN_ACCURACY:
        fail(f"test accuracy {accuracy:.4f} below {MIN_ACCURACY}")
    print("smoke test OK")


if __name__ == "__main__":
    main()
