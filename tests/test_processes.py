"""Every backend in the process's life: interpreter exit while a daemon thread is inside a
kernel, fork (and a "fork" Pool) after multi-threaded work, and Python threads training at
once. Each subprocess has a timeout: a hang fails the test instead of blocking CI."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from subprocesses import run_python
from threads import run_in_threads

BACKENDS = nnfast.available_backends()


@pytest.mark.parametrize("name", BACKENDS)
def test_interpreter_exits_cleanly_while_a_daemon_thread_is_in_a_kernel(name):
    # The main thread returns while the daemon thread is in a kernel that released the GIL:
    # the thread must not abort the process when that kernel ends during finalization.
    result = run_python(f"""
    import threading, time
    import numpy as np
    import nnfast
    nnfast.set_backend("{name}")
    backend = nnfast.backends.get_backend("{name}")
    a = np.random.default_rng(0).standard_normal((400, 400)).astype(np.float32)
    model = nnfast.nn.Sequential(nnfast.nn.Dense(400, 64), nnfast.nn.ReLU(), nnfast.nn.Dense(64, 2))
    labels = np.arange(400) % 2

    def train_forever():
        while True:
            backend.gemm(a, a)
            model.fit(a, labels, epochs=1, batch_size=200, verbose=0)

    threading.Thread(target=train_forever, daemon=True).start()
    time.sleep(1.0)
    print("main returns", flush=True)
    """, timeout=60)
    assert "main returns" in result.stdout, result.stderr
    assert result.returncode == 0, result.stderr[-2000:]
    assert "terminate" not in result.stderr


@pytest.mark.parametrize("name", BACKENDS)
def test_fork_and_fork_pool_after_multithreaded_work(name):
    # The parent runs kernels on two threads first (GEMMs and Adam updates above every
    # backend's threading threshold); children forked afterwards must finish with the right
    # results, in a bare os.fork and in a multiprocessing "fork" Pool.
    result = run_python(f"""
    import multiprocessing, os, signal
    import numpy as np
    import nnfast
    nnfast.set_backend("{name}")
    nnfast.set_num_threads(2)
    backend = nnfast.backends.get_backend("{name}")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 512)).astype(np.float32)
    b = rng.standard_normal((512, 256)).astype(np.float32)
    p = rng.standard_normal(1 << 18).astype(np.float32)

    def work(_=None):
        out = backend.gemm(a, b)
        q, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
        backend.adam_update(q, p, m, v, lr=1e-3, step=1)
        return out, q

    expected = work()
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)
        got = work()
        os._exit(0 if all(np.array_equal(x, y) for x, y in zip(got, expected)) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for got in pool.map(work, range(4)):
            assert all(np.array_equal(x, y) for x, y in zip(got, expected))
    print("children agree", flush=True)
    """, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "children agree" in result.stdout


def _train_a_model(seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((256, 20))
    y = rng.integers(0, 3, 256)
    model = nnfast.nn.Sequential(nnfast.nn.Dense(20, 64, seed=seed), nnfast.nn.ReLU(),
                                 nnfast.nn.Dense(64, 3, seed=seed + 1))
    model.fit(X, y, epochs=3, batch_size=32, seed=seed, verbose=0)
    return [p.data.copy() for p in model.parameters()]


def test_four_python_threads_training_at_once_match_serial_training(backend):
    expected = [_train_a_model(seed) for seed in range(4)]
    name = nnfast.backends.active_backend_name()

    def train(seed):
        with nnfast.backend(name):  # the active backend belongs to each thread
            return _train_a_model(seed)

    outcomes = run_in_threads(train, 4, timeout=120, what="a training thread")
    for seed in range(4):
        for got, want in zip(outcomes[seed], expected[seed], strict=True):
            assert np.array_equal(got, want), f"thread {seed} differs from serial training"
