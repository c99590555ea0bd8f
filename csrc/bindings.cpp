// The only file that includes pybind11. Every entry point checks its arguments with the GIL
// held (ndarray type, dtype, shape, C-contiguity, alignment, writability, label range,
// overlap between outputs and inputs) and raises TypeError/ValueError naming the argument,
// never converting silently; then it releases the GIL and calls the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <type_traits>
#include <vector>

#include "common/activation.h"
#include "common/fpu_guard.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "gemm/gemm_dispatch.h"
#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/bias_grad.h"
#include "kernels/dropout.h"
#include "kernels/losses.h"
#include "kernels/norms.h"
#include "kernels/optimizers.h"
#include "kernels/softmax_cross_entropy.h"
#include "train/mlp_trainer.h"

namespace py = pybind11;
using nnfast::Activation;

namespace {

using Shape = std::vector<py::ssize_t>;

enum class DType { f32, f64 };

const char* dtype_name(DType dt) { return dt == DType::f32 ? "float32" : "float64"; }

// ------------------------------------------------------------------------- argument checks

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

std::string arg(const char* name) { return std::string(name) + ": "; }

py::array ndarray(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(arg(name) + "expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(obj);
}

DType float_dtype(const py::array& a, const char* name) {
  // dtype::is compares byte order too: a big-endian float32 is refused, not swapped.
  if (a.dtype().is(py::dtype::of<float>())) return DType::f32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::f64;
  throw py::type_error(arg(name) + "expected a float32 or float64 array, got dtype " +
                       std::string(py::str(a.dtype())));
}

void check_dtype(const py::array& a, const char* name, DType want) {
  if (float_dtype(a, name) != want)
    throw py::type_error(arg(name) + "dtype " + std::string(py::str(a.dtype())) +
                         " does not match the other operands (" + dtype_name(want) + ")");
}

void check_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(arg(name) + "expected a " + std::to_string(ndim) +
                          "-D array, got shape " + shape_str(shape_of(a)));
}

void check_shape(const py::array& a, const char* name, const Shape& shape) {
  if (shape_of(a) != shape)
    throw py::value_error(arg(name) + "expected shape " + shape_str(shape) + ", got " +
                          shape_str(shape_of(a)));
}

void check_layout(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(arg(name) + "array must be C-contiguous (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize() != 0)
    throw py::value_error(arg(name) + "array data is misaligned");
}

// A float array read by a kernel; its dtype sets the dtype of the call.
py::array input(py::handle obj, const char* name, DType* dt, py::ssize_t ndim = -1) {
  py::array a = ndarray(obj, name);
  *dt = float_dtype(a, name);
  if (ndim >= 0) check_ndim(a, name, ndim);
  check_layout(a, name);
  return a;
}

// A float array read by a kernel, of the call's dtype and a given shape.
py::array input_like(py::handle obj, const char* name, DType dt, const Shape& shape) {
  py::array a = ndarray(obj, name);
  check_dtype(a, name, dt);
  check_shape(a, name, shape);
  check_layout(a, name);
  return a;
}

py::array new_array(DType dt, const Shape& shape) {
  if (dt == DType::f32) return py::array_t<float>(shape);
  return py::array_t<double>(shape);
}

// The result array: a new one when obj is None, else obj after checking it can take it.
py::array output(py::handle obj, const char* name, DType dt, const Shape& shape) {
  if (obj.is_none()) return new_array(dt, shape);
  py::array a = input_like(obj, name, dt, shape);
  if (!a.writeable()) throw py::value_error(arg(name) + "output array is read-only");
  return a;
}

// An array updated in place (parameters, optimizer state).
py::array inout(py::handle obj, const char* name, DType dt, const Shape& shape) {
  py::array a = input_like(obj, name, dt, shape);
  if (!a.writeable()) throw py::value_error(arg(name) + "array is read-only");
  return a;
}

struct Bytes {
  std::uintptr_t begin, end;
};
Bytes bytes_of(const py::array& a) {
  const auto begin = reinterpret_cast<std::uintptr_t>(a.data());
  return {begin, begin + static_cast<std::uintptr_t>(a.nbytes())};
}

// A kernel writing `out` while reading `in` needs them apart, or (for kernels that read
// every element before writing it) exactly the same array.
void check_no_overlap(const py::array& out, const char* out_name, const py::array& in,
                      const char* in_name, bool allow_same) {
  const Bytes o = bytes_of(out), i = bytes_of(in);
  if (o.begin >= i.end || i.begin >= o.end || o.begin == o.end || i.begin == i.end) return;
  if (allow_same && o.begin == i.begin && o.end == i.end) return;
  throw py::value_error(arg(out_name) + "shares memory with " + in_name +
                        (allow_same ? "; pass a separate array or " + std::string(in_name) +
                                          " itself"
                                    : "; pass a separate array"));
}

// Sparse class labels: int64, shape (n,), every value in [0, num_classes). Checked here,
// with the GIL held; the kernels still refuse to index with a bad label.
py::array labels(py::handle obj, const char* name, py::ssize_t n, int64_t num_classes) {
  py::array a = ndarray(obj, name);
  if (!a.dtype().is(py::dtype::of<int64_t>()))
    throw py::type_error(arg(name) + "sparse labels must be int64, got dtype " +
                         std::string(py::str(a.dtype())));
  check_shape(a, name, {n});
  check_layout(a, name);
  const int64_t* y = static_cast<const int64_t*>(a.data());
  if (n == 0) return a;
  int64_t lo = y[0], hi = y[0];
  for (py::ssize_t i = 1; i < n; ++i) {
    lo = y[i] < lo ? y[i] : lo;
    hi = y[i] > hi ? y[i] : hi;
  }
  if (lo < 0 || hi >= num_classes)
    throw py::value_error(arg(name) + "labels must lie in [0, " + std::to_string(num_classes) +
                          "), got values in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "]");
  return a;
}

Activation parse_activation(const py::object& kind, bool allow_softmax) {
  if (kind.is_none()) return Activation::identity;
  const std::string s = py::str(kind);
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

// ------------------------------------------------------------------------- calling kernels

template <typename T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
template <typename T>
const T* cptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// f(T{}) with T the call's float type.
template <typename F>
auto by_dtype(DType dt, F&& f) {
  if (dt == DType::f32) return f(float{});
  return f(double{});
}

// Runs a kernel without the GIL and with denormals flushed. `kernel` gets only raw pointers
// and sizes taken beforehand: it must not touch a Python object.
template <typename F>
auto without_gil(F&& kernel) {
  py::gil_scoped_release release;
  nnfast::FpuGuard fpu;
  return kernel();
}

// ------------------------------------------------------------------------- gemm

py::array gemm(py::handle a_obj, py::handle b_obj, py::handle out_obj, bool trans_a,
               bool trans_b, double alpha, double beta, py::handle bias_obj,
               py::object activation, double negative_slope) {
  DType dt;
  py::array a = input(a_obj, "a", &dt, 2);
  py::array b = ndarray(b_obj, "b");
  check_dtype(b, "b", dt);
  check_ndim(b, "b", 2);
  check_layout(b, "b");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0);
  const int64_t K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0);
  const int64_t N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb)
    throw py::value_error("gemm: inner dimensions differ: op(a) is (" + std::to_string(M) +
                          ", " + std::to_string(K) + "), op(b) is (" + std::to_string(Kb) +
                          ", " + std::to_string(N) + ")");
  const Activation act = parse_activation(activation, false);
  if (out_obj.is_none() && beta != 0.0)
    throw py::value_error("out: beta != 0 needs an existing out array");
  py::array out = output(out_obj, "out", dt, {M, N});
  // A default-constructed py::array is an empty array, not null: track presence separately.
  const bool has_bias = !bias_obj.is_none();
  py::array bias;
  if (has_bias) {
    bias = input_like(bias_obj, "bias", dt, {N});
    check_no_overlap(out, "out", bias, "bias", false);
  }
  check_no_overlap(out, "out", a, "a", false);
  check_no_overlap(out, "out", b, "b", false);
  if (M == 0 || N == 0) return out;

  const int64_t lda = a.shape(1), ldb = b.shape(1);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    nnfast::GemmEpilogue<T> ep{has_bias ? cptr<T>(bias) : nullptr, act,
                               static_cast<T>(negative_slope)};
    const T *A = cptr<T>(a), *B = cptr<T>(b);
    T* C = ptr<T>(out);
    without_gil([&] {
      nnfast::gemm<T>(trans_a, trans_b, M, N, K, static_cast<T>(alpha), A, lda, B, ldb,
                      static_cast<T>(beta), C, N, ep);
    });
  });
  return out;
}

// gemm's arguments matched by hand. pybind11's keyword matching looks each parameter up in
// the keywords by a new string and copies the dict: 0.5 us a call (0.94 against 0.41 us for
// 1 x 1 x 1 with two keywords), 8% of a 64 x 128 x 64 product. Here keywords are compared
// with interned names by identity (call sites intern identifiers), by value otherwise.
class Signature {
 public:
  Signature(const char* function, std::vector<const char*> names, size_t positional,
            size_t required)
      : function_(function), names_(std::move(names)), positional_(positional),
        required_(required) {
    // Held for the life of the process: never released after the interpreter is gone.
    for (const char* name : names_) interned_.push_back(PyUnicode_InternFromString(name));
  }
  size_t size() const { return names_.size(); }

  // values[i]: the i-th parameter's object, or a null handle when not given.
  void match(const py::args& args, const py::kwargs& kwargs, py::handle* values) const {
    if (args.size() > positional_)
      throw py::type_error(function_ + "() takes at most " + std::to_string(positional_) +
                           " positional arguments (" + std::to_string(args.size()) +
                           " given); the others are keyword-only");
    for (size_t i = 0; i < args.size(); ++i) values[i] = args[i];
    for (auto item : kwargs) {
      const size_t i = find(item.first);
      if (i == size())
        throw py::type_error(function_ + "() got an unexpected keyword argument '" +
                             std::string(py::str(item.first)) + "'");
      if (values[i])
        throw py::type_error(function_ + "() got multiple values for argument '" + names_[i] +
                             "'");
      values[i] = item.second;
    }
    for (size_t i = 0; i < required_; ++i)
      if (!values[i])
        throw py::type_error(function_ + "() missing required argument '" + names_[i] + "'");
  }

  // The parameter's value converted as pybind11 would, or `fallback` when not given.
  template <typename T>
  T value(const py::handle* values, size_t i, T fallback) const {
    if (!values[i]) return fallback;
    try {
      return py::cast<T>(values[i]);
    } catch (const py::cast_error&) {
      throw py::type_error(function_ + "(): " + names_[i] + " must be " +
                           (std::is_same_v<T, bool> ? "a bool" : "a number") + ", got " +
                           std::string(py::str(py::type::of(values[i]).attr("__name__"))));
    }
  }

 private:
  size_t find(py::handle key) const {
    for (size_t i = 0; i < size(); ++i)
      if (key.ptr() == interned_[i]) return i;
    for (size_t i = 0; i < size(); ++i)
      if (PyUnicode_Compare(key.ptr(), interned_[i]) == 0) return i;
    if (PyErr_Occurred()) PyErr_Clear();
    return size();
  }

  std::string function_;
  std::vector<const char*> names_;
  size_t positional_, required_;
  std::vector<PyObject*> interned_;
};

py::array gemm_entry(const py::args& args, const py::kwargs& kwargs) {
  static const Signature sig("gemm",
                             {"a", "b", "out", "trans_a", "trans_b", "alpha", "beta", "bias",
                              "activation", "negative_slope"},
                             3, 2);
  py::handle v[10];
  sig.match(args, kwargs, v);
  const py::handle none = py::none();
  return gemm(v[0], v[1], v[2] ? v[2] : none, sig.value(v, 3, false), sig.value(v, 4, false),
              sig.value(v, 5, 1.0), sig.value(v, 6, 0.0), v[7] ? v[7] : none,
              py::reinterpret_borrow<py::object>(v[8] ? v[8] : none), sig.value(v, 9, 0.01));
}

// ------------------------------------------------------------------------- activations

py::array activation_forward(py::object kind, py::handle x_obj, py::handle out_obj,
                             double negative_slope) {
  const Activation act = parse_activation(kind, true);
  const bool softmax = act == Activation::softmax;
  DType dt;
  py::array x = input(x_obj, "x", &dt, softmax ? 2 : -1);
  py::array out = output(out_obj, "out", dt, shape_of(x));
  check_no_overlap(out, "out", x, "x", true);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(x);
    T* Y = ptr<T>(out);
    if (softmax) {
      const int64_t N = x.shape(0), C = x.shape(1);
      if (N > 0 && C > 0) without_gil([&] { nnfast::softmax_forward<T>(Y, X, N, C); });
    } else {
      const int64_t n = x.size();
      const T slope = static_cast<T>(negative_slope);
      without_gil([&] { nnfast::activation_forward<T>(Y, X, n, act, slope); });
    }
  });
  return out;
}

py::array activation_backward(py::object kind, py::handle grad_obj, py::handle x_obj,
                              py::handle y_obj, py::handle out_obj, double negative_slope) {
  const Activation act = parse_activation(kind, true);
  const bool softmax = act == Activation::softmax;
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt, softmax ? 2 : -1);
  const Shape shape = shape_of(grad);
  py::array x = input_like(x_obj, "x", dt, shape);
  py::array y = input_like(y_obj, "y", dt, shape);
  py::array out = output(out_obj, "out", dt, shape);
  check_no_overlap(out, "out", grad, "grad_out", true);
  check_no_overlap(out, "out", x, "x", true);
  check_no_overlap(out, "out", y, "y", true);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *G = cptr<T>(grad), *X = cptr<T>(x), *Y = cptr<T>(y);
    T* D = ptr<T>(out);
    if (softmax) {
      const int64_t N = grad.shape(0), C = grad.shape(1);
      if (N > 0 && C > 0) without_gil([&] { nnfast::softmax_backward<T>(D, G, Y, N, C); });
    } else {
      const int64_t n = grad.size();
      const T slope = static_cast<T>(negative_slope);
      without_gil([&] { nnfast::activation_backward<T>(D, G, X, Y, n, act, slope); });
    }
  });
  return out;
}

// ------------------------------------------------------------------------- softmax + cross-entropy

// The reference's rule: a 1-D target holds sparse labels, anything else is (N, C) targets.
bool is_sparse(py::handle target) {
  return py::isinstance<py::array>(target) &&
         py::reinterpret_borrow<py::array>(target).ndim() == 1;
}

py::tuple softmax_cross_entropy_forward(py::handle logits_obj, py::handle target_obj,
                                        py::handle probs_obj) {
  DType dt;
  py::array logits = input(logits_obj, "logits", &dt, 2);
  const int64_t N = logits.shape(0), C = logits.shape(1);
  py::array probs = output(probs_obj, "probs", dt, {N, C});
  check_no_overlap(probs, "probs", logits, "logits", true);
  const bool sparse = is_sparse(target_obj);
  py::array target = sparse ? labels(target_obj, "target", N, C)
                            : input_like(target_obj, "target", dt, {N, C});
  check_no_overlap(probs, "probs", target, "target", !sparse);
  if (N > 0 && C == 0)
    throw py::value_error("logits: expected at least one class, got shape " +
                          shape_str({N, C}));
  if (N == 0) return py::make_tuple(std::nan(""), probs);
  const double loss = by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(logits);
    T* P = ptr<T>(probs);
    if (sparse) {
      const int64_t* Y = cptr<int64_t>(target);
      return without_gil(
          [&] { return nnfast::softmax_cross_entropy_forward_sparse<T>(P, X, Y, N, C); });
    }
    const T* Tg = cptr<T>(target);
    return without_gil(
        [&] { return nnfast::softmax_cross_entropy_forward_dense<T>(P, X, Tg, N, C); });
  });
  return py::make_tuple(loss, probs);
}

py::array softmax_cross_entropy_backward(py::handle probs_obj, py::handle target_obj,
                                         py::handle out_obj) {
  DType dt;
  py::array probs = input(probs_obj, "probs", &dt, 2);
  const int64_t N = probs.shape(0), C = probs.shape(1);
  py::array out = output(out_obj, "out", dt, {N, C});
  check_no_overlap(out, "out", probs, "probs", true);
  const bool sparse = is_sparse(target_obj);
  py::array target = sparse ? labels(target_obj, "target", N, C)
                            : input_like(target_obj, "target", dt, {N, C});
  check_no_overlap(out, "out", target, "target", !sparse);
  if (N == 0 || C == 0) return out;
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* P = cptr<T>(probs);
    T* D = ptr<T>(out);
    if (sparse) {
      const int64_t* Y = cptr<int64_t>(target);
      without_gil([&] { nnfast::softmax_cross_entropy_backward_sparse<T>(D, P, Y, N, C); });
    } else {
      const T* Tg = cptr<T>(target);
      without_gil([&] { nnfast::softmax_cross_entropy_backward_dense<T>(D, P, Tg, N, C); });
    }
  });
  return out;
}

// ------------------------------------------------------------------------- elementwise losses

// The checked (prediction, target) pair of an elementwise loss.
struct LossPair {
  DType dt;
  py::array pred, target;
};

LossPair loss_pair(py::handle pred_obj, const char* pred_name, py::handle target_obj) {
  LossPair p;
  p.pred = input(pred_obj, pred_name, &p.dt);
  p.target = input_like(target_obj, "target", p.dt, shape_of(p.pred));
  return p;
}

template <typename Kernel32, typename Kernel64>
double loss_forward(py::handle pred_obj, const char* pred_name, py::handle target_obj,
                    Kernel32 kernel32, Kernel64 kernel64) {
  LossPair p = loss_pair(pred_obj, pred_name, target_obj);
  const int64_t n = p.pred.size();
  if (p.dt == DType::f32) {
    const float *X = cptr<float>(p.pred), *Tg = cptr<float>(p.target);
    return without_gil([&] { return kernel32(X, Tg, n); });
  }
  const double *X = cptr<double>(p.pred), *Tg = cptr<double>(p.target);
  return without_gil([&] { return kernel64(X, Tg, n); });
}

template <typename Kernel32, typename Kernel64>
py::array loss_backward(py::handle pred_obj, const char* pred_name, py::handle target_obj,
                        py::handle out_obj, Kernel32 kernel32, Kernel64 kernel64) {
  LossPair p = loss_pair(pred_obj, pred_name, target_obj);
  py::array out = output(out_obj, "out", p.dt, shape_of(p.pred));
  check_no_overlap(out, "out", p.pred, pred_name, true);
  check_no_overlap(out, "out", p.target, "target", true);
  const int64_t n = p.pred.size();
  if (n == 0) return out;
  if (p.dt == DType::f32) {
    const float *X = cptr<float>(p.pred), *Tg = cptr<float>(p.target);
    float* D = ptr<float>(out);
    without_gil([&] { kernel32(D, X, Tg, n); });
  } else {
    const double *X = cptr<double>(p.pred), *Tg = cptr<double>(p.target);
    double* D = ptr<double>(out);
    without_gil([&] { kernel64(D, X, Tg, n); });
  }
  return out;
}

double mse_forward(py::handle pred, py::handle target) {
  return loss_forward(pred, "pred", target, nnfast::mse_forward<float>,
                      nnfast::mse_forward<double>);
}
py::array mse_backward(py::handle pred, py::handle target, py::handle out) {
  return loss_backward(pred, "pred", target, out, nnfast::mse_backward<float>,
                       nnfast::mse_backward<double>);
}
double bce_forward(py::handle prob, py::handle target) {
  return loss_forward(prob, "prob", target, nnfast::bce_forward<float>,
                      nnfast::bce_forward<double>);
}
py::array bce_backward(py::handle prob, py::handle target, py::handle out) {
  return loss_backward(prob, "prob", target, out, nnfast::bce_backward<float>,
                       nnfast::bce_backward<double>);
}
double bce_with_logits_forward(py::handle logits, py::handle target) {
  return loss_forward(logits, "logits", target, nnfast::bce_with_logits_forward<float>,
                      nnfast::bce_with_logits_forward<double>);
}
py::array bce_with_logits_backward(py::handle logits, py::handle target, py::handle out) {
  return loss_backward(logits, "logits", target, out, nnfast::bce_with_logits_backward<float>,
                       nnfast::bce_with_logits_backward<double>);
}

// ------------------------------------------------------------------------- bias gradient

py::array bias_grad(py::handle grad_obj, py::handle out_obj, double beta) {
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt, 2);
  const int64_t N = grad.shape(0), C = grad.shape(1);
  if (out_obj.is_none() && beta != 0.0)
    throw py::value_error("out: beta != 0 needs an existing out array");
  py::array out = output(out_obj, "out", dt, {C});
  check_no_overlap(out, "out", grad, "grad_out", false);
  if (C == 0) return out;
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* G = cptr<T>(grad);
    T* D = ptr<T>(out);
    const T b = static_cast<T>(beta);
    without_gil([&] { nnfast::bias_grad<T>(D, G, N, C, b); });
  });
  return out;
}

// ------------------------------------------------------------------------- optimizers

py::array sgd_update(py::handle param_obj, py::handle grad_obj, py::handle velocity_obj,
                     double lr, double momentum, bool nesterov, double weight_decay) {
  DType dt;
  py::array param = input(param_obj, "param", &dt);
  if (!param.writeable()) throw py::value_error("param: array is read-only");
  const Shape shape = shape_of(param);
  py::array grad = input_like(grad_obj, "grad", dt, shape);
  check_no_overlap(param, "param", grad, "grad", true);
  const bool has_velocity = momentum != 0.0;
  py::array velocity;
  if (has_velocity) {
    if (velocity_obj.is_none())
      throw py::value_error("velocity: momentum != 0 needs a velocity buffer");
    velocity = inout(velocity_obj, "velocity", dt, shape);
    check_no_overlap(velocity, "velocity", param, "param", false);
    check_no_overlap(velocity, "velocity", grad, "grad", false);
  } else if (nesterov) {
    throw py::value_error("nesterov: Nesterov momentum needs momentum > 0");
  }
  const nnfast::SgdOptions opt{lr, momentum, weight_decay, nesterov};
  const int64_t n = param.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* P = ptr<T>(param);
    const T* G = cptr<T>(grad);
    T* V = has_velocity ? ptr<T>(velocity) : nullptr;
    without_gil([&] { nnfast::sgd_update<T>(P, G, V, n, opt); });
  });
  return param;
}

