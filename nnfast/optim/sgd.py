"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from ..backends import get_backend
from .optimizer import Optimizer, hyperparameter
from .rules import SgdRule, Slots


class SGD(Optimizer):
    """The update rule of torch.optim.SGD (dampening 0):
    g = grad + weight_decay * p; v = momentum * v + g; p -= lr * (g + momentum * v if nesterov else v).
    """

    def __init__(self, params=None, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clipnorm=None, clipvalue=None):
        momentum = hyperparameter(momentum, "SGD", "momentum")
        weight_decay = hyperparameter(weight_decay, "SGD", "weight_decay")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, bool(nesterov), weight_decay
        super().__init__(params, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _new_slots(self, p):
        return Slots(velocity=self._zeros_like(p)) if self.momentum else Slots()

    def rule(self):
        return SgdRule(lr=self.lr, weight_decay=self.weight_decay, clipnorm=self.clipnorm,
                       clipvalue=self.clipvalue, momentum=self.momentum, nesterov=self.nesterov)

    def _update(self, p, slots):
        get_backend().sgd_update(p.data, p.grad, slots.velocity, lr=self.lr,
                                 momentum=self.momentum, nesterov=self.nesterov,
                                 weight_decay=self.weight_decay)
