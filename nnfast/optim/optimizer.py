"""Optimizer base: holds parameters and per-parameter state; step() calls backend kernels."""
from __future__ import annotations

import numpy as np

from ..nn.module import Parameter


class Optimizer:
    def __init__(self, params=None, *, lr: float):
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr!r}")
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
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            self._update(p, state)

    def _update(self, p: Parameter, state: dict) -> None:
        raise NotImplementedError

    @staticmethod
    def _zeros_like(p: Parameter) -> np.ndarray:
        return np.zeros_like(p.data)
