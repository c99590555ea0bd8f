"""fit / evaluate / predict for Sequential models.

All input checking happens before the first step, so a bad call raises and leaves the
model exactly as it was.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from . import device as device_mod
from . import fused as fused_step
from . import losses as losses_mod
from . import optim as optim_mod
from . import seeding
from .callbacks import Callback, TerminateOnNaN, weight_arrays
from .distributed.group import SingleProcess, process_group, shard
from .executor import Executor, LayerwiseStep
from .history import History
from .interop import as_array
from .metrics import MetricSet, metric_set
from .nn.module import as_float_input

EVAL_BATCH = 1024
FINAL_CHECK_ROWS = 64  # rows of the last batch that _check_final_update evaluates


def _positive_int(value, name: str) -> int:
    if type(value) is int and value > 0:  # the common case, checked first: predict() is hot
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_inputs(model, X, name: str = "X") -> np.ndarray:
    """X as a C-contiguous 2-D array of the model's dtype, or a clear error. A DLPack-capable
    array (a torch tensor) is read without a copy where its dtype and layout allow."""
    X = as_array(X, name)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected numeric data, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (samples, features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name}: no samples (shape {X.shape})")
    expected = model.in_features
    if expected is not None and X.shape[1] != expected:
        raise ValueError(f"{name}: the model expects {expected} features per sample, got {X.shape[1]}")
    dtype = model.dtype
    given = X
    if X.dtype != dtype or not X.flags.c_contiguous:
        X = as_float_input(X, dtype, name)
    # A NaN or inf makes the sum of squares NaN or inf, so a finite one clears X in one pass
    # without a temporary; only one that overflowed on large finite values needs the exact
    # test. BLAS's dot beside ndarray.sum, paired on the 2-core AMD EPYC (load 5): 1.0 against
    # 2.0 us on one sample (predict), 1.4 against 1.9 ms on 8192 x 784 (a fit() call).
    if not math.isfinite(np.vdot(X, X)) and not np.isfinite(X).all():
        if given is not X and given.dtype.kind == "f" and np.isfinite(given).all():
            raise ValueError(f"{name}: values up to {np.abs(given).max():.3g} overflow {dtype}, "
                             f"the model's dtype; scale the data, or build the model with "
                             f"dtype=np.float64")
        raise ValueError(f"{name}: contains NaN or inf")
    return X


def check_targets(model, loss, X, y, name: str = "y") -> np.ndarray:
    y = as_array(y, name)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: {y.shape[0] if y.ndim else 0} targets for {X.shape[0]} samples")
    width = model.out_features
    out_shape = (X.shape[0], width if width is not None else X.shape[1])
    return loss.prepare_target(y, out_shape, model.dtype)


def _format_log(key: str, value: float) -> str:
    if key == "samples_per_sec":
        return f"{value:,.0f} samples/s"
    if key == "seconds":
        return f"{value:.2f}s"
    return f"{key}={value:.4g}"


class _Progress:
    """A tqdm bar when verbose and writing to a terminal; one line per epoch otherwise."""

    def __init__(self, verbose: int, epochs: int, batches: int):
        self.verbose, self.epochs, self.batches = verbose, epochs, batches
        self.use_bar = bool(verbose) and sys.stderr.isatty()
        self.bar = None

    @property
    def shows_batches(self) -> bool:
        return self.use_bar

    def start_epoch(self, epoch: int):
        if self.use_bar:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.batches, desc=f"epoch {epoch + 1}/{self.epochs}",
                            unit="batch", leave=True, dynamic_ncols=True)

    def update(self, loss: float):
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def end_epoch(self, epoch: int, logs: dict):
        text = "  ".join(_format_log(k, v) for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.close()
            self.bar = None
        elif self.verbose:
            print(f"epoch {epoch + 1}/{self.epochs}  {text}", flush=True)


def epoch_order(seed_root: int, epoch: int, n: int) -> np.ndarray:
    """The sample order of epoch `epoch` (counted over every fit() of the model): a function of
    (seed, epoch) alone, so a resumed run shuffles as the uninterrupted one would."""
    return np.random.default_rng([seed_root, epoch]).permutation(n)


def _expected_metrics(loss_fn, has_validation: bool, metric_names=()) -> list[str]:
    """The names every epoch's logs will hold, known before training starts."""
    base = ["loss"]
    if type(loss_fn).correct is not losses_mod.Loss.correct:
        base.append("accuracy")
    base += list(metric_names)
    names = base + ([f"val_{k}" for k in base] if has_validation else [])
    return names + ["lr", "seconds", "samples_per_sec"]


