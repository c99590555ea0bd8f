#include "kernels/optimizers.h"

#include <cmath>

#include "common/parallel.h"
#include "common/simd_clones.h"
#include "common/threading.h"

namespace nnfast {

// Scalars are rounded to T once, as the reference's dt(...) does, then every operation runs
// in T in the reference's order, so float32 results match it to the last bit or two.

namespace {

// The optimizer's variant is a template argument so each loop is branch-free and vectorizes.
template <bool kDecay, bool kMomentum, bool kNesterov, bool kKeep, typename T>
NNFAST_SIMD_CLONES void sgd_range(T* param, const T* grad, T* velocity, T* previous,
                                  int64_t begin, int64_t end, T lr, T mom, T wd) {
  for (int64_t i = begin; i < end; ++i) {
    if (kKeep) previous[i] = param[i];
    T g = kDecay ? grad[i] + wd * param[i] : grad[i];
    if (kMomentum) {
      const T vel = mom * velocity[i] + g;
      velocity[i] = vel;
      g = kNesterov ? g + mom * vel : vel;
    }
    param[i] -= lr * g;
  }
}

template <bool kDecay, bool kMomentum, bool kNesterov, bool kKeep, typename T>
void sgd_loop(T* param, const T* grad, T* velocity, T* previous, int64_t n,
              const SgdOptions& opt) {
  const T lr = static_cast<T>(opt.lr), mom = static_cast<T>(opt.momentum);
  const T wd = static_cast<T>(opt.weight_decay);
  parallel_ranges(n, threads_for(n, kMinCheapElementsPerThread), [&](int64_t b, int64_t e) {
    sgd_range<kDecay, kMomentum, kNesterov, kKeep>(param, grad, velocity, previous, b, e, lr,
                                                   mom, wd);
  });
}

template <bool kDecoupled, bool kL2, bool kKeep, typename T>
NNFAST_SIMD_CLONES void adam_range(T* param, const T* grad, T* m, T* v, T* previous,
                                   int64_t begin, int64_t end, T shrink, T wd, T one_minus_b1,
                                   T b2, T one_minus_b2, T bias_correction2_sqrt, T eps,
                                   T step_size) {
  for (int64_t i = begin; i < end; ++i) {
    T p = param[i];
    if (kKeep) previous[i] = p;
    if (kDecoupled) p *= shrink;
    const T g = kL2 ? grad[i] + wd * p : grad[i];
    const T mi = m[i] + (g - m[i]) * one_minus_b1;
    const T vi = v[i] * b2 + one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const T denom = std::sqrt(vi) / bias_correction2_sqrt + eps;
    param[i] = p - step_size * (mi / denom);
  }
}

template <bool kDecoupled, bool kL2, bool kKeep, typename T>
void adam_loop(T* param, const T* grad, T* m, T* v, T* previous, int64_t n,
               const AdamOptions& opt) {
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
    adam_range<kDecoupled, kL2, kKeep>(param, grad, m, v, previous, b, e, shrink, wd,
                                       one_minus_b1, b2, one_minus_b2, bias_correction2_sqrt,
                                       eps, step_size);
  });
}

// The variant's flags as template arguments, each combination its own branch-free loop.
template <bool kKeep, typename T>
void sgd_variant(T* param, const T* grad, T* velocity, T* previous, int64_t n,
                 const SgdOptions& opt) {
  const bool decay = opt.weight_decay != 0.0;
  if (opt.momentum == 0.0) {
    if (decay) return sgd_loop<true, false, false, kKeep>(param, grad, velocity, previous, n, opt);
    return sgd_loop<false, false, false, kKeep>(param, grad, velocity, previous, n, opt);
  }
  if (opt.nesterov) {
    if (decay) return sgd_loop<true, true, true, kKeep>(param, grad, velocity, previous, n, opt);
    return sgd_loop<false, true, true, kKeep>(param, grad, velocity, previous, n, opt);
  }
  if (decay) return sgd_loop<true, true, false, kKeep>(param, grad, velocity, previous, n, opt);
  return sgd_loop<false, true, false, kKeep>(param, grad, velocity, previous, n, opt);
}

template <bool kKeep, typename T>
void adam_variant(T* param, const T* grad, T* m, T* v, T* previous, int64_t n,
                  const AdamOptions& opt) {
  if (opt.decoupled) return adam_loop<true, false, kKeep>(param, grad, m, v, previous, n, opt);
  if (opt.weight_decay != 0.0)
    return adam_loop<false, true, kKeep>(param, grad, m, v, previous, n, opt);
  return adam_loop<false, false, kKeep>(param, grad, m, v, previous, n, opt);
}

}  // namespace

template <typename T>
void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const SgdOptions& opt,
                T* previous) {
  if (previous) return sgd_variant<true>(param, grad, velocity, previous, n, opt);
  sgd_variant<false>(param, grad, velocity, previous, n, opt);
}

template <typename T>
void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamOptions& opt,
                 T* previous) {
  if (previous) return adam_variant<true>(param, grad, m, v, previous, n, opt);
  adam_variant<false>(param, grad, m, v, previous, n, opt);
}

template void sgd_update<float>(float*, const float*, float*, int64_t, const SgdOptions&,
                                float*);
template void sgd_update<double>(double*, const double*, double*, int64_t, const SgdOptions&,
                                 double*);
template void adam_update<float>(float*, const float*, float*, float*, int64_t,
                                 const AdamOptions&, float*);
template void adam_update<double>(double*, const double*, double*, double*, int64_t,
                                  const AdamOptions&, double*);

}  // namespace nnfast
