// The only file that includes pybind11. Every entry point checks its arrays (dtype, shape,
// C-contiguity, alignment, writability) and raises TypeError/ValueError naming the argument,
// never converting silently; then it releases the GIL and calls the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/activation.h"
#include "common/fpu_guard.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "gemm/gemm_dispatch.h"
#include "kernels/activations.h"

namespace py = pybind11;
using nnfast::Activation;

namespace {

enum class DType { f32, f64 };

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) s += ", ";
    s += std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

DType float_dtype(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::f32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::f64;
  throw py::type_error(std::string(name) + ": expected a float32 or float64 array, got dtype " +
                       std::string(py::str(a.dtype())));
}

void check_same_dtype(const py::array& a, const char* name, DType want) {
  if (float_dtype(a, name) != want)
    throw py::type_error(std::string(name) + ": dtype " + std::string(py::str(a.dtype())) +
                         " does not match the other operands (" +
                         (want == DType::f32 ? "float32" : "float64") + ")");
}

void check_layout(const py::array& a, const char* name, bool writable) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) +
                          ": array must be C-contiguous (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize() != 0)
    throw py::value_error(std::string(name) + ": array data is misaligned");
  if (writable && !a.writeable())
    throw py::value_error(std::string(name) + ": output array is read-only");
}

void check_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                          "-D array, got shape " + shape_str(a));
}

void check_shape(const py::array& a, const char* name, std::vector<py::ssize_t> shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i)
      want += (i ? ", " : "") + std::to_string(shape[i]);
    want += shape.size() == 1 ? ",)" : ")";
    throw py::value_error(std::string(name) + ": expected shape " + want + ", got " +
                          shape_str(a));
  }
}

py::array new_array(DType dt, std::vector<py::ssize_t> shape) {
  if (dt == DType::f32) return py::array_t<float>(shape);
  return py::array_t<double>(shape);
}

Activation parse_activation(const py::object& name, bool allow_softmax) {
  if (name.is_none()) return Activation::identity;
  const std::string s = py::str(name);
  if (s == "identity" || s == "linear") return Activation::identity;
  if (s == "relu") return Activation::relu;
  if (s == "leaky_relu") return Activation::leaky_relu;
  if (s == "sigmoid") return Activation::sigmoid;
  if (s == "tanh") return Activation::tanh;
  if (s == "gelu") return Activation::gelu;
  if (s == "gelu_tanh") return Activation::gelu_tanh;
  if (s == "softmax" && allow_softmax) return Activation::softmax;
  throw py::value_error("activation: unknown activation '" + s + "'");
}

template <typename T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <typename T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// ---------------------------------------------------------------------------------------
// gemm

