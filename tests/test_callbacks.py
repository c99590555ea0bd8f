"""EarlyStopping, ModelCheckpoint, TerminateOnNaN and History's training curves."""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import nnfast
from nnfast import Callback, losses, nn, optim
from nnfast import fused as fused_step
from unimplemented import skip_if_unimplemented


def overfitting_task(rng):
    """A training set and a validation set with unrelated labels: val_loss soon rises."""
    X = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 2, 64)
    X_val = rng.standard_normal((64, 6)).astype(np.float32)
    return X, y, X_val, rng.integers(0, 2, 64)


class RecordWeights(Callback):
    def on_train_begin(self, model, logs):
        self.weights = []

    def on_epoch_end(self, model, epoch, logs):
        self.weights.append([p.data.copy() for p in model.parameters()])


def mlp():
    return nn.Sequential(nn.Dense(6, 32, seed=0), nn.ReLU(), nn.Dense(32, 2, seed=1))


def test_early_stopping_stops_and_restores_the_best_weights(backend, rng):
    X, y, X_val, y_val = overfitting_task(rng)
    stopper, recorder = nnfast.EarlyStopping(patience=3), RecordWeights()
    model = mlp()
    with skip_if_unimplemented():
        history = model.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=200, batch_size=16, verbose=0,
                            validation_data=(X_val, y_val), callbacks=[recorder, stopper], seed=0)
    epochs = len(history.epoch)
    assert epochs < 200 and stopper.stopped_epoch == epochs - 1
    best = int(np.argmin(history["val_loss"]))
    assert stopper.best_epoch == best and epochs == best + 1 + 3
    for p, saved in zip(model.parameters(), recorder.weights[best]):
        np.testing.assert_array_equal(p.data, saved)
    assert model.evaluate(X_val, y_val)["loss"] == pytest.approx(history["val_loss"][best], rel=1e-6)


def test_early_stopping_without_restore_keeps_the_last_weights(backend, rng):
    X, y, X_val, y_val = overfitting_task(rng)
    recorder = RecordWeights()
    model = mlp()
    with skip_if_unimplemented():
        model.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=200, batch_size=16, verbose=0,
                  validation_data=(X_val, y_val), seed=0,
                  callbacks=[recorder, nnfast.EarlyStopping(patience=2, restore_best=False)])
    for p, saved in zip(model.parameters(), recorder.weights[-1]):
        np.testing.assert_array_equal(p.data, saved)


def test_model_checkpoint_saves_each_epoch_or_the_best(backend, rng, tmp_path):
    X, y, X_val, y_val = overfitting_task(rng)
    every = nnfast.ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{val_loss:.3f}.npz")
    best = nnfast.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True)
    recorder = RecordWeights()
    model = mlp()
    with skip_if_unimplemented():
        history = model.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=12, batch_size=16, verbose=0,
                            validation_data=(X_val, y_val), callbacks=[recorder, every, best], seed=0)
    assert len(every.saved) == 12
    assert every.saved[2].endswith(f"ckpt-03-{history['val_loss'][2]:.3f}.npz")
    third = nnfast.load(every.saved[2])
    for p, saved in zip(third.parameters(), recorder.weights[2]):
        np.testing.assert_array_equal(p.data, saved)
    best_epoch = int(np.argmin(history["val_loss"]))
    assert len(best.saved) < 12
    for p, saved in zip(nnfast.load(tmp_path / "best.npz").parameters(), recorder.weights[best_epoch]):
        np.testing.assert_array_equal(p.data, saved)


