"""The metrics fit(metrics=[...]) logs each epoch beside the loss and accuracy, computed by
scikit-learn (the `metrics` extra: pip install "nnfast[metrics]"), never re-implemented.

- "auc": ROC-AUC of the predicted probabilities (sklearn.metrics.roc_auc_score);
- "precision", "recall", "f1": of the predicted classes (probability >= 0.5, or the most
  probable class), sklearn.metrics.precision_score / recall_score / f1_score.

A binary model (one sigmoid output, or two softmax classes) scores the positive class 1;
more classes or several sigmoid outputs are macro-averaged (AUC one-vs-rest). The
probabilities come from the loss the model trains with (Loss.probabilities): metrics need
a classification loss. "accuracy" is built in and always logged for such losses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("auc", "precision", "recall", "f1")
EXTRA = "metrics"


def require_sklearn(what: str):
    """sklearn.metrics, or an ImportError naming the extra that provides it."""
    try:
        from sklearn import metrics as sk_metrics
    except ImportError as exc:
        raise ImportError(f"{what} needs scikit-learn: pip install \"nnfast[{EXTRA}]\" "
                          "(or pip install scikit-learn)") from exc
    return sk_metrics


@dataclass(frozen=True)
class MetricSet:
    """The checked metric names of one fit() call."""

    names: tuple[str, ...]

    def compute(self, loss_fn, out: np.ndarray, target: np.ndarray, sample_weight=None) -> dict:
        """{name: value} of the model outputs `out` against the prepared targets."""
        if not self.names:
            return {}
        sk = require_sklearn(f"the metrics {list(self.names)}")
        proba = loss_fn.probabilities(out)
        labels = loss_fn.labels(target)
        binary = proba.shape[1] == 1 or (proba.shape[1] == 2 and labels.ndim == 1)
        if binary:
            score = proba[:, -1]
            predicted = (score >= 0.5).astype(np.int64)
            average = "binary"
        elif labels.ndim == 1:  # one label among C softmax classes
            score = proba
            predicted = proba.argmax(axis=1)
            average = "macro"
        else:  # several independent sigmoid outputs
            score = proba
            predicted = (proba >= 0.5).astype(np.int64)
            average = "macro"
        if binary and labels.ndim == 2:
            labels = labels[:, 0]
        result = {}
        if "auc" in self.names:
            result["auc"] = _auc(sk, labels, score, binary, proba.shape[1], sample_weight)
        if set(self.names) & {"precision", "recall", "f1"}:  # one call gives all three
            precision, recall, f1, _ = sk.precision_recall_fscore_support(
                labels, predicted, average=average, zero_division=0, sample_weight=sample_weight)
            values = {"precision": precision, "recall": recall, "f1": f1}
            result.update({n: float(values[n]) for n in self.names if n in values})
        return {name: result[name] for name in self.names}


def _auc(sk, labels, score, binary, classes, sample_weight) -> float:
    """ROC-AUC, NaN where it is undefined (a single class present in the labels)."""
    present = np.unique(labels) if labels.ndim == 1 else None
    if present is not None and len(present) < 2:
        return float("nan")
    if binary:  # roc_auc_score's value, without its second round of input checks
        fpr, tpr, _ = sk.roc_curve(labels, score, sample_weight=sample_weight)
        return float(sk.auc(fpr, tpr))
    if labels.ndim == 1:
        if len(present) < classes:
            return float("nan")  # one-vs-rest needs every class among the labels
        return float(sk.roc_auc_score(labels, score, multi_class="ovr", average="macro",
                                      sample_weight=sample_weight))
    return float(sk.roc_auc_score(labels, score, average="macro", sample_weight=sample_weight))


def metric_set(metrics, loss_fn) -> MetricSet:
    """The metrics fit() was asked for, checked: known names, a loss that gives
    probabilities, and scikit-learn installed."""
    if metrics is None:
        return MetricSet(())
    if isinstance(metrics, str):
        metrics = [metrics]
    names = []
    for m in metrics:
        if not isinstance(m, str) or (m not in METRICS and m != "accuracy"):
            raise ValueError(f"metrics: unknown metric {m!r}; choose among {list(METRICS)} "
                             "(accuracy is always logged for classification losses)")
        if m != "accuracy" and m not in names:
            names.append(m)
    if names:
        if not loss_fn.gives_probabilities:
            raise ValueError(f"metrics: {names} need a classification loss (cross_entropy, bce, "
                             f"bce_with_logits), not {type(loss_fn).__name__}")
        require_sklearn(f"the metrics {names}")
    return MetricSet(tuple(names))