py::array adam_update(py::handle param_obj, py::handle grad_obj, py::handle m_obj,
                      py::handle v_obj, double lr, double beta1, double beta2, double eps,
                      double weight_decay, int64_t step, bool decoupled) {
  DType dt;
  py::array param = input(param_obj, "param", &dt);
  if (!param.writeable()) throw py::value_error("param: array is read-only");
  const Shape shape = shape_of(param);
  py::array grad = input_like(grad_obj, "grad", dt, shape);
  py::array m = inout(m_obj, "m", dt, shape);
  py::array v = inout(v_obj, "v", dt, shape);
  if (step < 1)
    throw py::value_error("step: Adam steps count from 1, got " + std::to_string(step));
  // Each element is read once and written once, so grad may be param; state arrays must be
  // their own memory.
  check_no_overlap(param, "param", grad, "grad", true);
  check_no_overlap(m, "m", param, "param", false);
  check_no_overlap(m, "m", grad, "grad", false);
  check_no_overlap(v, "v", param, "param", false);
  check_no_overlap(v, "v", grad, "grad", false);
  check_no_overlap(v, "v", m, "m", false);
  const nnfast::AdamOptions opt{lr, beta1, beta2, eps, weight_decay, step, decoupled};
  const int64_t n = param.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T *P = ptr<T>(param), *Mp = ptr<T>(m), *Vp = ptr<T>(v);
    const T* G = cptr<T>(grad);
    without_gil([&] { nnfast::adam_update<T>(P, G, Mp, Vp, n, opt); });
  });
  return param;
}


// ------------------------------------------------------------------------- shared checks of the training primitives

// A float formatted as Python prints it, for messages that match the reference's.
std::string py_float(double v) { return py::repr(py::float_(v)); }

double dropout_probability(double p) {
  if (!(p >= 0.0 && p < 1.0))  // written so that NaN fails too
    throw py::value_error("p: dropout probability must lie in [0, 1), got " + py_float(p));
  return p;
}

// A Python int (or numpy integer, not bool) in [0, 2**64): seeds and counters of the RNG.
uint64_t uint64_value(py::handle obj, const char* name) {
  if (PyBool_Check(obj.ptr()) || !PyIndex_Check(obj.ptr()))
    throw py::type_error(arg(name) + "expected an integer, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(obj.ptr()));
  if (!value) throw py::error_already_set();
  const py::int_ limit = py::reinterpret_steal<py::int_>(PyLong_FromUnsignedLongLong(~0ull));
  if (value < py::int_(0) || value > limit)
    throw py::value_error(arg(name) + "must lie in [0, 2**64), got " + std::string(py::str(value)));
  return PyLong_AsUnsignedLongLong(value.ptr());
}

// A dropout keep-mask: uint8 (1 keep, 0 drop), C-contiguous, of the given shape.
py::array mask_array(py::handle obj, const char* name, const Shape& shape) {
  py::array a = ndarray(obj, name);
  if (!a.dtype().is(py::dtype::of<uint8_t>()))
    throw py::type_error(arg(name) + "the dropout mask must be uint8, got dtype " +
                         std::string(py::str(a.dtype())));
  check_shape(a, name, shape);
  check_layout(a, name);
  return a;
}

py::array output_mask(py::handle obj, const char* name, const Shape& shape) {
  if (obj.is_none()) return py::array_t<uint8_t>(shape);
  py::array a = mask_array(obj, name, shape);
  if (!a.writeable()) throw py::value_error(arg(name) + "output array is read-only");
  return a;
}

// None, or a (n,) array of the call's dtype; `present` says which.
py::array optional_vector(py::handle obj, const char* name, DType dt, py::ssize_t n,
                          bool* present) {
  *present = !obj.is_none();
  return *present ? input_like(obj, name, dt, {n}) : py::array();
}

// The (C,) state, statistics and gradients of one batch-norm call must be their own memory,
// apart from each other and from the (N, C) arrays.
void check_all_apart(const std::vector<std::pair<const py::array*, const char*>>& arrays) {
  for (size_t i = 0; i < arrays.size(); ++i)
    for (size_t j = 0; j < arrays.size(); ++j)
      if (i != j) check_no_overlap(*arrays[i].first, arrays[i].second, *arrays[j].first,
                                   arrays[j].second, false);
}

template <typename T>
const T* cptr_or_null(const py::array& a, bool present) {
  return present ? cptr<T>(a) : nullptr;
}
template <typename T>
T* ptr_or_null(py::array& a, bool present) {
  return present ? ptr<T>(a) : nullptr;
}

// ------------------------------------------------------------------------- dropout

// The kernel's options for probability p, shared by dropout_forward and the fused step so
// that both draw the same mask.
nnfast::DropoutOptions dropout_options(double p, uint64_t seed, uint64_t offset) {
  p = dropout_probability(p);
  nnfast::DropoutOptions opt;
  opt.seed = seed;
  opt.offset = offset;
  opt.threshold = static_cast<uint64_t>(p * 4294967296.0);
  opt.scale = 1.0 / (1.0 - p);
  return opt;
}

py::tuple dropout_forward(py::handle x_obj, py::handle out_obj, py::handle mask_obj, double p,
                          py::handle seed_obj, py::handle offset_obj) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  const nnfast::DropoutOptions opt = dropout_options(
      p, uint64_value(seed_obj, "seed"), uint64_value(offset_obj, "offset"));
  const Shape shape = shape_of(x);
  py::array out = output(out_obj, "out", dt, shape);
  py::array mask = output_mask(mask_obj, "mask", shape);
  check_no_overlap(out, "out", x, "x", true);
  check_no_overlap(mask, "mask", x, "x", false);
  check_no_overlap(mask, "mask", out, "out", false);
  const int64_t n = x.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(x);
    T* Y = ptr<T>(out);
    uint8_t* M = ptr<uint8_t>(mask);
    without_gil([&] { nnfast::dropout_forward<T>(Y, M, X, n, opt); });
  });
  return py::make_tuple(out, mask);
}

py::array dropout_backward(py::handle grad_obj, py::handle mask_obj, py::handle out_obj,
                           double p) {
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt);
  const Shape shape = shape_of(grad);
  py::array mask = mask_array(mask_obj, "mask", shape);
  p = dropout_probability(p);
  py::array out = output(out_obj, "out", dt, shape);
  check_no_overlap(out, "out", grad, "grad_out", true);
  check_no_overlap(out, "out", mask, "mask", false);
  const int64_t n = grad.size();
  const double scale = 1.0 / (1.0 - p);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* G = cptr<T>(grad);
    const uint8_t* M = cptr<uint8_t>(mask);
    T* D = ptr<T>(out);
    without_gil([&] { nnfast::dropout_backward<T>(D, G, M, n, scale); });
  });
  return out;
}

// ------------------------------------------------------------------------- batch norm

