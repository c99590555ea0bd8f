"""Callbacks: hooks that fit() calls around training, each epoch and each batch."""
from __future__ import annotations

import math
import os
import warnings

import numpy as np

from .executor import copy_arrays
from .monitor import improved, require_metric, resolve_mode


class Callback:
    """Override any hook. `logs` holds the epoch's metrics (loss, accuracy, val_loss, ...);
    on_train_begin's logs["metrics"] lists the names every epoch will log (and
    logs["keep_previous"](sources, targets) copies arrays before the next step changes them,
    as late as fit()'s executor can). Setting
    `model.stop_training = True` ends fit() after the current epoch, or, from on_batch_loss,
    skips that batch's update and ends the epoch there.

    In data-parallel training (fit(..., distributed=True)) every process runs the callbacks
    on the same, reduced logs, so they decide alike, except those with rank_zero_only (they
    write files), which run on rank 0 alone."""

    rank_zero_only = False

    def on_train_begin(self, model, logs: dict) -> None:
        pass

    def on_epoch_begin(self, model, epoch: int, logs: dict) -> None:
        pass

    def on_batch_begin(self, model, epoch: int, batch: int) -> None:
        """Called before each batch's step, with the weights it starts from."""

    def on_batch_loss(self, model, epoch: int, batch: int, loss: float) -> None:
        """Called with each batch's loss after the forward pass, before the update (after
        it where fit() trains with the compiled fused step, which does both in one call)."""

    def on_epoch_end(self, model, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, model, logs: dict) -> None:
        pass


def weight_arrays(model) -> list[np.ndarray]:
    """Every parameter's array and buffer (running statistics) of `model`, in one order."""
    return [p.data for p in model.parameters()] + list(model.buffers())


def snapshot_weights(model) -> list[np.ndarray]:
    """Copies of every parameter and buffer (running statistics) of `model`."""
    return [a.copy() for a in weight_arrays(model)]


def restore_weights(model, snapshot) -> None:
    copy_arrays(snapshot, weight_arrays(model))


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs.

    restore_best: at the end of training, put back the weights of the best epoch (when it
    was not the last). mode: "min", "max" or "auto" (max for names containing "acc", "auc",
    "precision", "recall" or "f1").
    After fit: best, best_epoch, stopped_epoch (None if it never stopped training).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = str(monitor), patience, float(min_delta)
        self.mode = resolve_mode(mode, self.monitor, "EarlyStopping")
        self.restore_best = bool(restore_best)

    def on_train_begin(self, model, logs):
        require_metric(self.monitor, logs.get("metrics", ()), "EarlyStopping")
        self.best = self.best_epoch = self.stopped_epoch = None
        self.wait, self._best_weights, self._last_epoch = 0, None, None

    def on_epoch_end(self, model, epoch, logs):
        self._last_epoch = epoch
        value = float(logs[self.monitor])
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self._best_weights = snapshot_weights(model)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            model.stop_training = True

    def on_train_end(self, model, logs):
        if self.restore_best and self._best_weights is not None and self.best_epoch != self._last_epoch:
            restore_weights(model, self._best_weights)
        self._best_weights = None


