"""nnfast.sklearn: the estimators pass scikit-learn's own estimator checks, with no check
skipped, and keep their promises (labels of any type, DataFrames, weights, early stopping,
partial_fit, pickling, clone, cross-validation)."""
from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("nnfast._core")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import nnfast  # noqa: E402
from nnfast import datasets, nn, optim  # noqa: E402
from nnfast.sklearn import MLPClassifier, MLPRegressor, NNClassifier, NNRegressor  # noqa: E402

# The quick settings stop on the epoch limit more often than on the loss: not what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Small networks and few epochs keep the checks to seconds; the learning rate is raised so
# that these few epochs still reach the accuracy and R^2 the checks ask for.
QUICK = dict(hidden_layer_sizes=(16,), learning_rate=0.02, epochs=60)


@parametrize_with_checks([NNClassifier(**QUICK), NNRegressor(**QUICK)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def blobs(rng, n=120, labels=(0, 1, 2)):
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])[:len(labels)]
    idx = rng.integers(0, len(labels), n)
    X = centers[idx] + 0.5 * rng.standard_normal((n, 2))
    return X, np.asarray(labels, dtype=object if isinstance(labels[0], str) else None)[idx]


@pytest.mark.parametrize("labels", [("cat", "dog", "eel"), (3, 7, 11), (False, True)],
                         ids=["strings", "ints", "bools"])
def test_classes_of_any_label_type(rng, labels):
    X, y = blobs(rng, labels=labels)
    clf = NNClassifier(**QUICK, random_state=0).fit(X, y)
    assert list(clf.classes_) == sorted(labels)
    assert clf.score(X, y) > 0.9
    assert set(clf.predict(X)) <= set(labels)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))


def test_attributes_after_fit(rng):
    X, y = blobs(rng)
    clf = NNClassifier(**QUICK, random_state=0).fit(X, y)
    assert clf.n_features_in_ == 2 and clf.n_iter_ == len(clf.loss_curve_) <= 60
    assert clf.validation_scores_ is None
    assert isinstance(clf.model_, nn.Sequential) and clf.model_[0].in_features == 2
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_feature_names_from_a_dataframe(rng):
    pd = pytest.importorskip("pandas")
    X, y = blobs(rng)
    frame = pd.DataFrame(X, columns=["width", "height"])
    clf = NNClassifier(**QUICK, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["width", "height"]
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)


def test_early_stopping_scores_the_held_out_fraction_and_keeps_the_best(rng):
    X, y = blobs(rng, n=400)
    clf = NNClassifier(hidden_layer_sizes=(16,), learning_rate=0.02, epochs=300,
                       early_stopping=True, n_iter_no_change=5, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 300
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9


def test_partial_fit_continues_one_epoch_at_a_time(rng):
    X, y = blobs(rng)
    clf = NNClassifier(hidden_layer_sizes=(16,), learning_rate=0.02, random_state=0)
    with pytest.raises(ValueError, match="classes="):
        clf.partial_fit(X, y)
    for _ in range(30):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 30 and clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match=r"labels \[5\] that are not among the classes"):
        clf.partial_fit(X[:3], [0, 1, 5])
    reg = NNRegressor(hidden_layer_sizes=(8,), random_state=0)
    reg.partial_fit(X, X[:, 0]).partial_fit(X, X[:, 0])
    assert reg.n_iter_ == 2


