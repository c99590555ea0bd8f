"""Optimizer base: holds parameters and per-parameter state; step() calls backend kernels."""
from __future__ import annotations

import numpy as np

from ..nn.module import Parameter
from .clip import clip_grad_norm, clip_grad_value


class Optimizer:
    """Base of SGD, Adam, AdamW.

    clipnorm: before each step, scale the gradients so that their global L2 norm is at most
    clipnorm (torch's clip_grad_norm_, Keras's global_clipnorm). clipvalue: clamp each
    gradient element to [-clipvalue, clipvalue]. At most one of the two.
    """

    def __init__(self, params=None, *, lr: float, clipnorm=None, clipvalue=None):
        name = type(self).__name__
        if not lr > 0:
            raise ValueError(f"{name}: lr must be positive, got {lr!r}")
        if clipnorm is not None and clipvalue is not None:
            raise ValueError(f"{name}: give clipnorm or clipvalue, not both")
        for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)):
            if value is not None and not float(value) > 0:
                raise ValueError(f"{name}: {arg} must be positive, got {value!r}")
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.lr = float(lr)
        self.params: list[Parameter] = []
        self.state: list[dict] = []
        self.step_count = 0
        if params is not None:
            self.bind(params)

    @property
    def bound(self) -> bool:
        return bool(self.params)

    def bind(self, params) -> "Optimizer":
        """Attach the parameters to optimize (fit() does this for an optimizer made without any)."""
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: expected nnfast Parameters (model.parameters()), "
                                f"got {type(p).__name__}")
        self.params = params
        self.state = [self._new_state(p) for p in params]
        self.step_count = 0
        return self

    def _new_state(self, p: Parameter) -> dict:
        return {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        if not self.params:
            raise RuntimeError(f"{type(self).__name__}.step(): no parameters; create it with "
                               "model.parameters() or pass it to fit()")
        if self.clipnorm is not None:
            clip_grad_norm(self.params, self.clipnorm)
        elif self.clipvalue is not None:
            clip_grad_value(self.params, self.clipvalue)
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            self._update(p, state)

    def get_config(self) -> dict:
        """The constructor's keyword arguments (lr as it is now, after any schedule)."""
        return {"lr": self.lr, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue}

    def _update(self, p: Parameter, state: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def _zeros_like(p: Parameter) -> np.ndarray:
        return np.zeros_like(p.data)
