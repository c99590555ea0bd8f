"""Build the compiled kernels as the extension module ``nnfast._core``, and the optional
``nnfast._cuda`` from csrc/cuda where nvcc is found (tools/cuda_build.py says when).

Every C++ source under csrc/ (except csrc/cuda and csrc/testing) goes into one extension.
csrc/testing builds nnfast._contention_tests, which the tests use instead of hooks in
nnfast._core; NNFAST_TEST_HOOKS=1 adds the benchmark hooks to nnfast._core itself
(benchmarks/measure_omp_threshold.py needs them). Sources named
``*_avx2_*`` or ``*_avx512_*`` are microkernels: only they get ISA flags, and the
library picks among them at run time with cpuid, so the binary runs on any x86-64.
Nothing here tunes for the build host (no -march for the host CPU).

Without a working C++ compiler the build warns and installs nnfast without its
extension (the Numba backend takes over); NNFAST_REQUIRE_EXTENSION=1 makes that an
error instead, as release builds want. Every build writes nnfast/_build_info.py next
to the extension, which nnfast.info() reports.
"""
import datetime
import os
import platform
import sys
import sysconfig
from pathlib import Path

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError

ROOT = Path(__file__).parent
sys.path.insert(0, str((ROOT / "tools").resolve()))
import cuda_build  # noqa: E402  the optional nnfast._cuda extension
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")

# Per-file ISA flags, keyed by a marker in the file name, for gcc/clang and for MSVC.
ISA_FLAGS = {
    "_avx2_": {"unix": ["-mavx2", "-mfma"], "msvc": ["/arch:AVX2"]},
    "_avx512_": {"unix": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mfma"],
                 "msvc": ["/arch:AVX512"]},
}
# Where Homebrew puts libomp (Apple clang ships no OpenMP runtime); LIBOMP_PREFIX overrides.
LIBOMP_PREFIXES = ("/opt/homebrew/opt/libomp", "/usr/local/opt/libomp")


def cpu_sources():
    sources = []
    for path in sorted((ROOT / "csrc").rglob("*.cpp")):
        rel = path.relative_to(ROOT)
        if rel.parts[1] in ("cuda", "testing"):
            continue
        if not IS_X86 and any(marker in path.name for marker in ISA_FLAGS):
            continue
        sources.append(str(rel))
    return sources


def cpu_headers():
    """The headers the sources include: setuptools compares only sources with the built
    module, so without these an edited header would leave a stale build."""
    return [str(path.relative_to(ROOT)) for path in sorted((ROOT / "csrc").rglob("*.h"))
            if path.relative_to(ROOT).parts[1] != "cuda"]


def isa_flags(source, family):
    return [flag for marker, flags in ISA_FLAGS.items()
            if marker in os.path.basename(source) for flag in flags[family]]


def libomp_prefix():
    candidates = [os.environ["LIBOMP_PREFIX"]] if os.environ.get("LIBOMP_PREFIX") else LIBOMP_PREFIXES
    for prefix in candidates:
        if (Path(prefix) / "include" / "omp.h").is_file():
            return prefix
    raise PlatformError("OpenMP runtime libomp not found in " + ", ".join(candidates) +
                        ": run `brew install libomp` or set LIBOMP_PREFIX")


def openmp_flags(compiler_type):
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        prefix = libomp_prefix()
        return (["-Xpreprocessor", "-fopenmp", f"-I{prefix}/include"],
                [f"-L{prefix}/lib", "-lomp"])
    return ["-fopenmp"], ["-fopenmp"]


def test_hooks_requested():
    return os.environ.get("NNFAST_TEST_HOOKS", "") not in ("", "0")


