"""scikit-learn estimators on nnfast: NNClassifier and NNRegressor (also importable as
MLPClassifier and MLPRegressor), multi-layer perceptrons that pass scikit-learn's
check_estimator and work in its pipelines, grid searches and cross-validation.

They take scikit-learn's arguments where its MLP has them (hidden_layer_sizes, activation,
batch_size, max_iter, tol, early_stopping, validation_fraction, n_iter_no_change,
random_state, verbose) and add what scikit-learn declined to add to its own MLP: dropout,
batch normalization, AdamW with decoupled weight decay, nnfast callbacks, a progress bar
(verbose=1 on a terminal) and the GPU (backend="cuda"). The trained network is `model_`, an
nnfast Sequential: save it with model_.save(path), inspect it with model_.summary().

Needs scikit-learn >= 1.6 (pip install "nnfast[sklearn]").
"""
from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import backends, nn, optim
from .callbacks import Callback, EarlyStopping

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "gelu": nn.GELU,
               "silu": nn.SiLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "identity": None}
OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam, "adamw": optim.AdamW}


class _ValidationStopping(Callback):
    """early_stopping=True, as scikit-learn's MLP does it: the score (accuracy or R^2) on the
    held-out fraction after every epoch; stop when it has not improved by tol for
    n_iter_no_change epochs, then keep the weights of the best epoch."""

    def __init__(self, estimator, X_val, y_val, tol, patience):
        self.estimator, self.X_val, self.y_val = estimator, X_val, y_val
        self.tol, self.patience = tol, patience
        self.scores, self.best, self.best_weights, self.wait = [], -np.inf, None, 0

    def on_epoch_end(self, model, epoch, logs):
        score = self.estimator._validation_score(model, self.X_val, self.y_val)
        self.scores.append(score)
        if score > self.best + self.tol:
            self.wait = 0
        else:
            self.wait += 1
        if score > self.best:
            self.best, self.best_weights = score, model.get_weights()
        if self.wait >= self.patience:
            model.stop_training = True

    def on_train_end(self, model, logs):
        if self.best_weights is not None:
            model.set_weights(self.best_weights)


