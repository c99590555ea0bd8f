"""Adam (weight decay as an L2 term, as torch.optim.Adam) and AdamW (decoupled decay)."""
from __future__ import annotations

from ..backends import get_backend
from .optimizer import Optimizer, hyperparameter
from .rules import AdamRule, Slots


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params=None, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clipnorm=None, clipvalue=None):
        name = type(self).__name__
        beta1, beta2 = betas
        self.betas = (hyperparameter(beta1, name, "betas[0]", high=1.0),
                      hyperparameter(beta2, name, "betas[1]", high=1.0))
        self.eps = hyperparameter(eps, name, "eps", low_included=False)
        self.weight_decay = hyperparameter(weight_decay, name, "weight_decay")
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
