"""What the shared suite does not reach in the Numba backend: its multi-threaded paths,
results independent of the thread count, thread settings, lazy compilation and warmup."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nnfast
from conftest import DTYPES, assert_close
from nnfast.backends import numpy_backend as ref

numba = pytest.importorskip("numba")
nb = nnfast.get_backend("numba")
from nnfast.backends.numba_backend import _optim  # noqa: E402

UPDATE_SHAPE = (_optim.PARALLEL_MIN_ELEMENTS // 200 + 1, 200)  # takes the threaded Adam
KERNEL_MODULES = ("_activations", "_batchnorm", "_dropout", "_gemm", "_losses", "_norms", "_optim",
                  "_reductions")


def kernels():
    import importlib
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"nnfast.backends.numba_backend.{name}")
        for value in vars(module).values():
            if isinstance(value, numba.core.registry.CPUDispatcher):
                yield value


@pytest.fixture
def threads():
    """Set Numba's thread count inside a test; restored afterwards."""
    before = nb.get_num_threads()
    yield nb.set_num_threads
    nb.set_num_threads(before)


def max_threads():
    return numba.config.NUMBA_NUM_THREADS


# ----------------------------------------------------------------------------- threaded paths
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoupled", [False, True])
def test_threaded_adam_matches_reference(rng, dtype, decoupled):
    p, g = (rng.standard_normal(UPDATE_SHAPE).astype(dtype) for _ in range(2))
    m, v = np.zeros_like(p), np.zeros_like(p)
    p_ref, m_ref, v_ref = p.copy(), m.copy(), v.copy()
    for step in (1, 2):
        kwargs = dict(lr=1e-2, weight_decay=1e-2, step=step, decoupled=decoupled)
        nb.adam_update(p, g, m, v, **kwargs)
        ref.adam_update(p_ref, g, m_ref, v_ref, **kwargs)
    assert_close(p, p_ref, dtype, scale=16)
    assert_close(v, v_ref, dtype, scale=4)


def test_results_do_not_depend_on_the_thread_count(rng, threads):
    """Threaded kernels split work without changing any element's arithmetic, and every
    reduction runs in fixed chunks: 1 thread and all threads agree bitwise."""
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((300, 150)).astype(np.float32)
    g = rng.standard_normal(UPDATE_SHAPE).astype(np.float32)
    results = []
    for n in (1, max_threads()):
        threads(n)
        p, m, v = g.copy(), np.zeros_like(g), np.zeros_like(g)
        nb.adam_update(p, g[::-1].copy(), m, v, lr=1e-3, step=1)
        results.append((nb.gemm(a, b, trans_a=True, bias=b[0, :150], activation="gelu"),
                        nb.bias_grad(g), p, nb.mse_forward(g, g[::-1].copy())))
    for one, many in zip(*results):
        np.testing.assert_array_equal(one, many)


def test_training_is_bitwise_repeatable_across_thread_counts(threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 40)).astype(np.float32)
    y = (X[:, :10].argmax(axis=1)).astype(np.int64)
    weights = []
    for n in (1, max_threads()):
        threads(n)
        model = nnfast.nn.Sequential(nnfast.nn.Dense(40, 300, seed=1), nnfast.nn.ReLU(),
                                     nnfast.nn.Dense(300, 10, seed=2))
        with nnfast.backend("numba"):
            model.fit(X, y, epochs=2, batch_size=256, seed=3, verbose=0)
        weights.append([p.data.copy() for p in model.parameters()])
    for one, many in zip(*weights):
        np.testing.assert_array_equal(one, many)


def test_thread_settings_map_to_numba(threads):
    threads(10 ** 6)
    assert nb.get_num_threads() == max_threads()  # bounded by Numba's pool (NUMBA_NUM_THREADS)
    nnfast.set_num_threads(1)
    try:
        assert nb.get_num_threads() == numba.get_num_threads() == 1
    finally:
        nnfast.set_num_threads(max_threads())


# ----------------------------------------------------------------------------- GEMM specifics
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_output_may_alias_an_input(rng, trans_a):
    a = rng.standard_normal((37, 37))
    b = rng.standard_normal((37, 37))
    expected = ref.gemm(a, b, a.copy(), trans_a=trans_a, beta=0.5, activation="tanh")
    assert nb.gemm(a, b, a, trans_a=trans_a, beta=0.5, activation="tanh") is a
    assert_close(a, expected, np.float64, scale=64)


def test_gemm_accepts_read_only_inputs(rng):
    a = rng.standard_normal((9, 5)).astype(np.float32)
    b = rng.standard_normal((5, 70)).astype(np.float32)
    a.flags.writeable = False
    b.flags.writeable = False
    np.testing.assert_allclose(nb.gemm(a, b, activation="relu"), ref.gemm(a, b, activation="relu"),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 0, 3), (4, 5, 0)])
