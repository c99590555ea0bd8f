// The module nnfast._core: the primitives (primitives.cpp), the fused training step
// (trainer.cpp) and the runtime: threads, GEMM ISA, build flags.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>

#include "bindings/checks.h"
#include "bindings/register.h"
#include "common/fpu_guard.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "gemm/gemm_dispatch.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast compiled kernels (C++/OpenMP); shapes and semantics as in "
            "nnfast.backends.numpy_backend";
  nnfast::bindings::register_primitives(m);
  nnfast::bindings::register_trainer(m);

  m.def("set_num_threads", &nnfast::set_num_threads, py::arg("n"),
        "threads for every kernel; n <= 0 follows omp_get_max_threads() again");
  m.def("get_num_threads", &nnfast::max_threads);
  m.def("num_threads_is_set", &nnfast::num_threads_is_set);
#ifdef NNFAST_TEST_HOOKS
  m.def("_set_min_work_per_thread_override", &nnfast::set_min_work_per_thread_override,
        py::arg("n"), "benchmark hook: force the OpenMP threshold (-1 restores)");
#endif
  m.def(
      "contention_stats",
      [] {
        const nnfast::ContentionStats stats = nnfast::contention_stats();
        py::dict result;
        result["contended_regions"] = stats.contended_regions;
        result["backing_off"] = stats.backing_off;
        result["next_backoff_s"] = static_cast<double>(stats.next_backoff_ns) * 1e-9;
        return result;
      },
      "parallel regions that waited for a descheduled thread, and whether kernels run on one "
      "thread for now because of them");
  m.def("gemm_isa", &nnfast::gemm_isa);

  // GEMM microkernel selection (NNFAST_ISA, or _set_gemm_isa for tests) and the FMA peak.
  m.def("_fpu_mode", &nnfast::fpu_mode,
        "the calling thread's MXCSR control bits (x86 SSE floating-point mode), -1 without SSE");
  m.def("_gemm_isas", [] {
    py::list names;
    for (const std::string& name : nnfast::supported_gemm_isas()) names.append(name);
    return names;
  }, "ISAs this CPU can run, slowest first");
  m.def("_set_gemm_isa", [](const std::string& name) {
    if (!nnfast::select_gemm_isa(name))
      throw py::value_error("gemm ISA '" + name + "' is unknown or not supported by this CPU");
  }, py::arg("name"));
  m.def("_fma_peak_gflops", [](double seconds) {
    return nnfast::bindings::without_gil([&] { return nnfast::fma_peak_gflops(seconds); });
  }, py::arg("seconds") = 0.2, "one core's FMA GFLOP/s with the active ISA's vectors");
  // Warned from Python (cpp_backend.py), attributed to the user's line that loaded the backend.
  m.def("_gemm_isa_env_warning", &nnfast::gemm_isa_env_warning,
        "why NNFAST_ISA was not honoured, or an empty string");
#ifdef _OPENMP
  m.attr("openmp") = _OPENMP;
#else
  m.attr("openmp") = py::none();
#endif
#ifdef NNFAST_CXXFLAGS
  m.attr("compile_flags") = NNFAST_CXXFLAGS;
#endif
#if defined(__clang__)
  m.attr("compiler") = "clang " __clang_version__;
#elif defined(__GNUC__)
  m.attr("compiler") = "gcc " __VERSION__;
#elif defined(_MSC_VER)
  m.attr("compiler") = "msvc " + std::to_string(_MSC_VER);
#endif
}
