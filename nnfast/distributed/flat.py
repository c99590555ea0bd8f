"""The gradients of a model laid out in one contiguous buffer, so that a data-parallel step
sums them across processes with a single in-place Allreduce."""
from __future__ import annotations

import numpy as np


class FlatGradients:
    """Makes each Parameter's grad a view into one flat array, in parameter order. Every
    executor writes gradients in place (the layers accumulate into p.grad, the compiled
    trainer writes the arrays its records name), so after a backward the flat array holds
    them all. Build it before the executor that should write into it."""

    def __init__(self, params):
        params = list(params)
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1:
            raise ValueError("distributed training needs every parameter in one dtype, got "
                             f"{sorted(str(d) for d in dtypes)}: convert the model to one")
        self.buffer = np.zeros(sum(p.data.size for p in params), dtype=dtypes.pop())
        start = 0
        for p in params:
            view = self.buffer[start:start + p.data.size].reshape(p.shape)
            view[...] = p.grad
            p.grad = view
            start += p.data.size

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes
