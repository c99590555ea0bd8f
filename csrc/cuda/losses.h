// Losses on device pointers, forward and backward side by side, with the formulas of
// kernels/softmax_cross_entropy.h and kernels/losses.h, and the counts of correct
// predictions. Forwards and counts return on the host, summed in double in a fixed order
// (cuda/block_sum.cuh); the mean of nothing is NaN.
#pragma once

#include <cstdint>

#include "kernels/loss_weights.h"

namespace nnfast::gpu {

// probs (N, C), logits (N, C); exactly one of labels (N) and target (N, C) is non-null; w
// the optional weights, s_i (N) and k_c (C), as kernels/softmax_cross_entropy.h.
// Returns sum_i s_i k_(y_i) (-log softmax(logits)[y_i]) / sum_i k_(y_i) (N without k), or
// sum_i s_i sum_c k_c t_ic (-log softmax(logits)_ic) / N.
// probs may be logits. A label outside [0, C) gives NaN for its row instead of a wild read.
template <typename T>
double softmax_cross_entropy_forward(T* probs, const T* logits, const int64_t* labels,
                                     const T* target, int64_t N, int64_t C, LossWeights<T> w);

// dlogits (N, C), probs (N, C): s_i k_(y_i) (probs - onehot(label)) / D, or
// s_i (probs sum(k t) - k t) / N. dlogits may be probs.
template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const int64_t* labels,
                                    const T* target, int64_t N, int64_t C, LossWeights<T> w);

#include "kernels/losses_contract.h"

// logits (N, C), labels (N): rows whose first largest logit is at the label, as
// CrossEntropy.correct (numpy's argmax) counts them.
template <typename T>
int64_t count_argmax_hits(const T* logits, const int64_t* labels, int64_t N, int64_t C);

// logits (n), target (n): elements where (logit >= 0) == (target >= 0.5), as
// BCEWithLogits.correct counts them.
template <typename T>
int64_t count_sign_hits(const T* logits, const T* target, int64_t n);

}  // namespace nnfast::gpu
