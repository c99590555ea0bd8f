"""The compiled C++/OpenMP backend: the primitives of nnfast._core.

Argument checking lives in csrc/bindings.cpp; this module only names the backend and
exposes its capability flags.
"""
from __future__ import annotations

try:
    from nnfast import _core
except ImportError as exc:  # say so when the build skipped the extension (no compiler)
    from nnfast._installation import missing_extension_hint
    raise ImportError(f"{exc}{missing_extension_hint()}") from exc

name = "cpp"
device = "cpu"
dtypes = ("float32", "float64")

gemm = _core.gemm
activation_forward = _core.activation_forward
activation_backward = _core.activation_backward
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads

from ._contract import missing_primitives  # noqa: E402

__getattr__ = missing_primitives(name)
