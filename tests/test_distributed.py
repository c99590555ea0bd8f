"""Data-parallel training under mpirun (nnfast.distributed): the programs in mpi_programs/
run on 2 and 3 processes; this file checks their results against one process. Skipped
where mpirun or mpi4py is missing (`pip install nnfast[mpi]`, `apt-get install openmpi-bin
libopenmpi-dev`)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import nnfast
from nnfast.distributed.group import shard
from nnfast.nn.ops import RowWindow

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_programs"))
from shared import (BACKENDS, MODELS, OPTIMIZERS, PER_RANK_BATCH, STEPS, build,  # noqa: E402
                    data, sample_weight, weighted_loss, weights)

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_programs")
MPIRUN = shutil.which("mpirun")
TIMEOUT = 120  # seconds per job: a hang fails the test instead of the suite
# The documented tolerance: float64 sums in another order (per-rank means, then the sum).
RTOL, ATOL = 1e-13, 1e-14



def _missing() -> str | None:
    """Why the data-parallel tests cannot run here, or None."""
    if MPIRUN is None:
        return "no mpirun (apt-get install openmpi-bin libopenmpi-dev)"
    if importlib.util.find_spec("mpi4py") is None:
        return "no mpi4py (pip install nnfast[mpi])"
    # mpi4py's wheels load the MPI library at run time: it must find one.
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True,
                           text=True, timeout=TIMEOUT)
    if probe.returncode != 0:
        return f"mpi4py cannot load an MPI library: {probe.stderr.strip().splitlines()[-1:]}"
    return None


MISSING = _missing()
needs_mpi = pytest.mark.skipif(MISSING is not None, reason=f"data-parallel tests: {MISSING}")


@pytest.mark.parametrize("ranks", [1, 2, 3, 5])
def test_shards_cover_each_global_batch_in_order(ranks):
    for m in range(0, 4 * ranks + 3):
        bounds = [shard(m, ranks, r) for r in range(ranks)]
        assert [i for lo, hi in bounds for i in range(lo, hi)] == list(range(m))
        assert max(hi - lo for lo, hi in bounds) - min(hi - lo for lo, hi in bounds) <= 1
    assert [shard(ranks * 4, ranks, r) for r in range(ranks)] == [(4 * r, 4 * r + 4)
                                                                   for r in range(ranks)]


def test_batch_checks_count_each_processes_share():
    model = build("batchnorm")
    nnfast.train._check_batch_sizes(model, 2 * 3 * 4 + 6, 4, processes=3)  # last: 2, 2, 2 rows
    with pytest.raises(ValueError, match="gives a batch of 1 on one of 3 processes"):
        nnfast.train._check_batch_sizes(model, 2 * 3 * 4 + 5, 4, processes=3)
    with pytest.raises(ValueError, match="2 training samples for 3 processes"):
        nnfast.train._check_batch_sizes(build("dropout"), 2, 4, processes=3)


@pytest.mark.parametrize("backend", ["numpy", "cpp"])
def test_dropout_draws_each_rows_mask_by_its_global_row(backend):
    """Two halves of a batch, each told its place, give the whole batch's masks and leave the
    counter where the whole batch leaves it."""
    x = np.random.default_rng(0).standard_normal((7, 5))
    with nnfast.backend(backend):
        whole, halves = nnfast.nn.Dropout(0.5, seed=3), nnfast.nn.Dropout(0.5, seed=3)
        whole.offset = halves.offset = 11
        expected = whole(x)
        parts = []
        for lo, hi in ((0, 3), (3, 7)):
            halves.offset, halves.rows = 11, RowWindow(lo, 7)
            parts.append(halves(x[lo:hi]))
    np.testing.assert_array_equal(np.concatenate(parts), expected)
    assert halves.offset == whole.offset == 11 + x.size


def mpirun(ranks: int, program: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", NNFAST_NUM_THREADS="1",
               # CI runs as root, which mpirun refuses without these.
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    command = [MPIRUN, "--oversubscribe", "-np", str(ranks), sys.executable,
               os.path.join(PROGRAMS, program), *args]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    return done, time.perf_counter() - start


@pytest.fixture(scope="module", params=[2, 3], ids=lambda r: f"{r}ranks")
def distributed_run(request, tmp_path_factory):
    if MISSING is not None:
        pytest.skip(f"data-parallel tests: {MISSING}")
    out = tmp_path_factory.mktemp(f"ranks{request.param}")
    done, _ = mpirun(request.param, "data_parallel_checks.py", str(out))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for rank in range(request.param):
        assert f"rank {rank} of {request.param}: all checks passed" in done.stdout
    with np.load(out / "results.npz") as results:
        return request.param, dict(results), done.stdout, sorted(os.listdir(out))


def test_every_rank_checked_identical_weights_before_every_step(distributed_run):
    ranks, results, _, _ = distributed_run
    for backend in BACKENDS:
        for model in MODELS:
            for opt in OPTIMIZERS:
                assert int(results[f"{backend}/{model}/{opt}/checked"]) == STEPS


def test_only_rank_0_prints_and_writes_checkpoints(distributed_run):
    ranks, _, stdout, files = distributed_run
    assert stdout.count("epoch 1/6") == 1
    checkpoints = [f for f in files if f.startswith("ckpt-")]
    assert checkpoints and all(f.endswith("-from-rank-0.npz") for f in checkpoints)


def _single_process(model_name, opt_name, backend, batch):
    nnfast.set_backend(backend)
    try:
        X, y = data(model_name, batch // PER_RANK_BATCH)
        model = build(model_name)
        model.fit(X, y, optimizer=OPTIMIZERS[opt_name](), batch_size=batch, epochs=1, seed=3,
                  verbose=0)
        return model
    finally:
        nnfast.set_backend("cpp")


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_ranks_at_batch_b_match_one_process_at_batch_ranks_times_b(distributed_run, backend,
                                                                  opt_name):
    """With dropout (masks drawn per global row) the result does not depend on the rank count."""
    ranks, results, _, _ = distributed_run
    model = _single_process("dropout", opt_name, backend, ranks * PER_RANK_BATCH)
    assert len(model.history.history["loss"]) == 1
    np.testing.assert_allclose(results[f"{backend}/dropout/{opt_name}"], weights(model),
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(results[f"{backend}/dropout/{opt_name}/loss"],
                               model.history.history["loss"], rtol=RTOL)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weighted_losses_share_the_global_batch_by_their_denominator(distributed_run, backend):
    """Sample weights, and CrossEntropy(weight=), whose mean divides by the batch's sum of
    class weights: each rank's share of the gradient is its share of that sum."""
    ranks, results, _, _ = distributed_run
    nnfast.set_backend(backend)
    try:
        X, y = data("dropout", ranks)
        model = build("dropout")
        model.fit(X, y, loss=weighted_loss(), sample_weight=sample_weight("dropout", ranks),
                  optimizer=OPTIMIZERS["adam"](), batch_size=ranks * PER_RANK_BATCH, epochs=1,
                  seed=3, verbose=0)
    finally:
        nnfast.set_backend("cpp")
    np.testing.assert_allclose(results[f"{backend}/weighted"], weights(model), rtol=RTOL,
                               atol=ATOL)