def test_dropout_batch_norm_adamw_and_callbacks_reach_the_network(rng):
    X, y = blobs(rng)
    seen = []

    class Epochs(nnfast.Callback):
        def on_epoch_end(self, model, epoch, logs):
            seen.append(epoch)

    clf = NNClassifier(hidden_layer_sizes=(16, 8), dropout=0.1, batch_norm=True, optimizer="adamw",
                       weight_decay=0.01, epochs=5, batch_size=32, callbacks=[Epochs()],
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    kinds = [type(layer).__name__ for layer in clf.model_]
    assert kinds == ["Dense", "BatchNorm1d", "ReLU", "Dropout", "Dense", "BatchNorm1d", "ReLU",
                     "Dropout", "Dense"]
    assert type(clf.model_.optimizer) is optim.AdamW and clf.model_.optimizer.weight_decay == 0.01
    assert seen == [0, 1, 2, 3, 4]


def test_sample_weight_is_equivalent_to_repeating_samples(rng):
    X, y = blobs(rng, n=40)
    w = rng.integers(0, 4, len(y))
    w[:3] = 1  # every class keeps a sample
    est = dict(hidden_layer_sizes=(8,), learning_rate=0.02, epochs=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = NNClassifier(**est).fit(X, y, sample_weight=w)
        repeated = NNClassifier(**est).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-6)


def test_class_weight_passes_through_to_fit(rng):
    X, y = blobs(rng, n=200, labels=("a", "b"))
    est = dict(hidden_layer_sizes=(8,), learning_rate=0.02, epochs=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = NNClassifier(**est).fit(X, y)
        weighted = NNClassifier(**est, class_weight={"a": 10.0}).fit(X, y)
        by_sample = NNClassifier(**est).fit(X, y, sample_weight=np.where(y == "a", 10.0, 1.0))
    p_plain, p_weighted = plain.predict_proba(X)[:, 0], weighted.predict_proba(X)[:, 0]
    assert p_weighted.mean() > p_plain.mean()  # class "a" weighs more
    np.testing.assert_allclose(by_sample.predict_proba(X)[:, 0].mean(), p_weighted.mean(), rtol=0.2)
    with pytest.raises(ValueError, match=r"class_weight: labels \['z'\] are not among"):
        NNClassifier(**est, class_weight={"z": 2.0}).fit(X, y)


def test_regressor_one_and_several_targets(rng):
    X = rng.standard_normal((200, 3))
    Y = np.stack([X @ [1.0, -2.0, 0.5], X[:, 0] - X[:, 2]], axis=1)
    reg = NNRegressor(**QUICK, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (200, 2) and reg.score(X, Y) > 0.9
    one = NNRegressor(**QUICK, random_state=0).fit(X, Y[:, 0])
    assert one.predict(X).shape == (200,)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_fitted_estimators_copy_and_clone(rng, how):
    X, y = blobs(rng)
    clf = NNClassifier(**QUICK, random_state=0).fit(X, y)
    twin = pickle.loads(pickle.dumps(clf)) if how == "pickle" else copy.deepcopy(clf)
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    fresh = clone(clf)
    assert fresh.get_params() == clf.get_params() and not hasattr(fresh, "model_")


def test_an_optimizer_instance_is_cloned_not_shared(rng):
    X, y = blobs(rng)
    opt = optim.SGD(lr=0.05, momentum=0.9)
    a = clone(NNClassifier(hidden_layer_sizes=(8,), optimizer=opt, epochs=3, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y)
    assert a.model_.optimizer is not opt and not opt.bound
    assert a.model_.optimizer.lr == 0.05


def test_max_iter_is_sklearns_name_for_epochs(rng):
    X, y = blobs(rng)
    with pytest.warns(ConvergenceWarning, match="3 epochs reached"):
        clf = NNClassifier(hidden_layer_sizes=(8,), epochs=50, max_iter=3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 3


def test_cross_val_score_on_breast_cancer():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = datasets.load_breast_cancer()
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), epochs=30,
                                                         learning_rate=0.01, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.mean() > 0.93
    assert MLPRegressor is NNRegressor


def test_bad_arguments_say_what_to_pass(rng):
    X, y = blobs(rng)
    for kwargs, message in [({"activation": "swish"}, "activation must be one of"),
                            ({"optimizer": "lbfgs"}, "optimizer must be one of"),
                            ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must be positive"),
                            ({"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
                            ({"backend": "tpu"}, "backend must be None")]:
        with pytest.raises(ValueError, match=message):
            NNClassifier(**kwargs).fit(X, y)
