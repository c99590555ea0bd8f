// The C++ mirror of nnfast/nn/ops.py: one typed record per operation of a lowered model,
// filled by the bindings from the Python records and run by every executor (train/trainer.h
// on the CPU kernels or on the CUDA kernels). Pointers are in the executor's memory space.
#pragma once

#include <cstdint>

#include "common/activation.h"
#include "kernels/dropout.h"

namespace nnfast {

// Values match the `code` of each record class in nnfast/nn/ops.py.
enum class OpKind : int {
  dense = 0,           // y = act(x @ weight + bias)
  activation = 1,      // y = act(x), elementwise
  dropout = 2,         // inverted dropout in training, the identity in eval
  batchnorm = 3,       // batch norm over the batch, as nn.BatchNorm1d
  residual_begin = 4,  // y = x; remembers x for the matching residual_end
  residual_end = 5,    // y = x + the input of the matching residual_begin
};

// Values match nnfast/nn/ops.py's LOSS_CODES.
enum class LossKind : int { cross_entropy = 0, mse = 1, bce_with_logits = 2 };

// A trained array with its gradient and optimizer state, all of `size` elements.
template <typename T>
struct Param {
  T* value = nullptr;
  T* grad = nullptr;
  T* state0 = nullptr;  // SGD's velocity or Adam's first moment; null where none is kept
  T* state1 = nullptr;  // Adam's second moment
  int64_t size = 0;
  double l1 = 0.0, l2 = 0.0;  // weight penalty l1 * sum|value| + l2 * sum(value^2)
};

template <typename T>
struct OpSpec {
  OpKind kind = OpKind::activation;
  int64_t in = 0, out = 0;  // widths of the op's input and output rows
  // dense (activation fused into the GEMM epilogue) and activation
  Activation activation = Activation::identity;
  T activation_parameter = T(0.01);  // leaky ReLU's slope
  // dense: weight (in, out), bias (out); batchnorm: gamma, beta (out), value null without affine
  Param<T> weight, bias;
  // batchnorm
  T* running_mean = nullptr;
  T* running_var = nullptr;
  double momentum = 0.1, eps = 1e-5;
  // dropout: seed, threshold and scale; *counter is the live mask counter, advanced by each
  // training forward. active: p > 0, where nn.Dropout draws and counts masks.
  DropoutOptions dropout;
  bool dropout_active = false;
  uint64_t* dropout_counter = nullptr;
};

// The update of one step: SGD (momentum, Nesterov, weight decay) or Adam/AdamW, after
// optional clipping. Mirrors nnfast/optim/rules.py.
enum class RuleKind : int { sgd = 0, adam = 1 };

struct UpdateRule {
  RuleKind kind = RuleKind::sgd;
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool decoupled = false;  // AdamW
  int64_t step = 1;        // Adam's step count, from 1
  double clipnorm = 0.0;   // > 0: scale gradients to a global L2 norm of at most this
  double clipvalue = 0.0;  // > 0: clamp gradient elements to [-clipvalue, clipvalue]
};

// Where a step's rows sit in the global batch of a data-parallel step (nnfast/distributed):
// this process trains rows [first, first + batch) of a global batch of `total` rows. Dropout
// draws the mask of global row first + i for local row i and advances its counter by the
// whole global batch, so every process keeps the same counter and the masks do not depend
// on how many processes share the batch. total < 0: the step's own batch is the whole batch.
struct RowWindow {
  int64_t first = 0;
  int64_t total = -1;
};

struct StepResult {
  double loss = 0.0;     // batch-mean loss plus the weight penalties, as fit() logs it
  int64_t correct = -1;  // correct predictions, or -1 where accuracy has no meaning (MSE)
};

}  // namespace nnfast
