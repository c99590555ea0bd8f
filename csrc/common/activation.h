// Scalar activation functions and their derivatives, shared by the elementwise kernels and
// the GEMM epilogue so both compute bit-identical values. Adding an activation here (the
// enum, its name, its formulas) adds it to every CPU kernel and parser;
// cuda/activation_device.cuh has the CUDA formulas.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>

#include "common/vector_math.h"

namespace nnfast {

enum class Activation : int {
  identity = 0,
  relu = 1,
  leaky_relu = 2,
  sigmoid = 3,
  tanh = 4,
  gelu = 5,       // exact: x * Phi(x)
  gelu_tanh = 6,  // tanh approximation, as torch's approximate="tanh"
  softmax = 7,    // row-wise; not an elementwise function, handled by its own kernel
  silu = 8,       // x * sigmoid(x), also called Swish
  elu = 9,
};

struct ActivationName {
  const char* name;
  Activation act;
};

// The names the Python side passes ("linear" is identity's alias). The bindings' parsers
// loop over it, and with_activation compiles a loop per entry.
inline constexpr ActivationName kActivationNames[] = {
    {"identity", Activation::identity}, {"linear", Activation::identity},
    {"relu", Activation::relu},         {"leaky_relu", Activation::leaky_relu},
    {"sigmoid", Activation::sigmoid},   {"tanh", Activation::tanh},
    {"gelu", Activation::gelu},         {"gelu_tanh", Activation::gelu_tanh},
    {"softmax", Activation::softmax},   {"silu", Activation::silu},
    {"elu", Activation::elu},
};

template <typename T>
inline T sigmoid_stable(T x) {
  // Never exponentiates a positive number, so no overflow at |x| ~ 1e4; no branch, so
  // loops over it vectorize.
  const T e = exp_vec(-std::fabs(x));
  const T inv = T(1) / (T(1) + e);
  return x >= T(0) ? inv : e * inv;
}

// `param` is the activation's parameter: leaky ReLU's negative slope, ELU's alpha.
template <typename T>
inline T activate(Activation act, T x, T param) {
  switch (act) {
    case Activation::relu: return x > T(0) ? x : T(0);
    case Activation::leaky_relu: return x > T(0) ? x : param * x;
    case Activation::sigmoid: return sigmoid_stable(x);
    case Activation::tanh: return tanh_vec(x);
    case Activation::gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case Activation::gelu_tanh: {
      const T k = T(0.79788456080286535588);  // sqrt(2/pi)
      return T(0.5) * x * (T(1) + tanh_vec(k * (x + T(0.044715) * x * x * x)));
    }
    case Activation::silu: return x * sigmoid_stable(x);
    case Activation::elu: return x > T(0) ? x : param * expm1_vec(x);
    default: return x;
  }
}

// d activation / d x, given the input x and the output y = activate(x). Where
// grad_needs_input is false, y may be passed for x too.
template <typename T>
inline T activate_grad(Activation act, T x, T y, T param) {
  switch (act) {
    case Activation::relu: return x > T(0) ? T(1) : T(0);
    case Activation::leaky_relu: return x > T(0) ? T(1) : param;
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
    case Activation::silu: {
      const T s = sigmoid_stable(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case Activation::elu: return x > T(0) ? T(1) : y + param;  // alpha exp(x), without an exp
    default: return T(1);
  }
}

// Whether activate_grad needs x itself, so that a trainer keeps the pre-activation. The
// other derivatives follow from y; for leaky ReLU and ELU only while the parameter is > 0,
// as then y > 0 exactly where x > 0.
constexpr bool grad_needs_input(Activation act, double param) {
  switch (act) {
    case Activation::gelu:
    case Activation::gelu_tanh:
    case Activation::silu: return true;
    case Activation::leaky_relu:
    case Activation::elu: return !(param > 0.0);
    default: return false;
  }
}

// Calls f(std::integral_constant<Activation, A>{}) for A == act, so that a loop can take the
// activation as a template argument: with activate's switch folded away, it vectorizes.
// Softmax, which has its own kernels, gets identity.
template <std::size_t I = 0, typename F>
void with_activation(Activation act, F&& f) {
  if constexpr (I == std::size(kActivationNames)) {
    f(std::integral_constant<Activation, Activation::identity>{});
  } else {
    constexpr Activation A = kActivationNames[I].act;
    if constexpr (A != Activation::softmax)
      if (act == A) return f(std::integral_constant<Activation, A>{});
    with_activation<I + 1>(act, std::forward<F>(f));
  }
}

}  // namespace nnfast