def test_terminate_on_nan_keeps_the_weights_before_the_bad_batch(backend, rng):
    """The second batch's squared error overflows float32: training stops there. The weights
    after the first update gave no finite loss, so the weights kept are those the first
    batch started from, on the layer path (which checks the loss before the update) and on
    the fused step (which updates in the same call) alike."""
    X = rng.standard_normal((16, 4)).astype(np.float32)
    X[8:] = 1e30
    y = rng.standard_normal((16, 1)).astype(np.float32)

    def linear():
        return nn.Sequential(nn.Dense(4, 1, seed=0))

    model, reference = linear(), linear()
    with skip_if_unimplemented():
        reference.fit(X[:8], y[:8], loss="mse", optimizer=optim.SGD(lr=0.1), epochs=1, batch_size=8,
                      shuffle=False, verbose=0)
    # After the first update the second batch's prediction is 1e30 * sum(W) + b: its square
    # overflows float32 unless sum(W) is below 1e-11.
    assert abs(reference[0].weight.sum()) > 1e-6
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow", RuntimeWarning)
        with pytest.warns(RuntimeWarning, match=r"TerminateOnNaN: the loss is inf at epoch 1, batch 2"):
            history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=0.1), epochs=5, batch_size=8,
                                shuffle=False, verbose=0)
    assert len(history.epoch) == 1 and history["loss"][0] == np.inf
    # The last weights with a finite loss are those batch 1 started from, on every path.
    for p, q in zip(model.parameters(), linear().parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_terminate_on_nan_restores_finite_weights_after_divergence(backend, rng):
    X = rng.standard_normal((64, 4)).astype(np.float32)
    y = (100 * rng.standard_normal((64, 1))).astype(np.float32)
    model = nn.Sequential(nn.Dense(4, 16, seed=0), nn.ReLU(), nn.Dense(16, 1, seed=1))
    with skip_if_unimplemented():
        model.evaluate(X, y, loss="mse")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow|invalid value", RuntimeWarning)
        with pytest.warns(RuntimeWarning, match="TerminateOnNaN"):
            history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1.0), epochs=50, batch_size=8,
                                verbose=0, seed=0)
    assert len(history.epoch) < 50
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    # Without it, the same run goes on to the end with non-finite weights.
    model = nn.Sequential(nn.Dense(4, 16, seed=0), nn.ReLU(), nn.Dense(16, 1, seed=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow warnings
        history = model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1.0), epochs=50, batch_size=8,
                            verbose=0, seed=0, terminate_on_nan=False)
    assert len(history.epoch) == 50
    assert not all(np.isfinite(p.data).all() for p in model.parameters())


class BatchLosses(nnfast.Callback):
    def on_train_begin(self, model, logs):
        self.losses = []

    def on_batch_loss(self, model, epoch, batch, loss):
        self.losses.append(loss)


def test_terminate_on_nan_keeps_the_weights_of_the_last_finite_loss(backend, rng):
    # Diverging SGD: the kept weights must be those that gave the last finite batch loss
    # (before that batch's update), so that loss is what they give again. The layer path
    # kept the weights that produced the NaN, the fused one those of the epoch's start.
    X = rng.standard_normal((64, 4))
    y = 100 * rng.standard_normal((64, 1))
    model = nn.Sequential(nn.Dense(4, 16, seed=0, dtype=np.float64), nn.ReLU(),
                          nn.Dense(16, 1, seed=1, dtype=np.float64))
    record = BatchLosses()
    with skip_if_unimplemented(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow|invalid value", RuntimeWarning)
        with pytest.warns(RuntimeWarning, match=r"keeps the weights that gave a finite loss at "
                                                r"epoch \d+, batch \d+\. To train on, lower"):
            model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1.0), epochs=50, batch_size=8,
                      shuffle=False, verbose=0, callbacks=[record])
    losses = record.losses
    assert not np.isfinite(losses[-1]) and np.isfinite(losses[-2])
    last_good_batch = (len(losses) - 2) % 8
    rows = slice(8 * last_good_batch, 8 * last_good_batch + 8)
    again = model.evaluate(X[rows], y[rows], loss="mse")["loss"]
    np.testing.assert_allclose(again, losses[-2], rtol=1e-9)


