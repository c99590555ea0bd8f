// The argument checks of nnfast._core and nnfast._cuda: every entry point checks its
// arguments with the GIL held (ndarray type, dtype, shape, C-contiguity, alignment,
// writability, label range, overlap between outputs and inputs) and raises
// TypeError/ValueError naming the argument, never converting silently; then it releases the
// GIL and calls the kernel. Header-only so that the CUDA module, a separate extension built
// from cuda_bindings.cpp alone, shares them without linking the CPU module's objects.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "common/activation.h"
#include "common/fpu_guard.h"
#include "kernels/dropout.h"

namespace py = pybind11;

namespace nnfast::bindings {

using Shape = std::vector<py::ssize_t>;

enum class DType { f32, f64 };

inline const char* dtype_name(DType dt) { return dt == DType::f32 ? "float32" : "float64"; }

// ------------------------------------------------------------------------- argument checks

inline std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

inline std::string arg(const char* name) { return std::string(name) + ": "; }

// Whether `a` holds native-endian elements of type T. Compared by value: an array rebuilt by
// pickle or copy carries its own dtype object, equal to NumPy's canonical one but not it.
template <typename T>
inline bool has_dtype(const py::array& a) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(),
                                                        py::dtype::of<T>().ptr());
}

inline py::array ndarray(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(arg(name) + "expected a numpy.ndarray, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(obj);
}

inline DType float_dtype(const py::array& a, const char* name) {
  // has_dtype compares byte order too: a big-endian float32 is refused, not swapped.
  if (has_dtype<float>(a)) return DType::f32;
  if (has_dtype<double>(a)) return DType::f64;
  throw py::type_error(arg(name) + "expected a float32 or float64 array, got dtype " +
                       std::string(py::str(a.dtype())));
}

inline void check_dtype(const py::array& a, const char* name, DType want) {
  if (float_dtype(a, name) != want)
    throw py::type_error(arg(name) + "dtype " + std::string(py::str(a.dtype())) +
                         " does not match the other operands (" + dtype_name(want) + ")");
}

inline void check_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(arg(name) + "expected a " + std::to_string(ndim) +
                          "-D array, got shape " + shape_str(shape_of(a)));
}

inline void check_shape(const py::array& a, const char* name, const Shape& shape) {
  if (shape_of(a) != shape)
    throw py::value_error(arg(name) + "expected shape " + shape_str(shape) + ", got " +
                          shape_str(shape_of(a)));
}

