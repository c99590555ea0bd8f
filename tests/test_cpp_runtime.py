"""The compiled backend under stress: concurrent Python threads, bitwise reproducibility over
thread counts, fork, torch and OpenBLAS in the same process, threadpoolctl, and the strict
argument checks of csrc/bindings/."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import nnfast
from nnfast import backends
from subprocesses import run_python
from threads import run_in_threads

if backends.unavailable_reason("cpp") is not None:
    pytest.skip(f"cpp backend unavailable: {backends.unavailable_reason('cpp')}",
                allow_module_level=True)

from nnfast import _core  # noqa: E402
from nnfast.backends import cpp_backend as cpp  # noqa: E402
from nnfast.backends import numpy_backend as ref  # noqa: E402


# ----------------------------------------------------------------------------- reductions

def reductions(rng, dtype):
    """Every loss forward and bias_grad, on sizes spanning many fixed-size chunks."""
    logits = (5 * rng.standard_normal((3001, 10))).astype(dtype)
    labels = rng.integers(0, 10, 3001)
    onehot = np.eye(10, dtype=dtype)[labels]
    pred = rng.standard_normal((257, 129)).astype(dtype)
    target = rng.uniform(size=pred.shape).astype(dtype)
    prob = rng.uniform(0.01, 0.99, pred.shape).astype(dtype)
    grad = rng.standard_normal((4099, 37)).astype(dtype)
    beta_out = rng.standard_normal(37).astype(dtype)
    weights = rng.standard_normal((784, 129)).astype(dtype)

    def batchnorm():
        running = np.zeros(37, dtype), np.ones(37, dtype)
        out, mean, inv_std = cpp.batchnorm_forward_train(grad, None, None, *running)
        grads = np.zeros(37, dtype), np.zeros(37, dtype)
        dx = cpp.batchnorm_backward(pred[:, :37].repeat(16, 0)[:4099], grad, mean, inv_std,
                                    beta_out, grad_gamma=grads[0], grad_beta=grads[1])
        return [out, mean, inv_std, *running, dx, *grads]

    return lambda: [
        cpp.softmax_cross_entropy_forward(logits, labels)[0],
        cpp.softmax_cross_entropy_forward(logits, onehot)[0],
        cpp.mse_forward(pred, target),
        cpp.bce_forward(prob, target),
        cpp.bce_with_logits_forward(pred, target),
        cpp.bias_grad(grad),
        cpp.bias_grad(grad, beta_out.copy(), beta=0.5),
        cpp.sum_squares(weights),
        cpp.weight_penalty_forward(weights, l1=1e-3, l2=1e-2),
        *cpp.dropout_forward(weights, p=0.3, seed=5, offset=2 ** 64 - 1000),
        *batchnorm(),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reductions_bitwise_identical_on_any_thread_count(cpp_threads, dtype):
    compute = reductions(np.random.default_rng(0), dtype)
    results = {}
    for n in (1, 2, 3, 16):
        cpp_threads(n)
        results[n] = [compute(), compute()]  # and repeated runs
    expected = results[1][0]
    for n, runs in results.items():
        for run in runs:
            for got, want in zip(run, expected):
                assert np.array_equal(got, want), f"{n} threads: {got!r} != {want!r}"


# ----------------------------------------------------------------------------- Python threads

def test_four_python_threads_at_once_get_their_own_correct_results(cpp_threads):
    cpp_threads(2)
    rng = np.random.default_rng(1)
    jobs = []
    for _ in range(4):  # every kernel large enough to open a team
        x = rng.standard_normal((1024, 256)).astype(np.float32)
        w = rng.standard_normal((256, 64)).astype(np.float32)
        labels = rng.integers(0, 64, 1024)
        p = rng.standard_normal(1 << 16).astype(np.float32)
        g = rng.standard_normal(1 << 16).astype(np.float32)
        jobs.append((x, w, labels, p, g))

    def work(x, w, labels, p, g):
        logits = cpp.gemm(x, w)
        loss, probs = cpp.softmax_cross_entropy_forward(logits, labels)
        dlogits = cpp.softmax_cross_entropy_backward(probs, labels)
        db = cpp.bias_grad(dlogits)
        p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
        for step in range(1, 4):
            cpp.adam_update(p, g, m, v, lr=1e-2, step=step)
        return loss, probs, dlogits, db, p

    expected = [work(*job) for job in jobs]
    outcomes = run_in_threads(lambda index: [work(*jobs[index]) for _ in range(20)], 4,
                              timeout=60, what="a kernel call")
    for index in range(4):
        for result in outcomes[index]:
            for got, want in zip(result, expected[index]):
                assert np.array_equal(got, want)
    # and they are right, not just repeatable
    x, w, labels, *_ = jobs[0]
    loss_ref, _ = ref.softmax_cross_entropy_forward(ref.gemm(x, w), labels)
    np.testing.assert_allclose(expected[0][0], loss_ref, rtol=1e-5)


# ----------------------------------------------------------------------------- fork

FORK_CHILD_CHECK = """
    import os, signal, sys, threading
    import numpy as np
    from nnfast import _core
    from nnfast.backends import cpp_backend as cpp

    def forked_child_ok(x, expected):
        pid = os.fork()
        if pid == 0:
            signal.alarm(20)  # a hung child dies on its own
            ok = np.array_equal(cpp.activation_forward("softmax", x), expected)
            print("child threads", _core.get_num_threads(), flush=True)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    x = np.random.default_rng(0).standard_normal((4096, 64))
    _core.set_num_threads(2)  # softmax over x opens a team of 2
