"""Where this copy of nnfast came from (wheel, source build, editable, checkout), how it was
built, and which OpenMP runtime its extension uses: the lines of nnfast.info() that
answer "which nnfast am I running?"."""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

PACKAGE_DIR = Path(__file__).resolve().parent
# Platform tags of wheels built to run on other machines (auditwheel, delocate, delvewheel).
PORTABLE_TAGS = ("manylinux", "musllinux", "macosx", "win")


def _installed_distribution():
    # The metadata an installer wrote; skips the nnfast.egg-info that building leaves in a checkout.
    return next((dist for dist in metadata.distributions(name="nnfast")
                 if dist.read_text("INSTALLER") is not None), None)


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None


def installation() -> str:
    """How this copy got here: a portable wheel, a wheel built from source on this machine,
    an editable install, or a source checkout that pip does not know about."""
    dist = _installed_distribution()
    direct_url = json.loads((dist and dist.read_text("direct_url.json")) or "null") or {}
    origin = direct_url.get("url", "")
    if direct_url.get("dir_info", {}).get("editable") and _local_path(origin) == PACKAGE_DIR.parent:
        return f"editable install of {PACKAGE_DIR.parent}"
    if dist is None or Path(dist.locate_file("nnfast/__init__.py")).resolve() != PACKAGE_DIR / "__init__.py":
        return f"source checkout {PACKAGE_DIR.parent} (not installed by pip)"
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    tag = ".".join(tags) or "unknown tag"
    portable = any(t.rsplit("-", 1)[-1].startswith(PORTABLE_TAGS) for t in tags)
    kind = "wheel" if portable else "built from source, wheel"
    return f"{kind} {tag}" + (f" from {origin}" if origin else "")


def build() -> str:
    """The build record setup.py wrote, or why there is none."""
    try:
        from . import _build_info as b
    except ImportError:
        return "no build record (the extension was never built here)"
    if b.extension_error:
        return f"compiled extension NOT built: {b.extension_error}"
    isa = ", ".join(f"*{marker}* {flags}" for marker, flags in b.isa_flags.items())
    return (f"{b.build_date} on {b.build_platform}, Python {b.build_python}"
            + (f"; microkernel flags: {isa}" if isa else ""))


def missing_extension_hint() -> str:
    """Why nnfast._core is absent when the build skipped it, with the way to get it."""
    if installation().startswith("source checkout"):
        return (f" (this nnfast is the source checkout {PACKAGE_DIR.parent}, imported because it "
                "is the current directory or on PYTHONPATH: run from another directory to use "
                "the installed package, or build here with `pip install -e .`)")
    try:
        from . import _build_info as b
    except ImportError:
        return ""
    if not b.extension_error:
        return ""
    return (f" (nnfast was installed without its compiled extension: {b.extension_error}; "
            "install a C++17 compiler with OpenMP, then "
            "`pip install --no-cache-dir --force-reinstall --no-binary nnfast nnfast`)")


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def openmp_library(extension_path: str) -> str:
    """The file of the OpenMP runtime the extension calls: dlsym on the extension's own
    handle resolves omp_get_max_threads the way its code does, dladdr names the file."""
    if sys.platform == "win32":
        return "unknown (not reported on Windows)"
    try:
        extension = ctypes.CDLL(extension_path)
        function = ctypes.cast(extension.omp_get_max_threads, ctypes.c_void_p)
        libdl = ctypes.CDLL(ctypes.util.find_library("dl") or None)
        found = _DlInfo()
        if not libdl.dladdr(function, ctypes.byref(found)):
            return "unknown (dladdr failed)"
    except (OSError, AttributeError) as exc:
        return f"unknown ({exc})"
    path = Path(found.dli_fname.decode()).resolve()  # as loaded it may read nnfast/../nnfast.libs
    # auditwheel grafts libraries into site-packages/nnfast.libs, delocate into nnfast/.dylibs.
    bundled = path.parent in (PACKAGE_DIR.parent / "nnfast.libs", PACKAGE_DIR / ".dylibs")
    return f"{path}" + (" (bundled in the wheel)" if bundled else "")