def test_terminate_on_nan_catches_a_diverging_final_update(backend, rng):
    # One batch, one update with lr=1e36: no batch loss is non-finite, but the weights it
    # leaves give infinite outputs. No later batch checks them: fit() does.
    X = rng.standard_normal((32, 4)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    model = nn.Sequential(nn.Dense(4, 8, seed=0), nn.ReLU(), nn.Dense(8, 1, seed=1))
    start = [p.data.copy() for p in model.parameters()]
    with skip_if_unimplemented(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow|invalid value", RuntimeWarning)
        with pytest.warns(RuntimeWarning, match=r"the weights after the last update \(epoch 1, "
                                                r"batch 1\) give a loss of (inf|nan) on its "
                                                r"batch, so the model keeps the weights that"):
            model.fit(X, y, loss="mse", optimizer=optim.SGD(lr=1e36), epochs=1, batch_size=32,
                      verbose=0)
    for p, q in zip(model.parameters(), start):
        np.testing.assert_array_equal(p.data, q)
    assert np.isfinite(model.predict(X)).all()


class PoisonAfterLastBatch(Callback):
    """Puts a NaN into the first layer's weights at the end of training: a final update gone
    wrong that a ReLU mapping NaN to 0 could hide from the loss."""

    def on_epoch_end(self, model, epoch, logs):
        model.layers[0].weight[0, 0] = np.nan


def test_terminate_on_nan_catches_a_nan_weight_from_the_final_update(backend, rng):
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model = nn.Sequential(nn.Dense(4, 8, seed=0), nn.ReLU(), nn.Dense(8, 3, seed=1))
    with skip_if_unimplemented(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "overflow|invalid value", RuntimeWarning)
        with pytest.warns(RuntimeWarning, match=r"the weights after the last update \(epoch 1, "
                                                r"batch 3\) give a loss of nan"):
            model.fit(X, y, epochs=1, batch_size=16, verbose=0,
                      callbacks=[PoisonAfterLastBatch()])
    assert all(np.isfinite(p.data).all() for p in model.parameters())


def test_history_plot_saves_training_curves(backend, rng, tmp_path):
    X, y, X_val, y_val = overfitting_task(rng)
    model = mlp()
    with skip_if_unimplemented():
        history = model.fit(X, y, epochs=3, verbose=0, validation_data=(X_val, y_val))
    path = tmp_path / "curves.png"
    fig = history.plot(path, title="overfitting")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy", "learning rate"]
    best = history.best_epoch("val_loss")
    assert best == int(np.argmin(history["val_loss"]))
    for ax in axes[:2]:
        assert [line.get_label() for line in ax.get_lines()] == ["train", "validation",
                                                                 f"best epoch {best}"]
    lr_lines = axes[2].get_lines()
    np.testing.assert_array_equal(lr_lines[0].get_ydata(), history["lr"])
    for ax in axes:
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [0, 1, 2])
        assert list(ax.get_lines()[-1].get_xdata()) == [best, best]


def test_history_plot_marks_early_stoppings_best_epoch_in_its_numbering(backend, rng, tmp_path):
    """The marked epoch is EarlyStopping.best_epoch, on an axis numbered as History.epoch."""
    pytest.importorskip("matplotlib")
    X, y, X_val, y_val = overfitting_task(rng)
    model = mlp()
    stopper = nnfast.EarlyStopping(patience=2, restore_best=False)
    with skip_if_unimplemented():
        history = model.fit(X, y, epochs=30, verbose=0, validation_data=(X_val, y_val),
                            callbacks=[stopper], scheduler=nnfast.optim.StepLR(2, 0.5), seed=0)
    assert history.best_epoch("val_loss") == stopper.best_epoch
    fig = history.plot(tmp_path / "curves.png", best_epoch=stopper.best_epoch)
    for ax in fig.get_axes():
        marker = ax.get_lines()[-1]
        assert marker.get_label() == f"best epoch {stopper.best_epoch}"
        assert list(marker.get_xdata()) == [stopper.best_epoch] * 2
        assert list(ax.get_lines()[0].get_xdata()) == history.epoch


def test_history_plot_without_matplotlib_says_what_to_install(monkeypatch):
    history = nnfast.History()
    history.record(0, {"loss": 1.0})
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install matplotlib"):
        history.plot()
