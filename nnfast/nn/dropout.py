"""Inverted dropout with a counter-based mask: reproducible on any backend and thread count."""
from __future__ import annotations

import secrets

import numpy as np

from .. import seeding
from ..backends import get_backend
from .module import Layer
from .ops import DropoutOp, RowWindow

_U64 = 2 ** 64


class Dropout(Layer):
    """Zero each element with probability p in training, scaling the rest by 1 / (1 - p);
    the identity in eval mode.  x (...), y (...).

    The mask of element i is a hash of (seed, offset + i); each training forward advances
    offset by x.size, so successive batches get fresh masks and a saved model resumes the
    same sequence. seed=None takes the next seed of nnfast.manual_seed's sequence, or draws a
    random one.

    In data-parallel training (fit(..., distributed=True)) `rows` places each batch in its
    global batch: row i is global row rows.first + i, whose mask is the one a single
    process training the whole global batch would draw, and the offset advances by the whole
    global batch on every process.
    """

    def __init__(self, p: float = 0.5, seed=None):
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise TypeError(f"Dropout: p must be a number, got {p!r}") from None
        if not 0.0 <= p < 1.0:  # written so that NaN fails too
            raise ValueError(f"Dropout: p must lie in [0, 1) (the probability of dropping a unit), "
                             f"got {p}")
        if seed is None:
            seed = seeding.next_seed(64)
        if seed is None:
            seed = secrets.randbits(64)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _U64:
            raise ValueError(f"Dropout: seed must be an integer in [0, 2**64) or None, got {seed!r}")
        self.p, self.seed = p, int(seed)
        # The offset lives in an array so that the compiled executors advance it in place.
        self._counter = np.zeros(1, np.uint64)
        self._mask = None
        self.rows: RowWindow | None = None
        self._row_width = None  # elements per row of the last training forward

    @property
    def offset(self) -> int:
        """The counter of the next mask element (mod 2**64)."""
        return int(self._counter[0])

    @offset.setter
    def offset(self, value: int) -> None:
        self._counter[0] = int(value) % _U64

    def forward(self, x):
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        x = np.ascontiguousarray(x)
        if not self.training or self.p == 0.0:
            self._mask = None
            self._shape = x.shape
            return x
        n = x.shape[0] if x.ndim else 1
        self._row_width = x.size // n if n else 0
        first, total = self.rows if self.rows is not None else (0, n)
        out, self._mask = get_backend().dropout_forward(
            x, p=self.p, seed=self.seed, offset=(self.offset + first * self._row_width) % _U64)
        self._shape = x.shape
        self.pass_rows(total)
        return out

    def pass_rows(self, total: int) -> None:
        """Advance the offset past `total` rows of the width last seen in training: what a
        forward over them would have done (a data-parallel process with no rows of a
        global batch keeps in step with the others)."""
        if self.p == 0.0:
            return
        if self._row_width is None:
            raise RuntimeError("Dropout.pass_rows: the layer has not run a training forward yet, "
                               "so the width of its rows is unknown")
        self.offset = (self.offset + total * self._row_width) % _U64

    def backward(self, grad_out):
        (shape,) = self._saved("_shape")
        grad_out = np.ascontiguousarray(grad_out)
        if grad_out.shape != shape:
            raise ValueError(f"Dropout.backward: expected grad of shape {shape}, got {grad_out.shape}")
        if self._mask is None:  # the forward was the identity
            return grad_out
        return get_backend().dropout_backward(grad_out, self._mask, p=self.p)

    def lower(self):
        return [DropoutOp(self.p, self.seed, self._counter)]

    def get_config(self):
        return {"p": self.p, "seed": self.seed}

    def get_state(self):
        return {"offset": self.offset}

    def set_state(self, state):
        self.offset = int(state["offset"]) % _U64

    def __repr__(self):
        return f"Dropout(p={self.p})"
