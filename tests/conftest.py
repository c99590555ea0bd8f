"""Shared fixtures: every test that takes `backend` runs once per available backend."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import settings

# Tests that set a thread count must get it: on a machine busy with other jobs the kernels
# would fall back to one thread for a while (csrc/common/contention.h, which
# test_contention.py and test_cpp_runtime.py test on their own).
os.environ.setdefault("NNFAST_ADAPTIVE_THREADS", "0")

import nnfast  # noqa: E402
from nnfast.backends import numpy_backend as reference  # noqa: E402

# Relative tolerance per dtype for a kernel compared with the NumPy reference computed in
# the same dtype: float32 kernels may reorder sums (blocking, SIMD), float64 barely differ.
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}
DTYPES = (np.float32, np.float64)


CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.dirname(os.path.abspath(nnfast.__file__))
IMPORTED_FROM_CHECKOUT = os.path.dirname(PACKAGE) == CHECKOUT


# CI=true: the same examples on every run (a failure there is reproducible from the log);
# elsewhere fresh ones, so development keeps exploring.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


def pytest_configure(config):
    # `python -m pytest` in the checkout imports ./nnfast, not the installed package; without
    # a compiled _core there the suite would silently test only the fallback backends.
    has_core = any(name.startswith("_core.") for name in os.listdir(PACKAGE))
    cpp_disabled = os.environ.get("NNFAST_DISABLE_CPP", "") not in ("", "0")
    if IMPORTED_FROM_CHECKOUT and not has_core and not cpp_disabled:
        raise pytest.UsageError(
            f"nnfast was imported from the source checkout {PACKAGE}, which has no compiled "
            "nnfast._core, so the compiled backend would go untested. Run the installed package "
            "(`.venv/bin/pytest`, not `python -m pytest` from the checkout), or build in place "
            "(`pip install -e .`), or set NNFAST_DISABLE_CPP=1 to test without it.")


@pytest.fixture(autouse=True, scope="session")
def subprocesses_import_the_tested_nnfast(tmp_path_factory):
    """Tests run from an empty directory: a `python -c` or `python -m nnfast` a test starts puts
    its working directory first on sys.path, and from the checkout would import ./nnfast
    (without the extension) instead of the installed package under test."""
    previous_cwd, previous_path = os.getcwd(), os.environ.get("PYTHONPATH")
    os.chdir(tmp_path_factory.mktemp("cwd"))
    if IMPORTED_FROM_CHECKOUT:  # an in-place build run as `python -m pytest`: keep using it
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [CHECKOUT, previous_path]))
    yield
    os.chdir(previous_cwd)
    if previous_path is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = previous_path


def pytest_report_header(config):
    return [f"nnfast {nnfast.__version__} from {os.path.dirname(nnfast.__file__)}",
            f"install: {nnfast._installation.installation()}",
            f"backends available: {', '.join(nnfast.available_backends())}"]


def fpu_mode():
    """The main thread's floating-point mode (MXCSR control bits), None without _core."""
    try:
        from nnfast import _core
    except ImportError:
        return None
    return _core._fpu_mode()


@pytest.fixture(autouse=True)
def fpu_mode_is_left_as_found(request):
    """The kernels flush denormals only inside their calls (csrc/common/fpu_guard.h); a test
    that leaves FTZ/DAZ or the rounding mode changed would change every later test's numbers."""
    before = fpu_mode()
    yield
    after = fpu_mode()
    if after != before:
        pytest.fail(f"{request.node.nodeid} left the floating-point mode (MXCSR) changed: "
                    f"{before:#06x} before, {after:#06x} after", pytrace=False)


@pytest.fixture(params=nnfast.available_backends())
def backend(request):
    """The backend module, made active for the duration of the test."""
    with nnfast.backend(request.param) as module:
        yield module


@pytest.fixture
def ref():
    return reference


@pytest.fixture
def rng(request):
    # Fresh random inputs every run, but a failure prints the seed to reproduce it.
    seed = int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    sys.stdout.write(f"[rng seed {seed}] ")
    return np.random.default_rng(seed)


def assert_close(actual, expected, dtype, scale=1.0, err_msg=""):
    """Compare with the dtype's tolerance; `scale` widens it for long reductions."""
    dtype = np.dtype(dtype).type
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype] * scale,
                               atol=ATOL[dtype] * scale, err_msg=err_msg)


@pytest.fixture
def cpp_threads():
    """Set the compiled kernels' thread count, restored afterwards. A kernel still runs on one
    thread below its work size (threads_for, csrc/common/threading.h): tests that need teams
    use inputs above it."""
    from nnfast import _core
    was_set, before = _core.num_threads_is_set(), _core.get_num_threads()
    yield _core.set_num_threads
    _core.set_num_threads(before if was_set else 0)
