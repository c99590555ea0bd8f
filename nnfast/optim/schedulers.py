"""Learning-rate schedules, stepped once per epoch.

fit(..., scheduler=s) binds s to the optimizer (remembering its lr as base_lr) and calls
s.step(logs) after each epoch, which sets the lr of the next one. In a manual loop: bind
the scheduler with `s = StepLR(10, optimizer=opt)` and call `s.step()` at each epoch's end
(`s.step({"val_loss": v})` for ReduceLROnPlateau).

warmup_epochs=W (closed-form schedules): the lr rises linearly, base_lr * (e + 1) / (W + 1)
at epoch e < W, and the schedule starts at epoch W as if it were its epoch 0.
"""
from __future__ import annotations

import math

from ..monitor import improved, require_metric, resolve_mode
from .optimizer import Optimizer


class Scheduler:
    def __init__(self, optimizer: Optimizer | None = None, warmup_epochs: int = 0):
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ValueError(f"{type(self).__name__}: warmup_epochs must be an integer >= 0, "
                             f"got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs
        self.optimizer = None
        self.base_lr = None
        self.epoch = 0  # the epoch whose lr the optimizer holds
        if optimizer is not None:
            self.bind(optimizer)

    def bind(self, optimizer: Optimizer) -> "Scheduler":
        """Drive `optimizer`'s lr, starting from its current lr as base_lr."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an nnfast Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer, self.base_lr, self.epoch = optimizer, optimizer.lr, 0
        optimizer.lr = self.lr_at(0)
        return self

    def check_metrics(self, available) -> None:
        """Raise ValueError if this schedule needs a metric that fit() will not log."""

    def step(self, logs: dict | None = None) -> float:
        """End of an epoch: set and return the lr of the next one."""
        if self.optimizer is None:
            raise RuntimeError(f"{type(self).__name__}.step(): not bound to an optimizer; pass "
                               "optimizer= or give the scheduler to fit()")
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch, logs or {})
        return self.optimizer.lr

    def lr_at(self, epoch: int, logs: dict | None = None) -> float:
        if epoch < self.warmup_epochs:
            return self.base_lr * (epoch + 1) / (self.warmup_epochs + 1)
        return self.schedule(epoch - self.warmup_epochs)

    def schedule(self, epoch: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"warmup_epochs": self.warmup_epochs}

    def get_state(self) -> dict:
        return {"epoch": self.epoch, "base_lr": self.base_lr}

    def set_state(self, state: dict) -> None:
        self.epoch, self.base_lr = int(state["epoch"]), float(state["base_lr"])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _positive(value, name, cls) -> float:
    value = float(value)
    if not value > 0:
        raise ValueError(f"{cls}: {name} must be positive, got {value}")
    return value


class StepLR(Scheduler):
    """lr = base_lr * gamma ** (epoch // step_size), as torch.optim.lr_scheduler.StepLR."""

    def __init__(self, step_size: int, gamma: float = 0.1, optimizer=None, warmup_epochs: int = 0):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, _positive(gamma, "gamma", "StepLR")
        super().__init__(optimizer, warmup_epochs)

    def schedule(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)

    def get_config(self):
        return {"step_size": self.step_size, "gamma": self.gamma, **super().get_config()}


class ExponentialLR(Scheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, gamma: float, optimizer=None, warmup_epochs: int = 0):
        self.gamma = _positive(gamma, "gamma", "ExponentialLR")
        super().__init__(optimizer, warmup_epochs)

    def schedule(self, epoch):
        return self.base_lr * self.gamma ** epoch

    def get_config(self):
        return {"gamma": self.gamma, **super().get_config()}


class CosineAnnealingLR(Scheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: from base_lr
    down to eta_min at epoch T_max (torch's closed form; it rises again after T_max)."""

    def __init__(self, T_max: int, eta_min: float = 0.0, optimizer=None, warmup_epochs: int = 0):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        if not eta_min >= 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be >= 0, got {eta_min!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, warmup_epochs)

    def schedule(self, epoch):
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2

    def get_config(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min, **super().get_config()}


CosineAnnealing = CosineAnnealingLR


class InverseTimeDecay(Scheduler):
    """lr = base_lr / (1 + decay * epoch): the `decay` of the classic tutorials, per epoch
    (fit(..., decay=d) is a shorthand for it)."""

    def __init__(self, decay: float, optimizer=None, warmup_epochs: int = 0):
        decay = float(decay)
        if not decay >= 0:
            raise ValueError(f"InverseTimeDecay: decay must be >= 0, got {decay}")
        self.decay = decay
        super().__init__(optimizer, warmup_epochs)

    def schedule(self, epoch):
        return self.base_lr / (1.0 + self.decay * epoch)

    def get_config(self):
        return {"decay": self.decay, **super().get_config()}


class ReduceLROnPlateau(Scheduler):
    """Multiply the lr by `factor` when `monitor` has not improved by more than min_delta for
    `patience` epochs, then wait `cooldown` epochs; never below min_lr. mode "min" (losses),
    "max" (accuracies) or "auto" (max for accuracies, AUC, precision, recall, F1)."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, optimizer=None):
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must lie in (0, 1), got {factor!r}")
        for arg, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReduceLROnPlateau: {arg} must be an integer >= 0, got {value!r}")
        if not (min_delta >= 0 and min_lr >= 0):
            raise ValueError("ReduceLROnPlateau: min_delta and min_lr must be >= 0")
        self.monitor, self.factor, self.patience = str(monitor), float(factor), patience
        self.mode = resolve_mode(mode, self.monitor, "ReduceLROnPlateau")
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), cooldown, float(min_lr)
        self.best, self.bad_epochs, self.cooldown_left = None, 0, 0
        super().__init__(optimizer)

    def check_metrics(self, available):
        require_metric(self.monitor, available, "ReduceLROnPlateau")

    def lr_at(self, epoch, logs=None):
        if epoch == 0:
            return self.base_lr
        if self.monitor not in logs:
            require_metric(self.monitor, logs, "ReduceLROnPlateau")
        value = float(logs[self.monitor])
        lr = self.optimizer.lr
        # The order of torch.optim.lr_scheduler.ReduceLROnPlateau.step (threshold_mode "abs").
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            lr = max(lr * self.factor, self.min_lr)
            self.cooldown_left, self.bad_epochs = self.cooldown, 0
        return lr

    def get_config(self):
        return {"monitor": self.monitor, "factor": self.factor, "patience": self.patience,
                "mode": self.mode, "min_delta": self.min_delta, "cooldown": self.cooldown,
                "min_lr": self.min_lr}

    def get_state(self):
        return {**super().get_state(), "best": self.best, "bad_epochs": self.bad_epochs,
                "cooldown_left": self.cooldown_left}

    def set_state(self, state):
        super().set_state(state)
        self.best = state["best"]
        self.bad_epochs, self.cooldown_left = int(state["bad_epochs"]), int(state["cooldown_left"])


_BY_NAME = {cls.__name__: cls for cls in (StepLR, ExponentialLR, CosineAnnealingLR,
                                          InverseTimeDecay, ReduceLROnPlateau)}


def scheduler_from_config(name: str, config: dict, state: dict) -> Scheduler:
    if name not in _BY_NAME:
        raise ValueError(f"unknown scheduler class {name!r}")
    scheduler = _BY_NAME[name](**config)
    scheduler.set_state(state)
    return scheduler


__all__ = ["Scheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "CosineAnnealing",
           "InverseTimeDecay", "ReduceLROnPlateau"]
