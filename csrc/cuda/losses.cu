#include "cuda/losses.h"

#include <cmath>

#include "cuda/activation_device.cuh"
#include "cuda/launch.cuh"

namespace nnfast::gpu {

namespace {

constexpr double kBceLogMin = -100.0;  // torch.nn.BCELoss's clamp of each log term
constexpr double kBceGradEps = 1e-12;

// One thread per row: class counts are small, and a row's sums stay in one thread's order.
template <typename T>
__global__ void softmax_cross_entropy_forward_kernel(T* probs, double* row_loss, const T* logits,
                                                     const int64_t* labels, const T* target,
                                                     int64_t N, int64_t C) {
  NNFAST_GRID_STRIDE_LOOP(row, N) {
    const T* z = logits + row * C;
    T* p = probs + row * C;
    T max = z[0];
    for (int64_t j = 1; j < C; ++j) max = z[j] > max ? z[j] : max;
    T sum = T(0);
    for (int64_t j = 0; j < C; ++j) sum += std::exp(z[j] - max);
    const T log_z = std::log(sum);
    for (int64_t j = 0; j < C; ++j) p[j] = std::exp(z[j] - max - log_z);
    if (labels) {
      const int64_t label = labels[row];
      // Labels are checked before the launch; a bad one gives NaN, never a stray read.
      row_loss[row] = label >= 0 && label < C ? static_cast<double>(log_z - (z[label] - max)) : NAN;
    } else {
      const T* t = target + row * C;
      T loss = T(0);
      for (int64_t j = 0; j < C; ++j) loss -= t[j] * (z[j] - max - log_z);
      row_loss[row] = static_cast<double>(loss);
    }
  }
}

template <typename T>
__global__ void softmax_cross_entropy_backward_kernel(T* dlogits, const T* probs,
                                                      const int64_t* labels, const T* target,
                                                      int64_t N, int64_t C, T inv_n) {
  NNFAST_GRID_STRIDE_LOOP(row, N) {
    const T* p = probs + row * C;
    T* d = dlogits + row * C;
    if (labels) {
      const int64_t label = labels[row];
      for (int64_t j = 0; j < C; ++j) d[j] = (j == label ? p[j] - T(1) : p[j]) * inv_n;
    } else {
      const T* t = target + row * C;
      T t_sum = T(0);
      for (int64_t j = 0; j < C; ++j) t_sum += t[j];
      for (int64_t j = 0; j < C; ++j) d[j] = (p[j] * t_sum - t[j]) * inv_n;
    }
  }
}

template <typename T>
__global__ void mse_forward_kernel(double* elem_loss, const T* pred, const T* target, int64_t n) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T d = pred[i] - target[i];
    elem_loss[i] = static_cast<double>(d * d);
  }
}

template <typename T>
__global__ void mse_backward_kernel(T* dpred, const T* pred, const T* target, int64_t n, T scale) {
  NNFAST_GRID_STRIDE_LOOP(i, n) dpred[i] = scale * (pred[i] - target[i]);
}

template <typename T>
__global__ void bce_forward_kernel(double* elem_loss, const T* prob, const T* target, int64_t n) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T p = prob[i], t = target[i];
    const T log_p = std::fmax(std::log(p), T(kBceLogMin));
    const T log_1mp = std::fmax(std::log(T(1) - p), T(kBceLogMin));
    elem_loss[i] = static_cast<double>(-(t * log_p + (T(1) - t) * log_1mp));
  }
}

template <typename T>
__global__ void bce_backward_kernel(T* dprob, const T* prob, const T* target, int64_t n,
                                    T count) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T p = prob[i];
    const T denom = std::fmax(p * (T(1) - p), T(kBceGradEps));
    dprob[i] = (p - target[i]) / denom / count;
  }
}

template <typename T>
__global__ void bce_with_logits_forward_kernel(double* elem_loss, const T* logits,
                                               const T* target, int64_t n) {
  NNFAST_GRID_STRIDE_LOOP(i, n) {
    const T z = logits[i];
    elem_loss[i] = static_cast<double>(std::fmax(z, T(0)) - z * target[i] +
                                       std::log1p(std::exp(-std::fabs(z))));
  }
}

template <typename T>
__global__ void bce_with_logits_backward_kernel(T* dlogits, const T* logits, const T* target,
                                                int64_t n, T count) {
  NNFAST_GRID_STRIDE_LOOP(i, n)
    dlogits[i] = (sigmoid_stable_device(logits[i]) - target[i]) / count;
}