def _check_batch_sizes(model, n: int, batch_size: int, processes: int = 1,
                       drop_last: bool = False) -> None:
    """A layer such as BatchNorm1d needs several samples per training batch: refuse before
    training a split that would hand it fewer, rather than fail in the middle of an epoch.
    With several processes each takes its share of a global batch of processes * batch_size
    rows (a process with no rows of the last one sits that step out); drop_last leaves out a
    last global batch smaller than that."""
    if n < processes:
        raise ValueError(f"fit(distributed=True): {n} training samples for {processes} processes; "
                         "every process needs at least one: train on fewer processes")
    global_batch = batch_size * processes
    if drop_last and n < global_batch:
        raise ValueError(f"drop_last=True with {n} training samples and a batch of {global_batch} "
                         "leaves no batch: choose a batch_size of at most the sample count")
    modules = list(model.modules()) if hasattr(model, "modules") else [model]
    strictest = max(modules, key=lambda m: getattr(m, "min_train_batch", 1))
    need = getattr(strictest, "min_train_batch", 1)
    last = global_batch if drop_last else n % global_batch or global_batch
    shares = [hi - lo for m in (min(n, global_batch), last)
              for lo, hi in (shard(m, processes, r) for r in range(processes))]
    smallest = min(s for s in shares if s > 0)
    if smallest < need:
        where = f" on one of {processes} processes" if processes > 1 else ""
        raise ValueError(f"{type(strictest).__name__} needs at least {need} samples per training "
                         f"batch; batch_size={batch_size} with {n} training samples gives a batch "
                         f"of {smallest}{where}: choose another batch_size, or pass "
                         "drop_last=True to leave out the short last batch")


def _seed_root(seed) -> int:
    if seed is None:
        drawn = seeding.next_seed()
        return np.random.SeedSequence().entropy if drawn is None else drawn
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


DEFAULT_LOSS = "cross_entropy"


def _training_setup(model, loss, optimizer, scheduler, decay):
    """(loss_fn, optimizer, scheduler): None continues what the model was trained with."""
    if loss is None:
        loss = getattr(model, "loss", None) or DEFAULT_LOSS
    loss_fn = losses_mod.get(loss)
    continuing = optimizer is None and getattr(model, "optimizer", None) is not None
    opt = model.optimizer if continuing else optim_mod.get(optimizer or "adam")
    if decay is not None:
        if scheduler is not None:
            raise ValueError("give scheduler or decay, not both")
        scheduler = optim_mod.InverseTimeDecay(decay)
    if scheduler is None and continuing:
        scheduler = getattr(model, "scheduler", None)
    if opt.bound and {id(p) for p in opt.params} != {id(p) for p in model.parameters()}:
        raise ValueError(f"optimizer: this {type(opt).__name__} was created with the parameters of "
                         "another model (or of only some of this model's layers); create it with "
                         f"model.parameters(), or without parameters (optim.{type(opt).__name__}"
                         "(lr=...)) and fit() gives it this model's")
    if scheduler is not None:
        if not isinstance(scheduler, optim_mod.Scheduler):
            raise TypeError(f"scheduler: expected an nnfast Scheduler, got {type(scheduler).__name__}")
        if scheduler.optimizer is not None and scheduler.optimizer is not opt:
            raise ValueError("scheduler: it drives another optimizer than the one fit() uses")
    return loss_fn, opt, scheduler


def executor_for(model, loss_fn, opt, X, y, w=None) -> Executor:
    """The fastest executor that runs this model, loss and optimizer where the model is;
    w: the sample weights it trains with, or None."""
    if device_mod.device_of(model) == "cuda":
        return device_mod.CudaTrainer(model, loss_fn, opt, X, y, w)
    if fused_step.unsupported_reason(model, loss_fn, opt, y) is None:
        return fused_step.FusedTrainer(model, loss_fn, opt)
    return LayerwiseStep(model, loss_fn, opt)


