"""Run under mpirun by tests/test_distributed.py: trains every model, optimizer and executor of
shared.py with fit(distributed=True), checks after every step that all ranks hold bitwise the
same weights, and has rank 0 save the final weights for the test to compare with a single
process. Then the callbacks, validation and output of a distributed fit. Any failed check
raises, which aborts the job with a non-zero exit."""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nnfast  # noqa: E402
import nnfast.distributed as dist  # noqa: E402
from nnfast import Callback, EarlyStopping, ModelCheckpoint  # noqa: E402
from shared import (BACKENDS, MODELS, OPTIMIZERS, PER_RANK_BATCH, build, data,  # noqa: E402
                    sample_weight, weighted_loss, weights)

rank, size = dist.init()
comm = dist.comm()
out_dir = sys.argv[1]


def digest(model) -> str:
    arrays = [p.data for p in model.parameters()] + list(model.buffers())
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


class SameWeightsEverywhere(Callback):
    """Before each step's update the weights are those after the previous step."""

    def on_train_begin(self, model, logs):
        self.checked = 0

    def on_batch_loss(self, model, epoch, batch, loss):
        digests = comm.allgather(hashlib.sha256(weights(model).tobytes()).hexdigest())
        if len(set(digests)) != 1:
            raise AssertionError(f"weights differ across ranks before step {batch + 1}")
        self.checked += 1


results = {}
for backend in BACKENDS:
    nnfast.set_backend(backend)
    for model_name in MODELS:
        for opt_name, make_opt in OPTIMIZERS.items():
            X, y = data(model_name, size)
            model = build(model_name)
            check = SameWeightsEverywhere()
            model.fit(X, y, optimizer=make_opt(), batch_size=PER_RANK_BATCH, epochs=1, seed=3,
                      verbose=0, callbacks=[check], distributed=True)
            if len(set(comm.allgather(digest(model)))) != 1:  # running statistics included
                raise AssertionError(f"{backend}/{model_name}/{opt_name}: ranks differ after fit")
            results[f"{backend}/{model_name}/{opt_name}"] = weights(model)
            results[f"{backend}/{model_name}/{opt_name}/loss"] = np.array(model.history.history["loss"])
            results[f"{backend}/{model_name}/{opt_name}/checked"] = np.array(check.checked)
    # Sample weights (Keras's) and a class-weighted cross-entropy (torch's).
    X, y = data("dropout", size)
    model = build("dropout")
    model.fit(X, y, loss=weighted_loss(), sample_weight=sample_weight("dropout", size),
              optimizer=OPTIMIZERS["adam"](), batch_size=PER_RANK_BATCH, epochs=1, seed=3,
              verbose=0, distributed=True)
    results[f"{backend}/weighted"] = weights(model)
nnfast.set_backend("cpp")


class ValidationMatchesLocal(Callback):
    """The reduced validation metrics equal what one process computes on all of X_val."""

    def on_epoch_end(self, model, epoch, logs):
        local = nnfast.train.evaluate(model, X_val, y_val, metrics=["auc"])
        assert abs(local["loss"] - logs["val_loss"]) < 1e-12, (local, logs)
        assert abs(local["accuracy"] - logs["val_accuracy"]) < 1e-12, (local, logs)
        assert local["auc"] == logs["val_auc"], (local, logs)  # the outputs gathered in order


X, y = data("batchnorm", size)
X_val, y_val = X[:37] + 0.1, y[:37]
model = build("batchnorm")
stopper = EarlyStopping(monitor="val_loss", patience=1)
checkpoint = ModelCheckpoint(os.path.join(out_dir, f"ckpt-{{epoch}}-from-rank-{rank}.npz"))
history = model.fit(X, y, optimizer=OPTIMIZERS["adam"](), batch_size=PER_RANK_BATCH, epochs=6,
                    seed=4, validation_data=(X_val, y_val), verbose=1, metrics=["auc"],
                    callbacks=[stopper, checkpoint, ValidationMatchesLocal()], distributed=True)
everyone = comm.allgather((history.history, stopper.stopped_epoch, digest(model)))
assert all(e[0] == everyone[0][0] for e in everyone), "histories differ across ranks"
assert len({e[1] for e in everyone}) == 1 and len({e[2] for e in everyone}) == 1
assert (len(checkpoint.saved) > 0) == (rank == 0), (rank, checkpoint.saved)

# Horovod's loop: each rank its own half of every batch, gradients averaged by the wrapper.
model = build("dropout")
opt = dist.DistributedOptimizer(nnfast.optim.Adam(model.parameters(), lr=0.01))
dist.broadcast_parameters(model, opt)
loss_fn = nnfast.losses.CrossEntropy()
X, y = data("dropout", size)
for step in range(5):
    rows = slice((step * size + rank) * PER_RANK_BATCH, (step * size + rank + 1) * PER_RANK_BATCH)
    opt.zero_grad()
    loss_fn(model(X[rows]), y[rows])
    model.backward(loss_fn.backward())
    opt.step()
assert len(set(comm.allgather(digest(model)))) == 1, "DistributedOptimizer: ranks differ"

if rank == 0:
    np.savez(os.path.join(out_dir, "results.npz"), **results)
print(f"rank {rank} of {size}: all checks passed", flush=True)
