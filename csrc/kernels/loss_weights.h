// The optional weights of a loss, one record for the kernels of every device (a null
// pointer: every weight is 1).
#pragma once

namespace nnfast {

// sample (rows): each row's loss terms are multiplied by its weight, and the mean still
// divides by the count of rows (or elements), as Keras's sample_weight does.
// per_class (cols): torch's pos_weight for bce_with_logits (it multiplies the positive
// term of column j); torch's weight for cross-entropy, whose mean over class labels then
// divides by the sum of the weights of the rows' labels, as torch.nn.CrossEntropyLoss.
template <typename T>
struct LossWeights {
  const T* sample = nullptr;
  const T* per_class = nullptr;
};

}  // namespace nnfast
