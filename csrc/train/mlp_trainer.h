// One training step of a sequential model in a single call: gather the batch, forward through
// the ops (Dense with fused bias+activation epilogues, activations, dropout, batch norm), loss
// and its gradient in one pass, backward, weight penalties, gradient clipping, and the
// optimizer update. Without clipping by global norm each op's parameters are updated as soon
// as its gradients are ready (while they are in cache); clipping by norm needs every gradient
// first, so then the whole backward runs before the updates.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/aligned_buffer.h"
#include "train/train_ops.h"

namespace nnfast {

enum class LossKind : int { cross_entropy = 0, mse = 1, bce_with_logits = 2 };
enum class OptimizerKind : int { sgd = 0, adam = 1 };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
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

struct StepResult {
  double loss = 0.0;    // batch-mean loss plus the weight penalties, as fit() logs it
  int64_t correct = -1;  // correct predictions, or -1 where accuracy has no meaning (MSE)
};

template <typename T>
class MlpTrainer {
 public:
  // ops chain: each op's input width is the previous op's output width.
  MlpTrainer(std::vector<std::unique_ptr<TrainOp<T>>> ops, LossKind loss);

  // X (n_total, in), idx (batch): rows to train on; targets: int64 labels (n_total) for
  // cross-entropy, T (n_total, out) for mse and bce_with_logits.
  StepResult step(const T* X, const void* targets, const int64_t* idx, int64_t batch,
                  const OptimizerConfig& opt);

  // X (batch, in), out (batch, out): inference in eval mode, reusing the workspaces.
  void predict(const T* X, int64_t batch, T* out);

 private:
  void reserve(int64_t batch);
  const T* forward(const T* x0, int64_t batch, bool training);
  StepResult loss_and_gradient(const T* out, const void* targets, const int64_t* idx,
                               int64_t batch);
  double penalty() const;
  void clip_by_global_norm(double max_norm) const;
  void update(const Param<T>& p, const OptimizerConfig& opt) const;

  std::vector<std::unique_ptr<TrainOp<T>>> ops_;
  LossKind loss_;
  size_t first_trained_ = 0;  // ops before it have no parameters: backward stops there
  int64_t capacity_ = 0;
  AlignedBuffer<T> input_;              // (batch, in): the gathered rows
  AlignedBuffer<T> grad_a_, grad_b_;    // (batch, widest): ping-pong gradients
  AlignedBuffer<double> row_loss_;      // (batch)
  AlignedBuffer<int64_t> row_correct_;  // (batch)
};

}  // namespace nnfast
