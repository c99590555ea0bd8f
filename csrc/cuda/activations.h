// Activations on device pointers, forward and backward side by side (activation_device.cuh's
// scalar functions, the formulas of common/activation.h, shared with the GEMM epilogue).
#pragma once

#include <cstdint>

#include "common/activation.h"

namespace nnfast::gpu {

// inp (n), out (n); act is elementwise (not softmax). out may be inp.
template <typename T>
void activation_forward(T* out, const T* inp, int64_t n, Activation act, T negative_slope);

// dinp (n), dout (n), inp (n), out (n): dinp = dout * act'(inp). dinp may be dout.
template <typename T>
void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                         Activation act, T negative_slope);

// inp (N, C), out (N, C): softmax of each row.
template <typename T>
void softmax_forward(T* out, const T* inp, int64_t N, int64_t C);

// dinp (N, C), dout (N, C), out (N, C): dinp = out * (dout - sum_j dout_j out_j), per row.
template <typename T>
void softmax_backward(T* dinp, const T* dout, const T* out, int64_t N, int64_t C);

}  // namespace nnfast::gpu
