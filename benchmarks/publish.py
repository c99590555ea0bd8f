"""What every benchmark script does with its table: print it, and write it where asked."""
from __future__ import annotations

import sys


def invocation(script: str, argv) -> str:
    """The command line that reproduces this run, for the table's header."""
    args = argv if argv is not None else sys.argv[1:]
    return " ".join(["python", f"benchmarks/{script}", *args])


def publish(text: str, markdown_path) -> None:
    print(text)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(text)
