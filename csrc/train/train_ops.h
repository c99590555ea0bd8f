// The operations a fused training step chains: Dense (with its activation fused into the
// GEMM epilogue), a standalone activation, dropout and batch norm. Each op keeps the
// workspaces its backward needs, owns nothing the caller trains (parameters, gradients,
// optimizer state, running statistics and dropout counters are the caller's arrays, updated in
// place), and calls the same kernels as the layer-by-layer path.
#pragma once

#include <cstdint>
#include <vector>

#include "common/activation.h"
#include "common/aligned_buffer.h"
#include "kernels/dropout.h"

namespace nnfast {

// A trained array with its gradient and optimizer state, all of `size` elements.
template <typename T>
struct Param {
  T* value = nullptr;
  T* grad = nullptr;
  T* state0 = nullptr;  // SGD velocity or Adam's m; null where the optimizer keeps none
  T* state1 = nullptr;  // Adam's v
  int64_t size = 0;
  double l1 = 0.0, l2 = 0.0;  // weight penalty l1 * sum|value| + l2 * sum(value^2)
};

template <typename T>
class TrainOp {
 public:
  TrainOp(int64_t in, int64_t out) : in_(in), out_(out) {}
  virtual ~TrainOp() = default;
  TrainOp(const TrainOp&) = delete;
  TrainOp& operator=(const TrainOp&) = delete;

  int64_t in_width() const { return in_; }
  int64_t out_width() const { return out_; }
  // The op's trained arrays, in the model's parameter order.
  const std::vector<Param<T>>& params() const { return params_; }

  // Workspaces for batches of up to `batch` rows.
  virtual void reserve(int64_t batch) = 0;
  // x (batch, in) -> output (batch, out): the op's buffer, or x itself for an identity.
  // x must stay valid until backward. Training mode: batch statistics, dropout masks.
  virtual const T* forward(const T* x, int64_t batch, bool training) = 0;
  // dy (batch, out): d loss / d output of the last forward, which was a training one (the
  // trainer backpropagates only through training steps); may be overwritten. Writes the
  // parameter gradients and returns d loss / d input (batch, in), held in dy or in
  // spare (batch, in); null when !need_dx.
  virtual T* backward(T* dy, T* spare, int64_t batch, bool need_dx) = 0;

 protected:
  int64_t in_, out_;
  std::vector<Param<T>> params_;
};

// y = act(x @ weight + bias).  x (batch, in), weight (in, out), bias (out), y (batch, out).
template <typename T>
class DenseOp final : public TrainOp<T> {
 public:
  DenseOp(int64_t in, int64_t out, Activation act, T negative_slope, Param<T> weight,
          Param<T> bias);
  void reserve(int64_t batch) override;
  const T* forward(const T* x, int64_t batch, bool training) override;
  T* backward(T* dy, T* spare, int64_t batch, bool need_dx) override;

 private:
  bool keeps_preactivation() const;
  Activation act_;
  T slope_;
  const T* x_ = nullptr;
  AlignedBuffer<T> y_, z_;  // output; pre-activation where act' needs its input (GELU)
};

// y = act(x), elementwise: an activation that cannot join a Dense epilogue (after a batch
// norm, say).  x (batch, width), y (batch, width).
template <typename T>
class ActivationOp final : public TrainOp<T> {
 public:
  ActivationOp(int64_t width, Activation act, T negative_slope);
  void reserve(int64_t batch) override;
  const T* forward(const T* x, int64_t batch, bool training) override;
  T* backward(T* dy, T* spare, int64_t batch, bool need_dx) override;

 private:
  Activation act_;
  T slope_;
  const T* x_ = nullptr;
  AlignedBuffer<T> y_;
};

// Inverted dropout in training, the identity in eval.  x (batch, width), y (batch, width).
// Each training forward uses the counter *offset and advances it by the element count (mod
// 2^64), as nn.Dropout does, so the mask stream continues across the two training paths.
// options: seed, threshold and scale as the dropout_forward binding derives them from p
// (its offset is ignored: *offset is the live counter). active: p > 0, where nn.Dropout draws
// and counts masks, even for a p so small that nothing is ever dropped.
template <typename T>
class DropoutOp final : public TrainOp<T> {
 public:
  DropoutOp(int64_t width, const DropoutOptions& options, bool active, uint64_t* offset);
  void reserve(int64_t batch) override;
  const T* forward(const T* x, int64_t batch, bool training) override;
  T* backward(T* dy, T* spare, int64_t batch, bool need_dx) override;

 private:
  DropoutOptions options_;
  bool active_;
  uint64_t* offset_;
  bool masked_ = false;  // whether the last forward dropped anything
  AlignedBuffer<T> y_;
  AlignedBuffer<uint8_t> mask_;
};

// Batch norm over the batch, as nn.BatchNorm1d.  x (batch, width), y (batch, width);
// gamma, beta (width) or value null (affine=False); running_mean, running_var (width)
// updated in place by every training forward.
template <typename T>
class BatchNormOp final : public TrainOp<T> {
 public:
  BatchNormOp(int64_t width, double momentum, double eps, Param<T> gamma, Param<T> beta,
              T* running_mean, T* running_var);
  void reserve(int64_t batch) override;
  const T* forward(const T* x, int64_t batch, bool training) override;
  T* backward(T* dy, T* spare, int64_t batch, bool need_dx) override;

 private:
  double momentum_, eps_;
  T *gamma_, *beta_, *gamma_grad_, *beta_grad_;
  T *running_mean_, *running_var_;
  const T* x_ = nullptr;
  AlignedBuffer<T> y_;
  AlignedBuffer<T> mean_, inv_std_;  // (width): the batch statistics of the last forward
};

}  // namespace nnfast
