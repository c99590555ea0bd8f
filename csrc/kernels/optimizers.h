// TEMPORARY (fused branch only; replaced by the cpp branch's kernels at merge)
#pragma once
#include <cmath>
#include <cstdint>
namespace nnfast {
template <typename T>
void sgd_update(T* p, const T* g, T* v, int64_t n, double lr, double momentum, bool nesterov, double wd) {
  for (int64_t i = 0; i < n; ++i) {
    T d = g[i] + T(wd) * p[i];
    if (momentum != 0) { v[i] = T(momentum) * v[i] + d; d = nesterov ? d + T(momentum) * v[i] : v[i]; }
    p[i] -= T(lr) * d;
  }
}
template <typename T>
void adam_update(T* p, const T* g, T* m, T* v, int64_t n, double lr, double b1, double b2, double eps, double wd, int64_t step, bool decoupled) {
  const double bc1 = 1 - std::pow(b1, step), bc2s = std::sqrt(1 - std::pow(b2, step));
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i];
    if (decoupled) p[i] *= T(1 - lr * wd); else gi += T(wd) * p[i];
    m[i] += (gi - m[i]) * T(1 - b1);
    v[i] = T(b2) * v[i] + T(1 - b2) * gi * gi;
    p[i] -= T(lr / bc1) * (m[i] / (std::sqrt(v[i]) / T(bc2s) + T(eps)));
  }
}
}