def extension_required():
    return os.environ.get("NNFAST_REQUIRE_EXTENSION", "") not in ("", "0")


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        self.family = "msvc" if ctype == "msvc" else "unix"
        try:
            omp_compile, omp_link = openmp_flags(ctype)
            if ctype == "msvc":
                common = ["/O2", "/std:c++17"]
            else:
                common = ["-O3", "-std=c++17", "-fvisibility=hidden", "-fno-math-errno",
                          "-fno-trapping-math", "-Wall"]
            for ext in self.extensions:
                ext.extra_compile_args = common + omp_compile
                ext.extra_link_args = omp_link
                ext.define_macros.append(("NNFAST_CXXFLAGS", '"%s"' % " ".join(common + omp_compile)))
            self._add_per_file_isa_flags()
            super().build_extensions()
        except (CCompilerError, ExecError, PlatformError) as exc:
            if extension_required():
                raise
            self._skip_extensions(exc)
        else:
            self._write_build_info(error=None)

    def _add_per_file_isa_flags(self):
        family = self.family
        if family == "unix":
            # The unix compiler compiles one file per _compile call (also under ParallelCompile).
            original_compile = self.compiler._compile

            def compile_with_isa(obj, src, ext, cc_args, extra_postargs, pp_opts):
                extra = list(extra_postargs) + isa_flags(src, family)
                return original_compile(obj, src, ext, cc_args, extra, pp_opts)

            self.compiler._compile = compile_with_isa
            return
        # MSVC compiles every source in one compile() call: split it into one call per flag set.
        original_batch = self.compiler.compile

        def compile_by_isa(sources, *args, extra_postargs=None, **kwargs):
            groups = {}
            for src in sources:
                groups.setdefault(tuple(isa_flags(src, family)), []).append(src)
            objects = []
            for flags, group in groups.items():
                objects += original_batch(group, *args,
                                          extra_postargs=list(extra_postargs or []) + list(flags),
                                          **kwargs)
            return objects

        self.compiler.compile = compile_by_isa

    def build_extension(self, ext):
        if ext.name == cuda_build.EXTENSION_NAME:
            cuda_build.build(self, ext, super().build_extension)
        else:
            super().build_extension(ext)

    def _skip_extensions(self, exc):
        for ext in self.extensions:  # never ship a stale extension from an earlier build
            Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            ext.optional = True  # and --inplace has none to copy
        bar = "!" * 78
        sys.stderr.write(
            f"\n{bar}\nnnfast: building the compiled extension nnfast._core failed:\n  {exc}\n"
            "nnfast installs WITHOUT it and uses the (slower) Numba backend instead.\n"
            "To get the compiled backend, install a C++17 compiler with OpenMP and reinstall:\n"
            "  pip install --no-cache-dir --force-reinstall --no-binary nnfast nnfast\n"
            f"To make this an error instead, set NNFAST_REQUIRE_EXTENSION=1.\n{bar}\n\n")
        reason = f"{type(exc).__name__}: {exc}"  # nnfast.info() shows it: keep it to a line
        self._write_build_info(error=reason if len(reason) <= 200 else reason[:197] + "...")

    def copy_extensions_to_source(self):
        # --inplace and editable installs copy the extension into the source tree: the record too.
        super().copy_extensions_to_source()
        package_dir = self.get_finalized_command("build_py").get_package_dir("nnfast")
        self.copy_file(self._build_info_path(), os.path.join(package_dir, "_build_info.py"))

    def _build_info_path(self):
        return os.path.join(self.build_lib, "nnfast", "_build_info.py")

    def _write_build_info(self, error):
        target = Path(self._build_info_path())
        epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds pin the date
        when = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
                else datetime.datetime.now(datetime.timezone.utc))
        values = {
            "extension_error": error,
            "isa_flags": {marker: " ".join(flags[self.family])
                          for marker, flags in ISA_FLAGS.items()} if IS_X86 else {},
            "build_platform": sysconfig.get_platform(),
            "build_python": platform.python_version(),
            "build_date": when.strftime("%Y-%m-%d %H:%M UTC"),
        }
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text('"""How this copy of nnfast was built; written by setup.py."""\n' +
                          "".join(f"{key} = {value!r}\n" for key, value in values.items()))


# Compile the sources in parallel (NNFAST_BUILD_JOBS, default: every core).
ParallelCompile("NNFAST_BUILD_JOBS").install()

ext_modules = [
    Pybind11Extension(
        "nnfast._core",
        sources=cpu_sources(),
        depends=cpu_headers(),
        include_dirs=[str(ROOT / "csrc")],
        define_macros=[("NNFAST_TEST_HOOKS", "1")] if test_hooks_requested() else [],
        cxx_std=17,
    ),
    Pybind11Extension(
        "nnfast._contention_tests",
        sources=["csrc/testing/contention_tests.cpp"],
        depends=["csrc/common/contention.h"],
        include_dirs=[str(ROOT / "csrc")],
        cxx_std=17,
    ),
] + cuda_build.extensions(ROOT)

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
