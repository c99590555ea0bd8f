"""How the Numba backend compiles: lazily on the first call, cached on disk where writable.

`kernel` marks a function called from Python: it is compiled for the argument types of its
first call and its machine code is saved, so later processes load it instead of compiling.
`helper` marks a function called only from kernels: it is compiled into them (and cached
with them), never on its own.

The cache goes to the first writable place of: $NUMBA_CACHE_DIR, the package's own
__pycache__, a per-user cache directory (~/.cache/nnfast/numba on Linux). When none is
writable, or Numba's caching internals differ from what this module expects, kernels are
compiled in every process instead: the cache is an optimization and never a reason to fail.
"""
from __future__ import annotations

import glob
import hashlib
import os
import sys

import numba

# Any change to any source file of the backend invalidates every cached kernel: Numba's own
# stamp covers only the file of the kernel, not the helpers it inlines from other files.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_cache_dir() -> str:
    """The per-user cache directory for compiled kernels, by each platform's convention."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
        return os.path.join(base, "nnfast", "Cache", "numba")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Caches", "nnfast", "numba")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nnfast", "numba")


def _package_source_stamp() -> str:
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(_PACKAGE_DIR, "*.py"))):
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read())
    return digest.hexdigest()


def _make_function_cache():
    """A Numba FunctionCache class using the locations above, or None if Numba lacks the API."""
    try:
        from numba.core import caching
    except ImportError:  # pragma: no cover - depends on the Numba version
        return None
    # The locator classes lost their leading underscore in Numba 0.61.
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator",
             "CompileResultCacheImpl", "FunctionCache")
    found = [getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names]
    if any(cls is None for cls in found):  # pragma: no cover - depends on the Numba version
        return None
    user_provided, in_tree, user_wide, cache_impl, function_cache = found
    stamp = _package_source_stamp()

    class PackageStamp:
        def get_source_stamp(self):
            return stamp

    class UserProvided(PackageStamp, user_provided):
        pass

    class InTree(PackageStamp, in_tree):
        pass

    class UserCacheDir(PackageStamp, user_wide):
        def __init__(self, py_func, py_file):
            super().__init__(py_func, py_file)
            self._cache_path = os.path.join(user_cache_dir(), self.get_suitable_cache_subpath(py_file))

    class Impl(cache_impl):
        _locator_classes = [UserProvided, InTree, UserCacheDir]

    class Cache(function_cache):
        _impl_class = Impl

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception:  # an unreadable or corrupt entry: compile instead
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except OSError:  # the location stopped being writable: keep the code, stop caching
                self.disable()

    return Cache


_FunctionCache = _make_function_cache()
_cache_dir: str | None = None


def cache_location() -> str | None:
    """The directory this process's kernels are cached in, None if they are not cached."""
    return _cache_dir


def _enable_cache(dispatcher) -> None:
    global _cache_dir
    if _FunctionCache is None:  # pragma: no cover - depends on the Numba version
        return
    try:
        cache = _FunctionCache(dispatcher.py_func)
    except Exception:  # no writable location (RuntimeError) or changed Numba internals
        return
    dispatcher._cache = cache
    _cache_dir = cache.cache_path


def kernel(*, parallel: bool = False, fastmath=False):
    """A function called from Python: compiled on first call, cached on disk."""
    def decorate(fn):
        dispatcher = numba.njit(nogil=True, parallel=parallel, fastmath=fastmath,
                                error_model="numpy")(fn)
        _enable_cache(dispatcher)
        return dispatcher
    return decorate


def helper(*, fastmath=False, inline: bool = False):
    """A function called only from kernels (compiled into them).

    inline=True inlines it in Numba's own IR, where the reference counting of the arrays
    passed to it disappears: a small helper taking arrays and called in a hot loop
    otherwise pays two atomic operations per array per call.
    """
    def decorate(fn):
        return numba.njit(nogil=True, fastmath=fastmath, error_model="numpy",
                          inline="always" if inline else "never")(fn)
    return decorate
