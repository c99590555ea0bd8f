"""The one description of a model that every executor runs: typed op records.

Each layer lowers itself to a list of records (`Layer.lower()`): its kind, the arrays it
reads and trains (the live Parameters and buffers, never copies) and its settings. The
compiled executors (the CPU trainer in csrc/train, the CUDA trainer on the same code) read
these records through their bindings, which mirror them as `OpSpec` (csrc/train/op_spec.h);
the layer-by-layer path runs the same layers' primitives one call at a time. Records are
made afresh from the layers whenever a model is planned, so a changed setting (a
LeakyReLU's alpha, a BatchNorm's eps) is always what runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional

import numpy as np

from .module import CannotLower, Parameter

# Values of csrc/train/op_spec.h's LossKind, by loss name.
LOSS_CODES = {"cross_entropy": 0, "mse": 1, "bce_with_logits": 2}


class RowWindow(NamedTuple):
    """Where a data-parallel step's rows sit in its global batch (csrc/train/op_spec.h's
    RowWindow): this process trains rows [first, first + its batch) of `total` rows."""

    first: int
    total: int


class Activation(NamedTuple):
    """An elementwise activation: its kernel name and its parameter (leaky ReLU's slope)."""

    kind: str = "identity"
    parameter: float = 0.01


IDENTITY = Activation()


class Op:
    """A record of one operation. `code` matches csrc/train/op_spec.h's OpKind."""

    __slots__ = ()
    code: ClassVar[int]

    def parameters(self) -> list[Parameter]:
        return []

    def key(self) -> tuple:
        """What an executor built from this record depends on: its settings, and which
        arrays (by identity) it reads and writes."""
        return (self.code,)


@dataclass(eq=False, slots=True)
class DenseOp(Op):
    """y = activation(x @ weight + bias), with the L1/L2 penalties on the weight."""

    code: ClassVar[int] = 0
    weight: Parameter
    bias: Parameter
    activation: Activation = IDENTITY
    l1: float = 0.0
    l2: float = 0.0

    @property
    def in_features(self) -> int:
        return self.weight.shape[0]

    @property
    def out_features(self) -> int:
        return self.weight.shape[1]

    def parameters(self):
        return [self.weight, self.bias]

    def key(self):
        w, b = self.weight, self.bias
        return (self.code, id(w.data), id(w.grad), id(b.data), id(b.grad), self.activation,
                self.l1, self.l2)


@dataclass(eq=False, slots=True)
class ActivationOp(Op):
    code: ClassVar[int] = 1
    activation: Activation

    def key(self):
        return self.code, self.activation


@dataclass(eq=False, slots=True)
class DropoutOp(Op):
    """counter: the layer's own uint64 array of shape (1,), the offset of the next mask,
    which every executor advances in place."""

    code: ClassVar[int] = 2
    p: float
    seed: int
    counter: np.ndarray

    def key(self):
        return self.code, self.p, self.seed, id(self.counter)


@dataclass(eq=False, slots=True)
class BatchNormOp(Op):
    """gamma and beta are None for affine=False."""

    code: ClassVar[int] = 3
    gamma: Optional[Parameter]
    beta: Optional[Parameter]
    running_mean: np.ndarray
    running_var: np.ndarray
    momentum: float
    eps: float

    @property
    def num_features(self) -> int:
        return self.running_mean.shape[0]

    def parameters(self):
        return [self.gamma, self.beta] if self.gamma is not None else []

    def key(self):
        arrays = [a for p in self.parameters() for a in (p.data, p.grad)]
        return (self.code, *map(id, arrays), id(self.running_mean), id(self.running_var),
                self.momentum, self.eps)


@dataclass(eq=False, slots=True)
class ResidualBeginOp(Op):
    """The identity; the matching ResidualEndOp adds its input to the block's output."""

    code: ClassVar[int] = 4


@dataclass(eq=False, slots=True)
class ResidualEndOp(Op):
    """y = block(x) + x, x being the input of the matching (innermost open) ResidualBeginOp."""

    code: ClassVar[int] = 5


def fuse_activations(ops: list[Op]) -> list[Op]:
    """The same computation with each elementwise activation that follows a Dense folded
    into that Dense (the GEMM applies it in its epilogue)."""
    fused: list[Op] = []
    for op in ops:
        prev = fused[-1] if fused else None
        if (isinstance(op, ActivationOp) and isinstance(prev, DenseOp)
                and prev.activation == IDENTITY):
            fused[-1] = DenseOp(prev.weight, prev.bias, op.activation, prev.l1, prev.l2)
        else:
            fused.append(op)
    return fused


def parameters_of(ops: list[Op]) -> list[Parameter]:
    """The trained Parameters of an op list, in the model's parameter order."""
    return [p for op in ops for p in op.parameters()]


def state_key(ops: list[Op]) -> tuple:
    """Equal keys: an executor built from either op list can run the other as it is."""
    return tuple(op.key() for op in ops)