class ModelCheckpoint(Callback):
    """Save the model (nnfast.save) after each epoch to `path`, whose file name may hold
    format fields such as "ckpt-{epoch:02d}-{val_loss:.3f}.npz" (epoch counts from 1; the
    directory is taken as written, braces included). save_best_only: only when `monitor`
    improves."""

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto"):
        self.path, self.monitor, self.save_best_only = str(path), str(monitor), bool(save_best_only)
        self.mode = resolve_mode(mode, self.monitor, "ModelCheckpoint")
        self.saved: list[str] = []

    rank_zero_only = True

    def on_train_begin(self, model, logs):
        metrics = logs.get("metrics", ())
        if self.save_best_only:
            require_metric(self.monitor, metrics, "ModelCheckpoint")
        try:  # a misspelt field fails now, not after the first epoch's training
            self._file_name(0, {name: 0.0 for name in metrics})
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill in the file name "
                             f"{os.path.basename(self.path)!r} ({type(exc).__name__}: {exc}); "
                             f"its fields may be {{epoch}} and the logged metrics "
                             f"{', '.join(metrics)}") from None
        self.best = None

    def _file_name(self, epoch, logs):
        directory, name = os.path.split(self.path)
        return os.path.join(directory, name.format(epoch=epoch + 1, **logs))

    def on_epoch_end(self, model, epoch, logs):
        if self.save_best_only:
            value = float(logs[self.monitor])
            if not improved(value, self.best, self.mode, 0.0):
                return
            self.best = value
        from .saving import save
        path = self._file_name(epoch, logs)
        save(model, path)
        self.saved.append(path)


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite, keeping the last good
    weights: those of the last batch whose loss was finite, as they were when that loss was
    computed (before its update), running statistics included. fit() also checks the final
    update, which no later batch does: when the weights it made are not finite, or give a
    non-finite loss on the first rows of its batch (check_final_update), they are put back
    the same way. fit() adds one unless given terminate_on_nan=False. After fit:
    stopped_at = (epoch, batch) or None. On a model on cuda, whose weights come back to the
    host once an epoch, the weights put back are those of the start of the epoch.
    """

    def on_train_begin(self, model, logs):
        # fit()'s logs["keep_previous"] copies the weights into _before at the latest moment
        # its executor can (the fused step: each parameter's update writes its old values).
        self._keep_previous = logs.get("keep_previous", copy_arrays)
        self.stopped_at = None
        # Listed once: walking the model's modules for them took 10 us a batch, 2% of a
        # batch-64 step of 784-128-64-10; the compiled step binds the same arrays for the fit.
        self._weights = weight_arrays(model)
        self._before = snapshot_weights(model)  # the weights the current batch started from
        self._good = None  # the last weights whose batch loss was finite
        self._good_at = None
        self._spare = None  # epoch_buffers()' second set, made on first use

    def on_batch_begin(self, model, epoch, batch):
        self._keep_previous(self._weights, self._before)

    def on_batch_loss(self, model, epoch, batch, loss):
        if math.isfinite(loss):
            spare = self._good if self._good is not None else [a.copy() for a in self._before]
            self._good, self._before, self._good_at = self._before, spare, (epoch, batch)
            return
        self._stop(model, epoch, batch, loss)

    def epoch_buffers(self):
        """(weights, even, odd) for an executor that runs a whole epoch in one call
        (Executor.steps): it copies the weights batch i starts from into even for an even i,
        odd for an odd one, so the last two batches' are at hand. epoch_done() reads them."""
        if self._spare is None:
            self._spare = [a.copy() for a in self._before]
        return self._weights, self._before, self._spare

    def epoch_done(self, model, epoch, losses):
        """After Executor.steps with epoch_buffers(): what on_batch_loss would have done for
        each of the batch losses in turn (only the last can be non-finite)."""
        buffers, last = (self._before, self._spare), len(losses) - 1
        if math.isfinite(losses[last]):
            self._spare = self._good
            self._good, self._good_at = buffers[last % 2], (epoch, last)
            self._before = buffers[(last + 1) % 2]
            return
        if last > 0:
            self._good, self._good_at = buffers[(last - 1) % 2], (epoch, last - 1)
        self._before = buffers[last % 2]
        self._stop(model, epoch, last, losses[last])

    def _stop(self, model, epoch, batch, loss):
        """Batch (epoch, batch) gave a non-finite loss: stop there, with the last good weights."""
        model.stop_training = True
        self.stopped_at = (epoch, batch)
        self._put_back(model, f"the loss is {loss} at epoch {epoch + 1}, batch {batch + 1}; "
                              "training stopped")

    def on_train_end(self, model, logs):
        # fit()'s executor and the model's arrays: not kept alive, nor pickled
        self._keep_previous = self._weights = self._spare = None

    def check_final_update(self, model, epoch, batch, loss):
        """`loss`: that of the weights after training on batch (epoch, batch), the last."""
        if self.stopped_at is None and not math.isfinite(loss):
            self.stopped_at = (epoch, batch)
            self._put_back(model, f"the weights after the last update (epoch {epoch + 1}, "
                                  f"batch {batch + 1}) give a loss of {loss} on its batch")

    def _put_back(self, model, what):
        if self._good is not None:
            restore_weights(model, self._good)
            epoch, batch = self._good_at
            kept = (f"the model keeps the weights that gave a finite loss at epoch {epoch + 1}, "
                    f"batch {batch + 1}")
        else:
            restore_weights(model, self._before)
            kept = ("no batch had a finite loss, so the model keeps the weights training "
                    "started from; check the inputs and targets for extreme values")
        warnings.warn(f"TerminateOnNaN: {what}, so {kept}. To train on, "
                      "lower the learning rate, clip gradients (clipnorm=) or scale the inputs.",
                      RuntimeWarning, stacklevel=3)