def _split(model, loss_fn, X, y, validation_split, validation_data):
    """Checked (X, y, X_val, y_val, n_val): validation from validation_data, or the last
    n_val (validation_split) of the samples, or None."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must lie in [0, 1), got {validation_split}")
    X = check_inputs(model, X)
    y = check_targets(model, loss_fn, X, y)
    if validation_data is not None:
        if validation_split:
            raise ValueError("give validation_split or validation_data, not both")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = (f"a {type(validation_data).__name__} of {len(validation_data)}"
                   if isinstance(validation_data, (tuple, list)) else type(validation_data).__name__)
            raise ValueError(f"validation_data: expected a pair (X_val, y_val), got {got}")
        X_val = check_inputs(model, validation_data[0], "validation_data X")
        return X, y, X_val, check_targets(model, loss_fn, X_val, validation_data[1],
                                          "validation_data y"), 0
    if not validation_split:
        return X, y, None, None, 0
    n_val = int(round(X.shape[0] * validation_split))
    if n_val == 0 or n_val == X.shape[0]:
        raise ValueError(f"validation_split={validation_split} leaves {n_val} of {X.shape[0]} "
                         "samples for validation")
    return X[:-n_val], y[:-n_val], X[-n_val:], y[-n_val:], n_val


def balanced_class_weight(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's "balanced" weights, n_samples / (n_classes * count of each class); a
    class without samples gets 1 (it weighs nothing anyway)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = labels.size / (np.count_nonzero(present) * counts[present])
    return weights


def _class_labels(loss_fn, y: np.ndarray, n_out: int) -> tuple[np.ndarray, int]:
    """(each sample's class, the number of classes) for class_weight: the label of a
    cross-entropy target, the 0/1 target of a single binary output."""
    if not loss_fn.gives_probabilities:
        raise ValueError(f"class_weight needs a classification loss, not {type(loss_fn).__name__}; "
                         "use sample_weight")
    labels = loss_fn.labels(y)
    if labels.ndim == 2:
        if labels.shape[1] != 1:
            raise ValueError("class_weight needs one label per sample; the model has "
                             f"{labels.shape[1]} independent outputs (use sample_weight, or "
                             "BCEWithLogits(pos_weight=) per output)")
        return labels[:, 0], 2
    return labels, n_out


def sample_weights(loss_fn, y: np.ndarray, n_out: int, dtype, sample_weight=None,
                   class_weight=None) -> np.ndarray | None:
    """The per-sample loss weights fit() trains with: sample_weight (N,) times the weight
    class_weight gives each sample's class ({class: weight}, classes left out weigh 1, or
    "balanced"), as Keras combines them; None when neither is given."""
    n = y.shape[0]
    w = None
    if sample_weight is not None:
        w = losses_mod.check_sample_weight(sample_weight, n, np.float64, "fit")
    if class_weight is not None:
        labels, n_classes = _class_labels(loss_fn, y, n_out)
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError(f"class_weight: expected a dict {{class: weight}} or 'balanced', "
                                 f"got {class_weight!r}")
            per_class = balanced_class_weight(labels, n_classes)
        elif isinstance(class_weight, dict):
            per_class = np.ones(n_classes)
            for key, value in class_weight.items():
                if isinstance(key, bool) or not isinstance(key, (int, np.integer)) \
                        or not 0 <= key < n_classes:
                    raise ValueError(f"class_weight: key {key!r} is not a class of this model "
                                     f"(classes are 0 .. {n_classes - 1})")
                value = float(value)
                if not np.isfinite(value) or value < 0:
                    raise ValueError(f"class_weight: the weight of class {key} must be finite "
                                     f"and >= 0, got {value}")
                per_class[int(key)] = value
        else:
            raise TypeError(f"class_weight: expected a dict {{class: weight}} or 'balanced', got "
                            f"{type(class_weight).__name__}")
        by_class = per_class[labels]
        w = by_class if w is None else w * by_class
    return None if w is None else np.ascontiguousarray(w, dtype=dtype)


def _watches_batches(cb: Callback) -> bool:
    return (type(cb).on_batch_begin is not Callback.on_batch_begin
            or type(cb).on_batch_loss is not Callback.on_batch_loss)


def _epoch_in_one_call(executor, callbacks, progress):
    """(whether the executor may run the epoch in one call, the TerminateOnNaN to keep the
    last two batches' weights for, or None). It may where it can, no bar shows each batch,
    and no callback acts between batches but one TerminateOnNaN of its own class, which
    keeps its weights through the executor (epoch_buffers)."""
    if not executor.runs_epochs or progress.shows_batches:
        return False, None
    watching = [cb for cb in callbacks if _watches_batches(cb)]
    if not watching:
        return True, None
    if len(watching) == 1 and type(watching[0]) is TerminateOnNaN:
        return True, watching[0]
    return False, None


def _run_epoch(executor, model, X, y, w, order, batch_size, callbacks, progress, epoch):
    """One pass over the samples in `order`, with sample weights w or None: (its loss and
    accuracy logs, samples seen, seconds)."""
    start = time.perf_counter()
    executor.begin_epoch()
    in_one_call, guard = _epoch_in_one_call(executor, callbacks, progress)
    if in_one_call:
        losses, correct = executor.steps(X, y, order, batch_size, w,
                                         None if guard is None else guard.epoch_buffers())
        if guard is not None:
            guard.epoch_done(model, epoch, losses)
        firsts = range(0, len(order), batch_size)
        batches = [(value, min(batch_size, len(order) - first))
                   for value, first in zip(losses.tolist(), firsts)]
    else:
        batches, correct = _batch_by_batch(executor, model, X, y, w, order, batch_size, callbacks,
                                         progress, epoch)
    executor.end_epoch()  # the host arrays are current again for validation and callbacks
    total_loss, seen = 0.0, 0
    for value, size in batches:  # summed in batch order, as either path ran them
        total_loss += value * size
        seen += size
    logs = {"loss": total_loss / seen}
    if correct is not None:
        logs["accuracy"] = correct / seen
    return logs, seen, time.perf_counter() - start


def _batch_by_batch(executor, model, X, y, w, order, batch_size, callbacks, progress, epoch):
    """The batches of an epoch one executor call each, the callbacks around each: ([(batch
    loss, batch size)] of the batches run, the correct count or None)."""
    batches, total_correct, has_accuracy = [], 0, True
    for b, first in enumerate(range(0, len(order), batch_size)):
        idx = order[first:first + batch_size]
        for cb in callbacks:
            cb.on_batch_begin(model, epoch, b)
        value, correct = executor.step(X, y, idx, w)
        batches.append((value, len(idx)))
        has_accuracy = has_accuracy and correct is not None
        total_correct += correct or 0
        for cb in callbacks:
            cb.on_batch_loss(model, epoch, b, value)
        if model.stop_training:  # a callback refused this batch: no update
            break
        executor.apply()
        progress.update(value)
    return batches, total_correct if has_accuracy else None


def fit(model, X, y, *, loss=None, optimizer=None, epochs: int = 1, batch_size: int = 32,
        shuffle: bool = True, validation_split: float = 0.0, validation_data=None, seed=None,
        verbose: int = 1, callbacks=None, scheduler=None, decay=None,
        terminate_on_nan: bool = True, sample_weight=None, class_weight=None,
        metrics=None, distributed: bool = False, drop_last: bool = False) -> History:
    """Train `model` on (X, y) with mini-batches; returns a History.

    loss: a Loss or "mse", "bce", "bce_with_logits", "cross_entropy"; None: the model's
    previous loss, else "cross_entropy".
    optimizer: an Optimizer (bound to the model if created without parameters) or a name;
    None continues the model's optimizer (from a previous fit() or nnfast.load), with its
    state and its scheduler, else a new Adam.
    validation_split: the fraction of samples, taken from the end before shuffling, held out
    for validation; or validation_data=(X_val, y_val).
    seed: seeds the shuffling (None: the next seed of nnfast.manual_seed's sequence, or
    fresh entropy; each epoch's order depends on the seed and the epoch number,
    counted across fit() calls, so resuming a saved model shuffles as one long run would).
    verbose: 0 silent, 1 progress bar (or a line per epoch when not on a terminal).
    callbacks: Callback objects (EarlyStopping, ModelCheckpoint, ...).
    scheduler: a learning-rate Scheduler, stepped after each epoch; decay=d is a shorthand
    for InverseTimeDecay(d), lr / (1 + d * epoch).
    terminate_on_nan: stop at the first NaN/inf batch loss, keeping the last good weights.
    sample_weight: (N,) non-negative weights, each multiplying its sample's loss (the mean
    keeps its denominator, as Keras). class_weight: {class: weight} (classes left out weigh
    1) or "balanced" (n_samples / (n_classes * count), as scikit-learn), multiplied into the
    sample weights by each sample's class (its label, or the 0/1 target of one binary
    output). With validation_split the weights of the held-out samples are dropped; the
    validation loss and metrics are unweighted.
    metrics: names among "auc", "precision", "recall", "f1" (nnfast.metrics, computed by
    scikit-learn), logged each epoch on the training data in eval mode and, with validation,
    as val_auc, ...; EarlyStopping(monitor="val_auc") can watch them.
    drop_last: leave out each epoch's last batch when it is smaller than batch_size (a
    BatchNorm1d model cannot train on a batch of one).
    The logged loss includes the layers' L1/L2 penalties (Dense(..., l1=, l2=)) and the
    sample weights.
    distributed: train data-parallel on every process of the MPI job (nnfast.distributed):
    batch_size is per process, each step's global batch of processes * batch_size rows is
    shared out in order, gradients are summed across processes, metrics are reduced, and
    only rank 0 prints and runs the callbacks that write files (ModelCheckpoint).
    fit() sets the model's history, loss, optimizer, scheduler and epochs_trained.
    """
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    loss_fn, opt, scheduler = _training_setup(model, loss, optimizer, scheduler, decay)
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks: {cb!r} is not an nnfast Callback")
    if terminate_on_nan and not any(isinstance(cb, TerminateOnNaN) for cb in callbacks):
        callbacks.append(TerminateOnNaN())
    group = process_group(distributed)
    callbacks = group.callbacks(callbacks)
    seed_root = group.shared_seed(_seed_root(seed))
    with group.together("fit's data checks"):
        try:
            X, y, X_val, y_val, n_val = _split(model, loss_fn, X, y, validation_split,
                                               validation_data)
        except (ValueError, TypeError) as exc:
            if loss is not None or getattr(model, "loss", None) is not None:
                raise
            raise type(exc)(f"{exc} (no loss= was given, so fit() used its default "
                            f"loss='{DEFAULT_LOSS}', which takes integer class labels and one "
                            "output per class; pass the loss the model is built for, such as "
                            "loss='bce' after a Sigmoid or loss='mse' for regression)") from None
        n = X.shape[0]
        if sample_weight is not None:  # one per row given; the held-out rows' go with them
            sample_weight = losses_mod.check_sample_weight(sample_weight, n + n_val, np.float64,
                                                           "fit")[:n]
        w = sample_weights(loss_fn, y, model.out_features, model.dtype, sample_weight,
                           class_weight)
    extra = metric_set(metrics, loss_fn)
    group.agree(samples=n, batch_size=batch_size, epochs=epochs, shuffle=shuffle,
                validation_samples=None if X_val is None else X_val.shape[0],
                epochs_trained=model.epochs_trained, weighted=w is not None)
    _check_batch_sizes(model, n, batch_size, group.size, drop_last)
    metrics = _expected_metrics(loss_fn, X_val is not None, extra.names)
    if scheduler is not None:
        scheduler.check_metrics(metrics)
    if not opt.bound:
        opt.bind(model.parameters())
    if scheduler is not None and scheduler.optimizer is None:
        scheduler.bind(opt)
    executor = group.executor(model, loss_fn, opt,
                              lambda: executor_for(model, loss_fn, opt, X, y, w))

    first_epoch = model.epochs_trained
    history = History()
    model.history, model.loss, model.optimizer, model.scheduler = history, loss_fn, opt, scheduler
    model.stop_training = False
    global_batch = batch_size * group.size
    trained = n - n % global_batch if drop_last else n  # samples per epoch
    progress = _Progress(verbose if group.rank == 0 else 0, first_epoch + epochs,
                         -(-trained // global_batch))
    for cb in callbacks:
        cb.on_train_begin(model, {"metrics": metrics, "keep_previous": executor.keep_previous})
    for epoch in range(first_epoch, first_epoch + epochs):
        model.train()
        order = (epoch_order(seed_root, epoch, n) if shuffle else np.arange(n))[:trained]
        progress.start_epoch(epoch)
        for cb in callbacks:
            cb.on_epoch_begin(model, epoch, {})
        logs, seen, seconds = _run_epoch(executor, model, X, y, w, order,
                                         batch_size * group.size, callbacks, progress, epoch)
        seconds = group.slowest(seconds)
        group.end_epoch(model)
        if extra.names:
            logs.update(_evaluate_prepared(model, loss_fn, X, y, metrics=extra, loss=False,
                                           group=group))
        if X_val is not None:
            val = _evaluate_prepared(model, loss_fn, X_val, y_val, metrics=extra, group=group)
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs.update(lr=opt.lr, seconds=seconds,
                    samples_per_sec=seen / seconds if seconds > 0 else float("inf"))
        model.epochs_trained = epoch + 1
        history.record(epoch, logs)
        progress.end_epoch(epoch, logs)
        for cb in callbacks:
            cb.on_epoch_end(model, epoch, logs)
        if scheduler is not None:
            scheduler.step(logs)
        if model.stop_training:
            break
    _check_final_update(model, loss_fn, X, y, w, order, batch_size, callbacks, epoch)
    for cb in callbacks:
        cb.on_train_end(model, history.history)
    model.eval()
    return history


def _check_final_update(model, loss_fn, X, y, w, order, batch_size, callbacks, epoch) -> None:
    """Every update but the last is checked by the next batch's loss: give TerminateOnNaN the
    loss of the final weights on the first FINAL_CHECK_ROWS rows of the last batch, NaN
    where a weight or running statistic is not finite."""
    guards = [cb for cb in callbacks if isinstance(cb, TerminateOnNaN) and cb.stopped_at is None]
    if not guards:
        return
    last = (len(order) - 1) // batch_size
    # Diverged weights give a non-finite loss on any row, so a few rows tell as much as the
    # whole batch: the forward of a 1024-row batch was 8% of a one-epoch fit() at that size.
    # The weights are read too, since a ReLU that maps NaN to 0 can hide a NaN weight.
    idx = order[last * batch_size:][:FINAL_CHECK_ROWS]
    if all(np.isfinite(a).all() for a in weight_arrays(model)):
        with np.errstate(over="ignore", invalid="ignore"):
            loss = _evaluate_prepared(model, loss_fn, X[idx], y[idx],
                                      w=None if w is None else w[idx])["loss"]
    else:
        loss = float("nan")
    for guard in guards:
        guard.check_final_update(model, epoch, last, loss)


def _evaluate_prepared(model, loss_fn, X, y, batch_size: int = EVAL_BATCH, w=None,
                       metrics: MetricSet = MetricSet(()), loss: bool = True,
                       group=SingleProcess()) -> dict:
    """Loss (unless loss=False), accuracy and `metrics` of (X, y) in eval mode; w: sample
    weights of the loss and metrics, or None. A batch's loss is its weighted sum over the
    loss's denominator, so batches combine by that denominator. In a process group each
    process evaluates its share of the rows, the sums are reduced and the outputs the
    metrics need gathered, so every process gets the same result."""
    was_training = model.training
    model.eval()
    total_loss, total_correct, has_accuracy = 0.0, 0, True
    outs = []
    lo, hi = group.rows(X.shape[0])
    try:
        for start in range(lo, hi, batch_size):
            rows = slice(start, min(start + batch_size, hi))
            xb, yb = X[rows], y[rows]
            out = model(xb)
            if loss:
                total_loss += loss_fn(out, yb, None if w is None else w[rows]) * xb.shape[0]
            correct = loss_fn.correct(out, yb)
            has_accuracy = has_accuracy and correct is not None
            total_correct += correct or 0
            if metrics.names:
                outs.append(out.copy())
    finally:
        model.train(was_training)
    total_loss, total_correct, without_accuracy = group.sum(
        [total_loss, total_correct, int(not has_accuracy)])
    has_accuracy = not without_accuracy
    result = {"loss": total_loss / X.shape[0] + model.penalty()} if loss else {}
    if has_accuracy:
        result["accuracy"] = total_correct / X.shape[0]
    if metrics.names:
        result.update(metrics.compute(loss_fn, group.gather_rows(outs), y, w))
    return result


def evaluate(model, X, y, *, loss=None, batch_size: int = EVAL_BATCH, sample_weight=None,
             metrics=None) -> dict:
    """{"loss": mean loss, "accuracy": fraction correct (classification losses), and the
    metrics asked for} in eval mode.

    The loss includes the layers' L1/L2 penalties, as fit() logs it (and as Keras does).
    loss defaults to the one the model was last trained with. sample_weight (N,) weighs the
    loss as fit() does, and the metrics (scikit-learn's sample_weight); accuracy stays the
    unweighted fraction. metrics: as fit()'s ("auc", "precision", "recall", "f1").
    """
    if loss is None:
        loss = getattr(model, "loss", None)
        if loss is None:
            raise ValueError("evaluate: the model has not been trained with fit(); pass loss=")
    loss_fn = losses_mod.get(loss)
    batch_size = _positive_int(batch_size, "batch_size")
    X = check_inputs(model, X)
    y = check_targets(model, loss_fn, X, y)
    w = None
    if sample_weight is not None:
        w = losses_mod.check_sample_weight(sample_weight, X.shape[0], model.dtype, "evaluate")
    return _evaluate_prepared(model, loss_fn, X, y, batch_size, w, metric_set(metrics, loss_fn))


def predict(model, X, *, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Model outputs for X, in eval mode, as a NumPy array. A single sample of shape
    (features,) is accepted, and any DLPack-capable CPU array (a torch tensor), read without
    a copy where its dtype and layout allow."""
    batch_size = _positive_int(batch_size, "batch_size")
    X = as_array(X, "X")
    on_device = device_mod.predictor(model)
    compiled = on_device or fused_step.predictor(model)
    if on_device is None and compiled is not None:
        # X as check_inputs would pass it unchanged, in one batch: checked and run in one C++
        # call; anything else (None) goes through check_inputs, which converts it or refuses.
        out = compiled.predict_ready(X, batch_size)
        if out is not None:
            return out
    single = X.ndim == 1
    X = check_inputs(model, X.reshape(1, -1) if single else X)
    if compiled is not None:  # the compiled forwards run in eval mode, as the path below
        n = X.shape[0]
        if n <= batch_size:  # a sample or a small batch: one call, no slicing, out made in C++
            out = compiled.predict(X, None)
        else:
            out = np.empty((n, model.out_features), dtype=X.dtype)
            for s in range(0, n, batch_size):
                compiled.predict(X[s:s + batch_size], out[s:s + batch_size])
    else:
        was_training = model.training
        model.eval()
        try:
            outs = [model(X[s:s + batch_size]) for s in range(0, X.shape[0], batch_size)]
        finally:
            model.train(was_training)
        out = outs[0] if len(outs) == 1 else np.concatenate(outs)
    return out[0] if single else out


def _trained_loss(model, caller: str):
    loss_fn = getattr(model, "loss", None)
    if loss_fn is None:
        raise ValueError(f"{caller}: the model has no loss yet; train it with fit() (its loss "
                         "says how outputs map to probabilities)")
    if not loss_fn.gives_probabilities:
        raise ValueError(f"{caller}: the model was trained with {type(loss_fn).__name__}, whose "
                         "outputs are not probabilities; use predict()")
    return loss_fn


def predict_proba(model, X, *, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Probabilities for X in eval mode, by the loss the model was trained with: softmax
    rows (N, C) for cross_entropy (each row sums to 1); for bce_with_logits the sigmoid of
    each output, (N, out), each column the probability that its label is 1 (one sigmoid
    output gives (N, 1): the positive class, as the model's output; scikit-learn's two
    columns are 1 - p and p); for bce the outputs themselves."""
    loss_fn = _trained_loss(model, "predict_proba")
    out = predict(model, X, batch_size=batch_size)
    single = out.ndim == 1
    proba = loss_fn.probabilities(out.reshape(1, -1) if single else out)
    return proba[0] if single else proba


def predict_classes(model, X, *, threshold=None, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Predicted classes for X (int64): the most probable class of a softmax model (N,); for
    sigmoid outputs probability >= threshold (default 0.5), (N,) for one output, (N, out)
    for several. threshold also applies to a two-class softmax model (its class 1's
    probability); pick it on validation data with nnfast.threshold.best."""
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating,
                                                                     np.integer)) \
                or not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"predict_classes: threshold must be a probability in [0, 1], got "
                             f"{threshold!r}")
        threshold = float(threshold)
    proba = predict_proba(model, X, batch_size=batch_size)
    single = proba.ndim == 1
    proba = proba.reshape(1, -1) if single else proba
    if isinstance(model.loss, losses_mod.CrossEntropy):
        if threshold is None:
            classes = proba.argmax(axis=1)
        elif proba.shape[1] == 2:
            classes = (proba[:, 1] >= threshold).astype(np.int64)
        else:
            raise ValueError(f"predict_classes: threshold applies to two classes, this model has "
                             f"{proba.shape[1]}; leave it out to take the most probable class")
    else:
        classes = (proba >= (0.5 if threshold is None else threshold)).astype(np.int64)
        if classes.shape[1] == 1:
            classes = classes[:, 0]
    return classes[0] if single else classes


__all__ = ["fit", "evaluate", "predict", "predict_proba", "predict_classes", "epoch_order"]