template <typename T>
__global__ void loss_and_gradient_rows_kernel(T* grad, double* row_loss, double* row_correct,
                                              const T* out, const int64_t* labels,
                                              const T* targets, const int64_t* idx, int64_t N,
                                              int64_t C, int64_t n_total, LossKind loss) {
  NNFAST_GRID_STRIDE_LOOP(i, N) {
    const T* z = out + i * C;
    T* g = grad + i * C;
    // idx and the labels are checked on the host; a bad one gives NaN, never a stray read.
    const int64_t row = idx[i];
    if (row < 0 || row >= n_total || (labels && (labels[row] < 0 || labels[row] >= C))) {
      for (int64_t j = 0; j < C; ++j) g[j] = T(0);
      row_loss[i] = NAN;
      row_correct[i] = 0.0;
      continue;
    }
    if (loss == LossKind::cross_entropy) {
      const int64_t label = labels[row];
      const T inv_batch = T(1) / T(N);
      int64_t argmax = 0;
      for (int64_t j = 1; j < C; ++j)
        if (z[j] > z[argmax]) argmax = j;
      const T zmax = z[argmax];
      T sum = T(0);
      for (int64_t j = 0; j < C; ++j) {
        g[j] = std::exp(z[j] - zmax);
        sum += g[j];
      }
      const T scale = inv_batch / sum;
      for (int64_t j = 0; j < C; ++j) g[j] *= scale;
      g[label] -= inv_batch;
      row_loss[i] = static_cast<double>(std::log(sum) + zmax - z[label]);
      row_correct[i] = argmax == label ? 1.0 : 0.0;
    } else {
      const T* t = targets + row * C;
      const T inv_count = T(1) / T(N * C);
      double sum = 0.0, correct = 0.0;
      for (int64_t j = 0; j < C; ++j) {
        const T zj = z[j];
        if (loss == LossKind::bce_with_logits) {
          sum += static_cast<double>(std::fmax(zj, T(0)) - zj * t[j] +
                                     std::log1p(std::exp(-std::fabs(zj))));
          g[j] = (sigmoid_stable_device(zj) - t[j]) * inv_count;
          correct += (zj >= T(0)) == (t[j] >= T(0.5)) ? 1.0 : 0.0;
        } else {
          const T d = zj - t[j];
          sum += static_cast<double>(d * d);
          g[j] = T(2) * d * inv_count;
        }
      }
      row_loss[i] = sum;
      row_correct[i] = correct;
    }
  }
}

}  // namespace

template <typename T>
void softmax_cross_entropy_forward(T* probs, double* row_loss, const T* logits,
                                   const int64_t* labels, const T* target, int64_t N, int64_t C) {
  if (N <= 0 || C <= 0) return;
  softmax_cross_entropy_forward_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(
      probs, row_loss, logits, labels, target, N, C);
  check_launch("softmax_cross_entropy_forward");
}

template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const int64_t* labels,
                                    const T* target, int64_t N, int64_t C) {
  if (N <= 0 || C <= 0) return;
  softmax_cross_entropy_backward_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(
      dlogits, probs, labels, target, N, C, static_cast<T>(1.0 / static_cast<double>(N)));
  check_launch("softmax_cross_entropy_backward");
}

template <typename T>
void mse_forward(double* elem_loss, const T* pred, const T* target, int64_t n) {
  if (n <= 0) return;
  mse_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(elem_loss, pred, target, n);
  check_launch("mse_forward");
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n) {
  if (n <= 0) return;
  mse_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(
      dpred, pred, target, n, static_cast<T>(2.0 / static_cast<double>(n)));
  check_launch("mse_backward");
}

template <typename T>
void bce_forward(double* elem_loss, const T* prob, const T* target, int64_t n) {
  if (n <= 0) return;
  bce_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(elem_loss, prob, target, n);
  check_launch("bce_forward");
}

template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t n) {
  if (n <= 0) return;
  bce_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(dprob, prob, target, n, T(n));
  check_launch("bce_backward");
}

template <typename T>
void bce_with_logits_forward(double* elem_loss, const T* logits, const T* target, int64_t n) {
  if (n <= 0) return;
  bce_with_logits_forward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(elem_loss, logits,
                                                                         target, n);
  check_launch("bce_with_logits_forward");
}

template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n) {
  if (n <= 0) return;
  bce_with_logits_backward_kernel<T><<<blocks_for(n), kThreadsPerBlock>>>(dlogits, logits,
                                                                          target, n, T(n));
  check_launch("bce_with_logits_backward");
}

template <typename T>
void loss_and_gradient_rows(T* grad, double* row_loss, double* row_correct, const T* out,
                            const int64_t* labels, const T* targets, const int64_t* idx,
                            int64_t N, int64_t C, int64_t n_total, LossKind loss) {
  if (N <= 0 || C <= 0) return;
  loss_and_gradient_rows_kernel<T><<<blocks_for(N), kThreadsPerBlock>>>(
      grad, row_loss, row_correct, out, labels, targets, idx, N, C, n_total, loss);
  check_launch("loss_and_gradient_rows");
}

#define NNFAST_INSTANTIATE(T)                                                                  \
  template void softmax_cross_entropy_forward<T>(T*, double*, const T*, const int64_t*,        \
                                                 const T*, int64_t, int64_t);                  \
  template void softmax_cross_entropy_backward<T>(T*, const T*, const int64_t*, const T*,      \
                                                  int64_t, int64_t);                           \
  template void mse_forward<T>(double*, const T*, const T*, int64_t);                          \
  template void mse_backward<T>(T*, const T*, const T*, int64_t);                              \
  template void bce_forward<T>(double*, const T*, const T*, int64_t);                          \
  template void bce_backward<T>(T*, const T*, const T*, int64_t);                              \
  template void bce_with_logits_forward<T>(double*, const T*, const T*, int64_t);              \
  template void bce_with_logits_backward<T>(T*, const T*, const T*, int64_t);                  \
  template void loss_and_gradient_rows<T>(T*, double*, double*, const T*, const int64_t*,      \
                                          const T*, const int64_t*, int64_t, int64_t, int64_t,     \
                                          LossKind);
NNFAST_INSTANTIATE(float)
NNFAST_INSTANTIATE(double)
#undef NNFAST_INSTANTIATE

}  // namespace nnfast::gpu
