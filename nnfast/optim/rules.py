"""Typed records of an optimizer's update, for the executors that apply it themselves (the
compiled trainers): the rule of one step and each parameter's state slots, named by role.
They mirror csrc/train/op_spec.h's UpdateRule; `code` is its RuleKind.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Optional

import numpy as np


@dataclass(frozen=True)
class Slots:
    """One parameter's optimizer state: SGD's velocity (with momentum), Adam's first and
    second moments m and v; None where the optimizer keeps none."""

    velocity: Optional[np.ndarray] = None
    m: Optional[np.ndarray] = None
    v: Optional[np.ndarray] = None

    def named(self) -> dict:
        """{role: array} of the slots this optimizer keeps (the names nnfast.save writes)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class UpdateRule:
    """clipnorm / clipvalue: the clipping applied to the gradients before the update."""

    code: ClassVar[int]
    lr: float
    weight_decay: float
    clipnorm: Optional[float]
    clipvalue: Optional[float]


@dataclass(frozen=True)
class SgdRule(UpdateRule):
    code: ClassVar[int] = 0
    momentum: float = 0.0
    nesterov: bool = False


@dataclass(frozen=True)
class AdamRule(UpdateRule):
    """step: the number of this step, from 1 (Adam's bias correction)."""

    code: ClassVar[int] = 1
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    decoupled: bool = False
    step: int = 1
