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


@pytest.mark.parametrize("make,error,match", [
    (lambda: optim.SGD(lr=0.1, momentum=float("nan")), ValueError, r"SGD: momentum must be >= 0 and finite, got nan"),
    (lambda: optim.SGD(lr=0.1, weight_decay=float("nan")), ValueError, "SGD: weight_decay must be >= 0 and finite"),
    (lambda: optim.SGD(lr=0.1, weight_decay=float("inf")), ValueError, "SGD: weight_decay must be >= 0 and finite"),
    (lambda: optim.Adam(eps=float("nan")), ValueError, "Adam: eps must be positive and finite, got nan"),
    (lambda: optim.Adam(eps=float("inf")), ValueError, "Adam: eps must be positive and finite, got inf"),
    (lambda: optim.AdamW(betas=(0.9, 1.0)), ValueError, r"AdamW: betas\[1\] must lie in \[0, 1\), got 1.0"),
    (lambda: optim.SGD(lr="0.1"), TypeError, r"SGD: lr must be a number, got '0.1' \(str\)"),
    (lambda: optim.SGD(lr=float("inf")), ValueError, "SGD: lr must be positive and finite"),
])
def test_optimizer_settings_must_be_finite_numbers(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_validation_data_must_be_a_pair():
    model = nn.Sequential(nn.Dense(4, 3, seed=0))
    with pytest.raises(ValueError, match=r"validation_data: expected a pair \(X_val, y_val\), "
                                         r"got a tuple of 1"):
        model.fit(X, Y, validation_data=(X,), verbose=0)


def test_a_float64_input_that_overflows_float32_says_so():
    model = nn.Sequential(nn.Dense(4, 3, seed=0))  # float32
    huge = X.astype(np.float64)
    huge[0, 0] = 1e300
    with pytest.raises(ValueError, match=r"X: values up to 1e\+300 overflow float32, the model's "
                                         r"dtype; scale the data, or build the model with dtype=np.float64"):
        model.predict(huge)
    huge[0, 0] = np.nan
    with pytest.raises(ValueError, match="X: contains NaN or inf"):
        model.predict(huge)


def test_model_checkpoint_in_a_directory_whose_name_holds_braces(tmp_path):
    folder = tmp_path / "run{1}"
    folder.mkdir()
    checkpoint = nnfast.ModelCheckpoint(folder / "model-{epoch:02d}.npz", monitor="loss")
    model = nn.Sequential(nn.Dense(4, 3, seed=0))
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[checkpoint])
    assert checkpoint.saved == [str(folder / "model-01.npz"), str(folder / "model-02.npz")]
    assert nnfast.load(checkpoint.saved[-1]).epochs_trained == 2