def _ghost_batch_reference(opt_name, ranks):
    """One process doing what the ranks do with batch norm: each rank's rows normalized by
    their own statistics (as DDP without SyncBatchNorm), the gradients weighted by each
    rank's share and summed, then one update: written with the layers' own calls."""
    X, y = data("batchnorm", ranks)
    model = build("batchnorm")
    opt = OPTIMIZERS[opt_name]()
    opt.bind(model.parameters())
    loss_fn = nnfast.losses.CrossEntropy()
    dropout = next(m for m in model.modules() if isinstance(m, nnfast.nn.Dropout))
    order = nnfast.train.epoch_order(3, 0, len(X))
    for first in range(0, len(X), ranks * PER_RANK_BATCH):
        idx = order[first:first + ranks * PER_RANK_BATCH]
        m, start = len(idx), dropout.offset
        summed = [np.zeros_like(p.data) for p in model.parameters()]
        for rank in range(ranks):
            lo, hi = rank * m // ranks, (rank + 1) * m // ranks
            dropout.offset, dropout.rows = start, RowWindow(lo, m)
            opt.zero_grad()
            loss_fn(model(X[idx[lo:hi]]), y[idx[lo:hi]])
            model.backward(loss_fn.backward(), need_input_grad=False)
            for total, p in zip(summed, model.parameters()):
                total += p.grad * ((hi - lo) / m)
        dropout.rows = None
        for total, p in zip(summed, model.parameters()):
            p.grad[...] = total
        opt.step()
    return model


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_uses_each_ranks_own_statistics(distributed_run, backend, opt_name):
    ranks, results, _, _ = distributed_run
    nnfast.set_backend(backend)
    try:
        model = _ghost_batch_reference(opt_name, ranks)
    finally:
        nnfast.set_backend("cpp")
    np.testing.assert_allclose(results[f"{backend}/batchnorm/{opt_name}"], weights(model),
                               rtol=RTOL, atol=ATOL)
    # ... which is not what one process normalizing the whole global batch computes.
    whole = _single_process("batchnorm", opt_name, backend, ranks * PER_RANK_BATCH)
    assert not np.allclose(results[f"{backend}/batchnorm/{opt_name}"], weights(whole),
                           rtol=1e-6, atol=0)


@needs_mpi
@pytest.mark.parametrize("mode, failing", [
    ("raises_in_step", "a training step failed on rank 1 of 2: ValueError: rank 1 read a corrupt row"),
    ("bad_input", "fit's data checks failed on rank 1 of 2: ValueError: X: contains NaN or inf"),
])
def test_an_error_on_one_rank_reaches_every_rank(mode, failing):
    done, seconds = mpirun(2, "failing_rank.py", mode)
    assert done.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank} caught: {failing}" in done.stdout, done.stdout + done.stderr
    assert seconds < TIMEOUT


@needs_mpi
def test_an_uncaught_error_outside_training_aborts_the_job():
    done, seconds = mpirun(2, "failing_rank.py", "raises_outside_fit")
    assert done.returncode != 0
    assert "rank 1 of 2 failed with RuntimeError: rank 1 gave up before training" in done.stderr
    assert "rank 0 finished" not in done.stdout


@needs_mpi
def test_a_nan_on_one_shard_stops_every_rank_at_the_same_batch():
    done, _ = mpirun(2, "failing_rank.py", "nan_on_one_shard")
    assert done.returncode == 0, done.stdout + done.stderr
    # mpirun forwards both ranks' output into one stream, where lines may run together.
    finished = dict(re.findall(r"rank (\d) finished: (epochs=\d+ loss=\[[^\]]*\] "
                               r"same_weights=(?:True|False))", done.stdout))
    assert finished == {"0": "epochs=1 loss=[nan] same_weights=True",
                        "1": "epochs=1 loss=[nan] same_weights=True"}, done.stdout
