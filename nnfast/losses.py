"""Losses: `value = loss_fn(out, y)` returns the mean loss; `loss_fn.backward()` returns
d loss / d out. Targets are checked and converted once, with errors that say what is wrong.

Weights, as torch and Keras have them:
- `BCEWithLogits(pos_weight=)` and `CrossEntropy(weight=)` are torch's arguments with
  torch's formulas: pos_weight multiplies the positive term of each output column;
  CrossEntropy's weight multiplies each sample's loss by the weight of its class, and the
  mean over class labels divides by the sum of those weights (over one-hot or probability
  rows it divides by N, as torch).
- `loss_fn(out, y, sample_weight=w)` (what fit(sample_weight=, class_weight=) passes):
  each sample's loss is multiplied by w_i and the mean keeps its denominator (N, the
  element count, or CrossEntropy's sum of class weights), as Keras's sample_weight does. So
  with both, sum_i w_i k_(y_i) l_i / sum_i k_(y_i).
"""
from __future__ import annotations

import numpy as np

from .backends import get_backend


class Loss:
    """Base class: check the output, prepare the target, call the backend's kernels."""

    name = ""

    def __call__(self, out, y, sample_weight=None) -> float:
        """The mean loss of (out, y); sample_weight (N,) multiplies each sample's loss."""
        out = np.asarray(out)
        if out.dtype not in (np.float32, np.float64):
            raise TypeError(f"{type(self).__name__}: model output must be float32 or float64, "
                            f"got {out.dtype}")
        out = np.ascontiguousarray(out)
        self.check_output(out)
        target = self.prepare_target(y, out.shape, out.dtype)
        weights = self.weights(out.shape, out.dtype)
        if sample_weight is not None:
            weights["sample_weight"] = check_sample_weight(sample_weight, out.shape[0], out.dtype,
                                                           type(self).__name__)
        self._out, self._target, self._weights = out, target, weights
        return self._forward(out, target, weights)

    def backward(self) -> np.ndarray:
        if getattr(self, "_out", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss was computed")
        return self._backward(self._out, self._target, self._weights)

    def weights(self, out_shape, dtype) -> dict:
        """The loss's own weights as the backend's keyword arguments (pos_weight=,
        class_weight=), for an output of `out_shape`."""
        return {}

    def class_weight_array(self, width: int, dtype) -> np.ndarray | None:
        """The per-class weights a compiled step takes (out,), or None."""
        return None

    def get_config(self) -> dict:
        """The constructor's arguments, for saving."""
        return {}

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

    def _forward(self, out: np.ndarray, target: np.ndarray, weights: dict) -> float:
        """The mean loss, from the backend's kernel named after the loss (mse_forward, ...)."""
        return getattr(get_backend(), f"{self.name}_forward")(out, target, **weights)

    def _backward(self, out: np.ndarray, target: np.ndarray, weights: dict) -> np.ndarray:
        """d loss / d out, from the backend's kernel named after the loss (mse_backward, ...)."""
        return getattr(get_backend(), f"{self.name}_backward")(out, target, **weights)

    def correct(self, out: np.ndarray, target: np.ndarray) -> int | None:
        """Number of correct predictions in a batch, or None where accuracy has no meaning."""
        return None

    # Whether the model's outputs under this loss map to class probabilities.
    gives_probabilities = False

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        """The class probabilities the outputs `out` (N, C) stand for under this loss."""
        raise ValueError(f"{type(self).__name__} is not a classification loss: its outputs are "
                         "not probabilities (train with cross_entropy, bce or bce_with_logits)")

    def labels(self, target: np.ndarray) -> np.ndarray:
        """The class labels of prepared targets: (N,) integers, or (N, C) 0/1 columns."""
        raise ValueError(f"{type(self).__name__} is not a classification loss")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def check_sample_weight(sample_weight, n: int, dtype, name: str = "sample_weight") -> np.ndarray:
    """sample_weight as a C-contiguous (n,) array of `dtype`, finite and >= 0, or a clear error."""
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "fiub":
        raise TypeError(f"{name}: sample_weight must be numeric, got dtype {w.dtype}")
    if w.shape != (n,):
        raise ValueError(f"{name}: sample_weight must have shape ({n},), one weight per sample, "
                         f"got shape {w.shape}")
    if not np.all(np.isfinite(w)) or (n and w.min() < 0):
        raise ValueError(f"{name}: sample weights must be finite and >= 0")
    return np.ascontiguousarray(w, dtype=dtype)


def _class_vector(value, arg: str, owner: str) -> np.ndarray:
    """A per-class weight argument as a finite, non-negative float64 vector (or scalar)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim > 1:
        raise ValueError(f"{owner}: {arg} must be a number or a 1-D sequence, got shape {v.shape}")
    if not np.all(np.isfinite(v)) or (v.size and v.min() < 0):
        raise ValueError(f"{owner}: {arg} must be finite and >= 0, got {value!r}")
    return v


def _per_column(v: np.ndarray, width: int, arg: str, owner: str) -> np.ndarray:
    if v.ndim == 0 or v.shape == (1,):
        return np.full(width, float(v.reshape(-1)[0]))
    if v.shape != (width,):
        raise ValueError(f"{owner}: {arg} has {v.shape[0]} values for an output of {width} "
                         "columns (give one per output column)")
    return v


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

    gives_probabilities = True

    def probabilities(self, out):
        return np.asarray(out)

    def labels(self, target):
        return (np.asarray(target) >= 0.5).astype(np.int64)


class BCEWithLogits(BinaryCrossEntropy):
    """Binary cross-entropy of sigmoid(logits), fused and stable at any logit.

    pos_weight: torch.nn.BCEWithLogitsLoss's, a number or one value per output column that
    multiplies the loss of the positive targets (n_negative / n_positive balances a column).
    """

    name = "bce_with_logits"

    def __init__(self, pos_weight=None):
        self.pos_weight = None if pos_weight is None else _class_vector(pos_weight, "pos_weight",
                                                                        "BCEWithLogits")

    def check_output(self, out):
        pass

    def class_weight_array(self, width, dtype):
        if self.pos_weight is None:
            return None
        return _per_column(self.pos_weight, width, "pos_weight", "BCEWithLogits").astype(dtype)

    def weights(self, out_shape, dtype):
        if self.pos_weight is None:
            return {}
        width = out_shape[1] if len(out_shape) == 2 else 1
        return {"pos_weight": self.class_weight_array(width, dtype)}

    def get_config(self):
        return {} if self.pos_weight is None else {"pos_weight": self.pos_weight.tolist()}

    def correct(self, out, target):
        return int(((out >= 0) == (target >= 0.5)).sum())

    def probabilities(self, out):
        """sigmoid(out), computed without overflow at any logit."""
        out = np.asarray(out)
        return np.exp(-np.logaddexp(out.dtype.type(0), -out))


class CrossEntropy(Loss):
    """Softmax + categorical cross-entropy on logits, fused. Targets: integer class labels
    of shape (N,) (sparse) or one-hot / probability rows of shape (N, C).

    weight: torch.nn.CrossEntropyLoss's, one value per class: each sample's loss is
    multiplied by its class's weight and the mean over labels divides by the sum of the
    weights of the batch's labels (by N for one-hot or probability rows).
    """

    name = "cross_entropy"

    def __init__(self, weight=None):
        self.weight = None if weight is None else _class_vector(weight, "weight", "CrossEntropy")
        if self.weight is not None and self.weight.ndim != 1:
            raise ValueError("CrossEntropy: weight must hold one value per class")

    def class_weight_array(self, width, dtype):
        if self.weight is None:
            return None
        if self.weight.shape != (width,):
            raise ValueError(f"CrossEntropy: weight has {self.weight.shape[0]} values for "
                             f"{width} classes (give one per class)")
        return self.weight.astype(dtype)

    def weights(self, out_shape, dtype):
        if self.weight is None:
            return {}
        return {"class_weight": self.class_weight_array(out_shape[1], dtype)}

    def get_config(self):
        return {} if self.weight is None else {"weight": self.weight.tolist()}

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

    def _forward(self, out, target, weights):
        loss, self._probs = get_backend().softmax_cross_entropy_forward(out, target, **weights)
        return loss

    def _backward(self, out, target, weights):
        return get_backend().softmax_cross_entropy_backward(self._probs, target, **weights)

    def correct(self, out, target):
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        return int((out.argmax(axis=1) == labels).sum())

    gives_probabilities = True

    def probabilities(self, out):
        """softmax over each row of logits."""
        out = np.asarray(out)
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def labels(self, target):
        target = np.asarray(target)
        return target if target.ndim == 1 else target.argmax(axis=1)


_BY_NAME = {cls.name: cls for cls in (MSE, BinaryCrossEntropy, BCEWithLogits, CrossEntropy)}


def get(loss, config: dict | None = None) -> Loss:
    """A Loss object from a Loss or one of the names "mse", "bce", "bce_with_logits",
    "cross_entropy" (with its get_config() arguments, as saved)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _BY_NAME:
        return _BY_NAME[loss](**(config or {}))
    raise ValueError(f"loss: expected a Loss or one of {sorted(_BY_NAME)}, got {loss!r}")