inline void check_layout(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(arg(name) + "array must be C-contiguous (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % a.itemsize() != 0)
    throw py::value_error(arg(name) + "array data is misaligned");
}

// A float array read by a kernel; its dtype sets the dtype of the call.
inline py::array input(py::handle obj, const char* name, DType* dt, py::ssize_t ndim = -1) {
  py::array a = ndarray(obj, name);
  *dt = float_dtype(a, name);
  if (ndim >= 0) check_ndim(a, name, ndim);
  check_layout(a, name);
  return a;
}

// A float array read by a kernel, of the call's dtype and a given shape.
inline py::array input_like(py::handle obj, const char* name, DType dt, const Shape& shape) {
  py::array a = ndarray(obj, name);
  check_dtype(a, name, dt);
  check_shape(a, name, shape);
  check_layout(a, name);
  return a;
}

inline py::array new_array(DType dt, const Shape& shape) {
  if (dt == DType::f32) return py::array_t<float>(shape);
  return py::array_t<double>(shape);
}

// The result array: a new one when obj is None, else obj after checking it can take it.
inline py::array output(py::handle obj, const char* name, DType dt, const Shape& shape) {
  if (obj.is_none()) return new_array(dt, shape);
  py::array a = input_like(obj, name, dt, shape);
  if (!a.writeable()) throw py::value_error(arg(name) + "output array is read-only");
  return a;
}

// An array updated in place (parameters, optimizer state).
inline py::array inout(py::handle obj, const char* name, DType dt, const Shape& shape) {
  py::array a = input_like(obj, name, dt, shape);
  if (!a.writeable()) throw py::value_error(arg(name) + "array is read-only");
  return a;
}

struct Bytes {
  std::uintptr_t begin, end;
};
inline Bytes bytes_of(const py::array& a) {
  const auto begin = reinterpret_cast<std::uintptr_t>(a.data());
  return {begin, begin + static_cast<std::uintptr_t>(a.nbytes())};
}

// A kernel writing `out` while reading `in` needs them apart, or (for kernels that read
// every element before writing it) exactly the same array.
inline void check_no_overlap(const py::array& out, const char* out_name, const py::array& in,
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
inline py::array labels(py::handle obj, const char* name, py::ssize_t n, int64_t num_classes) {
  py::array a = ndarray(obj, name);
  if (!has_dtype<int64_t>(a))
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

inline Activation parse_activation(const py::object& kind, bool allow_softmax) {
  if (kind.is_none()) return Activation::identity;
  const std::string s = py::str(kind);
  for (const auto& [name, act] : nnfast::kActivationNames)
    if (s == name && (allow_softmax || act != Activation::softmax)) return act;
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

inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// Takes the GIL back after a kernel. A daemon thread whose kernel ends while the interpreter
// shuts down must not touch Python again: CPython 3.8-3.13 end such a thread with
// pthread_exit, whose unwinding aborts the process ("terminate called without an active
// exception") when it crosses a noexcept frame such as gil_scoped_release's destructor
// (pybind11#2215). So the thread waits, holding nothing, for the process to exit, as
// CPython 3.14 itself makes such threads do. This is plain code, not a destructor: should
// finalization start just after the check, pthread_exit unwinds through it cleanly.
inline void retake_gil(PyThreadState* state) {
  while (interpreter_finalizing()) std::this_thread::sleep_for(std::chrono::seconds(1));
  PyEval_RestoreThread(state);
}

// Runs a kernel without the GIL and with denormals flushed. `kernel` gets only raw pointers
// and sizes taken beforehand: it must not touch a Python object. Its exception is rethrown
// once the GIL is held again.
template <typename F>
auto without_gil(F&& kernel) {
  using Result = decltype(kernel());
  PyThreadState* const state = PyEval_SaveThread();
  std::exception_ptr error;
  if constexpr (std::is_void_v<Result>) {
    try {
      nnfast::FpuGuard fpu;
      kernel();
    } catch (...) {
      error = std::current_exception();
    }
    retake_gil(state);
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<Result> result;
    try {
      nnfast::FpuGuard fpu;
      result.emplace(kernel());
    } catch (...) {
      error = std::current_exception();
    }
    retake_gil(state);
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }
}

// ------------------------------------------------------------------------- scalar arguments

// A float formatted as Python prints it, for messages that match the reference's.
inline std::string py_float(double v) { return py::repr(py::float_(v)); }

inline double dropout_probability(double p) {
  if (!(p >= 0.0 && p < 1.0))  // written so that NaN fails too
    throw py::value_error("p: dropout probability must lie in [0, 1), got " + py_float(p));
  return p;
}

// The kernel's options for probability p, shared by dropout_forward and the trainers so
// that all draw the same mask.
inline nnfast::DropoutOptions dropout_options(double p, uint64_t seed, uint64_t offset) {
  p = dropout_probability(p);
  nnfast::DropoutOptions opt;
  opt.seed = seed;
  opt.offset = offset;
  opt.threshold = static_cast<uint64_t>(p * 4294967296.0);
  opt.scale = 1.0 / (1.0 - p);
  return opt;
}

// A Python int (or numpy integer, not bool) in [0, 2**64): seeds and counters of the RNG.
inline uint64_t uint64_value(py::handle obj, const char* name) {
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

}  // namespace nnfast::bindings
