"""Command line: `python -m nnfast demo | info | bench`."""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nnfast", description="nnfast command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train 784-128-64-10 on real MNIST and report accuracy and speed")
    demo.add_argument("--epochs", type=int, default=5)
    demo.add_argument("--batch-size", type=int, default=64)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--backend", default=None, help="cpp, numba or numpy (default: the best available)")
    sub.add_parser("info", help="print the installation's backends, threads and kernels")
    sub.add_parser("bench", help="training benchmark against PyTorch, JAX and NumPy "
                                 "(`nnfast bench --help` for its options)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark parses its own options
        from .bench.train_bench import main as bench_main
        return bench_main(argv[1:])
    args = parser.parse_args(argv)

    import nnfast
    if args.command == "info":
        print(nnfast.info())
        return 0
    from .demo import print_demo, run_demo
    if args.backend:
        nnfast.set_backend(args.backend)
    print(f"nnfast {nnfast.__version__}: training 784-128-64-10 on MNIST "
          f"(8,000 train / 2,000 test), Adam 1e-3, batch {args.batch_size}, {args.epochs} epochs, "
          f"backend '{nnfast.get_backend().name}'", flush=True)
    print_demo(run_demo(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
