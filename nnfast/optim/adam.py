"""Adam (weight decay as an L2 term, as torch.optim.Adam) and AdamW (decoupled decay)."""
from __future__ import annotations

from ..backends import get_backend
from .optimizer import Optimizer
from .rules import AdamRule, Slots


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params=None, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clipnorm=None, clipvalue=None):
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        if eps <= 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0 and weight_decay >= 0")
        self.betas = (float(beta1), float(beta2))
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        super().__init__(params, lr=lr, clipnorm=clipnorm, clipvalue=clipvalue)

    def get_config(self):
        return {**super().get_config(), "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}

    def _new_slots(self, p):
        return Slots(m=self._zeros_like(p), v=self._zeros_like(p))

    def rule(self):
        return AdamRule(lr=self.lr, weight_decay=self.weight_decay, clipnorm=self.clipnorm,
                        clipvalue=self.clipvalue, beta1=self.betas[0], beta2=self.betas[1],
                        eps=self.eps, decoupled=self.decoupled, step=self.step_count)

    def _update(self, p, slots):
        get_backend().adam_update(p.data, p.grad, slots.m, slots.v, lr=self.lr,
                                  beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                                  weight_decay=self.weight_decay, step=self.step_count,
                                  decoupled=self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step."""

    decoupled = True

    def __init__(self, params=None, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, clipnorm=None, clipvalue=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue)
