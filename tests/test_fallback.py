"""The fallback chain cpp -> numba -> numpy: the backend chosen when the compiled extension
(or Numba too) cannot be used, and the one RuntimeWarning that says why."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import nnfast
from nnfast import backends


@pytest.fixture
def registry(monkeypatch):
    """A registry that has loaded nothing yet; the real one is restored afterwards."""
    monkeypatch.delenv("NNFAST_BACKEND", raising=False)
    monkeypatch.delenv("NNFAST_DISABLE_CPP", raising=False)
    monkeypatch.delenv("NNFAST_REQUIRE_EXTENSION", raising=False)
    backends._reset_for_tests()
    yield monkeypatch
    monkeypatch.undo()
    backends._reset_for_tests()


def block_import(monkeypatch, module: str, backend_module: str) -> None:
    """Make `import module` fail as if it were missing, and forget the backend built on it."""
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, backend_module, raising=False)
    parent, _, child = module.rpartition(".")
    if parent in sys.modules:  # `from nnfast import _core` would find the attribute first
        monkeypatch.delattr(sys.modules[parent], child, raising=False)


def choose_default():
    """The default backend's name and the nnfast warnings emitted while choosing it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        name = nnfast.get_backend().name
        assert nnfast.get_backend().name == name  # asking again decides nothing new
    messages = [str(w.message) for w in caught
                if issubclass(w.category, RuntimeWarning) and str(w.message).startswith("nnfast")]
    return name, messages


def test_disabled_cpp_falls_back_to_numba(registry):
    pytest.importorskip("numba")
    registry.setenv("NNFAST_DISABLE_CPP", "1")
    name, messages = choose_default()
    assert name == "numba"
    assert len(messages) == 1, messages
    assert "backend 'cpp' unavailable (disabled by NNFAST_DISABLE_CPP=1)" in messages[0]
    assert "falling back to the 'numba' backend" in messages[0]


def test_failing_extension_import_falls_back_to_numba(registry):
    pytest.importorskip("numba")
    block_import(registry, "nnfast._core", "nnfast.backends.cpp_backend")
    name, messages = choose_default()
    assert name == "numba"
    assert len(messages) == 1, messages
    assert "backend 'cpp' unavailable" in messages[0] and "nnfast._core" in messages[0]
    assert "ImportError" in messages[0] or "ModuleNotFoundError" in messages[0]
    assert "falling back to the 'numba' backend" in messages[0]


def test_missing_numba_too_falls_back_to_numpy_naming_both_reasons(registry):
    block_import(registry, "nnfast._core", "nnfast.backends.cpp_backend")
    block_import(registry, "numba", "nnfast.backends.numba_backend")
    name, messages = choose_default()
    assert name == "numpy"
    assert len(messages) == 1, messages
    message = messages[0]
    assert "backend 'cpp' unavailable" in message and "nnfast._core" in message
    assert "backend 'numba' unavailable" in message and "numba" in message.split("'numba'", 1)[1]
    assert "falling back to the 'numpy' backend" in message
    with pytest.raises(nnfast.BackendUnavailableError, match="numba"):
        nnfast.set_backend("numba")


@pytest.mark.parametrize("requested", [None, "numba"])
def test_required_extension_that_fails_to_import_is_an_error(registry, requested):
    """NNFAST_REQUIRE_EXTENSION=1 at run time, as the README says: no silent fall back, even
    when NNFAST_BACKEND names another backend."""
    registry.setenv("NNFAST_REQUIRE_EXTENSION", "1")
    if requested:
        registry.setenv("NNFAST_BACKEND", requested)
    block_import(registry, "nnfast._core", "nnfast.backends.cpp_backend")
    with pytest.raises(nnfast.BackendUnavailableError,
                       match=r"NNFAST_REQUIRE_EXTENSION=1, but the compiled backend is "
                             r"unavailable \(.*nnfast\._core"):
        nnfast.get_backend()


def test_required_extension_that_loads_is_the_default(registry):
    if backends.unavailable_reason("cpp") is not None:
        pytest.skip("the compiled backend is not built here")
    backends._reset_for_tests()
    registry.setenv("NNFAST_REQUIRE_EXTENSION", "1")
    assert choose_default() == ("cpp", [])


def test_disabling_cpp_explicitly_overrides_the_requirement(registry):
    pytest.importorskip("numba")
    registry.setenv("NNFAST_REQUIRE_EXTENSION", "1")
    registry.setenv("NNFAST_DISABLE_CPP", "1")
    assert choose_default()[0] == "numba"


def test_disabled_cpp_and_missing_numba_falls_back_to_numpy(registry):
    registry.setenv("NNFAST_DISABLE_CPP", "1")
    block_import(registry, "numba", "nnfast.backends.numba_backend")
    name, messages = choose_default()
    assert name == "numpy"
    assert len(messages) == 1, messages
    assert "NNFAST_DISABLE_CPP=1" in messages[0] and "backend 'numba' unavailable" in messages[0]


def test_fallback_in_a_fresh_process_trains():
    """End to end, as a user meets it: one warning on stderr, then a working model."""
    pytest.importorskip("numba")
    code = ("import numpy as np, nnfast; from nnfast import nn\n"
            "model = nn.Sequential(nn.Dense(3, 4, seed=0), nn.ReLU(), nn.Dense(4, 2, seed=1))\n"
            "X = np.random.default_rng(0).standard_normal((16, 3)); y = (X[:, 0] > 0).astype(int)\n"
            "model.fit(X, y, epochs=2, batch_size=8, verbose=0)\n"
            "print(nnfast.get_backend().name)")
    env = {k: v for k, v in os.environ.items() if k != "NNFAST_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**env, "NNFAST_DISABLE_CPP": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numba"
    assert result.stderr.count("RuntimeWarning") == 1, result.stderr
    assert "NNFAST_DISABLE_CPP=1" in result.stderr
