"""What a classifier needs beyond the loss: predict_proba / predict_classes, the metrics
fit() logs (scikit-learn's), EarlyStopping on them, and nnfast.threshold.best."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import nnfast
from nnfast import losses, nn, optim, threshold

sk_metrics = pytest.importorskip("sklearn.metrics")


def _data(rng, n=120, classes=2):
    X = rng.standard_normal((n, 5))
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.standard_normal(n)
    if classes == 2:
        return X, (score > 0.8).astype(np.int64)
    return X, np.digitize(score, [-0.5, 0.5]).astype(np.int64)


def _model(out, seed=0):
    return nn.Sequential(nn.Dense(5, 12, seed=seed), nn.ReLU(), nn.Dense(12, out, seed=seed + 1))


def _trained(rng, loss, out, classes=2, **kwargs):
    X, y = _data(rng, classes=classes)
    target = y.astype(np.float32) if loss != "cross_entropy" else y
    model = _model(out)
    model.fit(X, target, loss=loss, epochs=3, verbose=0, seed=0, **kwargs)
    return model, X, y


def test_predict_proba_of_softmax_rows_sum_to_one(backend, rng):
    model, X, _ = _trained(rng, "cross_entropy", 3, classes=3)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    z = model.predict(X).astype(np.float64)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(proba, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(model.predict_classes(X), proba.argmax(axis=1))
    assert model.predict_proba(X[0]).shape == (3,)


def test_predict_proba_of_one_sigmoid_output(backend, rng):
    model, X, _ = _trained(rng, "bce_with_logits", 1)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 1)
    z = model.predict(X).astype(np.float64)
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-z)), rtol=1e-5)
    assert np.all((proba > 0) & (proba < 1))
    classes = model.predict_classes(X)
    assert classes.shape == (len(X),) and classes.dtype == np.int64
    np.testing.assert_array_equal(classes, (proba[:, 0] >= 0.5).astype(int))
    t = float(np.median(proba))
    np.testing.assert_array_equal(model.predict_classes(X, threshold=t), (proba[:, 0] >= t).astype(int))


def test_predict_proba_is_stable_at_huge_logits():
    z = np.array([[1e4], [-1e4], [0.0]])
    np.testing.assert_array_equal(losses.BCEWithLogits().probabilities(z), [[1.0], [0.0], [0.5]])
    rows = losses.CrossEntropy().probabilities(np.array([[1e4, 0.0, -1e4]]))
    np.testing.assert_array_equal(rows, [[1.0, 0.0, 0.0]])


def test_threshold_on_two_softmax_classes(rng):
    model, X, _ = _trained(rng, "cross_entropy", 2)
    p1 = model.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(model.predict_classes(X, threshold=0.3), (p1 >= 0.3).astype(int))


def test_predict_classes_errors(rng):
    model, X, _ = _trained(rng, "cross_entropy", 3, classes=3)
    with pytest.raises(ValueError, match="two classes"):
        model.predict_classes(X, threshold=0.4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.predict_classes(X, threshold=1.5)
    untrained = _model(2)
    with pytest.raises(ValueError, match="fit"):
        untrained.predict_proba(X)
    regression = _model(1)
    regression.fit(X, rng.standard_normal(len(X)), loss="mse", epochs=1, verbose=0)
    with pytest.raises(ValueError, match="not probabilities"):
        regression.predict_proba(X)


def test_fit_logs_sklearn_metrics(backend, rng):
    X, y = _data(rng, n=200)
    X_val, y_val = _data(rng, n=80)
    model = _model(1)
    history = model.fit(X, y.astype(np.float32), loss=losses.BCEWithLogits(pos_weight=3.0),
                        epochs=4, verbose=0, seed=1, validation_data=(X_val, y_val.astype(np.float32)),
                        metrics=["auc", "precision", "recall", "f1"])
    for name in ("loss", "accuracy", "auc", "precision", "recall", "f1", "val_auc", "val_f1",
                 "val_precision", "val_recall"):
        assert len(history.history[name]) == 4, name
    p_val = model.predict_proba(X_val)[:, 0]
    assert history.history["val_auc"][-1] == pytest.approx(sk_metrics.roc_auc_score(y_val, p_val))
    assert history.history["val_f1"][-1] == pytest.approx(
        sk_metrics.f1_score(y_val, (p_val >= 0.5).astype(int), zero_division=0))
    p_train = model.predict_proba(X)[:, 0]
    assert history.history["recall"][-1] == pytest.approx(
        sk_metrics.recall_score(y, (p_train >= 0.5).astype(int), zero_division=0))


def test_multiclass_metrics_are_macro_averaged(rng):
    X, y = _data(rng, n=200, classes=3)
    model = _model(3)
    history = model.fit(X, y, epochs=2, verbose=0, seed=0, metrics=["auc", "f1"])
    proba = model.predict_proba(X)
    assert history.history["auc"][-1] == pytest.approx(
        sk_metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert history.history["f1"][-1] == pytest.approx(
        sk_metrics.f1_score(y, proba.argmax(axis=1), average="macro"))


def test_early_stopping_on_val_auc(rng):
    X, y = _data(rng, n=200)
    stop = nnfast.EarlyStopping(monitor="val_auc", patience=2)
    assert stop.mode == "max"
    model = _model(1)
    history = model.fit(X, y.astype(np.float32), loss="bce_with_logits", epochs=40, verbose=0,
                        validation_split=0.3, metrics=["auc"], callbacks=[stop],
                        optimizer=optim.Adam(lr=0.05), seed=0)
    best = int(np.nanargmax(history.history["val_auc"]))
    assert stop.best == pytest.approx(history.history["val_auc"][best])


def test_evaluate_with_sample_weight_and_metrics(backend, rng):
    model, X, y = _trained(rng, "bce_with_logits", 1)
    w = rng.uniform(0.0, 2.0, len(X))
    result = model.evaluate(X, y.astype(np.float32), sample_weight=w, metrics=["auc"])
    out = model.predict(X)
    expected = losses.BCEWithLogits()(out, y.astype(np.float32), sample_weight=w)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    assert result["auc"] == pytest.approx(
        sk_metrics.roc_auc_score(y, model.predict_proba(X)[:, 0], sample_weight=w), rel=1e-6)


@pytest.mark.parametrize("metrics,error", [(["auroc"], "unknown metric"), ([3], "unknown metric")])
def test_metric_names_are_checked(rng, metrics, error):
    X, y = _data(rng)
    with pytest.raises(ValueError, match=error):
        _model(2).fit(X, y, epochs=1, verbose=0, metrics=metrics)


def test_metrics_need_a_classification_loss(rng):
    X, y = _data(rng)
    with pytest.raises(ValueError, match="classification loss"):
        _model(1).fit(X, y.astype(float), loss="mse", epochs=1, verbose=0, metrics=["auc"])


def test_missing_sklearn_names_the_extra(rng, monkeypatch):
    X, y = _data(rng)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    model = _model(2)
    with pytest.raises(ImportError, match=r"nnfast\[metrics\]"):
        model.fit(X, y, epochs=1, verbose=0, metrics=["auc"])
    assert model.epochs_trained == 0
    model.fit(X, y, epochs=1, verbose=0)  # accuracy needs no scikit-learn
    with pytest.raises(ImportError, match=r"nnfast\[metrics\]"):
        threshold.best(y, model.predict_proba(X))


def _f1_at(y, p, t):
    return sk_metrics.f1_score(y, (p >= t).astype(int), zero_division=0)


def test_best_threshold_maximizes_f1(rng):
    y = (rng.uniform(size=300) < 0.15).astype(int)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)
    t = threshold.best(y, p)
    brute = max(_f1_at(y, p, c) for c in np.unique(p))
    assert _f1_at(y, p, t) == pytest.approx(brute)
    assert threshold.best(y, np.stack([1 - p, p], axis=1)) == t  # predict_proba's (n, 2)
    assert threshold.best(y, p[:, None]) == t


def test_best_threshold_youden(rng):
    y = (rng.uniform(size=300) < 0.3).astype(int)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)
    t = threshold.best(y, p, criterion="youden")

    def j(c):
        pred = p >= c
        return pred[y == 1].mean() - pred[y == 0].mean()

    assert j(t) == pytest.approx(max(j(c) for c in np.unique(p)))


@pytest.mark.parametrize("args,error", [
    (([0, 1, 1], [0.1, 0.2], "f1"), "labels for"),
    (([0, 0, 0], [0.1, 0.2, 0.3], "f1"), "both classes"),
    (([0, 1, 2], [0.1, 0.2, 0.3], "f1"), "0/1"),
    (([0, 1, 1], [0.1, 0.2, 0.3], "accuracy"), "criterion"),
    (([0, 1], [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], "f1"), "shape"),
    (([0, 1], [0.1, np.nan], "f1"), "NaN"),
])
def test_best_threshold_errors(args, error):
    y, p, criterion = args
    with pytest.raises(ValueError, match=error):
        threshold.best(y, p, criterion=criterion)
