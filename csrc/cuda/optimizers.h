// Optimizer updates on device pointers, one fused pass over a parameter tensor, with the
// update rules of nnfast/backends/numpy_backend.py (torch.optim's SGD, Adam and AdamW).
#pragma once

#include <cstdint>

namespace nnfast::gpu {

// param (n), grad (n), velocity (n) or null when momentum is 0:
// g = grad + wd p; v = momentum v + g; p -= lr (g + momentum v if nesterov else v).
template <typename T>
void sgd_update(T* param, const T* grad, T* velocity, int64_t n, double lr, double momentum,
                bool nesterov, double weight_decay);

// param (n), grad (n), m (n), v (n); step counts from 1. decoupled: AdamW's decay.
template <typename T>
void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, double lr, double beta1,
                 double beta2, double eps, double weight_decay, int64_t step, bool decoupled);

}  // namespace nnfast::gpu