def test_gemm_empty_dimensions(shape):
    m, n, k = shape
    a, b, bias = np.ones((m, k)), np.ones((k, n)), np.arange(n, dtype=np.float64)
    out = np.full((m, n), 2.0)
    expected = ref.gemm(a, b, out.copy(), beta=0.5, bias=bias)
    np.testing.assert_array_equal(nb.gemm(a, b, out, beta=0.5, bias=bias), expected)


# ----------------------------------------------------------------------------- compilation
def test_importing_the_backend_compiles_nothing():
    code = ("from nnfast.backends import numba_backend as nb\n"
            "from numba.core.registry import CPUDispatcher\n"
            "import importlib\n"
            f"mods = [importlib.import_module('nnfast.backends.numba_backend.' + m) for m in {KERNEL_MODULES}]\n"
            "print(sum(len(v.signatures) for m in mods for v in vars(m).values()"
            " if isinstance(v, CPUDispatcher)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_warmup_compiles_everything_training_needs():
    nnfast.warmup("numba")
    compiled = sum(len(k.signatures) for k in kernels())
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        X = rng.standard_normal((300, 20)).astype(dtype)
        for loss, y in (("cross_entropy", rng.integers(0, 3, 300)), ("mse", rng.random((300, 3))),
                        ("bce_with_logits", rng.integers(0, 2, (300, 3)))):
            model = nnfast.nn.Sequential(nnfast.nn.Dense(20, 16, dtype=dtype), nnfast.nn.GELU(),
                                         nnfast.nn.Dense(16, 3, dtype=dtype))
            with nnfast.backend("numba"):
                model.fit(X, y, loss=loss, optimizer=nnfast.optim.SGD(lr=0.01, momentum=0.9),
                          epochs=1, batch_size=64, verbose=0)
                model.fit(X, y, loss=loss, optimizer="adam", epochs=1, batch_size=300, verbose=0)
    assert sum(len(k.signatures) for k in kernels()) == compiled


def test_contention_backoff_runs_on_one_thread_for_a_while(monkeypatch):
    from nnfast.backends.numba_backend import _contention
    monkeypatch.setattr(_contention, "ADAPTIVE", True)  # conftest switches it off
    backoff = _contention.ThreadBackoff()
    clock = [100.0]
    monkeypatch.setattr(_contention.time, "perf_counter", lambda: clock[0])
    backoff.report("shape", 0.002)
    backoff.report("shape", 0.003)  # within twice the fastest: no contention
    assert backoff.threaded() and backoff.contended == 0
    backoff.report("shape", 0.010)  # a worker was descheduled, once: could be chance
    assert backoff.threaded() and backoff.contended == 1
    backoff.report("shape", 0.010)  # two of the last four calls
    assert not backoff.threaded() and backoff.contended == 2
    clock[0] += _contention.FIRST_BACKOFF_SECONDS
    assert backoff.threaded()
    backoff.report("shape", 0.010)  # again: twice as long on one thread
    clock[0] += 1.5 * _contention.FIRST_BACKOFF_SECONDS
    assert not backoff.threaded()
    clock[0] += _contention.FIRST_BACKOFF_SECONDS
    assert backoff.threaded()
    for _ in range(4):  # four calls on time: the next back-off is short again
        backoff.report("shape", 0.002)
    assert backoff.backoff == _contention.FIRST_BACKOFF_SECONDS
    backoff.report("other shape", 0.010)  # a first sighting only sets the shape's baseline
    assert backoff.threaded() and backoff.contended == 3


def test_contention_backoff_switched_off(monkeypatch):
    from nnfast.backends.numba_backend import _contention
    monkeypatch.setattr(_contention, "ADAPTIVE", False)
    backoff = _contention.ThreadBackoff()
    for seconds in (0.002, 0.010, 0.010, 0.010):
        backoff.report("shape", seconds)
    assert backoff.threaded() and backoff.contended == 0
    backoff.single_until = float("inf")
    assert backoff.threaded()


def test_gemm_backs_off_to_one_thread_with_the_same_result(rng, monkeypatch):
    from nnfast.backends.numba_backend import _contention
    a = rng.standard_normal((200, 300)).astype(np.float32)
    b = rng.standard_normal((300, 150)).astype(np.float32)
    threaded = nb.gemm(a, b)
    monkeypatch.setattr(_contention, "ADAPTIVE", True)
    monkeypatch.setattr(_contention.gemm, "single_until", float("inf"))
    assert nb.contention_stats()["backing_off"]
    np.testing.assert_array_equal(nb.gemm(a, b), threaded)
