"""What the example scripts share around their training: the command line every one of them
takes (--seed, --backend, --plot) and the report of its result and training curves. Not an
example itself: the scripts import it from their own folder, first on sys.path when one runs."""
from __future__ import annotations

import argparse

import nnfast


def argument_parser(doc: str, plot: str,
                    plot_help: str = "where to save the training curves") -> argparse.ArgumentParser:
    """The options every example takes, described by the first line of its docstring `doc`;
    `plot` is where its curves go by default. Add the script's own options to it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default=None, help="cpp, numba or numpy (default: the best available)")
    parser.add_argument("--plot", default=plot, help=plot_help)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """The parsed arguments, the backend they name (if any) already selected."""
    args = parser.parse_args(argv)
    if args.backend:
        nnfast.set_backend(args.backend)
    return args


def report(result: str, history, path: str, title: str, prefix: str = "") -> None:
    """Print `result` with the backend that trained the model, plot the training curves of
    `history` to `path` and say where they went, aligned under the result's `prefix`."""
    print(f"{prefix}backend {nnfast.get_backend().name}: {result}")
    history.plot(path, title=title)
    print(f"{' ' * len(prefix)}training curves saved to {path}")
