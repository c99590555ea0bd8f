// The kernel table that runs train/trainer.h on a GPU: train/cpu_kernels.h's interface on
// the CUDA kernels of csrc/cuda, every pointer in device memory. Kernels queue on the
// default stream in call order; only the functions returning a value to the host (losses,
// norms, counts) wait for the GPU. Plain C++ (the kernels are declared, not defined here),
// so it needs no CUDA header.
#pragma once

#include <cstdint>

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
#include "kernels/dropout.h"
#include "train/op_spec.h"

namespace nnfast {

struct CudaKernels {
  template <typename U>
  using Buffer = gpu::DeviceBuffer<U>;

  // The kernels whose signatures are the table's, as they are.
  template <typename T>
  static constexpr auto gemm = &gpu::gemm<T>;
  template <typename T>
  static constexpr auto activation_forward = &gpu::activation_forward<T>;
  template <typename T>
  static constexpr auto activation_backward = &gpu::activation_backward<T>;
  template <typename T>
  static constexpr auto bias_grad = &gpu::bias_grad<T>;
  template <typename T>
  static constexpr auto batchnorm_forward_train = &gpu::batchnorm_forward_train<T>;
  template <typename T>
  static constexpr auto batchnorm_forward_eval = &gpu::batchnorm_forward_eval<T>;
  template <typename T>
  static constexpr auto batchnorm_backward = &gpu::batchnorm_backward<T>;
  template <typename T>
  static constexpr auto mse_forward = &gpu::mse_forward<T>;
  template <typename T>
  static constexpr auto mse_backward = &gpu::mse_backward<T>;
  template <typename T>
  static constexpr auto bce_with_logits_forward = &gpu::bce_with_logits_forward<T>;
  template <typename T>
  static constexpr auto bce_with_logits_backward = &gpu::bce_with_logits_backward<T>;
  template <typename T>
  static constexpr auto sum_squares = &gpu::sum_squares<T>;
  template <typename T>
  static constexpr auto sum_abs = &gpu::sum_abs<T>;
  template <typename T>
  static constexpr auto scale_inplace = &gpu::scale_inplace<T>;
  template <typename T>
  static constexpr auto clip_inplace = &gpu::clip_inplace<T>;
  template <typename T>
  static constexpr auto weight_penalty_backward = &gpu::weight_penalty_backward<T>;
  template <typename T>
  static constexpr auto gather_rows = &gpu::gather_rows<T>;
  template <typename T>
  static constexpr auto copy = &gpu::copy<T>;
  template <typename T>
  static constexpr auto fill_zero = &gpu::fill_zero<T>;
  template <typename T>
  static constexpr auto add = &gpu::add<T>;
  template <typename T>
  static constexpr auto count_argmax_hits = &gpu::count_argmax_hits<T>;
  template <typename T>
  static constexpr auto count_sign_hits = &gpu::count_sign_hits<T>;

  // The primitives take the options one by one (and both kinds of cross-entropy target).
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
  static double softmax_cross_entropy_forward_sparse(T* probs, const T* logits,
                                                     const int64_t* labels, int64_t N,
                                                     int64_t C, LossWeights<T> w) {
    return gpu::softmax_cross_entropy_forward<T>(probs, logits, labels, nullptr, N, C, w);
  }
  template <typename T>
  static void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs,
                                                    const int64_t* labels, int64_t N, int64_t C,
                                                    LossWeights<T> w) {
    gpu::softmax_cross_entropy_backward<T>(dlogits, probs, labels, nullptr, N, C, w);
  }

  // previous (n) or null: param as it was, copied first. fit() never asks the CUDA trainer
  // for it: for a model on the GPU, TerminateOnNaN keeps the host's copy of the weights,
  // which is current once an epoch.
  template <typename T>
  static void sgd_update(T* param, const T* grad, T* velocity, int64_t n, const UpdateRule& r,
                         T* previous) {
    if (previous) gpu::copy<T>(previous, param, n);
    gpu::sgd_update<T>(param, grad, velocity, n, r.lr, r.momentum, r.nesterov, r.weight_decay);
  }
  template <typename T>
  static void adam_update(T* param, const T* grad, T* m, T* v, int64_t n, const UpdateRule& r,
                          T* previous) {
    if (previous) gpu::copy<T>(previous, param, n);
    gpu::adam_update<T>(param, grad, m, v, n, r.lr, r.beta1, r.beta2, r.eps, r.weight_decay,
                        r.step, r.decoupled);
  }
};

}  // namespace nnfast
