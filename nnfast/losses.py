"""Losses: `value = loss_fn(out, y)` returns the mean loss; `loss_fn.backward()` returns
d loss / d out. Targets are checked and converted once, with errors that say what is wrong.
"""
from __future__ import annotations

import numpy as np

from .backends import get_backend


class Loss:
    """Base class: check the output, prepare the target, call the backend's kernels."""

    name = ""

    def __call__(self, out, y) -> float:
        out = np.asarray(out)
        if out.dtype not in (np.float32, np.float64):
            raise TypeError(f"{type(self).__name__}: model output must be float32 or float64, "
                            f"got {out.dtype}")
        out = np.ascontiguousarray(out)
        self.check_output(out)
        target = self.prepare_target(y, out.shape, out.dtype)
        self._out, self._target = out, target
        return self._forward(out, target)

    def backward(self) -> np.ndarray:
        if getattr(self, "_out", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss was computed")
        return self._backward(self._out, self._target)

    def check_output(self, out: np.ndarray) -> None:
        """Raise ValueError if `out` cannot be this loss's input."""

    def prepare_target(self, y, out_shape, dtype) -> np.ndarray:
        """Check y against an output of `out_shape` and convert it for the kernels."""
        y = np.asarray(y)
        name = type(self).__name__
        if y.dtype.kind not in "fiub":
            raise TypeError(f"{name}: target must be numeric, got dtype {y.dtype}")
        out_shape = tuple(out_shape)
        if y.shape != out_shape:
            if y.ndim == 1 and out_shape == (y.shape[0], 1):  # (N,) targets for one output unit
                y = y.reshape(out_shape)
            else:
                raise ValueError(f"{name}: target shape {y.shape} does not match output shape {out_shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name}: target contains NaN or inf")
        return np.ascontiguousarray(y, dtype=dtype)

    def _forward(self, out: np.ndarray, target: np.ndarray) -> float:
        """The mean loss, from the backend's kernel named after the loss (mse_forward, ...)."""
        return getattr(get_backend(), f"{self.name}_forward")(out, target)

    def _backward(self, out: np.ndarray, target: np.ndarray) -> np.ndarray:
        """d loss / d out, from the backend's kernel named after the loss (mse_backward, ...)."""
        return getattr(get_backend(), f"{self.name}_backward")(out, target)

    def correct(self, out: np.ndarray, target: np.ndarray) -> int | None:
        """Number of correct predictions in a batch, or None where accuracy has no meaning."""
        return None

    def __repr__(self):
        return f"{type(self).__name__}()"


class MSE(Loss):
    """Mean squared error over all elements."""

    name = "mse"


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on probabilities (after a Sigmoid). Each log is clamped at -100,
    as torch.nn.BCELoss does, so p = 0 or 1 gives a large finite loss, not inf."""

    name = "bce"

    def check_output(self, out):
        if out.size and (np.isnan(out).any() or out.min() < 0 or out.max() > 1):
            raise ValueError("BinaryCrossEntropy: outputs must be probabilities in [0, 1]; "
                             "for raw scores use BCEWithLogits")

    def prepare_target(self, y, out_shape, dtype):
        target = super().prepare_target(y, out_shape, dtype)
        if target.size and (target.min() < 0 or target.max() > 1):
            raise ValueError(f"{type(self).__name__}: targets must lie in [0, 1]")
        return target

    def correct(self, out, target):
        return int(((out >= 0.5) == (target >= 0.5)).sum())


class BCEWithLogits(BinaryCrossEntropy):
    """Binary cross-entropy of sigmoid(logits), fused and stable at any logit."""

    name = "bce_with_logits"

    def check_output(self, out):
        pass

    def correct(self, out, target):
        return int(((out >= 0) == (target >= 0.5)).sum())


class CrossEntropy(Loss):
    """Softmax + categorical cross-entropy on logits, fused. Targets: integer class labels
    of shape (N,) (sparse) or one-hot / probability rows of shape (N, C)."""

    name = "cross_entropy"

    def check_output(self, out):
        if out.ndim != 2:
            raise ValueError(f"CrossEntropy: expected logits of shape (N, C), got {out.shape}")

    def prepare_target(self, y, out_shape, dtype):
        n, c = out_shape
        y = np.asarray(y)
        if y.ndim == 2:
            return super().prepare_target(y, out_shape, dtype)
        if y.ndim != 1:
            raise ValueError(f"CrossEntropy: target must be (N,) labels or (N, C) one-hot, got shape {y.shape}")
        if y.shape[0] != n:
            raise ValueError(f"CrossEntropy: {y.shape[0]} labels for {n} outputs")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError("CrossEntropy: sparse labels must be integers (class indices), "
                                 "got non-integer values")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"CrossEntropy: labels must be integers, got dtype {y.dtype}")
        if n and (y.min() < 0 or y.max() >= c):
            raise ValueError(f"CrossEntropy: labels must lie in [0, {c}) for {c} output classes, "
                             f"got values in [{y.min():g}, {y.max():g}]")
        return np.ascontiguousarray(y, dtype=np.int64)

    def _forward(self, out, target):
        loss, self._probs = get_backend().softmax_cross_entropy_forward(out, target)
        return loss

    def _backward(self, out, target):
        return get_backend().softmax_cross_entropy_backward(self._probs, target)

    def correct(self, out, target):
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        return int((out.argmax(axis=1) == labels).sum())


_BY_NAME = {cls.name: cls for cls in (MSE, BinaryCrossEntropy, BCEWithLogits, CrossEntropy)}


def get(loss) -> Loss:
    """A Loss object from a Loss or one of the names "mse", "bce", "bce_with_logits", "cross_entropy"."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _BY_NAME:
        return _BY_NAME[loss]()
    raise ValueError(f"loss: expected a Loss or one of {sorted(_BY_NAME)}, got {loss!r}")
