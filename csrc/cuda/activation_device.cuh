// The scalar activations of common/activation.h for CUDA kernels: the same formulas with
// CUDA's math functions (the CPU header is tuned for host vectorization). Used by the
// elementwise kernels and the GEMM epilogue, so both compute the same values.
#pragma once

#include <cmath>

#include "common/activation.h"

namespace nnfast::gpu {

template <typename T>
__device__ inline T sigmoid_stable_device(T x) {
  // Never exponentiates a positive number, so no overflow at |x| ~ 1e4.
  const T e = std::exp(-std::fabs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// `param` is the activation's parameter: leaky ReLU's negative slope, ELU's alpha.
template <typename T>
__device__ inline T activate_device(Activation act, T x, T param) {
  switch (act) {
    case Activation::relu: return x > T(0) ? x : T(0);
    case Activation::leaky_relu: return x > T(0) ? x : param * x;
    case Activation::sigmoid: return sigmoid_stable_device(x);
    case Activation::tanh: return std::tanh(x);
    case Activation::gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case Activation::gelu_tanh: {
      const T k = T(0.79788456080286535588);  // sqrt(2/pi)
      return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
    }
    case Activation::silu: return x * sigmoid_stable_device(x);
    case Activation::elu: return x > T(0) ? x : param * std::expm1(x);
    default: return x;
  }
}

// d activation / d x, given the input x and the output y = activate(x) (y for x too where
// grad_needs_input is false).
template <typename T>
__device__ inline T activate_grad_device(Activation act, T x, T y, T param) {
  switch (act) {
    case Activation::relu: return x > T(0) ? T(1) : T(0);
    case Activation::leaky_relu: return x > T(0) ? T(1) : param;
    case Activation::sigmoid: return y * (T(1) - y);
    case Activation::tanh: return T(1) - y * y;
    case Activation::gelu: {
      const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
      const T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);  // 1/sqrt(2pi)
      return cdf + x * pdf;
    }
    case Activation::gelu_tanh: {
      const T k = T(0.79788456080286535588);
      const T inner = k * (x + T(0.044715) * x * x * x);
      const T t = std::tanh(inner);
      const T dinner = k * (T(1) + T(3) * T(0.044715) * x * x);
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
    }
    case Activation::silu: {
      const T s = sigmoid_stable_device(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case Activation::elu: return x > T(0) ? T(1) : y + param;  // alpha exp(x), without an exp
    default: return T(1);
  }
}

}  // namespace nnfast::gpu
