"""Gradient clipping: by global norm (torch.nn.utils.clip_grad_norm_) and by value."""
from __future__ import annotations

import math

from ..backends import get_backend

# As torch: the scale is max_norm / (norm + 1e-6), so a norm just at max_norm is left alone.
NORM_EPS = 1e-6


def _positive(value, name: str) -> float:
    value = float(value)
    if not value > 0:  # NaN fails too
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def grad_norm(params) -> float:
    """The L2 norm of all gradients together, as one vector (deterministic: fixed chunks per
    array, arrays in order)."""
    B = get_backend()
    return math.sqrt(sum((B.sum_squares(p.grad) for p in params), 0.0))


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale every gradient by max_norm / (norm + 1e-6) when the global norm exceeds
    max_norm. Returns the norm before clipping (inf or NaN when a gradient is)."""
    max_norm = _positive(max_norm, "clip_grad_norm: max_norm")
    params = list(params)
    norm = grad_norm(params)
    scale = max_norm / (norm + NORM_EPS)
    if scale < 1.0:  # also false for a NaN norm: nothing sensible to scale by
        B = get_backend()
        for p in params:
            B.scale_inplace(p.grad, alpha=scale)
    return norm


def clip_grad_value(params, clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value]."""
    clip_value = _positive(clip_value, "clip_grad_value: clip_value")
    B = get_backend()
    for p in params:
        B.clip_inplace(p.grad, lo=-clip_value, hi=clip_value)
