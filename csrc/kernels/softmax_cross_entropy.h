// Softmax fused with cross-entropy, mean over the batch, forward and backward side by side.
// Stable at any logit: rows are shifted by their max and the loss is computed from the
// shifted logits and log-sum-exp, never from log(probs).
#pragma once

#include <cstdint>

namespace nnfast {

// logits (N, C), labels (N) int64 in [0, C), probs (N, C); returns the mean loss.
// probs may be logits. A label outside [0, C) gives NaN for its row instead of a wild read.
template <typename T>
double softmax_cross_entropy_forward_sparse(T* probs, const T* logits, const int64_t* labels,
                                            int64_t N, int64_t C);

// logits (N, C), target (N, C) probabilities or one-hot, probs (N, C); returns the mean loss.
template <typename T>
double softmax_cross_entropy_forward_dense(T* probs, const T* logits, const T* target,
                                           int64_t N, int64_t C);

// dlogits (N, C), probs (N, C), labels (N): dlogits = (probs - onehot(labels)) / N
template <typename T>
void softmax_cross_entropy_backward_sparse(T* dlogits, const T* probs, const int64_t* labels,
                                           int64_t N, int64_t C);

// dlogits (N, C), probs (N, C), target (N, C): dlogits = (probs * rowsum(target) - target) / N
template <typename T>
void softmax_cross_entropy_backward_dense(T* dlogits, const T* probs, const T* target,
                                          int64_t N, int64_t C);

}  // namespace nnfast
