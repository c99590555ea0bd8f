// The kernel table that runs train/trainer.h on the CPU: the same kernel functions the
// primitives bind (csrc/kernels, csrc/gemm), plus the few loops only an executor needs
// (gathering a batch, counting hits). Every pointer is host memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/aligned_buffer.h"
#include "common/parallel.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/bias_grad.h"
#include "kernels/dropout.h"
#include "kernels/losses.h"
#include "kernels/norms.h"
#include "kernels/optimizers.h"
#include "kernels/softmax_cross_entropy.h"
#include "train/op_spec.h"

namespace nnfast {

struct CpuKernels {
  template <typename U>
  using Buffer = AlignedBuffer<U>;

  // Enough bytes per thread that a gathering thread pays for waking it.
  static constexpr int64_t kMinGatherBytesPerThread = 1 << 16;
  static constexpr int64_t kGatherAhead = 2;
  static constexpr int64_t kCacheLineBytes = 64;

  // The kernels the primitives bind, as they are.
  template <typename T>
  static constexpr auto gemm = &nnfast::gemm<T>;
  template <typename T>
  static constexpr auto activation_forward = &nnfast::activation_forward<T>;
  template <typename T>
  static constexpr auto activation_backward = &nnfast::activation_backward<T>;
  template <typename T>
  static constexpr auto bias_grad = &nnfast::bias_grad<T>;
  template <typename T>
  static constexpr auto dropout_forward = &nnfast::dropout_forward<T>;
  template <typename T>
  static constexpr auto dropout_backward = &nnfast::dropout_backward<T>;
  template <typename T>
  static constexpr auto batchnorm_forward_train = &nnfast::batchnorm_forward_train<T>;
  template <typename T>
  static constexpr auto batchnorm_forward_eval = &nnfast::batchnorm_forward_eval<T>;
  template <typename T>
  static constexpr auto batchnorm_backward = &nnfast::batchnorm_backward<T>;
  template <typename T>
  static constexpr auto softmax_cross_entropy_forward_sparse =
      &nnfast::softmax_cross_entropy_forward_sparse<T>;
  template <typename T>
  static constexpr auto softmax_cross_entropy_backward_sparse =
      &nnfast::softmax_cross_entropy_backward_sparse<T>;
  template <typename T>
  static constexpr auto mse_forward = &nnfast::mse_forward<T>;
  template <typename T>
  static constexpr auto mse_backward = &nnfast::mse_backward<T>;
  template <typename T>
  static constexpr auto bce_with_logits_forward = &nnfast::bce_with_logits_forward<T>;
  template <typename T>
  static constexpr auto bce_with_logits_backward = &nnfast::bce_with_logits_backward<T>;
  template <typename T>
  static constexpr auto sum_squares = &nnfast::sum_squares<T>;
  template <typename T>
  static constexpr auto sum_abs = &nnfast::sum_abs<T>;
  template <typename T>
  static constexpr auto scale_inplace = &nnfast::scale_inplace<T>;
  template <typename T>
  static constexpr auto clip_inplace = &nnfast::clip_inplace<T>;
  template <typename T>
  static constexpr auto weight_penalty_backward = &nnfast::weight_penalty_backward<T>;

  template <typename T>
  static void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const UpdateRule& r,
                         T* previous) {
    SgdOptions sgd;
    sgd.lr = r.lr;
    sgd.momentum = r.momentum;
    sgd.nesterov = r.nesterov;
    sgd.weight_decay = r.weight_decay;
    nnfast::sgd_update<T>(param, grad, velocity, n, sgd, previous);
  }
  template <typename T>
  static void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const UpdateRule& r,
                          T* previous) {
    AdamOptions adam;
    adam.lr = r.lr;
    adam.beta1 = r.beta1;
    adam.beta2 = r.beta2;
    adam.eps = r.eps;
    adam.weight_decay = r.weight_decay;
    adam.step = r.step;
    adam.decoupled = r.decoupled;
    nnfast::adam_update<T>(param, grad, m, v, n, adam, previous);
  }

  // out (batch, cols) = rows idx (batch) of X (rows, cols). Each row starts a stream that
  // the hardware prefetcher has to find anew, so the row kGatherAhead places on is
  // requested while this one is copied.
  template <typename T>
  static void gather_rows(T* out, const T* X, const int64_t* idx, int64_t batch, int64_t cols) {
    const int64_t bytes = static_cast<int64_t>(sizeof(T)) * cols;
    const int threads = threads_for(batch * bytes, kMinGatherBytesPerThread);
    parallel_tasks(batch, threads, [&](int64_t i) {
      if (i + kGatherAhead < batch) {
        const char* ahead = reinterpret_cast<const char*>(X + idx[i + kGatherAhead] * cols);
        for (int64_t at = 0; at < bytes; at += kCacheLineBytes) __builtin_prefetch(ahead + at);
      }
      std::memcpy(out + i * cols, X + idx[i] * cols, static_cast<size_t>(bytes));
    });
  }

  template <typename T>
  static void copy(T* dst, const T* src, int64_t n) {
    std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(n));
  }
  template <typename T>
  static void fill_zero(T* x, int64_t n) { std::fill(x, x + n, T(0)); }
  // out (n) = a (n) + b (n); out may be a or b.
  template <typename T>
  static void add(T* out, const T* a, const T* b, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
  }

  // logits (N, C), labels (N): rows whose first largest logit is at the label, as
  // CrossEntropy.correct (numpy's argmax) counts them.
  template <typename T>
  static int64_t count_argmax_hits(const T* logits, const int64_t* labels, int64_t N, int64_t C) {
    int64_t hits = 0;
    for (int64_t i = 0; i < N; ++i) {
      const T* z = logits + i * C;
      int64_t argmax = 0;
      for (int64_t j = 1; j < C; ++j)
        if (z[j] > z[argmax]) argmax = j;
      hits += argmax == labels[i];
    }
    return hits;
  }
  // logits (n), target (n): elements where (logit >= 0) == (target >= 0.5), as
  // BCEWithLogits.correct counts them.
  template <typename T>
  static int64_t count_sign_hits(const T* logits, const T* target, int64_t n) {
    int64_t hits = 0;
    for (int64_t i = 0; i < n; ++i) hits += (logits[i] >= T(0)) == (target[i] >= T(0.5));
    return hits;
  }
};

}  // namespace nnfast
