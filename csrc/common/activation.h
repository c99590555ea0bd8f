// Scalar activation functions and their derivatives, shared by the elementwise kernels and
// the GEMM epilogue so both compute bit-identical values.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/vector_math.h"

namespace nnfast {

// Values match the Python-side codes in nnfast/backends/_contract.py.
enum class Activation : int {
  identity = 0,
  relu = 1,
  leaky_relu = 2,
  sigmoid = 3,
  tanh = 4,
  gelu = 5,       // exact: x * Phi(x)
  gelu_tanh = 6,  // tanh approximation, as torch's approximate="tanh"
  softmax = 7,    // row-wise; not an elementwise function, handled by its own kernel
};

template <typename T>
inline T sigmoid_stable(T x) {
  // Never exponentiates a positive number, so no overflow at |x| ~ 1e4; no branch, so
  // loops over it vectorize.
  const T e = exp_vec(-std::fabs(x));
  const T inv = T(1) / (T(1) + e);
  return x >= T(0) ? inv : e * inv;
}

template <typename T>
inline T activate(Activation act, T x, T slope) {
  switch (act) {
    case Activation::relu: return x > T(0) ? x : T(0);
    case Activation::leaky_relu: return x > T(0) ? x : slope * x;
    case Activation::sigmoid: return sigmoid_stable(x);
    case Activation::tanh: return tanh_vec(x);
    case Activation::gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case Activation::gelu_tanh: {
      const T k = T(0.79788456080286535588);  // sqrt(2/pi)
      return T(0.5) * x * (T(1) + tanh_vec(k * (x + T(0.044715) * x * x * x)));
    }
    default: return x;
  }
}

// d activation / d x, given the input x and the output y = activate(x).
template <typename T>
inline T activate_grad(Activation act, T x, T y, T slope) {
  switch (act) {
    case Activation::relu: return x > T(0) ? T(1) : T(0);
    case Activation::leaky_relu: return x > T(0) ? T(1) : slope;
    case Activation::sigmoid: return y * (T(1) - y);
    case Activation::tanh: return T(1) - y * y;
    case Activation::gelu: {
      const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
      const T pdf = T(0.39894228040143267794) * exp_vec(T(-0.5) * x * x);  // 1/sqrt(2pi)
      return cdf + x * pdf;
    }
    case Activation::gelu_tanh: {
      const T k = T(0.79788456080286535588);
      const T inner = k * (x + T(0.044715) * x * x * x);
      const T t = tanh_vec(inner);
      const T dinner = k * (T(1) + T(3) * T(0.044715) * x * x);
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
    }
    default: return T(1);
  }
}

// Whether activate_grad needs x itself, not only y = activate(x): an executor that keeps
// only the output (a GEMM epilogue) must then keep a pre-activation copy.
template <typename T>
constexpr bool grad_needs_input(Activation act, T parameter) {
  return act == Activation::gelu || act == Activation::gelu_tanh ||
         (act == Activation::leaky_relu && !(parameter > T(0)));
}

}  // namespace nnfast
