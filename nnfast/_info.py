"""nnfast.info(): what this installation is and what it runs on."""
from __future__ import annotations

import os
import platform
import sys

import numpy as np

from . import _installation, backends
from ._version import __version__


class Info(dict):
    """A dict whose printed form is a readable report."""

    def __str__(self):
        lines = []
        for key, value in self.items():
            if isinstance(value, dict):
                lines.append(f"{key}:")
                lines.extend(f"  {k:<10} {v}" for k, v in value.items())
            else:
                lines.append(f"{key:<12} {value}")
        return "\n".join(lines)

    __repr__ = __str__


def info() -> Info:
    """Version, where this copy came from (wheel, source build, editable, checkout) and how it
    was built, active backend, every backend's status (and why one is missing), threads,
    compiler flags, the OpenMP runtime and the GEMM microkernel chosen for this CPU."""
    result = Info()
    result["nnfast"] = __version__
    result["python"] = f"{platform.python_version()} ({sys.platform}, {platform.machine()})"
    result["numpy"] = np.__version__
    result["install"] = _installation.installation()
    result["build"] = _installation.build()
    result["backend"] = backends.active_backend_name()
    result["backends"] = {name: "available" if (why := backends.unavailable_reason(name)) is None
                          else f"unavailable: {why}"
                          for name in (*backends.DEFAULT_ORDER, "cuda")}
    result["threads"] = backends.get_num_threads()
    result["cpu_count"] = os.cpu_count()
    if backends.unavailable_reason("cpp") is None:
        from . import _core
        result["gemm_isa"] = _core.gemm_isa()
        result["compiler"] = getattr(_core, "compiler", "unknown")
        result["cxxflags"] = getattr(_core, "compile_flags", "unknown")
        result["openmp"] = _core.openmp
        result["openmp_lib"] = _installation.openmp_library(_core.__file__)
    if backends.unavailable_reason("cuda") is None:
        result["cuda_device"] = backends.get_backend("cuda").device_name
    return result