py::tuple batchnorm_forward_train(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                                  py::handle rm_obj, py::handle rv_obj, py::handle out_obj,
                                  py::handle mean_obj, py::handle inv_std_obj, double momentum,
                                  double eps) {
  DType dt;
  py::array x = input(x_obj, "x", &dt, 2);
  const int64_t N = x.shape(0), C = x.shape(1);
  bool has_gamma, has_beta;
  py::array gamma = optional_vector(gamma_obj, "gamma", dt, C, &has_gamma);
  py::array beta = optional_vector(beta_obj, "beta", dt, C, &has_beta);
  py::array rm = inout(rm_obj, "running_mean", dt, {C});
  py::array rv = inout(rv_obj, "running_var", dt, {C});
  if (N < 2)
    throw py::value_error("x: batch norm in training mode needs at least 2 samples per batch "
                          "to estimate a variance, got a batch of " + std::to_string(N));
  py::array out = output(out_obj, "out", dt, {N, C});
  py::array mean = output(mean_obj, "mean", dt, {C});
  py::array inv_std = output(inv_std_obj, "inv_std", dt, {C});
  check_no_overlap(out, "out", x, "x", true);
  std::vector<std::pair<const py::array*, const char*>> apart = {
      {&mean, "mean"}, {&inv_std, "inv_std"}, {&rm, "running_mean"}, {&rv, "running_var"},
      {&out, "out"}};
  if (has_gamma) apart.push_back({&gamma, "gamma"});
  if (has_beta) apart.push_back({&beta, "beta"});
  check_all_apart(apart);
  for (auto [a, name] : {std::pair{&mean, "mean"}, {&inv_std, "inv_std"},
                         {&rm, "running_mean"}, {&rv, "running_var"}})
    check_no_overlap(*a, name, x, "x", false);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *X = cptr<T>(x), *G = cptr_or_null<T>(gamma, has_gamma);
    const T* B = cptr_or_null<T>(beta, has_beta);
    T *Y = ptr<T>(out), *Mean = ptr<T>(mean), *Inv = ptr<T>(inv_std);
    T *Rm = ptr<T>(rm), *Rv = ptr<T>(rv);
    without_gil([&] {
      nnfast::batchnorm_forward_train<T>(Y, Mean, Inv, Rm, Rv, X, G, B, N, C, momentum, eps);
    });
  });
  return py::make_tuple(out, mean, inv_std);
}

py::array batchnorm_forward_eval(py::handle x_obj, py::handle gamma_obj, py::handle beta_obj,
                                 py::handle rm_obj, py::handle rv_obj, py::handle out_obj,
                                 double eps) {
  DType dt;
  py::array x = input(x_obj, "x", &dt, 2);
  const int64_t N = x.shape(0), C = x.shape(1);
  bool has_gamma, has_beta;
  py::array gamma = optional_vector(gamma_obj, "gamma", dt, C, &has_gamma);
  py::array beta = optional_vector(beta_obj, "beta", dt, C, &has_beta);
  py::array rm = input_like(rm_obj, "running_mean", dt, {C});
  py::array rv = input_like(rv_obj, "running_var", dt, {C});
  py::array out = output(out_obj, "out", dt, {N, C});
  check_no_overlap(out, "out", x, "x", true);
  check_no_overlap(out, "out", rm, "running_mean", false);
  check_no_overlap(out, "out", rv, "running_var", false);
  if (has_gamma) check_no_overlap(out, "out", gamma, "gamma", false);
  if (has_beta) check_no_overlap(out, "out", beta, "beta", false);
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *X = cptr<T>(x), *Rm = cptr<T>(rm), *Rv = cptr<T>(rv);
    const T *G = cptr_or_null<T>(gamma, has_gamma), *B = cptr_or_null<T>(beta, has_beta);
    T* Y = ptr<T>(out);
    without_gil([&] { nnfast::batchnorm_forward_eval<T>(Y, X, Rm, Rv, G, B, N, C, eps); });
  });
  return out;
}

py::array batchnorm_backward(py::handle grad_obj, py::handle x_obj, py::handle mean_obj,
                             py::handle inv_std_obj, py::handle gamma_obj, py::handle grad_x_obj,
                             py::handle grad_gamma_obj, py::handle grad_beta_obj,
                             bool training) {
  DType dt;
  py::array grad = input(grad_obj, "grad_out", &dt, 2);
  const int64_t N = grad.shape(0), C = grad.shape(1);
  py::array x = input_like(x_obj, "x", dt, {N, C});
  py::array mean = input_like(mean_obj, "mean", dt, {C});
  py::array inv_std = input_like(inv_std_obj, "inv_std", dt, {C});
  bool has_gamma;
  py::array gamma = optional_vector(gamma_obj, "gamma", dt, C, &has_gamma);
  const bool has_dgamma = !grad_gamma_obj.is_none(), has_dbeta = !grad_beta_obj.is_none();
  py::array dgamma = has_dgamma ? inout(grad_gamma_obj, "grad_gamma", dt, {C}) : py::array();
  py::array dbeta = has_dbeta ? inout(grad_beta_obj, "grad_beta", dt, {C}) : py::array();
  py::array dx = output(grad_x_obj, "grad_x", dt, {N, C});
  check_no_overlap(dx, "grad_x", grad, "grad_out", true);
  check_no_overlap(dx, "grad_x", x, "x", true);
  // The outputs must be their own memory: apart from each other and every other operand.
  std::vector<std::pair<const py::array*, const char*>> outputs = {{&dx, "grad_x"}};
  if (has_dgamma) outputs.push_back({&dgamma, "grad_gamma"});
  if (has_dbeta) outputs.push_back({&dbeta, "grad_beta"});
  std::vector<std::pair<const py::array*, const char*>> operands = {{&mean, "mean"},
                                                                    {&inv_std, "inv_std"}};
  if (has_gamma) operands.push_back({&gamma, "gamma"});
  for (const auto& [o, o_name] : outputs) {
    for (const auto& [other, other_name] : outputs)
      if (other != o) check_no_overlap(*o, o_name, *other, other_name, false);
    for (const auto& [in, in_name] : operands) check_no_overlap(*o, o_name, *in, in_name, false);
    if (o != &dx) {
      check_no_overlap(*o, o_name, grad, "grad_out", false);
      check_no_overlap(*o, o_name, x, "x", false);
    }
  }
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T *G = cptr<T>(grad), *X = cptr<T>(x), *Mean = cptr<T>(mean);
    const T *Inv = cptr<T>(inv_std), *Gamma = cptr_or_null<T>(gamma, has_gamma);
    T *D = ptr<T>(dx), *Dg = ptr_or_null<T>(dgamma, has_dgamma);
    T* Db = ptr_or_null<T>(dbeta, has_dbeta);
    without_gil([&] {
      nnfast::batchnorm_backward<T>(D, Dg, Db, G, X, Mean, Inv, Gamma, N, C, training);
    });
  });
  return dx;
}

// ------------------------------------------------------------------------- norms, clipping, penalties

double sum_squares(py::handle x_obj) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  const int64_t n = x.size();
  return by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* X = cptr<T>(x);
    return without_gil([&] { return nnfast::sum_squares<T>(X, n); });
  });
}

py::array scale_inplace(py::handle x_obj, double alpha) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  if (!x.writeable()) throw py::value_error("x: array is read-only");
  const int64_t n = x.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* X = ptr<T>(x);
    const T a = static_cast<T>(alpha);
    without_gil([&] { nnfast::scale_inplace<T>(X, n, a); });
  });
  return x;
}

