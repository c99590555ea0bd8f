"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam, AdamW."""
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "get"]

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get(optimizer) -> Optimizer:
    """An Optimizer from an instance or a name ("sgd", "adam", "adamw") with default settings."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in _BY_NAME:
        return _BY_NAME[optimizer.lower()]()
    raise ValueError(f"optimizer: expected an Optimizer or one of {sorted(_BY_NAME)}, got {optimizer!r}")
