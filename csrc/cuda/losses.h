// Losses on device pointers, forward and backward side by side, with the formulas of
// kernels/softmax_cross_entropy.h and kernels/losses.h, and the counts of correct
// predictions. Forwards and counts return on the host, summed in double in a fixed order
// (cuda/block_sum.cuh); the mean of nothing is NaN.
#pragma once

#include <cstdint>

namespace nnfast::gpu {

// probs (N, C), logits (N, C); exactly one of labels (N) and target (N, C) is non-null.
// Returns the mean over rows of -log softmax(logits)[label], or of -sum t log softmax.
// probs may be logits. A label outside [0, C) gives NaN for its row instead of a wild read.
template <typename T>
double softmax_cross_entropy_forward(T* probs, const T* logits, const int64_t* labels,
                                     const T* target, int64_t N, int64_t C);

// dlogits (N, C), probs (N, C): (probs - onehot(label)) / N, or (probs sum(t) - t) / N.
// dlogits may be probs.
template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const int64_t* labels,
                                    const T* target, int64_t N, int64_t C);

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
