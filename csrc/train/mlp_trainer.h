// One training step of a Dense/activation MLP in a single call: gather the batch, forward
// with fused bias+activation epilogues, loss and its gradient in one pass, backward, and the
// optimizer update of each layer as soon as its gradients are ready (while they are in cache).
#pragma once

#include <cstdint>
#include <vector>

#include "common/activation.h"
#include "common/aligned_buffer.h"

namespace nnfast {

enum class LossKind : int { cross_entropy = 0, mse = 1, bce_with_logits = 2 };
enum class OptimizerKind : int { sgd = 0, adam = 1 };

// A Dense layer followed by its activation. Arrays belong to the caller (the Python
// Parameters and optimizer state) and are updated in place.
template <typename T>
struct DenseLayerRef {
  int64_t in = 0, out = 0;
  Activation activation = Activation::identity;
  T negative_slope = T(0.01);
  T* weight = nullptr;       // (in, out)
  T* bias = nullptr;         // (out)
  T* weight_grad = nullptr;  // (in, out)
  T* bias_grad = nullptr;    // (out)
  // Optimizer state: SGD momentum uses state0 (velocity); Adam uses state0 (m), state1 (v).
  T* weight_state0 = nullptr;
  T* weight_state1 = nullptr;
  T* bias_state0 = nullptr;
  T* bias_state1 = nullptr;
};

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double lr = 0.01;
  double momentum = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  bool decoupled = false;  // AdamW
  int64_t step = 1;        // Adam's step count, from 1
};

struct StepResult {
  double loss = 0.0;    // mean over the batch, as the loss objects return it
  int64_t correct = -1;  // correct predictions, or -1 where accuracy has no meaning (MSE)
};

template <typename T>
class MlpTrainer {
 public:
  MlpTrainer(std::vector<DenseLayerRef<T>> layers, LossKind loss);

  // X (n_total, in), idx (batch): rows to train on; targets: int64 labels (n_total) for
  // cross-entropy, T (n_total, out) for mse and bce_with_logits.
  StepResult step(const T* X, const void* targets, const int64_t* idx, int64_t batch,
                  const OptimizerConfig& opt);

  // X (batch, in), out (batch, out_last): inference, reusing the training workspaces.
  void predict(const T* X, int64_t batch, T* out);

 private:
  void reserve(int64_t batch);
  void forward(const T* x0, int64_t batch, T* last_out);
  StepResult loss_and_gradient(const void* targets, const int64_t* idx, int64_t batch);
  void update(T* param, const T* grad, T* state0, T* state1, int64_t n,
              const OptimizerConfig& opt) const;
  bool keeps_preactivation(size_t layer) const;

  std::vector<DenseLayerRef<T>> layers_;
  LossKind loss_;
  int64_t capacity_ = 0;
  AlignedBuffer<T> input_;                      // (batch, in_0): the gathered rows
  std::vector<AlignedBuffer<T>> outputs_;       // per layer (batch, out_l), after activation
  std::vector<AlignedBuffer<T>> preacts_;       // per layer, only where act' needs the input
  AlignedBuffer<T> grad_a_, grad_b_;            // (batch, max width): ping-pong gradients
  AlignedBuffer<double> row_loss_;              // (batch)
  AlignedBuffer<int64_t> row_correct_;          // (batch)
};

}  // namespace nnfast