py::array gemm(py::array a, py::array b, py::object out_obj, bool trans_a, bool trans_b,
               double alpha, double beta, py::object bias_obj, py::object activation,
               double negative_slope) {
  const DType dt = float_dtype(a, "a");
  check_same_dtype(b, "b", dt);
  check_ndim(a, "a", 2);
  check_ndim(b, "b", 2);
  check_layout(a, "a", false);
  check_layout(b, "b", false);
  const int64_t M = trans_a ? a.shape(1) : a.shape(0);
  const int64_t K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0);
  const int64_t N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb)
    throw py::value_error("gemm: inner dimensions differ: op(a) is (" + std::to_string(M) +
                          ", " + std::to_string(K) + "), op(b) is (" + std::to_string(Kb) +
                          ", " + std::to_string(N) + ")");
  const Activation act = parse_activation(activation, false);

  py::array out;
  if (out_obj.is_none()) {
    if (beta != 0.0) throw py::value_error("out: beta != 0 needs an existing out array");
    out = new_array(dt, {M, N});
  } else {
    out = py::reinterpret_borrow<py::array>(out_obj);
    check_same_dtype(out, "out", dt);
    check_shape(out, "out", {M, N});
    check_layout(out, "out", true);
  }
  py::array bias;
  if (!bias_obj.is_none()) {
    bias = py::reinterpret_borrow<py::array>(bias_obj);
    check_same_dtype(bias, "bias", dt);
    check_shape(bias, "bias", {N});
    check_layout(bias, "bias", false);
  }
  if (M == 0 || N == 0) return out;

  const int64_t lda = a.shape(1), ldb = b.shape(1);
  {
    py::gil_scoped_release release;
    nnfast::FpuGuard fpu;
    if (dt == DType::f32) {
      nnfast::GemmEpilogue<float> ep{bias_obj.is_none() ? nullptr : cptr<float>(bias), act,
                                     static_cast<float>(negative_slope)};
      nnfast::gemm<float>(trans_a, trans_b, M, N, K, static_cast<float>(alpha), cptr<float>(a),
                          lda, cptr<float>(b), ldb, static_cast<float>(beta), ptr<float>(out), N,
                          ep);
    } else {
      nnfast::GemmEpilogue<double> ep{bias_obj.is_none() ? nullptr : cptr<double>(bias), act,
                                      negative_slope};
      nnfast::gemm<double>(trans_a, trans_b, M, N, K, alpha, cptr<double>(a), lda,
                           cptr<double>(b), ldb, beta, ptr<double>(out), N, ep);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// activations

py::array activation_forward(py::object kind, py::array x, py::object out_obj,
                             double negative_slope) {
  const Activation act = parse_activation(kind, true);
  if (act == Activation::softmax)
    throw py::value_error("activation_forward: softmax is not implemented in the cpp backend yet");
  const DType dt = float_dtype(x, "x");
  check_layout(x, "x", false);
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  py::array out;
  if (out_obj.is_none()) {
    out = new_array(dt, shape);
  } else {
    out = py::reinterpret_borrow<py::array>(out_obj);
    check_same_dtype(out, "out", dt);
    check_shape(out, "out", shape);
    check_layout(out, "out", true);
  }
  const int64_t n = x.size();
  py::gil_scoped_release release;
  nnfast::FpuGuard fpu;
  if (dt == DType::f32)
    nnfast::activation_forward<float>(ptr<float>(out), cptr<float>(x), n, act,
                                      static_cast<float>(negative_slope));
  else
    nnfast::activation_forward<double>(ptr<double>(out), cptr<double>(x), n, act,
                                       negative_slope);
  return out;
}

py::array activation_backward(py::object kind, py::array grad_out, py::array x, py::array y,
                              py::object out_obj, double negative_slope) {
  const Activation act = parse_activation(kind, true);
  if (act == Activation::softmax)
    throw py::value_error("activation_backward: softmax is not implemented in the cpp backend yet");
  const DType dt = float_dtype(grad_out, "grad_out");
  std::vector<py::ssize_t> shape(grad_out.shape(), grad_out.shape() + grad_out.ndim());
  check_layout(grad_out, "grad_out", false);
  check_same_dtype(x, "x", dt);
  check_shape(x, "x", shape);
  check_layout(x, "x", false);
  check_same_dtype(y, "y", dt);
  check_shape(y, "y", shape);
  check_layout(y, "y", false);
  py::array out;
  if (out_obj.is_none()) {
    out = new_array(dt, shape);
  } else {
    out = py::reinterpret_borrow<py::array>(out_obj);
    check_same_dtype(out, "out", dt);
    check_shape(out, "out", shape);
    check_layout(out, "out", true);
  }
  const int64_t n = grad_out.size();
  py::gil_scoped_release release;
  nnfast::FpuGuard fpu;
  if (dt == DType::f32)
    nnfast::activation_backward<float>(ptr<float>(out), cptr<float>(grad_out), cptr<float>(x),
                                       cptr<float>(y), n, act,
                                       static_cast<float>(negative_slope));
  else
    nnfast::activation_backward<double>(ptr<double>(out), cptr<double>(grad_out),
                                        cptr<double>(x), cptr<double>(y), n, act,
                                        negative_slope);
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast compiled kernels (C++/OpenMP)";

  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out") = py::none(), py::kw_only(),
        py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
        py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("activation") = py::none(),
        py::arg("negative_slope") = 0.01,
        "out = act(alpha * op(a) @ op(b) + beta * out + bias)");
  m.def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"),
        py::arg("out") = py::none(), py::kw_only(), py::arg("negative_slope") = 0.01);
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"),
        py::arg("x"), py::arg("y"), py::arg("out") = py::none(), py::kw_only(),
        py::arg("negative_slope") = 0.01);

  m.def("set_num_threads", &nnfast::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &nnfast::num_threads);
  m.def("gemm_isa", &nnfast::gemm_isa);

  // GEMM microkernel selection (NNFAST_ISA, or _set_gemm_isa for tests) and the FMA peak.
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
    py::gil_scoped_release release;
    return nnfast::fma_peak_gflops(seconds);
  }, py::arg("seconds") = 0.2, "one core's FMA GFLOP/s with the active ISA's vectors");
  if (const std::string why = nnfast::gemm_isa_env_warning(); !why.empty())
    py::module_::import("warnings").attr("warn")(why, py::handle(PyExc_RuntimeWarning));
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
