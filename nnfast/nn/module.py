"""Parameter and Layer: the two things every layer is made of."""
from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array and its gradient, of the same shape and dtype.

    `data` is updated in place by optimizers; `grad` accumulates across backward calls
    until `zero_grad()` (as in PyTorch).
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data: np.ndarray, name: str):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={self.data.shape}, dtype={self.data.dtype})"


def as_float_input(x, dtype, name: str = "x") -> np.ndarray:
    """x as a C-contiguous array of `dtype`, copied only when it is not one already."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected numeric data, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


class Layer:
    """Base class: forward(x) -> y, backward(grad_y) -> grad_x, parameters()."""

    training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def _saved(self, *names):
        values = [getattr(self, n, None) for n in names]
        if any(v is None for v in values):
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return values
