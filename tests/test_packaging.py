"""What a user of the wheel relies on: nnfast.info() says where this copy came from and
which OpenMP runtime it calls, and scripts/check_baseline_isa.py (the proof that the wheel
runs on any x86-64 CPU) really catches AVX code outside the microkernels."""
from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import nnfast

CHECKER = Path(__file__).resolve().parent.parent / "scripts" / "check_baseline_isa.py"
INSTALL_FORMS = (r"wheel \S+", r"built from source, wheel \S+", r"editable install of .+",
                 r"source checkout .+ \(not installed by pip\)")


def test_info_says_where_nnfast_comes_from_and_how_it_was_built():
    report = nnfast.info()
    assert any(re.match(form, report["install"]) for form in INSTALL_FORMS), report["install"]
    assert isinstance(report["build"], str) and report["build"]


@pytest.mark.skipif("cpp" not in nnfast.available_backends(), reason="no compiled backend")
@pytest.mark.skipif(platform.system() == "Windows", reason="not reported on Windows")
def test_info_names_the_openmp_runtime_file_the_extension_calls():
    path = nnfast.info()["openmp_lib"].split(" (")[0]
    assert os.path.isfile(path), path
    assert re.search(r"(gomp|omp|iomp5)[^/]*\.(so|dylib)", os.path.basename(path)), path


# --- the baseline-ISA checker, on tiny objects built here -----------------------------------

def _load_checker():
    spec = importlib.util.spec_from_file_location("check_baseline_isa", CHECKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_toolchain = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or not CHECKER.is_file()
    or not all(shutil.which(tool) for tool in ("g++", "objdump", "nm")),
    reason="needs x86-64, g++, objdump, nm and the checkout's scripts/")

SHARED_HEADER = """
// An inline function both ISA worlds use: each object gets its own (weak) copy.
__attribute__((noinline)) inline void scale(float* x, int n, float a) {
  for (int i = 0; i < n; ++i) x[i] *= a;
}
"""
MICROKERNEL = """
#include "shared.h"
void kernel_avx2(float* x, int n) { scale(x, n, 2.0f); for (int i = 0; i < n; ++i) x[i] += 1.0f; }
"""
GENERIC_CLEAN = """
void generic(float* x, int n) { for (int i = 0; i < n; ++i) x[i] *= 3.0f; }
"""
GENERIC_USING_SHARED = """
#include "shared.h"
void generic(float* x, int n) { scale(x, n, 3.0f); }
"""
GENERIC_CALLING_MICROKERNEL = """
void kernel_avx2(float* x, int n);
void generic(float* x, int n) { kernel_avx2(x, n); }   // no cpuid check can come first
"""
GENERIC_WITH_CLONES = """
__attribute__((target_clones("arch=x86-64-v3", "default")))
void generic(float* x, int n) { for (int i = 0; i < n; ++i) x[i] = x[i] * 3.0f + 1.0f; }
float* use(float* x) { generic(x, 64); return x; }
"""
GENERIC_WITH_AVX = """
#include <immintrin.h>
__attribute__((target("avx2"))) void generic(float* x) {
  _mm256_storeu_ps(x, _mm256_add_ps(_mm256_loadu_ps(x), _mm256_set1_ps(1.0f)));
}
"""


def _build(tmp_path, generic_source, microkernel_first=True):
    """Compile gemm_avx2_test.cpp (-mavx2) and generic.cpp (baseline) as setup.py would, link
    them into a shared library, and return (object dir, library)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    (tmp_path / "shared.h").write_text(SHARED_HEADER)
    sources = {"gemm_avx2_test": (MICROKERNEL, ["-mavx2", "-mfma"]), "generic": (generic_source, [])}
    objects = []
    for name, (code, flags) in sources.items():
        (tmp_path / f"{name}.cpp").write_text(code)
        obj = temp / f"{name}.o"
        subprocess.run(["g++", "-O3", "-fPIC", "-c", f"-I{tmp_path}", str(tmp_path / f"{name}.cpp"),
                        "-o", str(obj), *flags], check=True)
        objects.append(obj)
    if not microkernel_first:
        objects.reverse()
    library = tmp_path / "_core.so"
    subprocess.run(["g++", "-shared", *map(str, objects), "-o", str(library)], check=True)
    return temp, library


@needs_toolchain
@pytest.mark.parametrize("generic_source,status,stream,message", [
    pytest.param(GENERIC_CLEAN, 0, "out", r"ok \(microkernel\)",
                 id="passes_avx_confined_to_microkernels"),
    pytest.param(GENERIC_WITH_CLONES, 0, "out", r"in 1 ifunc clones",
                 id="passes_ifunc_clones_in_generic_code"),
    pytest.param(GENERIC_CALLING_MICROKERNEL, 1, "err",
                 r"baseline function _Z7genericPfi calls _Z11kernel_avx2Pfi",
                 id="fails_on_a_direct_call_into_a_microkernel"),
    pytest.param(GENERIC_WITH_AVX, 1, "err",
                 r"generic\.o: _Z7genericPf: AVX/AVX2/FMA: .* in baseline code",
                 id="fails_on_avx_in_a_generic_object"),
])
def test_checker_verdict(tmp_path, capsys, generic_source, status, stream, message):
    temp, library = _build(tmp_path, generic_source)
    assert _load_checker().main(["--build-temp", str(temp), str(library)]) == status
    assert re.search(message, getattr(capsys.readouterr(), stream))


@needs_toolchain
@pytest.mark.parametrize("microkernel_first", [True, False])
def test_checker_fails_when_the_linker_keeps_the_avx2_copy_of_a_shared_inline(tmp_path, capsys,
                                                                              microkernel_first):
    # Each object alone is fine. Linked with the microkernel first, the linker keeps its AVX2
    # copy of scale(), which generic() then calls on any CPU; the other order keeps the
    # baseline copy, which is safe.
    temp, library = _build(tmp_path, GENERIC_USING_SHARED, microkernel_first)
    status = _load_checker().main(["--build-temp", str(temp), str(library)])
    err = capsys.readouterr().err
    if microkernel_first:
        assert status == 1
        assert "_Z5scalePfif" in err and "also defined in a generic object" in err
    else:
        assert status == 0, err