class _NNBase(BaseEstimator):
    """What the classifier and the regressor share: the network, its training, its arguments."""

    _loss = ""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, dropout=0.0,
                 batch_norm=False, optimizer="adam", learning_rate=1e-3, weight_decay=0.0,
                 batch_size="auto", epochs=200, max_iter=None, tol=1e-4, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, callbacks=None,
                 random_state=None, backend=None, verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.random_state = random_state
        self.backend = backend
        self.verbose = verbose

    # ------------------------------------------------------------------ checks and building

    def _check_params(self):
        name = type(self).__name__
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in sizes):
            raise ValueError(f"{name}: hidden_layer_sizes must be positive integers, got "
                             f"{self.hidden_layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}: activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{self.activation!r}")
        if not (isinstance(self.optimizer, optim.Optimizer) or self.optimizer in OPTIMIZERS):
            raise ValueError(f"{name}: optimizer must be one of {sorted(OPTIMIZERS)} or an "
                             f"nnfast Optimizer, got {self.optimizer!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"{name}: dropout must lie in [0, 1), got {self.dropout!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"{name}: validation_fraction must lie in (0, 1), got "
                             f"{self.validation_fraction!r}")
        for arg in ("n_iter_no_change", "epochs") + (("max_iter",) if self.max_iter is not None else ()):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: {arg} must be a positive integer, got {value!r}")
        if self.backend is not None and self.backend not in ("cpp", "numba", "numpy", "cuda"):
            raise ValueError(f"{name}: backend must be None (the best available), 'cpp', "
                             f"'numba', 'numpy' or 'cuda', got {self.backend!r}")
        return sizes

    def _epochs(self) -> int:
        """max_iter, scikit-learn's name for the number of epochs, wins when given."""
        return self.max_iter if self.max_iter is not None else self.epochs

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, numbers.Integral) \
                or self.batch_size < 1:
            raise ValueError(f"{type(self).__name__}: batch_size must be 'auto' or a positive "
                             f"integer, got {self.batch_size!r}")
        return min(int(self.batch_size), n)

    def _backend_scope(self):
        if self.backend in (None, "cuda"):  # cuda: the model moves there, the CPU code is default
            return contextlib.nullcontext()
        return backends.backend(self.backend)

    def _build(self, n_in: int, n_out: int, dtype, rng) -> nn.Sequential:
        sizes = self._check_params()
        layers, width = [], n_in
        seeds = iter(rng.randint(0, 2 ** 31 - 1, size=2 * len(sizes) + 1))
        for size in sizes:
            layers.append(nn.Dense(width, size, seed=int(next(seeds)), dtype=dtype,
                                   init="he" if self.activation == "relu" else "xavier"))
            if self.batch_norm:
                layers.append(nn.BatchNorm1d(size, dtype=dtype))
            if ACTIVATIONS[self.activation] is not None:
                layers.append(ACTIVATIONS[self.activation]())
            if self.dropout:
                layers.append(nn.Dropout(self.dropout, seed=int(next(seeds))))
            width = size
        layers.append(nn.Dense(width, n_out, seed=int(next(seeds)), dtype=dtype, init="xavier"))
        model = nn.Sequential(*layers)
        if self.backend == "cuda":
            model.to("cuda")
        return model

    def _new_optimizer(self):
        if isinstance(self.optimizer, optim.Optimizer):
            return self.optimizer.__sklearn_clone__()
        cls = OPTIMIZERS[self.optimizer]
        if self.optimizer == "sgd":
            return cls(lr=self.learning_rate, momentum=0.9, nesterov=True,
                       weight_decay=self.weight_decay)
        return cls(lr=self.learning_rate, weight_decay=self.weight_decay)

    # ------------------------------------------------------------------ training

    def _validate_X(self, X, reset: bool):
        return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])

    def _fit(self, X, y, sample_weight, incremental: bool, classes=None):
        first = not (incremental and hasattr(self, "model_"))
        X, y = validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32],
                             multi_output=self._multi_output, y_numeric=not self._classifier)
        y = self._encode_targets(y, classes, first)
        n = X.shape[0]
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            self._check_weighted_targets(y, sample_weight)
            # Mean 1, so that weighted and repeated samples take the same steps (scikit-learn's
            # MLP divides the weighted loss by the sum of the weights; nnfast by the batch size).
            total = sample_weight.sum()
            if not total > 0:
                raise ValueError("sample_weight: the weights sum to 0; give some sample a positive "
                                 "weight")
            sample_weight = sample_weight * (n / total)
        rng = check_random_state(self.random_state)
        if first:
            self.model_ = self._build(X.shape[1], self._n_outputs(y), X.dtype, rng)
            self._optimizer = self._new_optimizer()
            self.loss_curve_, self.n_iter_, self.t_ = [], 0, 0
            self.validation_scores_ = [] if self.early_stopping and not incremental else None
            self.best_validation_score_ = None
            self.best_loss_ = np.inf
        X_val = y_val = None
        if self.early_stopping and not incremental:
            X, X_val, y, y_val, sample_weight = self._split_validation(X, y, sample_weight, rng)
        epochs = 1 if incremental else self._epochs()
        callbacks = list(self.callbacks or [])
        stopper = None
        if not incremental:
            if X_val is not None:
                stopper = _ValidationStopping(self, X_val, y_val, self.tol, self.n_iter_no_change)
            else:
                stopper = EarlyStopping(monitor="loss", min_delta=self.tol,
                                        patience=self.n_iter_no_change, restore_best=False)
            callbacks.append(stopper)
        batch = self._batch_size(X.shape[0])
        drop_last = self.batch_norm and X.shape[0] % batch == 1  # no batch of one for BatchNorm
        weights = {}
        if sample_weight is not None:
            weights["sample_weight"] = sample_weight
        class_weight = self._encoded_class_weight()
        if class_weight is not None:
            weights["class_weight"] = class_weight
        with self._backend_scope():
            history = self.model_.fit(
                X, y, loss=self._loss, optimizer=self._optimizer, epochs=epochs, batch_size=batch,
                seed=int(rng.randint(0, 2 ** 31 - 1)), verbose=self.verbose, callbacks=callbacks,
                drop_last=drop_last, **weights)
        losses = list(history.history["loss"])
        self.loss_curve_ += losses
        self.n_iter_ += len(losses)
        self.t_ += X.shape[0] * len(losses)
        self.best_loss_ = min([self.best_loss_, *losses])
        if isinstance(stopper, _ValidationStopping):
            self.validation_scores_ = stopper.scores
            self.best_validation_score_ = stopper.best
        if not incremental and len(losses) == epochs and not self.model_.stop_training:
            warnings.warn(f"{type(self).__name__}: {epochs} epochs reached before the "
                          f"{'validation score' if X_val is not None else 'training loss'} "
                          "stopped improving; raise epochs (max_iter) or the learning rate",
                          ConvergenceWarning)
        return self

    def _split_validation(self, X, y, sample_weight, rng):
        n_val = int(np.ceil(self.validation_fraction * X.shape[0]))
        if n_val < 2 or X.shape[0] - n_val < 2:
            raise ValueError(f"{type(self).__name__}: validation_fraction="
                             f"{self.validation_fraction} of {X.shape[0]} samples leaves too few "
                             "to train on or to score; pass more samples or early_stopping=False")
        stratify = y if self._classifier and np.bincount(y).min(initial=X.shape[0]) >= 2 else None
        arrays = [X, y] + ([sample_weight] if sample_weight is not None else [])
        parts = train_test_split(*arrays, test_size=n_val, stratify=stratify,
                                 random_state=rng.randint(0, 2 ** 31 - 1))
        X_tr, X_val, y_tr, y_val = parts[:4]
        return X_tr, X_val, y_tr, y_val, (parts[4] if sample_weight is not None else None)

    def fit(self, X, y, sample_weight=None):
        """Train a new network on (X, y) for up to `epochs` (max_iter) epochs; sample_weight
        (n_samples,) weighs each sample's loss. Returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _forward(self, X):
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        with self._backend_scope():
            return self.model_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class NNClassifier(ClassifierMixin, _NNBase):
    """A multi-layer perceptron classifier trained by nnfast, with softmax cross-entropy over
    the classes (two or more; any label type: strings, integers, booleans).

    Arguments as scikit-learn's MLPClassifier where it has them, plus dropout, batch_norm,
    optimizer ("sgd", "adam", "adamw" or an nnfast Optimizer), learning_rate, weight_decay,
    epochs (max_iter wins when given), callbacks (nnfast Callbacks), class_weight ({label:
    weight} or "balanced", passed to nnfast's fit), backend (None for the best available,
    "cpp", "numba", "numpy", or "cuda" for the GPU).

    Attributes after fit: classes_, n_features_in_, feature_names_in_ (from a DataFrame),
    loss_curve_ (the training loss per epoch), validation_scores_ (accuracy on the held-out
    fraction per epoch, early_stopping only), best_validation_score_, best_loss_, n_iter_,
    t_ (samples seen), model_ (the nnfast Sequential).
    """

    _loss = "cross_entropy"
    _classifier = True
    _multi_output = False

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, dropout=0.0,
                 batch_norm=False, optimizer="adam", learning_rate=1e-3, weight_decay=0.0,
                 batch_size="auto", epochs=200, max_iter=None, tol=1e-4, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, class_weight=None,
                 callbacks=None, random_state=None, backend=None, verbose=0):
        super().__init__(hidden_layer_sizes, activation, dropout=dropout, batch_norm=batch_norm,
                         optimizer=optimizer, learning_rate=learning_rate,
                         weight_decay=weight_decay, batch_size=batch_size, epochs=epochs,
                         max_iter=max_iter, tol=tol, early_stopping=early_stopping,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, callbacks=callbacks,
                         random_state=random_state, backend=backend, verbose=verbose)
        self.class_weight = class_weight

    def _encode_targets(self, y, classes, first):
        check_classification_targets(y)
        if first:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if labels.size < 2:
                raise ValueError(f"{type(self).__name__}: y holds one class ({labels[0]!r}); a "
                                 "classifier needs samples of at least 2 classes")
            self.classes_ = labels
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"{type(self).__name__}: y holds labels {unknown.tolist()} that are "
                             f"not among the classes {self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _check_weighted_targets(self, y, sample_weight):
        weighted = np.unique(y[sample_weight > 0])
        if weighted.size < 2:
            raise ValueError(f"{type(self).__name__}: sample_weight leaves one class with a "
                             "positive weight; a classifier needs at least 2 classes")

    def _n_outputs(self, y):
        return len(self.classes_)

    def _encoded_class_weight(self):
        if self.class_weight is None or isinstance(self.class_weight, str):
            return self.class_weight
        unknown = [k for k in self.class_weight if k not in set(self.classes_.tolist())]
        if unknown:
            raise ValueError(f"class_weight: labels {unknown} are not among the classes "
                             f"{self.classes_.tolist()}")
        return {int(np.searchsorted(self.classes_, k)): w for k, w in self.class_weight.items()}

    def _validation_score(self, model, X_val, y_val):
        return float(np.mean(model.predict(X_val).argmax(axis=1) == y_val))

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on (X, y), continuing the network (a new one on the first call, which
        must name every class in `classes`). Returns self."""
        if not hasattr(self, "model_") and classes is None:
            raise ValueError(f"{type(self).__name__}.partial_fit: the first call needs "
                             "classes=, every label the classifier will see")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def decision_function(self, X):
        """The network's logits (n_samples, n_classes); for two classes, the log-odds of
        classes_[1] (n_samples,), positive where predict() gives classes_[1]."""
        logits = self._forward(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in the order of classes_:
        the softmax of the logits, nnfast's model.predict_proba."""
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        with self._backend_scope():
            return self.model_.predict_proba(X)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        logits = self._forward(X)
        return self.classes_[logits.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


class NNRegressor(RegressorMixin, _NNBase):
    """A multi-layer perceptron regressor trained by nnfast with the mean squared error; one
    or several targets. Arguments and attributes as NNClassifier's (without class_weight and
    classes_); validation_scores_ holds R^2 on the held-out fraction."""

    _loss = "mse"
    _classifier = False
    _multi_output = True

    def _encode_targets(self, y, classes, first):
        if first:
            self._y_ndim = y.ndim
        return y.reshape(len(y), -1)

    def _check_weighted_targets(self, y, sample_weight):
        pass

    def _n_outputs(self, y):
        self.n_outputs_ = y.shape[1]
        return self.n_outputs_

    def _encoded_class_weight(self):
        return None

    def _validation_score(self, model, X_val, y_val):
        from sklearn.metrics import r2_score
        return float(r2_score(y_val, model.predict(X_val)))

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on (X, y), continuing the network (a new one on the first call).
        Returns self."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        out = self._forward(X)
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


MLPClassifier = NNClassifier
MLPRegressor = NNRegressor

__all__ = ["NNClassifier", "NNRegressor", "MLPClassifier", "MLPRegressor"]
