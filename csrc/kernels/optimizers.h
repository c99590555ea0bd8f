// Optimizer steps, in place, with torch.optim's formulas in torch's order of operations.
#pragma once

#include <cstdint>

namespace nnfast {

struct SgdOptions {
  double lr = 0.01, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};

// param (n), grad (n), velocity (n) or null when momentum == 0:
// g = grad + wd * param; v = momentum * v + g; param -= lr * (nesterov ? g + momentum * v : v)
// previous (n) or null: receives param as it was before this update, in the same pass
// (TerminateOnNaN keeps the weights each batch starts from; a separate copy would read param
// once more).
template <typename T>
void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const SgdOptions& opt,
                T* previous = nullptr);

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;        // counts from 1
  bool decoupled = false;  // AdamW: param *= 1 - lr * wd instead of the L2 term in g
};

// param (n), grad (n), m (n), v (n):
// g = grad (+ wd * param); m += (g - m)(1 - b1); v = b2 v + (1 - b2) g g;
// param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// previous (n) or null: as sgd_update's.
template <typename T>
void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamOptions& opt,
                 T* previous = nullptr);

}  // namespace nnfast
