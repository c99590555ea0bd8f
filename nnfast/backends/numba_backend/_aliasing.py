"""Inputs that share memory with an output, copied so that a kernel never reads what it wrote.

The reference computes every result into a temporary before storing it, so its outputs may
overlap its inputs in any way. A kernel that streams through its arrays may not: an output
that is the very input array (in place, element for element) is fine, any other overlap
gets a copy of the input first (rare, and cheaper than a wrong result).
"""
from __future__ import annotations

import numpy as np


def _same_elements(a: np.ndarray, b: np.ndarray) -> bool:
    # both C-contiguous (checked before): the same start, dtype and shape are the same elements
    return (a.dtype == b.dtype and a.shape == b.shape
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def unaliased(a, *outputs):
    """`a`, or a copy of it when it overlaps one of `outputs` other than as the same elements."""
    if a is None:
        return None
    for out in outputs:
        if out is not None and np.may_share_memory(a, out) and not _same_elements(a, out):
            return a.copy()
    return a
