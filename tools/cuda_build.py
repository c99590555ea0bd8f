"""The optional CUDA extension nnfast._cuda, for setup.py.

Built when NNFAST_CUDA=1 (a failure then stops the build), or when nvcc is found and
NNFAST_CUDA is not 0 (a failure then warns and the CPU package builds without it).
NNFAST_CUDA_ARCHS overrides the GPU architectures ("75;80;90": machine code for each,
plus PTX of the last, which newer GPUs compile when they load it).

csrc/cuda/*.cu go through nvcc into objects; the extension itself is only the bindings
(plain C++ with the CPU module's header-only argument checks, csrc/bindings/checks.h,
compiled by setuptools) linked with those objects and the static CUDA runtime, so the
installed module needs a CUDA driver but no libcudart.so.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import Extension

EXTENSION_NAME = "nnfast._cuda"
# CUDA 13 builds for Turing (sm_75) and newer only.
DEFAULT_ARCHS = ("75", "80", "90")
NVCC_FLAGS = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden"]


def find_nvcc() -> str | None:
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    candidates = [os.environ.get("NVCC"), shutil.which("nvcc"),
                  cuda_home and os.path.join(cuda_home, "bin", "nvcc"), "/usr/local/cuda/bin/nvcc"]
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def required() -> bool:
    """NNFAST_CUDA=1: the user asked for the CUDA extension, so failing to build it is an error."""
    return os.environ.get("NNFAST_CUDA", "").strip() == "1"


def wanted() -> bool:
    flag = os.environ.get("NNFAST_CUDA", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    return sys.platform.startswith("linux") and find_nvcc() is not None


def gencode_flags() -> list[str]:
    archs = [a for a in re.split(r"[;, ]+", os.environ.get("NNFAST_CUDA_ARCHS", "")) if a]
    archs = archs or list(DEFAULT_ARCHS)
    flags = []
    for arch in archs:
        flags += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    return flags + ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


def cuda_library_dir(nvcc: str) -> str:
    """The directory of libcudart_static.a, as nvcc itself reports it (works through wrappers)."""
    dry = subprocess.run([nvcc, "--dryrun", "-c", "probe.cu"], capture_output=True, text=True)
    for line in (dry.stdout + dry.stderr).splitlines():
        if "LIBRARIES=" in line:
            for path in re.findall(r'-L"?([^"\s]+)', line):
                if not path.rstrip("/").endswith("stubs") and os.path.isfile(
                        os.path.join(path, "libcudart_static.a")):
                    return path
    raise RuntimeError(f"{nvcc} does not report a directory holding libcudart_static.a")


def extensions(root: Path) -> list[Extension]:
    """[the nnfast._cuda Extension] when it should be built, else []."""
    if not wanted():
        return []
    headers = [str(p.relative_to(root)) for p in sorted((root / "csrc").rglob("*.h"))]
    cuda_files = [str(p.relative_to(root)) for p in sorted((root / "csrc" / "cuda").glob("*.cu*"))]
    # optional: setuptools then tolerates its absence when copying built modules in place.
    return [Extension(EXTENSION_NAME, sources=["csrc/cuda/cuda_bindings.cpp"],
                      include_dirs=[str(root / "csrc")], depends=headers + cuda_files,
                      language="c++", optional=not required())]


def _pybind11_include() -> str:
    import pybind11
    return pybind11.get_include()


def _compile(nvcc: str, source: str, obj: str, include: str) -> None:
    os.makedirs(os.path.dirname(obj), exist_ok=True)
    command = [nvcc, "-c", source, "-o", obj, "-I", include, *NVCC_FLAGS, *gencode_flags()]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"nvcc failed on {source}:\n{' '.join(command)}\n{result.stderr[-4000:]}")


def _up_to_date(cmd, ext) -> bool:
    target = Path(cmd.get_ext_fullpath(ext.name))
    if cmd.force or not target.exists():
        return False
    newest = max(os.path.getmtime(p) for p in [*ext.sources, *ext.depends])
    return newest <= target.stat().st_mtime


def build(cmd, ext, build_extension) -> None:
    """Compile the .cu files with nvcc, then let setuptools build and link the bindings.

    cmd: the build_ext command; build_extension: its base-class method for one extension.
    """
    if _up_to_date(cmd, ext):
        return
    try:
        nvcc = find_nvcc()
        if nvcc is None:
            raise RuntimeError("NNFAST_CUDA=1 but nvcc was not found (set NVCC or CUDA_HOME)")
        root = Path(ext.include_dirs[0]).parent
        sources = sorted(str(p) for p in (root / "csrc" / "cuda").glob("*.cu"))
        objects = [os.path.join(cmd.build_temp, "cuda", Path(s).stem + ".o") for s in sources]
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(_compile, [nvcc] * len(sources), sources, objects,
                          [str(root / "csrc")] * len(sources)))
        ext.extra_objects = objects
        ext.include_dirs = [*ext.include_dirs, _pybind11_include()]
        ext.extra_compile_args = ["-O2", "-g0", "-std=c++17", "-fvisibility=hidden", "-Wall"]
        ext.library_dirs = [cuda_library_dir(nvcc)]
        ext.libraries = ["cudart_static", "dl", "rt", "pthread"]
        # Keep the static runtime's symbols out of the module's dynamic symbol table.
        ext.extra_link_args = ["-Wl,--exclude-libs,ALL"]
        build_extension(ext)
    except Exception as exc:  # any failure: the CPU package must still build
        if required():
            raise
        cmd.warn(f"nnfast: skipping the optional CUDA extension {EXTENSION_NAME}: {exc}")
