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

  template <typename T>
  static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                   const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                   const GemmEpilogue<T>& epilogue) {
    nnfast::gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
  }

  template <typename T>
  static void activation_forward(T* out, const T* inp, int64_t n, Activation act, T parameter) {
    nnfast::activation_forward<T>(out, inp, n, act, parameter);
  }
  template <typename T>
  static void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                                  Activation act, T parameter) {
    nnfast::activation_backward<T>(dinp, dout, inp, out, n, act, parameter);
  }

  template <typename T>
  static void bias_grad(T* dbias, const T* dout, int64_t N, int64_t C, T beta) {
    nnfast::bias_grad<T>(dbias, dout, N, C, beta);
  }

  template <typename T>
  static void dropout_forward(T* out, uint8_t* mask, const T* x, int64_t n,
                              const DropoutOptions& options) {
    nnfast::dropout_forward<T>(out, mask, x, n, options);
  }
  template <typename T>
  static void dropout_backward(T* dx, const T* dout, const uint8_t* mask, int64_t n,
                               double scale) {
    nnfast::dropout_backward<T>(dx, dout, mask, n, scale);
  }

  template <typename T>
  static void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean,
                                      T* running_var, const T* x, const T* gamma, const T* beta,
                                      int64_t N, int64_t C, double momentum, double eps) {
    nnfast::batchnorm_forward_train<T>(out, mean, inv_std, running_mean, running_var, x, gamma,
                                       beta, N, C, momentum, eps);
  }
  template <typename T>
  static void batchnorm_forward_eval(T* out, const T* x, const T* running_mean,
                                     const T* running_var, const T* gamma, const T* beta,
                                     int64_t N, int64_t C, double eps) {
    nnfast::batchnorm_forward_eval<T>(out, x, running_mean, running_var, gamma, beta, N, C, eps);
  }
  template <typename T>
  static void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x,
                                 const T* mean, const T* inv_std, const T* gamma, int64_t N,
                                 int64_t C, bool training) {
    nnfast::batchnorm_backward<T>(dx, dgamma, dbeta, dout, x, mean, inv_std, gamma, N, C,
                                  training);
  }

  template <typename T>
  static double softmax_cross_entropy_forward_sparse(T* probs, const T* logits,
                                                     const int64_t* labels, int64_t N,
                                                     int64_t C) {
    return nnfast::softmax_cross_entropy_forward_sparse<T>(probs, logits, labels, N, C);
  }
  template <typename T>
  static void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs,
                                                    const int64_t* labels, int64_t N, int64_t C) {
    nnfast::softmax_cross_entropy_backward_sparse<T>(dlogits, probs, labels, N, C);
  }
  template <typename T>
  static double mse_forward(const T* pred, const T* target, int64_t n) {
    return nnfast::mse_forward<T>(pred, target, n);
  }
  template <typename T>
  static void mse_backward(T* dpred, const T* pred, const T* target, int64_t n) {
    nnfast::mse_backward<T>(dpred, pred, target, n);
  }
  template <typename T>
  static double bce_with_logits_forward(const T* logits, const T* target, int64_t n) {
    return nnfast::bce_with_logits_forward<T>(logits, target, n);
  }
  template <typename T>
  static void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n) {
    nnfast::bce_with_logits_backward<T>(dlogits, logits, target, n);
  }

  template <typename T>
  static double sum_squares(const T* x, int64_t n) { return nnfast::sum_squares<T>(x, n); }
  template <typename T>
  static double sum_abs(const T* x, int64_t n) { return nnfast::sum_abs<T>(x, n); }
  template <typename T>
  static void scale_inplace(T* x, int64_t n, T alpha) { nnfast::scale_inplace<T>(x, n, alpha); }
  template <typename T>
  static void clip_inplace(T* x, int64_t n, T lo, T hi) { nnfast::clip_inplace<T>(x, n, lo, hi); }
  template <typename T>
  static void weight_penalty_backward(T* grad, const T* w, int64_t n, T l1, T l2x2) {
    nnfast::weight_penalty_backward<T>(grad, w, n, l1, l2x2);
  }

  template <typename T>
  static void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const UpdateRule& r) {
    SgdOptions sgd;
    sgd.lr = r.lr;
    sgd.momentum = r.momentum;
    sgd.nesterov = r.nesterov;
    sgd.weight_decay = r.weight_decay;
    nnfast::sgd_update<T>(param, grad, velocity, n, sgd);
  }
  template <typename T>
  static void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const UpdateRule& r) {
    AdamOptions adam;
    adam.lr = r.lr;
    adam.beta1 = r.beta1;
    adam.beta2 = r.beta2;
    adam.eps = r.eps;
    adam.weight_decay = r.weight_decay;
    adam.step = r.step;
    adam.decoupled = r.decoupled;
    nnfast::adam_update<T>(param, grad, m, v, n, adam);
  }

  // out (batch, cols) = rows idx (batch) of X (rows, cols).
  template <typename T>
  static void gather_rows(T* out, const T* X, const int64_t* idx, int64_t batch, int64_t cols) {
    const int64_t bytes = static_cast<int64_t>(sizeof(T)) * cols;
    const int threads = threads_for(batch * bytes, kMinGatherBytesPerThread);
    parallel_tasks(batch, threads, [&](int64_t i) {
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
