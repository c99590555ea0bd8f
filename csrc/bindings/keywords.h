// gemm's arguments matched by hand. pybind11's keyword matching looks each parameter up in
// the keywords by a new string and copies the dict: 0.5 us a call (0.94 against 0.41 us for
// 1 x 1 x 1 with two keywords), 8% of a 64 x 128 x 64 product. Here keywords are compared
// with interned names by identity (call sites intern identifiers), by value otherwise.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

namespace py = pybind11;

namespace nnfast::bindings {

class Signature {
 public:
  Signature(const char* function, std::vector<const char*> names, size_t positional,
            size_t required);
  size_t size() const { return names_.size(); }

  // values[i]: the i-th parameter's object, or a null handle when not given.
  void match(const py::args& args, const py::kwargs& kwargs, py::handle* values) const;

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
  size_t find(py::handle key) const;

  std::string function_;
  std::vector<const char*> names_;
  size_t positional_, required_;
  std::vector<PyObject*> interned_;
};

}  // namespace nnfast::bindings