py::array clip_inplace(py::handle x_obj, double lo, double hi) {
  DType dt;
  py::array x = input(x_obj, "x", &dt);
  if (!x.writeable()) throw py::value_error("x: array is read-only");
  if (!(lo <= hi))
    throw py::value_error("lo, hi: need lo <= hi, got lo=" + py_float(lo) + ", hi=" +
                          py_float(hi));
  const int64_t n = x.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    T* X = ptr<T>(x);
    const T l = static_cast<T>(lo), h = static_cast<T>(hi);
    without_gil([&] { nnfast::clip_inplace<T>(X, n, l, h); });
  });
  return x;
}

void check_penalty(double l1, double l2) {
  if (!(l1 >= 0.0 && l2 >= 0.0))
    throw py::value_error("l1, l2: penalty coefficients must be >= 0, got l1=" + py_float(l1) +
                          ", l2=" + py_float(l2));
}

double weight_penalty_forward(py::handle w_obj, double l1, double l2) {
  DType dt;
  py::array w = input(w_obj, "w", &dt);
  check_penalty(l1, l2);
  const int64_t n = w.size();
  return by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* W = cptr<T>(w);
    return without_gil([&] {
      return l1 * nnfast::sum_abs<T>(W, n) + l2 * nnfast::sum_squares<T>(W, n);
    });
  });
}

py::array weight_penalty_backward(py::handle w_obj, py::handle grad_obj, double l1, double l2) {
  DType dt;
  py::array w = input(w_obj, "w", &dt);
  py::array grad = inout(grad_obj, "grad", dt, shape_of(w));
  check_penalty(l1, l2);
  check_no_overlap(grad, "grad", w, "w", true);
  const int64_t n = w.size();
  by_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* W = cptr<T>(w);
    T* G = ptr<T>(grad);
    const T a = static_cast<T>(l1), b = static_cast<T>(2.0 * l2);
    without_gil([&] { nnfast::weight_penalty_backward<T>(G, W, n, a, b); });
  });
  return grad;
}

// ------------------------------------------------------------------------- fused MLP training step

// Row indices into X: int64, shape (n,), every value in [0, rows).
py::array row_indices(py::handle obj, const char* name, int64_t rows) {
  py::array a = ndarray(obj, name);
  if (!a.dtype().is(py::dtype::of<int64_t>()))
    throw py::type_error(arg(name) + "expected int64 row indices, got dtype " +
                         std::string(py::str(a.dtype())));
  check_ndim(a, name, 1);
  check_layout(a, name);
  if (a.shape(0) == 0) throw py::value_error(arg(name) + "empty batch");
  const int64_t* idx = static_cast<const int64_t*>(a.data());
  for (py::ssize_t i = 0; i < a.shape(0); ++i)
    if (idx[i] < 0 || idx[i] >= rows)
      throw py::value_error(arg(name) + "row " + std::to_string(idx[i]) + " outside [0, " +
                            std::to_string(rows) + ")");
  return a;
}

// The layer list MlpTrainer takes (nnfast/fused.py builds it), one dict per op:
//   {"op": "dense", "weight", "bias", "weight_grad", "bias_grad", "activation",
//    "negative_slope", "l1", "l2"}  (activation fused into the GEMM epilogue)
//   {"op": "activation", "activation", "negative_slope"}
//   {"op": "dropout", "p", "seed", "offset": uint64 (1,), advanced in place}
//   {"op": "batchnorm", "gamma", "beta", "gamma_grad", "beta_grad" (all None when not affine),
//    "running_mean", "running_var", "momentum", "eps"}
// plus optimizer state per parameter, "<name>_state0" (SGD velocity, Adam m) and
// "<name>_state1" (Adam v), absent or None where the optimizer keeps none.
// Holds the trainer and a reference to every array it writes into, so Python cannot free
// them while it lives. Calls are serialized: a trainer has one set of workspaces.
class MlpTrainerBinding {
 public:
  MlpTrainerBinding(py::list layers, const std::string& loss) {
    if (loss == "cross_entropy") loss_ = nnfast::LossKind::cross_entropy;
    else if (loss == "mse") loss_ = nnfast::LossKind::mse;
    else if (loss == "bce_with_logits") loss_ = nnfast::LossKind::bce_with_logits;
    else throw py::value_error("loss: the fused step supports cross_entropy, mse and "
                               "bce_with_logits, not '" + loss + "'");
    const py::dict first = first_sized_op(layers);
    const bool dense = op_kind(first) == "dense";
    py::array sized = ndarray(first[dense ? "weight" : "running_mean"],
                              dense ? "weight" : "running_mean");
    dtype_ = float_dtype(sized, dense ? "weight" : "running_mean");
    in_ = sized.ndim() > 0 ? sized.shape(0) : 0;
    by_dtype(dtype_, [&](auto tag) { build<decltype(tag)>(layers); });
  }

