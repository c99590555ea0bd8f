"""The compiled C++/OpenMP backend: the primitives of nnfast._core.

Argument checking lives in csrc/bindings.cpp; this module only names the backend and
exposes its capability flags.
"""
from __future__ import annotations

from nnfast import _core

name = "cpp"
device = "cpu"
dtypes = ("float32", "float64")

gemm = _core.gemm
activation_forward = _core.activation_forward
activation_backward = _core.activation_backward
MlpTrainer = _core.MlpTrainer  # the fused training step (nnfast/fused.py)
set_num_threads = _core.set_num_threads
get_num_threads = _core.get_num_threads

from ._contract import missing_primitives  # noqa: E402

__getattr__ = missing_primitives(name)
