#include "bindings/keywords.h"

#include <utility>

namespace nnfast::bindings {

Signature::Signature(const char* function, std::vector<const char*> names, size_t positional,
                     size_t required)
    : function_(function), names_(std::move(names)), positional_(positional),
      required_(required) {
  // Held for the life of the process: never released after the interpreter is gone.
  for (const char* name : names_) interned_.push_back(PyUnicode_InternFromString(name));
}

void Signature::match(const py::args& args, const py::kwargs& kwargs,
                      py::handle* values) const {
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

size_t Signature::find(py::handle key) const {
  for (size_t i = 0; i < size(); ++i)
    if (key.ptr() == interned_[i]) return i;
  for (size_t i = 0; i < size(); ++i)
    if (PyUnicode_Compare(key.ptr(), interned_[i]) == 0) return i;
  if (PyErr_Occurred()) PyErr_Clear();
  return size();
}

}  // namespace nnfast::bindings
