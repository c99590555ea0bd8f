#include "cuda/optimizers.h"

#include <cmath>

#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

template <typename T>
__global__ void sgd_update_kernel(T* param, const T* grad, T* velocity, int64_t n, T lr,
                                  T momentum, bool nesterov, T weight_decay) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    T g = weight_decay != T(0) ? grad[i] + weight_decay * param[i] : grad[i];
    if (velocity) {
      const T v = momentum * velocity[i] + g;
      velocity[i] = v;
      g = nesterov ? g + momentum * v : v;
    }
    param[i] -= lr * g;
  }
}

// Scalars in T, each rounded once from its double value on the host, as the reference does.
template <typename T>
struct AdamScalars {
  T decay;         // 1 - lr wd, for AdamW
  T weight_decay;  // for Adam's L2 term
  T one_minus_beta1, beta2, one_minus_beta2;
  T step_size;              // lr / (1 - beta1^step)
  T bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  T eps;
  bool decoupled;
};

template <typename T>
__global__ void adam_update_kernel(T* param, const T* grad, T* m, T* v, int64_t n,
                                   AdamScalars<T> s) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    T p = param[i];
    T g = grad[i];
    if (s.decoupled) p *= s.decay;
    else if (s.weight_decay != T(0)) g += s.weight_decay * p;
    const T mi = m[i] + (g - m[i]) * s.one_minus_beta1;
    const T vi = s.beta2 * v[i] + s.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = p - s.step_size * (mi / (std::sqrt(vi) / s.bias_correction2_sqrt + s.eps));
  }
}

}  // namespace

template <typename T>
void sgd_update(T* param, const T* grad, T* velocity, int64_t n, double lr, double momentum,
                bool nesterov, double weight_decay) {
  if (n <= 0) return;
  sgd_update_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      param, grad, momentum != 0.0 ? velocity : nullptr, n, T(lr), T(momentum), nesterov,
      T(weight_decay));
  check_launch("sgd_update");
}

template <typename T>
void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, double lr, double beta1,
                 double beta2, double eps, double weight_decay, int64_t step, bool decoupled) {
  if (n <= 0) return;
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const AdamScalars<T> s{T(1.0 - lr * weight_decay), T(weight_decay), T(1.0 - beta1), T(beta2),
                         T(1.0 - beta2), T(lr / bias_correction1),
                         T(std::sqrt(bias_correction2)), T(eps), decoupled};
  adam_update_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(param, grad, m, v, n, s);
  check_launch("adam_update");
}

template void sgd_update<float>(float*, const float*, float*, int64_t, double, double, bool, double);
template void sgd_update<double>(double*, const double*, double*, int64_t, double, double, bool,
                                 double);
template void adam_update<float>(float*, const float*, float*, float*, int64_t, double, double,
                                 double, double, double, int64_t, bool);
template void adam_update<double>(double*, const double*, double*, double*, int64_t, double,
                                  double, double, double, double, int64_t, bool);

}  // namespace nnfast::gpu
