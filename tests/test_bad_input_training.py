"""Bad input to the training features: a clear error naming the problem, raised before
anything changes."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import Callback, nn, optim
from nnfast.nn.module import Layer
from unimplemented import skip_if_unimplemented

X = np.random.default_rng(0).standard_normal((33, 4)).astype(np.float32)
Y = np.arange(33) % 3


def snapshot(model):
    return [p.data.copy() for p in model.parameters()] + [b.copy() for b in model.buffers()]


def assert_unchanged(model, before):
    for now, then in zip(snapshot(model), before):
        np.testing.assert_array_equal(now, then)


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1, float("nan")])
def test_dropout_probability_outside_0_1(p):
    with pytest.raises(ValueError, match=r"Dropout: p must lie in \[0, 1\)"):
        nn.Dropout(p)


def test_dropout_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        nn.Dropout(0.5, seed=-1)
    with pytest.raises(TypeError, match="p must be a number"):
        nn.Dropout("half")


def test_batchnorm_on_one_sample_in_training(backend):
    layer = nn.BatchNorm1d(4)
    with skip_if_unimplemented(), pytest.raises(ValueError, match="BatchNorm1d: training mode needs at "
                                                                  "least 2 samples per batch.*batch of 1"):
        layer(X[:1])
    with skip_if_unimplemented():
        assert layer.eval()(X[:1]).shape == (1, 4)  # eval mode uses the running statistics


def test_fit_refuses_a_batch_split_that_leaves_batchnorm_one_sample(backend):
    model = nn.Sequential(nn.Dense(4, 8, seed=0), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 3, seed=1))
    before = snapshot(model)
    with pytest.raises(ValueError, match="BatchNorm1d needs at least 2 samples per training batch; "
                                         "batch_size=8 with 33 training samples gives a batch of 1"):
        model.fit(X, Y, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="batch_size=1"):
        model.fit(X, Y, batch_size=1, verbose=0)
    assert_unchanged(model, before)


def test_batchnorm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        nn.BatchNorm1d(3)(np.zeros((4, 5), np.float32))


def test_residual_with_mismatched_widths():
    with pytest.raises(ValueError, match="Residual: the block maps 4 features to 3"):
        nn.Residual(nn.Sequential(nn.Dense(4, 8), nn.ReLU(), nn.Dense(8, 3)))
    with pytest.raises(TypeError, match="Layer"):
        nn.Residual(lambda x: x)

    class DropLastColumn(Layer):  # its width is unknown until it runs
        def forward(self, x):
            return x[:, :-1]

    with pytest.raises(ValueError, match=r"Residual: the block maps input of shape \(33, 4\) to \(33, 3\)"):
        nn.Residual(DropLastColumn())(X)


class Never(Callback):
    def on_epoch_begin(self, model, epoch, logs):
        raise AssertionError("training started")


@pytest.mark.parametrize("monitored", [
    lambda: {"scheduler": optim.ReduceLROnPlateau(monitor="val_loss")},
    lambda: {"scheduler": optim.ReduceLROnPlateau(monitor="val_acc")},
    lambda: {"callbacks": [nnfast.EarlyStopping(monitor="val_loss"), Never()]},
    lambda: {"callbacks": [nnfast.ModelCheckpoint("x.npz", monitor="val_accuracy", save_best_only=True), Never()]},
])
def test_monitoring_a_metric_that_is_not_logged(monitored):
    model = nn.Sequential(nn.Dense(4, 3, seed=0))
    before = snapshot(model)
    kwargs = monitored()
    name = "ReduceLROnPlateau" if "scheduler" in kwargs else type(kwargs["callbacks"][0]).__name__
    with pytest.raises(ValueError, match=rf"{name}: monitored metric 'val_\w+' is not logged \(pass "
                                         r"validation_data or validation_split to fit\(\)\); available "
                                         r"metrics: accuracy, loss, lr"):
        model.fit(X, Y, verbose=0, **kwargs)
    assert_unchanged(model, before)


def test_plateau_scheduler_stepped_by_hand_without_its_metric():
    opt = optim.SGD([nn.Parameter(np.zeros(2), "w")], lr=0.1)
    scheduler = optim.ReduceLROnPlateau(monitor="val_loss", optimizer=opt)
    with pytest.raises(ValueError, match="monitored metric 'val_loss' is not logged"):
        scheduler.step({"loss": 1.0})
    with pytest.raises(RuntimeError, match="not bound to an optimizer"):
        optim.StepLR(2).step()


def test_fit_rejects_conflicting_training_options():
    model = nn.Sequential(nn.Dense(4, 3, seed=0))
    with pytest.raises(ValueError, match="scheduler or decay"):
        model.fit(X, Y, scheduler=optim.StepLR(1), decay=0.1, verbose=0)
    with pytest.raises(ValueError, match="another optimizer"):
        model.fit(X, Y, optimizer=optim.SGD(lr=0.1),
                  scheduler=optim.StepLR(1, optimizer=optim.SGD([nn.Parameter(np.zeros(1), "w")], lr=0.1)),
                  verbose=0)
    with pytest.raises(TypeError, match="Scheduler"):
        model.fit(X, Y, scheduler="cosine", verbose=0)
    with pytest.raises(ValueError, match="seed"):
        model.fit(X, Y, seed=-1, verbose=0)


def test_bad_clipping_and_penalty_arguments():
    with pytest.raises(ValueError, match="clipnorm or clipvalue, not both"):
        optim.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm must be positive"):
        optim.SGD(lr=0.1, clipnorm=0)
    with pytest.raises(ValueError, match="max_norm must be positive"):
        optim.clip_grad_norm([], -1.0)
    with pytest.raises(ValueError, match="l1: the penalty coefficient must be >= 0"):
        nn.Dense(3, 3, l1=-0.1)
    with pytest.raises(ValueError, match="patience"):
        nnfast.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        nnfast.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(0)


def test_loading_a_file_that_is_not_an_nnfast_model(tmp_path):
    path = tmp_path / "weights.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(nnfast.ModelFileError, match=r"weights.csv: not an nnfast model file"):
        nnfast.load(path)
