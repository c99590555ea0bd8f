// Losses on device pointers, forward and backward side by side. Forwards write one loss
// per row or element, in double; the caller sums them with reductions.h (fixed order).
#pragma once

#include <cstdint>

#include "train/mlp_trainer.h"

namespace nnfast::gpu {

// probs (N, C), row_loss (N), logits (N, C); exactly one of labels (N) in [0, C) and
// target (N, C) is non-null. row_loss = -log softmax(logits)[label], or -sum t log softmax.
template <typename T>
void softmax_cross_entropy_forward(T* probs, double* row_loss, const T* logits,
                                   const int64_t* labels, const T* target, int64_t N, int64_t C);

// dlogits (N, C), probs (N, C): (probs - onehot(label)) / N, or (probs sum(t) - t) / N.
template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const int64_t* labels,
                                    const T* target, int64_t N, int64_t C);

// elem_loss (n), pred (n), target (n): (pred - target)^2
template <typename T>
void mse_forward(double* elem_loss, const T* pred, const T* target, int64_t n);

// dpred (n): 2 (pred - target) / n
template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n);

// elem_loss (n), prob (n), target (n): -(t log p + (1 - t) log(1 - p)), logs clamped at -100
template <typename T>
void bce_forward(double* elem_loss, const T* prob, const T* target, int64_t n);

// dprob (n): (p - t) / max(p (1 - p), 1e-12) / n
template <typename T>
void bce_backward(T* dprob, const T* prob, const T* target, int64_t n);

// elem_loss (n), logits (n), target (n): max(z, 0) - z t + log1p(exp(-|z|))
template <typename T>
void bce_with_logits_forward(double* elem_loss, const T* logits, const T* target, int64_t n);

// dlogits (n): (sigmoid(z) - t) / n
template <typename T>
void bce_with_logits_backward(T* dlogits, const T* logits, const T* target, int64_t n);

// The fused step's loss, as MlpTrainer::loss_and_gradient on the CPU: out (N, C) the last
// layer's output for rows idx (N) of a data set of n_total rows; labels (n_total) for
// cross-entropy or targets (n_total, C) otherwise. Writes grad (N, C) = d batch-mean loss /
// d out, each row's summed loss (row_loss) and correct predictions (row_correct).
template <typename T>
void loss_and_gradient_rows(T* grad, double* row_loss, double* row_correct, const T* out,
                            const int64_t* labels, const T* targets, const int64_t* idx,
                            int64_t N, int64_t C, int64_t n_total, LossKind loss);

}  // namespace nnfast::gpu
