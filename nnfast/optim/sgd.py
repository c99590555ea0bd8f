"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from ..backends import get_backend
from .optimizer import Optimizer


class SGD(Optimizer):
    """The update rule of torch.optim.SGD (dampening 0):
    g = grad + weight_decay * p; v = momentum * v + g; p -= lr * (g + momentum * v if nesterov else v).
    """

    def __init__(self, params=None, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clipnorm=None, clipvalue=None):
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        if weight_decay < 0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), bool(nesterov), float(weight_decay)
        super().__init__(params, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _new_state(self, p):
        return {"velocity": self._zeros_like(p)} if self.momentum else {}

    def _update(self, p, state):
        get_backend().sgd_update(p.data, p.grad, state.get("velocity"), lr=self.lr,
                                 momentum=self.momentum, nesterov=self.nesterov,
                                 weight_decay=self.weight_decay)
