// Softmax fused with cross-entropy, mean over the batch, forward and backward side by side.
// Stable at any logit: rows are shifted by their max and the loss is computed from the
// shifted logits and log-sum-exp, never from log(probs). w holds the optional weights
// (kernels/loss_weights.h): s_i of row i, k_c of class c (torch's weight=); without them
// every weight is 1.
#pragma once

#include <cstdint>

#include "kernels/loss_weights.h"

namespace nnfast {

// logits (N, C), labels (N) int64 in [0, C), probs (N, C); returns
// sum_i s_i k_(y_i) (-log softmax(logits_i)[y_i]) / D, D = sum_i k_(y_i) (N without class
// weights), torch's mean. probs may be logits. A label outside [0, C) gives NaN for its row
// instead of a wild read.
template <typename T>
double softmax_cross_entropy_forward_sparse(T* probs, const T* logits, const int64_t* labels,
                                            int64_t N, int64_t C, LossWeights<T> w);

// logits (N, C), target (N, C) probabilities or one-hot, probs (N, C); returns
// sum_i s_i sum_c k_c t_ic (-log softmax(logits_i)_c) / N (torch divides by N here).
template <typename T>
double softmax_cross_entropy_forward_dense(T* probs, const T* logits, const T* target,
                                           int64_t N, int64_t C, LossWeights<T> w);

// dlogits (N, C), probs (N, C), labels (N): dlogits = s_i k_(y_i) (probs - onehot(labels)) / D
template <typename T>
void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs, const int64_t* labels,
                                           int64_t N, int64_t C, LossWeights<T> w);

// dlogits (N, C), probs (N, C), target (N, C):
// dlogits = s_i (probs * rowsum(k t) - k t) / N
template <typename T>
void softmax_cross_entropy_backward_dense(T* dlogits, const T* probs, const T* target,
                                          int64_t N, int64_t C, LossWeights<T> w);

}  // namespace nnfast
