"""Optimizer base: holds parameters and per-parameter state; step() calls backend kernels."""
from __future__ import annotations

import math
import numbers
from contextlib import contextmanager

import numpy as np

from ..nn.module import Parameter
from .clip import clip_grad_norm, clip_grad_value
from .rules import Slots, UpdateRule


def hyperparameter(value, owner: str, name: str, *, low: float = 0.0, low_included: bool = True,
                   high: float = math.inf) -> float:
    """`value` as a finite float in [low, high) (or (low, high) without low_included), or a
    TypeError/ValueError saying what was given: a NaN or infinite setting trains silently
    wrong (Adam with eps=inf makes no update at all)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r} "
                        f"({type(value).__name__})")
    value = float(value)
    in_range = (value >= low if low_included else value > low) and value < high
    if not (math.isfinite(value) and in_range):
        if high < math.inf:
            bounds = f"lie in {'[' if low_included else '('}{low:g}, {high:g})"
        elif low == 0:
            bounds = "be >= 0 and finite" if low_included else "be positive and finite"
        else:
            bounds = f"be {'>=' if low_included else '>'} {low:g} and finite"
        raise ValueError(f"{owner}: {name} must {bounds}, got {value!r}")
    return value


class Optimizer:
    """Base of SGD, Adam, AdamW.

    clipnorm: before each step, scale the gradients so that their global L2 norm is at most
    clipnorm (torch's clip_grad_norm_, Keras's global_clipnorm). clipvalue: clamp each
    gradient element to [-clipvalue, clipvalue]. At most one of the two.
    """

    def __init__(self, params=None, *, lr: float, clipnorm=None, clipvalue=None):
        name = type(self).__name__
        lr = hyperparameter(lr, name, "lr", low_included=False)
        if clipnorm is not None and clipvalue is not None:
            raise ValueError(f"{name}: give clipnorm or clipvalue, not both")
        self.clipnorm, self.clipvalue = (
            None if value is None else hyperparameter(value, name, arg, low_included=False)
            for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue)))
        self.lr = lr
        self.params: list[Parameter] = []
        self.slots: list[Slots] = []
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
        self.slots = [self._new_slots(p) for p in params]
        self.step_count = 0
        return self

    def _new_slots(self, p: Parameter) -> Slots:
        return Slots()

    def slots_of(self, parameter: Parameter) -> Slots:
        """The state of one of the bound parameters."""
        for p, slots in zip(self.params, self.slots):
            if p is parameter:
                return slots
        raise ValueError(f"{type(self).__name__} is not bound to {parameter!r}: it optimizes "
                         "another model's parameters")

    @contextmanager
    def external_step(self):
        """For an executor that clips and updates the gradients itself (fit()'s compiled
        trainers) instead of calling step(): yields this step's rule, and counts the step
        when the block completes (a step refused with an exception is not counted)."""
        self._check_bound()
        self.step_count += 1
        try:
            yield self.rule()
        except BaseException:
            self.step_count -= 1
            raise

    def external_steps(self, run):
        """For an executor that makes several steps in one call (fit()'s compiled trainer,
        an epoch at a time): run(rule) gets the first step's rule, whose step count the
        next steps go on from, and returns (steps made, result); returns the result, with
        the steps counted."""
        with self.external_step() as rule:
            made, result = run(rule)
        self.step_count += made - 1
        return result

    def rule(self) -> UpdateRule:
        """The update of step number step_count, as a typed record."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def _check_bound(self) -> None:
        if not self.params:
            raise RuntimeError(f"{type(self).__name__}.step(): no parameters; create it with "
                               "model.parameters() or pass it to fit()")

    def step(self) -> None:
        self._check_bound()
        if self.clipnorm is not None:
            clip_grad_norm(self.params, self.clipnorm)
        elif self.clipvalue is not None:
            clip_grad_value(self.params, self.clipvalue)
        self.step_count += 1
        for p, slots in zip(self.params, self.slots):
            self._update(p, slots)

    def get_config(self) -> dict:
        """The constructor's keyword arguments (lr as it is now, after any schedule)."""
        return {"lr": self.lr, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue}

    def __sklearn_clone__(self):
        """sklearn.base.clone(optimizer): the same settings, bound to no parameters and
        without state (copy.deepcopy and pickle keep both)."""
        return type(self)(**self.get_config())

    def _update(self, p: Parameter, slots: Slots) -> None:
        raise NotImplementedError

    @staticmethod
    def _zeros_like(p: Parameter) -> np.ndarray:
        return np.zeros_like(p.data)
