"""Build the compiled kernels as the extension module ``nnfast._core``, and the optional
``nnfast._cuda`` from csrc/cuda where nvcc is found (tools/cuda_build.py says when).

Every C++ source under csrc/ (except csrc/cuda) goes into one extension. Sources named
``*_avx2_*`` or ``*_avx512_*`` are microkernels: only they get ISA flags, and the
library picks among them at run time with cpuid, so the binary runs on any x86-64.
Nothing here uses -march=native.
"""
import os
import platform
import sys
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
sys.path.insert(0, str((ROOT / "tools").resolve()))
import cuda_build  # noqa: E402  the optional nnfast._cuda extension
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")

# Per-file ISA flags, keyed by a marker in the file name (gcc/clang spelling).
ISA_FLAGS = {
    "_avx2_": ["-mavx2", "-mfma"],
    "_avx512_": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mfma"],
}


def cpu_sources():
    sources = []
    for path in sorted((ROOT / "csrc").rglob("*.cpp")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "cuda":
            continue
        if not IS_X86 and any(marker in path.name for marker in ISA_FLAGS):
            continue
        sources.append(str(rel))
    return sources


def openmp_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        omp_compile, omp_link = openmp_flags(ctype)
        if ctype == "msvc":
            common = ["/O2", "/std:c++17"]
        else:
            common = ["-O3", "-std=c++17", "-fvisibility=hidden", "-fno-math-errno", "-fno-trapping-math",
                      "-Wall"]
        for ext in self.extensions:
            ext.extra_compile_args = common + omp_compile
            ext.extra_link_args = omp_link
            ext.define_macros.append(("NNFAST_CXXFLAGS", '"%s"' % " ".join(common + omp_compile)))
        if ctype != "msvc":
            self._add_per_file_isa_flags()
        super().build_extensions()

    def _add_per_file_isa_flags(self):
        original_compile = self.compiler._compile

        def compile_with_isa(obj, src, ext, cc_args, extra_postargs, pp_opts):
            extra = list(extra_postargs)
            for marker, flags in ISA_FLAGS.items():
                if marker in os.path.basename(src):
                    extra += flags
            return original_compile(obj, src, ext, cc_args, extra, pp_opts)

        self.compiler._compile = compile_with_isa

    def build_extension(self, ext):
        if ext.name == cuda_build.EXTENSION_NAME:
            cuda_build.build(self, ext, super().build_extension)
        else:
            super().build_extension(ext)


ext_modules = [
    Pybind11Extension(
        "nnfast._core",
        sources=cpu_sources(),
        include_dirs=[str(ROOT / "csrc")],
        cxx_std=17,
    )
] + cuda_build.extensions(ROOT)

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
