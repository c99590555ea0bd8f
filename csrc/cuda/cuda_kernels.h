// The kernel table that runs train/trainer.h on a GPU: train/cpu_kernels.h's interface on
// the CUDA kernels of csrc/cuda, every pointer in device memory. Kernels queue on the
// default stream in call order; only the functions returning a value to the host (losses,
// norms, counts) wait for the GPU. Plain C++ (the kernels are declared, not defined here),
// so it needs no CUDA header.
#pragma once

#include <cstdint>

#include "common/activation.h"
#include "cuda/activations.h"
#include "cuda/array_ops.h"
#include "cuda/batchnorm.h"
#include "cuda/device_buffer.h"
#include "cuda/dropout.h"
#include "cuda/gemm.h"
#include "cuda/losses.h"
#include "cuda/norms.h"
#include "cuda/optimizers.h"
#include "cuda/reductions.h"
#include "gemm/gemm.h"
#include "kernels/dropout.h"
#include "train/op_spec.h"

namespace nnfast {

struct CudaKernels {
  template <typename U>
  using Buffer = gpu::DeviceBuffer<U>;

  template <typename T>
  static void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                   const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                   const GemmEpilogue<T>& epilogue) {
    gpu::gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epilogue);
  }

  template <typename T>
  static void activation_forward(T* out, const T* inp, int64_t n, Activation act, T parameter) {
    gpu::activation_forward<T>(out, inp, n, act, parameter);
  }
  template <typename T>
  static void activation_backward(T* dinp, const T* dout, const T* inp, const T* out, int64_t n,
                                  Activation act, T parameter) {
    gpu::activation_backward<T>(dinp, dout, inp, out, n, act, parameter);
  }

  template <typename T>
  static void bias_grad(T* dbias, const T* dout, int64_t N, int64_t C, T beta) {
    gpu::bias_grad<T>(dbias, dout, N, C, beta);
  }

  template <typename T>
  static void dropout_forward(T* out, uint8_t* mask, const T* x, int64_t n,
                              const DropoutOptions& options) {
    gpu::dropout_forward<T>(out, mask, x, n, options.threshold, static_cast<T>(options.scale),
                            options.seed, options.offset);
  }
  template <typename T>
  static void dropout_backward(T* dx, const T* dout, const uint8_t* mask, int64_t n,
                               double scale) {
    gpu::dropout_backward<T>(dx, dout, mask, n, static_cast<T>(scale));
  }

  template <typename T>
  static void batchnorm_forward_train(T* out, T* mean, T* inv_std, T* running_mean,
                                      T* running_var, const T* x, const T* gamma, const T* beta,
                                      int64_t N, int64_t C, double momentum, double eps) {
    gpu::batchnorm_forward_train<T>(out, mean, inv_std, running_mean, running_var, x, gamma,
                                    beta, N, C, momentum, eps);
  }
  template <typename T>
  static void batchnorm_forward_eval(T* out, const T* x, const T* running_mean,
                                     const T* running_var, const T* gamma, const T* beta,
                                     int64_t N, int64_t C, double eps) {
    gpu::batchnorm_forward_eval<T>(out, x, running_mean, running_var, gamma, beta, N, C, eps);
  }
  template <typename T>
  static void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dout, const T* x,
                                 const T* mean, const T* inv_std, const T* gamma, int64_t N,
                                 int64_t C, bool training) {
    gpu::batchnorm_backward<T>(dx, dgamma, dbeta, dout, x, mean, inv_std, gamma, N, C,
                               training);
  }

  template <typename T>
  static double softmax_cross_entropy_forward_sparse(T* probs, const T* logits,
                                                     const int64_t* labels, int64_t N,
                                                     int64_t C) {
    return gpu::softmax_cross_entropy_forward<T>(probs, logits, labels, nullptr, N, C);
  }
  template <typename T>
  static void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs,
                                                    const int64_t* labels, int64_t N, int64_t C) {
    gpu::softmax_cross_entropy_backward<T>(dlogits, probs, labels, nullptr, N, C);
  }
  template <typename T>
  static double mse_forward(const T* pred, const T* target, int64_t n) {
    return gpu::mse_forward<T>(pred, target, n);
  }
  template <typename T>
  static void mse_backward(T* dpred, const T* pred, const T* target, int64_t n) {
    gpu::mse_backward<T>(dpred, pred, target, n);
  }
  template <typename T>
  static double bce_with_logits_forward(const T* logits, const T* target, int64_t n) {
    return gpu::bce_with_logits_forward<T>(logits, target, n);
  }
  template <typename T>
  static void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n) {
    gpu::bce_with_logits_backward<T>(dlogits, logits, target, n);
  }

  template <typename T>
  static double sum_squares(const T* x, int64_t n) { return gpu::sum_squares<T>(x, n); }
  template <typename T>
  static double sum_abs(const T* x, int64_t n) { return gpu::sum_abs<T>(x, n); }
  template <typename T>
  static void scale_inplace(T* x, int64_t n, T alpha) { gpu::scale_inplace<T>(x, n, alpha); }
  template <typename T>
  static void clip_inplace(T* x, int64_t n, T lo, T hi) { gpu::clip_inplace<T>(x, n, lo, hi); }
  template <typename T>
  static void weight_penalty_backward(T* grad, const T* w, int64_t n, T l1, T l2x2) {
    gpu::weight_penalty_backward<T>(grad, w, n, l1, l2x2);
  }

  template <typename T>
  static void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const UpdateRule& r) {
    gpu::sgd_update<T>(param, grad, velocity, n, r.lr, r.momentum, r.nesterov, r.weight_decay);
  }
  template <typename T>
  static void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const UpdateRule& r) {
    gpu::adam_update<T>(param, grad, m, v, n, r.lr, r.beta1, r.beta2, r.eps, r.weight_decay,
                        r.step, r.decoupled);
  }

  // out (batch, cols) = rows idx (batch) of X (rows, cols).
  template <typename T>
  static void gather_rows(T* out, const T* X, const int64_t* idx, int64_t batch, int64_t cols) {
    gpu::gather_rows<T>(out, X, idx, batch, cols);
  }

  template <typename T>
  static void copy(T* dst, const T* src, int64_t n) { gpu::copy<T>(dst, src, n); }
  template <typename T>
  static void fill_zero(T* x, int64_t n) { gpu::fill_zero<T>(x, n); }
  // out (n) = a (n) + b (n); out may be a or b.
  template <typename T>
  static void add(T* out, const T* a, const T* b, int64_t n) { gpu::add<T>(out, a, b, n); }

  // logits (N, C), labels (N): rows whose first largest logit is at the label.
  template <typename T>
  static int64_t count_argmax_hits(const T* logits, const int64_t* labels, int64_t N, int64_t C) {
    return gpu::count_argmax_hits<T>(logits, labels, N, C);
  }
  // logits (n), target (n): elements where (logit >= 0) == (target >= 0.5).
  template <typename T>
  static int64_t count_sign_hits(const T* logits, const T* target, int64_t n) {
    return gpu::count_sign_hits<T>(logits, target, n);
  }
};

}  // namespace nnfast
