#include "kernels/optimizers.h"

#include <cmath>

#include "common/parallel.h"
#include "common/threading.h"

namespace nnfast {

// Scalars are rounded to T once, as the reference's dt(...) does, then every operation runs
// in T in the reference's order, so float32 results match it to the last bit or two.

template <typename T>
void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const SgdOptions& opt) {
  const T lr = static_cast<T>(opt.lr), mom = static_cast<T>(opt.momentum);
  const T wd = static_cast<T>(opt.weight_decay);
  const bool decay = opt.weight_decay != 0.0, momentum = opt.momentum != 0.0;
  const bool nesterov = opt.nesterov;
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T g = decay ? grad[i] + wd * param[i] : grad[i];
      if (momentum) {
        const T vel = mom * velocity[i] + g;
        velocity[i] = vel;
        g = nesterov ? g + mom * vel : vel;
      }
      param[i] -= lr * g;
    }
  });
}

template <typename T>
void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamOptions& opt) {
  const bool decoupled = opt.decoupled, l2 = !opt.decoupled && opt.weight_decay != 0.0;
  const T shrink = static_cast<T>(1.0 - opt.lr * opt.weight_decay);
  const T wd = static_cast<T>(opt.weight_decay);
  const T one_minus_b1 = static_cast<T>(1.0 - opt.beta1);
  const T b2 = static_cast<T>(opt.beta2), one_minus_b2 = static_cast<T>(1.0 - opt.beta2);
  const double bias_correction1 = 1.0 - std::pow(opt.beta1, static_cast<double>(opt.step));
  const T bias_correction2_sqrt =
      static_cast<T>(std::sqrt(1.0 - std::pow(opt.beta2, static_cast<double>(opt.step))));
  const T eps = static_cast<T>(opt.eps);
  const T step_size = static_cast<T>(opt.lr / bias_correction1);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T p = param[i];
      if (decoupled) p *= shrink;
      const T g = l2 ? grad[i] + wd * p : grad[i];
      const T mi = m[i] + (g - m[i]) * one_minus_b1;
      const T vi = v[i] * b2 + one_minus_b2 * g * g;
      m[i] = mi;
      v[i] = vi;
      const T denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
      param[i] = p - step_size * (mi / denom);
    }
  });
}

template void sgd_update<float>(float*, const float*, float*, int64_t, const SgdOptions&);
template void sgd_update<double>(double*, const double*, double*, int64_t, const SgdOptions&);
template void adam_update<float>(float*, const float*, float*, float*, int64_t,
                                 const AdamOptions&);
template void adam_update<double>(double*, const double*, double*, double*, int64_t,
                                  const AdamOptions&);

}  // namespace nnfast
