"""The backend registry: "cpp", "cuda", "numba", "numpy", each a module with the same primitives.

A backend is imported the first time it is asked for. The default is the first of
DEFAULT_ORDER that imports; when the compiled one cannot, nnfast warns once, saying why,
and falls back. NNFAST_BACKEND picks the default explicitly; NNFAST_DISABLE_CPP=1 skips
the compiled backend; NNFAST_REQUIRE_EXTENSION=1 makes a compiled backend that cannot be
loaded an error instead of a fallback.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading

from .._warnings import warn_at_caller

_MODULES = {
    "cpp": "nnfast.backends.cpp_backend",
    "cuda": "nnfast.backends.cuda_backend",
    "numba": "nnfast.backends.numba_backend",
    "numpy": "nnfast.backends.numpy_backend",
}
# "cuda" is never chosen implicitly: it keeps data on a device the user must opt into.
DEFAULT_ORDER = ("cpp", "numba", "numpy")

_loaded: dict = {}
_unavailable: dict[str, str] = {}
_lock = threading.RLock()
_default_name: str | None = None
_active: contextvars.ContextVar = contextvars.ContextVar("nnfast_backend", default=None)
_num_threads: int | None = None


class BackendUnavailableError(RuntimeError):
    """Raised when a named backend exists but cannot be used on this machine."""


def _disabled_reason(name: str) -> str | None:
    if name == "cpp" and _flag("NNFAST_DISABLE_CPP"):
        return "disabled by NNFAST_DISABLE_CPP=1"
    return None


def _load(name: str):
    if name not in _MODULES:
        raise ValueError(f"unknown backend '{name}'; choose one of {sorted(_MODULES)}")
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if name in _unavailable:
            return None
        reason = _disabled_reason(name)
        if reason is None:
            try:
                module = importlib.import_module(_MODULES[name])
            except ImportError as exc:  # a missing extension or dependency, reported as is
                reason = f"{type(exc).__name__}: {exc}"
            else:
                _loaded[name] = module
                if _num_threads is not None and hasattr(module, "set_num_threads"):
                    module.set_num_threads(_num_threads)
                return module
        _unavailable[name] = reason
        return None


def unavailable_reason(name: str) -> str | None:
    """Why backend `name` cannot be used, or None if it loads."""
    return None if _load(name) is not None else _unavailable[name]


def available_backends() -> list[str]:
    """Names of the backends that load on this machine, in order of preference."""
    return [n for n in (*DEFAULT_ORDER, "cuda") if _load(n) is not None]


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


def _require_extension() -> None:
    """NNFAST_REQUIRE_EXTENSION=1, which makes the build fail without the extension, makes
    running without it fail too: raise instead of falling back to Numba (NNFAST_DISABLE_CPP=1,
    an explicit choice, still skips it)."""
    if _flag("NNFAST_REQUIRE_EXTENSION") and _disabled_reason("cpp") is None and _load("cpp") is None:
        raise BackendUnavailableError(
            f"NNFAST_REQUIRE_EXTENSION=1, but the compiled backend is unavailable "
            f"({_unavailable['cpp']}); build it (pip install . with a C++17 compiler) or unset "
            "NNFAST_REQUIRE_EXTENSION to run on Numba")


def _choose_default() -> str:
    _require_extension()
    requested = os.environ.get("NNFAST_BACKEND", "").strip()
    if requested:
        if _load(requested) is None:
            raise BackendUnavailableError(
                f"NNFAST_BACKEND={requested}: backend unavailable ({_unavailable[requested]})")
        return requested
    skipped = []
    for name in DEFAULT_ORDER:
        if _load(name) is not None:
            if skipped:
                why = "; ".join(f"backend '{n}' unavailable ({_unavailable[n]})" for n in skipped)
                warn_at_caller(f"nnfast: {why}; falling back to the '{name}' backend")
            return name
        skipped.append(name)
    raise BackendUnavailableError("no nnfast backend could be loaded")  # numpy always loads


def _default() -> str:
    global _default_name
    with _lock:
        if _default_name is None:
            _default_name = _choose_default()
        return _default_name


def get_backend(name: str | None = None):
    """The backend module `name`, or the active one (context manager, then set_backend, then default)."""
    if name is None:
        name = _active.get() or _default_name or _default()
    # A loaded backend stays loaded: found without the lock (every layer call asks).
    module = _loaded.get(name) or _load(name)
    if module is None:
        raise BackendUnavailableError(f"backend '{name}' is unavailable: {_unavailable[name]}")
    return module


def set_backend(name: str) -> None:
    """Make `name` the process-wide default backend."""
    global _default_name
    get_backend(name)
    with _lock:
        _default_name = name


class backend(contextlib.ContextDecorator):
    """Use backend `name` inside a `with` block (for this thread or task only). A class, not
    a generator: contextlib's generator form cost 4 us a block, as much as a single-sample
    predict inside it."""

    def __init__(self, name: str):
        self.name = name
        self._tokens = []  # one per open block, so that the object can be entered again

    def __enter__(self):
        module = get_backend(self.name)
        self._tokens.append(_active.set(self.name))
        return module

    def __exit__(self, *exc_info):
        _active.reset(self._tokens.pop())


def set_num_threads(n: int) -> None:
    """Threads for every backend's kernels, loaded now or later (NNFAST_NUM_THREADS at start):
    the cpp backend's OpenMP teams, the numba backend's thread pool (for the calling thread,
    as Numba's setting is), and NumPy's BLAS, which the numpy backend's matrix products run
    on (through threadpoolctl: NumPy's own matmul calls in the process follow it too)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    with _lock:
        _num_threads = n
        for module in _loaded.values():
            if hasattr(module, "set_num_threads"):
                module.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the active backend's kernels use."""
    module = get_backend()
    if hasattr(module, "get_num_threads"):
        return module.get_num_threads()
    return _num_threads or 1


def _threads_from_environment() -> None:
    value = os.environ.get("NNFAST_NUM_THREADS", "").strip()
    if not value:
        return
    try:
        set_num_threads(int(value))
    except ValueError:
        warn_at_caller(f"nnfast: ignoring NNFAST_NUM_THREADS={value!r} (not a positive integer)")


def active_backend_name() -> str:
    return get_backend().name


def _reset_for_tests() -> None:
    """Forget every load attempt and the default (tests simulate missing backends)."""
    global _default_name
    with _lock:
        _loaded.clear()
        _unavailable.clear()
        _default_name = None


_threads_from_environment()