"""


def test_fork_after_the_thread_pool_ran_does_not_hang():
    # libgomp cannot restart a forked thread pool: the child must fall back to one thread.
    result = run_python(FORK_CHILD_CHECK + """
    expected = cpp.activation_forward("softmax", x)  # the main thread now owns a team
    assert forked_child_ok(x, expected)
    print("parent threads", _core.get_num_threads())
    """)
    assert result.returncode == 0, result.stderr
    assert "child threads 1" in result.stdout
    assert "parent threads 2" in result.stdout


def test_fork_from_a_python_thread_that_ran_the_pool_does_not_hang():
    result = run_python(FORK_CHILD_CHECK + """
    expected = cpp.activation_forward("softmax", x)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(
        forked_child_ok(x, cpp.activation_forward("softmax", x))))
    worker.start(); worker.join()
    assert outcome == [True]
    """)
    assert result.returncode == 0, result.stderr
    assert "child threads 1" in result.stdout


def test_a_kernel_below_its_work_size_opens_no_team():
    # threads_for: 1024 softmax elements are less than two threads' worth, so the main
    # thread owns no team and its child keeps the threads.
    result = run_python(FORK_CHILD_CHECK + """
    small = x[:16]
    assert forked_child_ok(small, cpp.activation_forward("softmax", small))
    """)
    assert result.returncode == 0, result.stderr
    assert "child threads 2" in result.stdout


def test_fork_before_any_thread_pool_keeps_threads_in_the_child():
    result = run_python(FORK_CHILD_CHECK + """
    expected = np.exp(x - x.max(1, keepdims=True)); expected /= expected.sum(1, keepdims=True)
    pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        y = cpp.activation_forward("softmax", x)   # a fresh pool of 2 threads in the child
        print("child threads", _core.get_num_threads(), flush=True)
        os._exit(0 if np.allclose(y, expected, rtol=1e-12) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    """)
    assert result.returncode == 0, result.stderr
    assert "child threads 2" in result.stdout


# ----------------------------------------------------------------------------- contention

CONTENDED_GEMMS = """
    import os, subprocess, sys, time
    import numpy as np
    os.sched_setaffinity(0, {0})  # two threads and a busy process on one CPU
    busy = subprocess.Popen([sys.executable, "-c",
                             "import os; os.sched_setaffinity(0, {0})\\nwhile True: pass"])
    try:
        from nnfast import _core
        _core.set_num_threads(2)
        a = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
        expected = _core.gemm(a, a)
        # Without the fallback, 300 calls show that none backs off; with it, they go on
        # until one does (usually within a few calls).
        adaptive = os.environ["NNFAST_ADAPTIVE_THREADS"] != "0"
        backed_off, deadline = False, time.perf_counter() + 20
        for _ in range(5000 if adaptive else 300):
            assert np.array_equal(_core.gemm(a, a), expected)  # bitwise, on any team
            backed_off = _core.contention_stats()["backing_off"]
            if backed_off or time.perf_counter() > deadline:
                break
        print(backed_off, _core.contention_stats()["contended_regions"] > 0)
    finally:
        busy.kill()
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
@pytest.mark.parametrize("adaptive", ["1", "0"])
def test_kernels_fall_back_to_one_thread_on_busy_cores_unless_switched_off(adaptive):
    # A team member waiting behind another process makes regions late; after two late
    # regions of four the kernels open no team for a while. NNFAST_ADAPTIVE_THREADS=0 keeps
    # the teams, and the regions are then not even judged.
    result = run_python(CONTENDED_GEMMS, env={**os.environ, "NNFAST_ADAPTIVE_THREADS": adaptive})
    assert result.returncode == 0, result.stderr
    expected = "True True" if adaptive == "1" else "False False"
    assert result.stdout.strip() == expected


# ----------------------------------------------------------------------------- torch, OpenBLAS

TORCH_AND_BLAS_TOGETHER = """
    import os
    import numpy as np
    {first}
    {second}
    from threadpoolctl import threadpool_info
    from nnfast import _core
    from nnfast.backends import cpp_backend as cpp, numpy_backend as ref

    def os_threads():
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Threads:")).split()[1])

    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 784)).astype(np.float32)
    w = rng.standard_normal((784, 128)).astype(np.float32)
    labels = rng.integers(0, 128, 512)
    def step():
        h = cpp.gemm(x, w, activation="relu")
        loss, probs = cpp.softmax_cross_entropy_forward(h, labels)
        blas = x @ w                                # numpy's OpenBLAS pool
        t = torch.relu(torch.from_numpy(x) @ torch.from_numpy(w))  # torch's OpenMP pool
        return h, loss, blas, t.numpy()

    h, loss, blas, t = step()
    np.testing.assert_allclose(h, np.maximum(blas, 0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(t, h, rtol=1e-3, atol=1e-3)
    assert np.isclose(loss, ref.softmax_cross_entropy_forward(h, labels)[0], rtol=1e-5)
    before = os_threads()
    for _ in range(20):
        step()
    after = os_threads()
    gomp = [lib["filepath"] for lib in threadpool_info() if lib["prefix"] == "libgomp"]
    print("threads", before, after, "libgomp", len(gomp), "cpus", os.cpu_count())
"""


@pytest.mark.parametrize("order", ["torch first", "nnfast first"])
def test_torch_and_openblas_in_the_same_process(order):
    pytest.importorskip("torch")
    pytest.importorskip("threadpoolctl")
    imports = ["import torch", "import nnfast"]
    if order == "nnfast first":
        imports.reverse()
    result = run_python(TORCH_AND_BLAS_TOGETHER.format(first=imports[0], second=imports[1]),
                        timeout=120)
    assert result.returncode == 0, result.stderr
    _, before, after, _, gomp, _, cpus = result.stdout.split()
    # A source build links libgomp.so.1, the soname torch's copy has: one OpenMP runtime, one
    # pool. A wheel carries its own libgomp, renamed by auditwheel (as scikit-learn's): two.
    bundled = "bundled in the wheel" in nnfast.info()["openmp_lib"]
    assert int(gomp) == (2 if bundled else 1)
    # Calling kernels does not keep adding threads, and the total stays a few per core:
    # main + OpenBLAS workers + the shared OpenMP workers (+ torch's inter-op helpers).
    assert int(after) == int(before)
    assert int(after) <= 4 * int(cpus) + 4


# ----------------------------------------------------------------------------- threadpoolctl

def test_threadpoolctl_sees_and_limits_nnfast(cpp_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cpp_threads(2)
    info = [lib for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "nnfast"]
    assert len(info) == 1 and info[0]["user_api"] == "openmp" and info[0]["num_threads"] == 2
    with threadpoolctl.threadpool_limits(limits=1):
        assert cpp.get_num_threads() == 1
    assert cpp.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert cpp.get_num_threads() == 2


def test_default_thread_count_follows_omp_num_threads():
    env_result = run_python("from nnfast.backends import cpp_backend as c; print(c.get_num_threads())",
                            env={**os.environ, "OMP_NUM_THREADS": "1", "NNFAST_NUM_THREADS": ""})
    assert env_result.returncode == 0, env_result.stderr
    assert env_result.stdout.strip() == "1"


# ----------------------------------------------------------------------------- argument checks

F32 = np.float32


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def misaligned(shape, dtype=F32):
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = np.zeros(size + 1, np.uint8)
    a = np.frombuffer(buffer.data, dtype=dtype, count=int(np.prod(shape)), offset=1).reshape(shape)
    assert not a.flags.aligned
    return a


X = np.ones((4, 3), F32)


@pytest.mark.parametrize("call,error,match", [
    (lambda: cpp.mse_forward(X.astype(np.int32), X), TypeError, "pred: expected a float32 or float64"),
    (lambda: cpp.mse_forward(X, X.astype(np.float64)), TypeError, r"target: dtype float64 does not match .*float32"),
    (lambda: cpp.mse_forward(X.tolist(), X), TypeError, "pred: expected a numpy.ndarray, got list"),
    (lambda: cpp.mse_forward(X.astype(">f4"), X), TypeError, "pred: expected a float32 or float64"),
    (lambda: cpp.mse_forward(X, X[:3]), ValueError, r"target: expected shape \(4, 3\), got \(3, 3\)"),
    (lambda: cpp.bce_forward(np.ones((3, 4), F32).T, X), ValueError, "prob: array must be C-contiguous"),
    (lambda: cpp.bce_with_logits_forward(misaligned((4, 3)), X), ValueError, "logits: array data is misaligned"),
    (lambda: cpp.mse_backward(X, X, read_only(X)), ValueError, "out: output array is read-only"),
    (lambda: cpp.mse_backward(X, X, np.empty((4, 3), np.float64)), TypeError, "out: dtype float64"),
    (lambda: cpp.activation_forward("softmax", np.ones(5, F32)), ValueError, r"x: expected a 2-D array, got shape \(5,\)"),
    (lambda: cpp.activation_forward("swish", X), ValueError, "unknown activation 'swish'"),
    (lambda: cpp.activation_backward("tanh", X, X, np.ones((4, 2), F32)), ValueError, r"y: expected shape \(4, 3\)"),
    (lambda: cpp.softmax_cross_entropy_forward(X, np.array([0, 1, 2, 1], np.int32)), TypeError, "target: sparse labels must be int64, got dtype int32"),
    (lambda: cpp.softmax_cross_entropy_forward(X, np.array([0, 1, 2, 3])), ValueError, r"target: labels must lie in \[0, 3\), got values in \[0, 3\]"),
    (lambda: cpp.softmax_cross_entropy_backward(X, np.array([0, -1, 2, 1])), ValueError, r"target: labels must lie in \[0, 3\), got values in \[-1, 2\]"),
    (lambda: cpp.softmax_cross_entropy_forward(X, np.array([0, 1, 2])), ValueError, r"target: expected shape \(4,\), got \(3,\)"),
    (lambda: cpp.softmax_cross_entropy_forward(X, np.ones((4, 3), np.float64)), TypeError, "target: dtype float64"),
    (lambda: cpp.softmax_cross_entropy_forward(np.ones((4, 0), F32), np.ones((4, 0), F32)), ValueError, "logits: expected at least one class"),
    (lambda: cpp.bias_grad(X, beta=1.0), ValueError, "out: beta != 0 needs an existing out array"),
    (lambda: cpp.bias_grad(X, np.empty(4, F32)), ValueError, r"out: expected shape \(3,\), got \(4,\)"),
    (lambda: cpp.bias_grad(X, X.reshape(-1)[:3]), ValueError, "out: shares memory with grad_out"),
    (lambda: cpp.sgd_update(read_only(X), X, lr=0.1), ValueError, "param: array is read-only"),
    (lambda: cpp.sgd_update(X.copy(), X, lr=0.1, momentum=0.9), ValueError, "velocity: momentum != 0 needs a velocity buffer"),
    (lambda: cpp.sgd_update(X.copy(), X, read_only(X), lr=0.1, momentum=0.9), ValueError, "velocity: array is read-only"),
    (lambda: cpp.sgd_update(X.copy(), X, lr=0.1, nesterov=True), ValueError, "nesterov: Nesterov momentum needs momentum > 0"),
    (lambda: cpp.adam_update(X.copy(), X, X.copy(), X.copy(), lr=0.1, step=0), ValueError, "step: Adam steps count from 1, got 0"),
    (lambda: cpp.adam_update(X.copy(), X, X.copy(), X.astype(np.float64), lr=0.1, step=1), TypeError, "v: dtype float64"),
    (lambda: cpp.gemm(X, np.ones((3, 2), F32), bias=np.ones(3, F32)), ValueError, r"bias: expected shape \(2,\)"),
    (lambda: cpp.dropout_forward(X, p=1.0, seed=0, offset=0), ValueError, r"p: dropout probability must lie in \[0, 1\), got 1.0"),
    (lambda: cpp.dropout_forward(X, p=float("nan"), seed=0, offset=0), ValueError, r"\[0, 1\), got nan"),
    (lambda: cpp.dropout_forward(X, p=0.5, seed=-1, offset=0), ValueError, r"seed: must lie in \[0, 2\*\*64\), got -1"),
    (lambda: cpp.dropout_forward(X, p=0.5, seed=0, offset=2 ** 64), ValueError, "offset: must lie in"),
    (lambda: cpp.dropout_forward(X, p=0.5, seed=1.5, offset=0), TypeError, "seed: expected an integer, got float"),
    (lambda: cpp.dropout_forward(X, p=0.5, seed=True, offset=0), TypeError, "seed: expected an integer, got bool"),
    (lambda: cpp.dropout_forward(X, None, np.empty((4, 3), bool), p=0.5, seed=0, offset=0), TypeError, "mask: the dropout mask must be uint8, got dtype bool"),
    (lambda: cpp.dropout_backward(X, np.ones((3, 4), np.uint8), p=0.5), ValueError, r"mask: expected shape \(4, 3\)"),
    (lambda: cpp.batchnorm_forward_train(X[:1], None, None, np.zeros(3, F32), np.ones(3, F32)), ValueError, "x: batch norm in training mode needs at least 2 samples"),
    (lambda: cpp.batchnorm_forward_train(X, None, None, read_only(np.zeros(3, F32)), np.ones(3, F32)), ValueError, "running_mean: array is read-only"),
    (lambda: cpp.batchnorm_forward_eval(X, np.ones(4, F32), None, np.zeros(3, F32), np.ones(3, F32)), ValueError, r"gamma: expected shape \(3,\)"),
    (lambda: cpp.batchnorm_backward(X, X, np.zeros(3, F32), np.ones(3, np.float64), None), TypeError, "inv_std: dtype float64"),
    (lambda: cpp.clip_inplace(X.copy(), lo=1.0, hi=-1.0), ValueError, r"lo, hi: need lo <= hi, got lo=1.0, hi=-1.0"),
    (lambda: cpp.scale_inplace(read_only(X), alpha=2.0), ValueError, "x: array is read-only"),
    (lambda: cpp.weight_penalty_forward(X, l1=-1.0, l2=0.0), ValueError, r"l1, l2: penalty coefficients must be >= 0, got l1=-1.0, l2=0.0"),
    (lambda: cpp.weight_penalty_backward(X, read_only(X), l1=0.1, l2=0.1), ValueError, "grad: array is read-only"),
])
def test_bindings_refuse_bad_arguments_with_a_clear_message(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_refused_calls_modify_nothing():
    param, m, v = np.ones(6, F32), np.zeros(6, F32), np.zeros(6, F32)
    with pytest.raises(ValueError):
        cpp.adam_update(param, np.ones(6, F32), m, v, lr=0.1, step=0)
    probs = np.full((2, 3), 7.0, F32)
    with pytest.raises(ValueError):
        cpp.softmax_cross_entropy_forward(np.zeros((2, 3), F32), np.array([0, 5]), probs)
    assert np.all(param == 1) and np.all(m == 0) and np.all(v == 0) and np.all(probs == 7)


def test_partially_overlapping_state_is_refused_but_the_same_array_is_fine():
    buffer = np.zeros(12, F32)
    with pytest.raises(ValueError, match="m: shares memory with param"):
        cpp.adam_update(buffer[:8], np.ones(8, F32), buffer[4:], np.zeros(8, F32), lr=0.1, step=1)
    with pytest.raises(ValueError, match="running_mean: shares memory with running_var"):
        cpp.batchnorm_forward_train(X, None, None, buffer[:3], buffer[2:5])
    assert np.all(buffer == 0)
    x = np.random.default_rng(2).standard_normal((5, 7)).astype(F32)
    expected = ref.activation_forward("softmax", x)
    assert cpp.activation_forward("softmax", x, x) is x  # in place
    np.testing.assert_allclose(x, expected, rtol=1e-6)


def test_gemm_without_bias_matches_numpy():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((33, 17)).astype(F32), rng.standard_normal((17, 9)).astype(F32)
    np.testing.assert_allclose(cpp.gemm(a, b), a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cpp.gemm(a, b, activation="relu"), np.maximum(a @ b, 0),
                               rtol=1e-5, atol=1e-5)
