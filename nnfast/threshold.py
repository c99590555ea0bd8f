"""Choosing the decision threshold of a binary classifier on held-out data.

    t = nnfast.threshold.best(y_val, model.predict_proba(X_val), criterion="f1")
    model.predict_classes(X_test, threshold=t)

Pick it on a validation split, never on the test split: a threshold tuned on the data it
is scored on overstates the score. The candidate thresholds and their precision, recall and
rates come from scikit-learn (the `metrics` extra).
"""
from __future__ import annotations

import numpy as np

from .metrics import require_sklearn

CRITERIA = ("f1", "youden")


def _positive_scores(proba) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] in (1, 2):
        p = p[:, -1]  # one sigmoid column, or the positive class of two
    if p.ndim != 1:
        raise ValueError(f"threshold.best: expected the positive class's probabilities, shape "
                         f"(n,), (n, 1) or (n, 2), got shape {np.shape(proba)}")
    if not np.all(np.isfinite(p)):
        raise ValueError("threshold.best: probabilities contain NaN or inf")
    return p


def best(y_true, proba, criterion: str = "f1") -> float:
    """The threshold t (predict 1 where probability >= t) that maximizes `criterion` on
    (y_true, proba): "f1", the F1 score of class 1, or "youden", sensitivity + specificity
    - 1 (the ROC point farthest above the diagonal). y_true: 0/1 labels (n,); proba: the
    probabilities of class 1, (n,), (n, 1) or (n, 2) (predict_proba's). Ties go to the
    highest threshold."""
    if criterion not in CRITERIA:
        raise ValueError(f"threshold.best: criterion must be one of {CRITERIA}, got {criterion!r}")
    sk = require_sklearn("nnfast.threshold.best")
    scores = _positive_scores(proba)
    y = np.asarray(y_true).reshape(-1)
    if y.shape != scores.shape:
        raise ValueError(f"threshold.best: {y.shape[0]} labels for {scores.shape[0]} probabilities")
    if not np.isin(y, (0, 1)).all() or np.unique(y).size != 2:
        raise ValueError("threshold.best: y_true must hold 0/1 labels of both classes")
    if criterion == "f1":
        precision, recall, thresholds = sk.precision_recall_curve(y, scores)
        # The last (precision, recall) pair has no threshold: it is the "predict nothing" end.
        p, r = precision[:-1], recall[:-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    else:
        fpr, tpr, thresholds = sk.roc_curve(y, scores, drop_intermediate=False)
        keep = np.isfinite(thresholds)  # the first point, "predict nothing", has t = inf
        value, thresholds = (tpr - fpr)[keep], thresholds[keep]
    top = np.flatnonzero(value == value.max())
    return float(thresholds[top].max())
