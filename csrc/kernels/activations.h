// Elementwise activations, forward and backward side by side.
#pragma once

#include <cstdint>

#include "common/activation.h"

namespace nnfast {

// inp (n), out (n)
template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope);

// dinp (n), dout (n), inp (n), out (n): dinp = dout * act'(inp)
template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T negative_slope);

}  // namespace nnfast
