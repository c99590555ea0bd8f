"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam, AdamW; gradient clipping;
learning-rate schedules (nnfast.optim.schedulers)."""
from . import rules, schedulers
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_value, grad_norm
from .optimizer import Optimizer
from .schedulers import (CosineAnnealing, CosineAnnealingLR, ExponentialLR, InverseTimeDecay,
                         ReduceLROnPlateau, Scheduler, StepLR)
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "get", "clip_grad_norm", "clip_grad_value",
           "grad_norm", "schedulers", "Scheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR",
           "CosineAnnealing", "InverseTimeDecay", "ReduceLROnPlateau"]

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get(optimizer) -> Optimizer:
    """An Optimizer from an instance or a name ("sgd", "adam", "adamw") with default settings."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(f"optimizer: expected an Optimizer or one of {sorted(_BY_NAME)}, got {optimizer!r}")


def from_config(name: str, config: dict) -> Optimizer:
    """An unbound optimizer of class `name` (as get_config() described it)."""
    classes = {cls.__name__: cls for cls in _BY_NAME.values()}
    if name not in classes:
        raise ValueError(f"unknown optimizer class {name!r} (known: {sorted(classes)})")
    return classes[name](**config)