  py::tuple step(py::handle X_obj, py::handle targets_obj, py::handle idx_obj,
                 const std::string& kind, double lr, double momentum, bool nesterov,
                 double weight_decay, double beta1, double beta2, double eps, bool decoupled,
                 int64_t step_count, std::optional<double> clipnorm,
                 std::optional<double> clipvalue) {
    py::array X = features(X_obj);
    const int64_t rows = X.shape(0);
    py::array idx = row_indices(idx_obj, "idx", rows);
    const int64_t batch = idx.shape(0);
    const int64_t* rows_ptr = cptr<int64_t>(idx);
    if (has_batchnorm_ && batch < 2)
      throw py::value_error("idx: batch norm in training mode needs at least 2 samples per "
                            "batch, got a batch of " + std::to_string(batch));
    py::array targets;
    if (loss_ == nnfast::LossKind::cross_entropy) {
      targets = ndarray(targets_obj, "targets");
      if (!targets.dtype().is(py::dtype::of<int64_t>()))
        throw py::type_error("targets: cross-entropy labels must be int64, got dtype " +
                             std::string(py::str(targets.dtype())));
      check_shape(targets, "targets", {rows});
      check_layout(targets, "targets");
      const int64_t* y = cptr<int64_t>(targets);
      for (int64_t i = 0; i < batch; ++i)  // only this batch's labels are read
        if (y[rows_ptr[i]] < 0 || y[rows_ptr[i]] >= out_)
          throw py::value_error("targets: label " + std::to_string(y[rows_ptr[i]]) +
                                " outside [0, " + std::to_string(out_) + ")");
    } else {
      targets = input_like(targets_obj, "targets", dtype_, {rows, out_});
    }
    nnfast::OptimizerConfig opt;
    if (kind == "adam") opt.kind = nnfast::OptimizerKind::adam;
    else if (kind == "sgd") opt.kind = nnfast::OptimizerKind::sgd;
    else throw py::value_error("kind: expected 'sgd' or 'adam', got '" + kind + "'");
    if (opt.kind == nnfast::OptimizerKind::adam && !(has_state0_ && has_state1_))
      throw py::value_error("kind: Adam needs m and v state arrays for every parameter");
    if (opt.kind == nnfast::OptimizerKind::sgd && momentum != 0.0 && !has_state0_)
      throw py::value_error("momentum: SGD momentum needs a velocity array for every parameter");
    if (step_count < 1) throw py::value_error("step: counts from 1");
    if (clipnorm && clipvalue) throw py::value_error("clipnorm, clipvalue: give one, not both");
    check_clip_limit(clipnorm, "clipnorm");
    check_clip_limit(clipvalue, "clipvalue");
    opt.lr = lr;
    opt.momentum = momentum;
    opt.nesterov = nesterov;
    opt.weight_decay = weight_decay;
    opt.beta1 = beta1;
    opt.beta2 = beta2;
    opt.eps = eps;
    opt.decoupled = decoupled;
    opt.step = step_count;
    opt.clipnorm = clipnorm.value_or(0.0);
    opt.clipvalue = clipvalue.value_or(0.0);

    const void* x = X.data();
    const void* t = targets.data();
    const nnfast::StepResult r = without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      return by_dtype(dtype_, [&](auto tag) {
        using T = decltype(tag);
        return trainer<T>()->step(static_cast<const T*>(x), t, rows_ptr, batch, opt);
      });
    });
    return py::make_tuple(r.loss, r.correct < 0 ? py::object(py::none()) : py::int_(r.correct));
  }

  py::array predict(py::handle X_obj, py::handle out_obj) {
    py::array X = features(X_obj);
    const int64_t batch = X.shape(0);
    py::array out = output(out_obj, "out", dtype_, {batch, out_});
    check_no_overlap(out, "out", X, "X", false);
    if (batch == 0) return out;
    const void* x = X.data();
    void* y = out.mutable_data();
    without_gil([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      by_dtype(dtype_, [&](auto tag) {
        using T = decltype(tag);
        trainer<T>()->predict(static_cast<const T*>(x), batch, static_cast<T*>(y));
      });
    });
    return out;
  }

 private:
  static void check_clip_limit(const std::optional<double>& limit, const char* name) {
    if (limit && !(*limit > 0.0))
      throw py::value_error(arg(name) + "must be positive, got " +
                            std::string(py::repr(py::float_(*limit))));
  }

  static std::string op_kind(py::dict spec) {
    if (!spec.contains("op")) throw py::value_error("layers: every op needs an 'op' entry");
    return py::str(spec["op"]);
  }

  // The first op whose arrays fix the model's input width and dtype (a Dense or batch norm).
  static py::dict first_sized_op(py::list layers) {
    for (py::handle h : layers) {
      py::dict spec = h.cast<py::dict>();
      const std::string kind = op_kind(spec);
      if (kind == "dense" || kind == "batchnorm") return spec;
    }
    throw py::value_error("layers: at least one Dense or BatchNorm1d layer is needed");
  }

  py::array features(py::handle obj) {
    py::array X = ndarray(obj, "X");
    check_dtype(X, "X", dtype_);
    check_ndim(X, "X", 2);
    check_layout(X, "X");
    if (X.shape(1) != in_)
      throw py::value_error("X: expected " + std::to_string(in_) + " features, got shape " +
                            shape_str(shape_of(X)));
    return X;
  }

  template <typename T>
  nnfast::MlpTrainer<T>* trainer() {
    if constexpr (std::is_same_v<T, float>) return f32_.get();
    else return f64_.get();
  }

  static bool has(py::dict spec, const std::string& key) {
    return spec.contains(key) && !spec[key.c_str()].is_none();
  }

  static double number(py::dict spec, const char* key, double fallback) {
    return has(spec, key) ? spec[key].cast<double>() : fallback;
  }

  // An array the trainer updates in place; null where absent and optional.
  template <typename T>
  T* array_arg(py::dict spec, const std::string& key, const Shape& shape, bool optional) {
    if (!has(spec, key)) {
      if (!optional) throw py::value_error(key + ": missing");
      return nullptr;
    }
    py::array a = inout(spec[key.c_str()], key.c_str(), dtype_, shape);
    keep_alive_.append(a);
    return ptr<T>(a);
  }

  // The parameter `name` with its gradient "<name>_grad" and optimizer state.
  template <typename T>
  nnfast::Param<T> param(py::dict spec, const std::string& name, const Shape& shape) {
    nnfast::Param<T> p;
    p.value = array_arg<T>(spec, name, shape, false);
    p.grad = array_arg<T>(spec, name + "_grad", shape, false);
    p.state0 = array_arg<T>(spec, name + "_state0", shape, true);
    p.state1 = array_arg<T>(spec, name + "_state1", shape, true);
    p.size = 1;
    for (py::ssize_t d : shape) p.size *= d;
    has_state0_ = has_state0_ && p.state0;
    has_state1_ = has_state1_ && p.state1;
    return p;
  }

  template <typename T>
  std::unique_ptr<nnfast::TrainOp<T>> dense_op(py::dict spec, int64_t width) {
    py::array w = ndarray(spec["weight"], "weight");
    check_ndim(w, "weight", 2);
    const int64_t in = w.shape(0), out = w.shape(1);
    if (in != width)
      throw py::value_error("weight: layer widths do not chain (" + std::to_string(width) +
                            " outputs into " + std::to_string(in) + " inputs)");
    const Activation act = parse_activation(spec["activation"], false);
    const T slope = static_cast<T>(number(spec, "negative_slope", 0.01));
    nnfast::Param<T> weight = param<T>(spec, "weight", {in, out});
    weight.l1 = number(spec, "l1", 0.0);
    weight.l2 = number(spec, "l2", 0.0);
    if (!(weight.l1 >= 0.0 && weight.l2 >= 0.0))
      throw py::value_error("l1, l2: penalty coefficients must be >= 0");
    const nnfast::Param<T> bias = param<T>(spec, "bias", {out});
    return std::make_unique<nnfast::DenseOp<T>>(in, out, act, slope, weight, bias);
  }

  template <typename T>
  std::unique_ptr<nnfast::TrainOp<T>> dropout_op(py::dict spec, int64_t width) {
    const double p = spec["p"].cast<double>();
    const nnfast::DropoutOptions opt = dropout_options(p, uint64_value(spec["seed"], "seed"), 0);
    py::array offset = ndarray(spec["offset"], "offset");
    if (!offset.dtype().is(py::dtype::of<uint64_t>()))
      throw py::type_error("offset: expected a uint64 counter array, got dtype " +
                           std::string(py::str(offset.dtype())));
    check_shape(offset, "offset", {1});
    check_layout(offset, "offset");
    if (!offset.writeable()) throw py::value_error("offset: array is read-only");
    keep_alive_.append(offset);
    return std::make_unique<nnfast::DropoutOp<T>>(width, opt, p != 0.0, ptr<uint64_t>(offset));
  }

  template <typename T>
  std::unique_ptr<nnfast::TrainOp<T>> batchnorm_op(py::dict spec, int64_t width) {
    T* running_mean = array_arg<T>(spec, "running_mean", {width}, false);
    T* running_var = array_arg<T>(spec, "running_var", {width}, false);
    nnfast::Param<T> gamma, beta;
    if (has(spec, "gamma")) {
      gamma = param<T>(spec, "gamma", {width});
      beta = param<T>(spec, "beta", {width});
    }
    has_batchnorm_ = true;
    return std::make_unique<nnfast::BatchNormOp<T>>(width, number(spec, "momentum", 0.1),
                                                    number(spec, "eps", 1e-5), gamma, beta,
                                                    running_mean, running_var);
  }

  template <typename T>
  void build(py::list layers) {
    std::vector<std::unique_ptr<nnfast::TrainOp<T>>> ops;
    has_state0_ = has_state1_ = true;
    int64_t width = in_;
    for (py::handle h : layers) {
      py::dict spec = h.cast<py::dict>();
      const std::string kind = op_kind(spec);
      if (kind == "dense") {
        ops.push_back(dense_op<T>(spec, width));
      } else if (kind == "activation") {
        ops.push_back(std::make_unique<nnfast::ActivationOp<T>>(
            width, parse_activation(spec["activation"], false),
            static_cast<T>(number(spec, "negative_slope", 0.01))));
      } else if (kind == "dropout") {
        ops.push_back(dropout_op<T>(spec, width));
      } else if (kind == "batchnorm") {
        ops.push_back(batchnorm_op<T>(spec, width));
      } else {
        throw py::value_error("op: expected 'dense', 'activation', 'dropout' or 'batchnorm', "
                              "got '" + kind + "'");
      }
      width = ops.back()->out_width();
    }
    out_ = width;
    auto made = std::make_unique<nnfast::MlpTrainer<T>>(std::move(ops), loss_);
    if constexpr (std::is_same_v<T, float>) f32_ = std::move(made);
    else f64_ = std::move(made);
  }

  DType dtype_ = DType::f32;
  nnfast::LossKind loss_ = nnfast::LossKind::cross_entropy;
  int64_t in_ = 0, out_ = 0;
  bool has_state0_ = true, has_state1_ = true, has_batchnorm_ = false;
  py::list keep_alive_;
  std::mutex mutex_;
  std::unique_ptr<nnfast::MlpTrainer<float>> f32_;
  std::unique_ptr<nnfast::MlpTrainer<double>> f64_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "nnfast compiled kernels (C++/OpenMP); shapes and semantics as in "
            "nnfast.backends.numpy_backend";
  const auto none = py::none();

  m.def("gemm", &gemm_entry,
        "gemm(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, "
        "bias=None, activation=None, negative_slope=0.01)\n\n"
        "out = act(alpha * op(a) @ op(b) + beta * out + bias)");
  m.def("activation_forward", &activation_forward, py::arg("kind"), py::arg("x"),
        py::arg("out") = none, py::kw_only(), py::arg("negative_slope") = 0.01,
        "y = act(x); softmax over the last axis of a 2-D x");
  m.def("activation_backward", &activation_backward, py::arg("kind"), py::arg("grad_out"),
        py::arg("x"), py::arg("y"), py::arg("out") = none, py::kw_only(),
        py::arg("negative_slope") = 0.01, "dx = dy * act'(x), given x and y = act(x)");
  m.def("softmax_cross_entropy_forward", &softmax_cross_entropy_forward, py::arg("logits"),
        py::arg("target"), py::arg("probs") = none,
        "(mean cross-entropy, probs) of softmax(logits); target int64 (N,) or (N, C)");
  m.def("softmax_cross_entropy_backward", &softmax_cross_entropy_backward, py::arg("probs"),
        py::arg("target"), py::arg("out") = none,
        "d loss / d logits = (probs * rowsum(target) - target) / N");
  m.def("mse_forward", &mse_forward, py::arg("pred"), py::arg("target"));
  m.def("mse_backward", &mse_backward, py::arg("pred"), py::arg("target"),
        py::arg("out") = none);
  m.def("bce_forward", &bce_forward, py::arg("prob"), py::arg("target"));
  m.def("bce_backward", &bce_backward, py::arg("prob"), py::arg("target"),
        py::arg("out") = none);
  m.def("bce_with_logits_forward", &bce_with_logits_forward, py::arg("logits"),
        py::arg("target"));
  m.def("bce_with_logits_backward", &bce_with_logits_backward, py::arg("logits"),
        py::arg("target"), py::arg("out") = none);
  m.def("bias_grad", &bias_grad, py::arg("grad_out"), py::arg("out") = none, py::kw_only(),
        py::arg("beta") = 0.0, "out = column sums of grad_out + beta * out");
  m.def("sgd_update", &sgd_update, py::arg("param"), py::arg("grad"),
        py::arg("velocity") = none, py::kw_only(), py::arg("lr"), py::arg("momentum") = 0.0,
        py::arg("nesterov") = false, py::arg("weight_decay") = 0.0,
        "one torch.optim.SGD step in place");
  m.def("adam_update", &adam_update, py::arg("param"), py::arg("grad"), py::arg("m"),
        py::arg("v"), py::kw_only(), py::arg("lr"), py::arg("beta1") = 0.9,
        py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
        py::arg("step"), py::arg("decoupled") = false,
        "one torch.optim.Adam (or AdamW with decoupled=True) step in place");

  py::class_<MlpTrainerBinding>(m, "MlpTrainer",
                                 "One C++ call per batch: gather, forward, loss, backward, update")
      .def(py::init<py::list, const std::string&>(), py::arg("layers"), py::arg("loss"))
      .def("step", &MlpTrainerBinding::step, py::arg("X"), py::arg("targets"), py::arg("idx"),
           py::kw_only(), py::arg("kind"), py::arg("lr"), py::arg("momentum") = 0.0,
           py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("beta1") = 0.9,
           py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("decoupled") = false,
           py::arg("step") = 1, py::arg("clipnorm") = none, py::arg("clipvalue") = none)
      .def("predict", &MlpTrainerBinding::predict, py::arg("X"), py::arg("out") = py::none());


  m.def("dropout_forward", &dropout_forward, py::arg("x"), py::arg("out") = none,
        py::arg("mask") = none, py::kw_only(), py::arg("p"), py::arg("seed"), py::arg("offset"),
        "inverted dropout with a counter-based mask; returns (out, mask)");
  m.def("dropout_backward", &dropout_backward, py::arg("grad_out"), py::arg("mask"),
        py::arg("out") = none, py::kw_only(), py::arg("p"));
  m.def("batchnorm_forward_train", &batchnorm_forward_train, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("running_mean"), py::arg("running_var"), py::arg("out") = none,
        py::arg("mean") = none, py::arg("inv_std") = none, py::kw_only(),
        py::arg("momentum") = 0.1, py::arg("eps") = 1e-5,
        "batch norm with batch statistics; returns (out, mean, inv_std)");
  m.def("batchnorm_forward_eval", &batchnorm_forward_eval, py::arg("x"), py::arg("gamma"),
        py::arg("beta"), py::arg("running_mean"), py::arg("running_var"), py::arg("out") = none,
        py::kw_only(), py::arg("eps") = 1e-5);
  m.def("batchnorm_backward", &batchnorm_backward, py::arg("grad_out"), py::arg("x"),
        py::arg("mean"), py::arg("inv_std"), py::arg("gamma"), py::arg("grad_x") = none,
        py::arg("grad_gamma") = none, py::arg("grad_beta") = none, py::kw_only(),
        py::arg("training") = true);
  m.def("sum_squares", &sum_squares, py::arg("x"), "sum(x^2), accumulated in float64");
  m.def("scale_inplace", &scale_inplace, py::arg("x"), py::kw_only(), py::arg("alpha"));
  m.def("clip_inplace", &clip_inplace, py::arg("x"), py::kw_only(), py::arg("lo"),
        py::arg("hi"));
  m.def("weight_penalty_forward", &weight_penalty_forward, py::arg("w"), py::kw_only(),
        py::arg("l1"), py::arg("l2"));
  m.def("weight_penalty_backward", &weight_penalty_backward, py::arg("w"), py::arg("grad"),
        py::kw_only(), py::arg("l1"), py::arg("l2"));

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
