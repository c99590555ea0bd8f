"""Choosing backends: set_backend, the context manager, NNFAST_BACKEND, info()."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import nnfast
from nnfast import backends


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_numpy_reference_always_available():
    assert "numpy" in nnfast.available_backends()
    assert nnfast.get_backend("numpy").name == "numpy"


def test_context_manager_restores_previous_backend():
    before = nnfast.get_backend().name
    with nnfast.backend("numpy") as module:
        assert module.name == "numpy"
        assert nnfast.get_backend().name == "numpy"
    assert nnfast.get_backend().name == before


def test_context_manager_is_per_thread():
    seen = {}

    def worker():
        seen["other"] = nnfast.get_backend().name

    default = nnfast.get_backend().name
    with nnfast.backend("numpy"):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
    assert seen["other"] == default


def test_set_backend_changes_default():
    before = nnfast.get_backend().name
    try:
        nnfast.set_backend("numpy")
        assert nnfast.get_backend().name == "numpy"
    finally:
        nnfast.set_backend(before)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        nnfast.set_backend("tpu")


def test_unavailable_backend_says_why():
    reason = backends.unavailable_reason("cuda")
    if reason is None:
        pytest.skip("the cuda backend is available here")
    with pytest.raises(nnfast.BackendUnavailableError, match="cuda"):
        nnfast.set_backend("cuda")


def test_environment_variable_selects_backend():
    result = run_python("import nnfast; print(nnfast.get_backend().name)", NNFAST_BACKEND="numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


def test_environment_variable_with_unavailable_backend_fails_clearly():
    result = run_python("import nnfast; nnfast.get_backend()", NNFAST_BACKEND="bogus")
    assert result.returncode != 0
    assert "unknown backend 'bogus'" in result.stderr


def test_info_reports_the_installation():
    info = nnfast.info()
    assert info["nnfast"] == nnfast.__version__
    assert info["backend"] == nnfast.get_backend().name
    assert info["backends"]["numpy"] == "available"
    assert info["threads"] >= 1
    text = str(info)
    assert "backend" in text and "numpy" in text


def test_set_num_threads_validates_and_applies():
    with pytest.raises(ValueError, match="positive integer"):
        nnfast.set_num_threads(0)
    result = run_python("import nnfast; nnfast.set_num_threads(1); print(nnfast.get_num_threads())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    result = run_python("import nnfast; print(nnfast.get_num_threads())", NNFAST_NUM_THREADS="1")
    assert result.stdout.strip() == "1", result.stderr


def test_set_num_threads_covers_the_numpy_backends_blas():
    """set_num_threads says "every backend's kernels": the numpy backend's are NumPy's BLAS."""
    pytest.importorskip("threadpoolctl")
    code = ("import numpy, nnfast; from threadpoolctl import threadpool_info\n"
            "nnfast.set_num_threads(1)\n"
            "with nnfast.backend('numpy'): threads = nnfast.get_num_threads()\n"
            "print([lib['num_threads'] for lib in threadpool_info() if lib['user_api'] == 'blas'], threads)")
    result = run_python(code, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    assert result.returncode == 0, result.stderr
    blas, threads = result.stdout.rsplit(" ", 1)
    assert set(ast.literal_eval(blas)) == {1} and threads.strip() == "1", result.stdout


def test_info_command_line():
    result = subprocess.run([sys.executable, "-m", "nnfast", "info"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "backend" in result.stdout


def test_import_compiles_nothing_and_is_quick():
    result = run_python("import time; t = time.perf_counter(); import nnfast; "
                        "print(time.perf_counter() - t); import sys; print('numba' in sys.modules)")
    assert result.returncode == 0, result.stderr
    seconds, numba_loaded = result.stdout.split()
    assert numba_loaded == "False" or nnfast.get_backend().name == "numba"


def test_models_run_on_any_backend_and_agree(rng):
    x = rng.standard_normal((5, 4))
    model = nnfast.nn.Sequential(nnfast.nn.Dense(4, 3, seed=0, dtype=np.float64), nnfast.nn.Tanh())
    outputs = {}
    for name in nnfast.available_backends():
        with nnfast.backend(name):
            outputs[name] = model(x)
    for name, out in outputs.items():
        np.testing.assert_allclose(out, outputs["numpy"], rtol=1e-12, err_msg=name)
