"""Where a fused training step's time goes, measured inside the C++ step: fit()'s compiled
step run on nnfast._core.ProfilingTrainer, the same trainer over a kernel table that times
each kernel call by phase (csrc/train/timed_kernels.h). It runs the same kernels in the same
order as the production trainer, so it trains to bitwise the same weights.

    from nnfast import profiling
    step = profiling.ProfiledStep(model, losses.get("cross_entropy"), optimizer)
    step.step(X, y, idx)            # as fit()'s compiled step
    step.times().per_step()         # PhaseTimes, seconds per step
"""
from __future__ import annotations

import dataclasses

from .fused import FusedTrainer, class_weight_of, plan
from .nn.ops import LOSS_CODES, parameters_of


@dataclasses.dataclass(frozen=True)
class PhaseTimes:
    """Seconds per phase (summed over `steps` trainer calls unless divided by per_step()).
    `other` is the C++ time no named phase accounts for: copies, dropout, batch norm,
    residual adds and the trainer's own glue."""

    gemm_forward: float  # x W with its fused bias and activation epilogue
    gemm_dx: float       # dY W^T, input gradients
    gemm_dw: float       # X^T dY, weight gradients
    activation: float    # activations outside a GEMM epilogue (their backward, mostly)
    loss: float          # loss forward and gradient, correct counts
    bias_grad: float
    optimizer: float     # update, weight penalties, clipping
    gather: float        # the batch's rows, labels and sample weights
    other: float
    step: float          # the whole C++ calls: every phase above adds up to it
    steps: int

    PHASES = ("gemm_forward", "gemm_dx", "gemm_dw", "activation", "loss", "bias_grad",
              "optimizer", "gather", "other")

    @classmethod
    def from_core(cls, t) -> "PhaseTimes":
        named = {p: getattr(t, p) for p in cls.PHASES if p != "other"}
        return cls(**named, other=t.step - sum(named.values()), step=t.step, steps=t.steps)

    def per_step(self) -> "PhaseTimes":
        n = max(self.steps, 1)
        return dataclasses.replace(self, **{p: getattr(self, p) / n for p in (*self.PHASES, "step")},
                                   steps=1)


class ProfiledStep(FusedTrainer):
    """fit()'s compiled step on the CPU (fused.FusedTrainer) on the profiling trainer: the
    same arguments and results, and times() by phase, whichever backend is active."""

    def __init__(self, model, loss_fn, opt):
        from . import _core  # the compiled extension; an ImportError says it is not built
        ops = plan(model)
        if isinstance(ops, str):
            raise ValueError(f"profiled step: {ops}")
        self.opt = opt
        self.trainer = _core.ProfilingTrainer(
            ops, LOSS_CODES[loss_fn.name], [opt.slots_of(p) for p in parameters_of(ops)],
            class_weight=class_weight_of(loss_fn, model))

    def times(self) -> PhaseTimes:
        """Seconds per phase summed since construction or the last reset_times()."""
        return PhaseTimes.from_core(self.trainer.times())

    def reset_times(self) -> None:
        self.trainer.reset_times()
