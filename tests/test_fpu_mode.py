"""The conftest fixture that fails a test leaving the floating-point mode changed, and the
kernels' own denormal flushing, which must end with each call."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import nnfast
from conftest import fpu_mode

if fpu_mode() in (None, -1):
    pytest.skip("needs nnfast._core on an SSE machine to read MXCSR", allow_module_level=True)

INNER_TESTS = """
import ctypes, ctypes.util
libm = ctypes.CDLL(ctypes.util.find_library("m"))
FE_DOWNWARD, FE_TONEAREST = 0x400, 0  # x86 <fenv.h>

def test_restores_the_rounding_mode():
    libm.fesetround(FE_DOWNWARD)
    libm.fesetround(FE_TONEAREST)

def test_leaves_the_rounding_mode_changed():
    libm.fesetround(FE_DOWNWARD)
"""


def test_a_test_that_changes_the_fpu_mode_fails(tmp_path):
    if ctypes.util.find_library("m") is None:
        pytest.skip("no libm to change the rounding mode with")
    shutil.copy(os.path.join(os.path.dirname(__file__), "conftest.py"), tmp_path)
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             str(tmp_path)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    # both pass; the second errors at teardown, when the fixture finds the mode changed
    assert "2 passed, 1 error" in result.stdout, result.stdout
    assert "test_leaves_the_rounding_mode_changed left the floating-point mode" in result.stdout


def test_kernels_flush_denormals_only_inside_their_calls(backend):
    before = fpu_mode()
    tiny = np.full((64, 64), 1e-40, np.float32)
    backend.gemm(tiny, tiny)
    backend.activation_forward("tanh", tiny)
    assert fpu_mode() == before


def test_denormals_are_flushed_by_the_compiled_kernels_only(backend):
    # Documented in the README: cpp's FTZ/DAZ makes its results differ from the reference
    # on denormal inputs; numpy and numba keep them.
    tiny = np.full(8, 1e-40, np.float32)
    out = backend.activation_forward("relu", tiny)
    if backend.name == "cpp":
        np.testing.assert_array_equal(out, 0)
    else:
        np.testing.assert_array_equal(out, tiny)
