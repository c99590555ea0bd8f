"""Residual: a skip connection around a block, y = x + block(x)."""
from __future__ import annotations

import numpy as np

from .module import Layer, as_float_input
from .ops import ResidualBeginOp, ResidualEndOp
from .registry import layer_from_config, layer_to_config


def _width(block: Layer, attr: str):
    value = getattr(block, attr, None)
    return int(value) if isinstance(value, (int, np.integer)) else None


class Residual(Layer):
    """y = x + block(x).  x (N, C), block(x) (N, C), y (N, C).

    The block must keep the width: a block whose input and output widths are both known
    (Dense, Sequential of Dense) is checked here, any other at its first forward.
    """

    can_skip_input_grad = True

    def __init__(self, block: Layer):
        if not isinstance(block, Layer):
            raise TypeError(f"Residual: block must be an nnfast Layer, got {type(block).__name__}")
        fan_in, fan_out = _width(block, "in_features"), _width(block, "out_features")
        if fan_in is not None and fan_out is not None and fan_in != fan_out:
            raise ValueError(f"Residual: the block maps {fan_in} features to {fan_out}; "
                             f"y = x + block(x) needs a block with as many outputs as inputs")
        self.block = block

    @property
    def in_features(self):
        return _width(self.block, "in_features") or _width(self.block, "out_features")

    out_features = in_features

    def children(self):
        return [self.block]

    def named_children(self):
        return [("block", self.block)]

    def parameters(self):
        return self.block.parameters()

    def buffers(self):
        return self.block.buffers()

    def penalty(self) -> float:
        return self.block.penalty()

    def train(self, mode: bool = True):
        self.training = mode
        self.block.train(mode)
        return self

    def forward(self, x):
        params = self.block.parameters()
        x = np.asarray(x)
        dtype = params[0].dtype if params else (x.dtype if x.dtype.kind == "f" else np.float32)
        x = as_float_input(x, dtype)
        fx = self.block(x)
        if fx.shape != x.shape:
            raise ValueError(f"Residual: the block maps input of shape {x.shape} to {fx.shape}; "
                             f"y = x + block(x) needs a block that keeps the shape")
        return x + fx

    def backward(self, grad_out, need_input_grad: bool = True):
        if not need_input_grad and getattr(self.block, "can_skip_input_grad", False):
            self.block.backward(grad_out, need_input_grad=False)
            return None
        return grad_out + self.block.backward(grad_out)

    def lower(self):
        return [ResidualBeginOp(), *self.block.lower(), ResidualEndOp()]

    def get_config(self):
        return {"block": layer_to_config(self.block)}

    @classmethod
    def declared_size(cls, config, size_of):
        return size_of(config["block"])

    @classmethod
    def from_config(cls, config):
        return cls(layer_from_config(config["block"]))

    def __repr__(self):
        inner = repr(self.block).replace("\n", "\n  ")
        return f"Residual(\n  {inner}\n)"
