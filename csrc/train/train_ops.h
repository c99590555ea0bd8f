// The operations an executor chains, one class per OpKind of train/op_spec.h, written once
// for every device: K is the kernel table (train/cpu_kernels.h, cuda/cuda_kernels.cuh) that
// supplies the kernels and the workspace type. Each op keeps the workspaces its backward
// needs and owns nothing the caller trains: parameters, gradients, optimizer state, running
// statistics and dropout counters are the caller's arrays, updated in place.
#pragma once

#include <cstdint>
#include <vector>

#include "common/activation.h"
#include "train/op_spec.h"

namespace nnfast {

// The workspace type of kernel table K.
template <typename K, typename U>
using KBuffer = typename K::template Buffer<U>;

template <typename K, typename T>
class TrainOp {
 public:
  explicit TrainOp(const OpSpec<T>& spec) : in_(spec.in), out_(spec.out) {}
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
  // dy (batch, out): d loss / d output of the last forward, which was a training one; may
  // be overwritten. Writes the parameter gradients and returns d loss / d input (batch, in),
  // held in dy or in spare (batch, in); null when !need_dx.
  virtual T* backward(T* dy, T* spare, int64_t batch, bool need_dx) = 0;
  // A data-parallel step of `total` global rows in which this process has none: keep the
  // state every process shares (dropout counters) in step with the others.
  virtual void pass(int64_t total) { (void)total; }

 protected:
  int64_t in_, out_;
  std::vector<Param<T>> params_;
};

// y = act(x @ weight + bias).  x (batch, in), weight (in, out), bias (out), y (batch, out).
template <typename K, typename T>
class DenseOp final : public TrainOp<K, T> {
 public:
  explicit DenseOp(const OpSpec<T>& spec)
      : TrainOp<K, T>(spec), act_(spec.activation), slope_(spec.activation_parameter) {
    this->params_ = {spec.weight, spec.bias};
  }

  void reserve(int64_t batch) override {
    y_.reserve(batch * this->out_);
    if (keeps_preactivation()) z_.reserve(batch * this->out_);
  }

  const T* forward(const T* x, int64_t batch, bool) override {
    const int64_t in = this->in_, out = this->out_;
    const T* weight = this->params_[0].value;
    const T* bias = this->params_[1].value;
    x_ = x;
    if (keeps_preactivation()) {
      K::template gemm<T>(false, false, batch, out, in, T(1), x, in, weight, out, T(0),
                          z_.data(), out, {bias, Activation::identity, T(0)});
      K::template activation_forward<T>(y_.data(), z_.data(), batch * out, act_, slope_);
    } else {
      K::template gemm<T>(false, false, batch, out, in, T(1), x, in, weight, out, T(0),
                          y_.data(), out, {bias, act_, slope_});
    }
    return y_.data();
  }

  T* backward(T* dy, T* spare, int64_t batch, bool need_dx) override {
    const int64_t in = this->in_, out = this->out_;
    const Param<T>& weight = this->params_[0];
    const Param<T>& bias = this->params_[1];
    const T* y = y_.data();
    const T* z = keeps_preactivation() ? z_.data() : y;
    if (act_ != Activation::identity)
      K::template activation_backward<T>(dy, dy, z, y, batch * out, act_, slope_);
    // dy is now d loss / d pre-activation (batch, out).
    K::template gemm<T>(true, false, in, out, batch, T(1), x_, in, dy, out, T(0), weight.grad,
                        out, {});
    K::template bias_grad<T>(bias.grad, dy, batch, out, T(0));
    if (!need_dx) return nullptr;
    K::template gemm<T>(false, true, batch, in, out, T(1), dy, out, weight.value, out, T(0),
                        spare, in, {});
    return spare;
  }

 private:
  // The epilogue keeps only act(z); an activation whose derivative needs z itself keeps a
  // pre-activation copy.
  bool keeps_preactivation() const { return grad_needs_input(act_, slope_); }

  Activation act_;
  T slope_;
  const T* x_ = nullptr;
  KBuffer<K, T> y_, z_;  // output; pre-activation where act' needs its input
};

// y = act(x), elementwise: an activation that cannot join a Dense epilogue (after a batch
// norm, say).  x (batch, width), y (batch, width).
template <typename K, typename T>
class ActivationOp final : public TrainOp<K, T> {
 public:
  explicit ActivationOp(const OpSpec<T>& spec)
      : TrainOp<K, T>(spec), act_(spec.activation), slope_(spec.activation_parameter) {}

  void reserve(int64_t batch) override { y_.reserve(batch * this->out_); }

  const T* forward(const T* x, int64_t batch, bool) override {
    x_ = x;
    K::template activation_forward<T>(y_.data(), x, batch * this->out_, act_, slope_);
    return y_.data();
  }

  T* backward(T* dy, T*, int64_t batch, bool need_dx) override {
    if (!need_dx) return nullptr;
    K::template activation_backward<T>(dy, dy, x_, y_.data(), batch * this->out_, act_, slope_);
    return dy;
  }

 private:
  Activation act_;
  T slope_;
  const T* x_ = nullptr;
  KBuffer<K, T> y_;
};

// Inverted dropout in training, the identity in eval.  x (batch, width), y (batch, width).
// Each training forward uses the live counter and advances it by the element count (mod
// 2^64), as nn.Dropout does, so either training path continues the same mask stream. In a
// data-parallel step (*rows, the trainer's window) the batch's rows are global rows
// [first, first + batch) of a global batch, whose element count the counter advances by.
template <typename K, typename T>
class DropoutOp final : public TrainOp<K, T> {
 public:
  DropoutOp(const OpSpec<T>& spec, const RowWindow* rows)
      : TrainOp<K, T>(spec),
        options_(spec.dropout),
        active_(spec.dropout_active),
        counter_(spec.dropout_counter),
        rows_(rows) {}

  void reserve(int64_t batch) override {
    y_.reserve(batch * this->out_);
    mask_.reserve(batch * this->out_);
  }

  const T* forward(const T* x, int64_t batch, bool training) override {
    // nn.Dropout is the identity in eval mode and at p = 0, and then leaves its counter alone.
    masked_ = training && active_;
    if (!masked_) return x;
    const int64_t width = this->out_;
    options_.offset = *counter_ + static_cast<uint64_t>(rows_->first * width);
    K::template dropout_forward<T>(y_.data(), mask_.data(), x, batch * width, options_);
    pass(rows_->total < 0 ? batch : rows_->total);
    return y_.data();
  }

  void pass(int64_t total) override {
    if (active_) *counter_ += static_cast<uint64_t>(total * this->out_);
  }

  T* backward(T* dy, T*, int64_t batch, bool need_dx) override {
    if (!need_dx) return nullptr;
    if (masked_)
      K::template dropout_backward<T>(dy, dy, mask_.data(), batch * this->out_, options_.scale);
    return dy;
  }

 private:
  DropoutOptions options_;
  bool active_;
  uint64_t* counter_;     // host memory on every device: the layer's own counter
  const RowWindow* rows_;  // the trainer's: where this step's rows sit in the global batch
  bool masked_ = false;  // whether the last forward dropped anything
  KBuffer<K, T> y_;
  KBuffer<K, uint8_t> mask_;
};

// Batch norm over the batch, as nn.BatchNorm1d.  x (batch, width), y (batch, width);
// gamma, beta (width) or value null (affine=False); running_mean, running_var (width)
// updated in place by every training forward.
template <typename K, typename T>
class BatchNormOp final : public TrainOp<K, T> {
 public:
  explicit BatchNormOp(const OpSpec<T>& spec)
      : TrainOp<K, T>(spec),
        momentum_(spec.momentum),
        eps_(spec.eps),
        gamma_(spec.weight),
        beta_(spec.bias),
        running_mean_(spec.running_mean),
        running_var_(spec.running_var) {
    if (gamma_.value) this->params_ = {gamma_, beta_};
    mean_.reserve(this->out_);
    inv_std_.reserve(this->out_);
  }

  void reserve(int64_t batch) override { y_.reserve(batch * this->out_); }

  const T* forward(const T* x, int64_t batch, bool training) override {
    const int64_t C = this->out_;
    x_ = x;
    if (training)
      K::template batchnorm_forward_train<T>(y_.data(), mean_.data(), inv_std_.data(),
                                             running_mean_, running_var_, x, gamma_.value,
                                             beta_.value, batch, C, momentum_, eps_);
    else
      K::template batchnorm_forward_eval<T>(y_.data(), x, running_mean_, running_var_,
                                            gamma_.value, beta_.value, batch, C, eps_);
    return y_.data();
  }

  T* backward(T* dy, T*, int64_t batch, bool need_dx) override {
    const int64_t C = this->out_;
    // The kernel accumulates into the gradients, as the layer path after zero_grad().
    if (gamma_.grad) K::template fill_zero<T>(gamma_.grad, C);
    if (beta_.grad) K::template fill_zero<T>(beta_.grad, C);
    K::template batchnorm_backward<T>(dy, gamma_.grad, beta_.grad, dy, x_, mean_.data(),
                                      inv_std_.data(), gamma_.value, batch, C, true);
    return need_dx ? dy : nullptr;
  }

 private:
  double momentum_, eps_;
  Param<T> gamma_, beta_;
  T *running_mean_, *running_var_;
  const T* x_ = nullptr;
  KBuffer<K, T> y_;
  KBuffer<K, T> mean_, inv_std_;  // (width): the batch statistics of the last forward
};

// The start of a skip connection: the identity, remembering its input for ResidualEndOp
// and adding the skip's gradient to the block's in backward.  x (batch, width).
template <typename K, typename T>
class ResidualBeginOp final : public TrainOp<K, T> {
 public:
  explicit ResidualBeginOp(const OpSpec<T>& spec) : TrainOp<K, T>(spec) {}

  void reserve(int64_t) override {}

  const T* forward(const T* x, int64_t, bool) override {
    x_ = x;
    return x;
  }

  T* backward(T* dy, T*, int64_t batch, bool need_dx) override {
    if (!need_dx) return nullptr;
    K::template add<T>(dy, dy, skip_grad_, batch * this->out_);
    return dy;
  }

  const T* input() const { return x_; }
  // Where the matching ResidualEndOp leaves d loss / d (this op's output) along the skip.
  void set_skip_grad(const T* grad) { skip_grad_ = grad; }

 private:
  const T* x_ = nullptr;
  const T* skip_grad_ = nullptr;
};

// The end of a skip connection: y = block(x) + x, x being the input of the matching
// ResidualBeginOp.  block(x) (batch, width), y (batch, width).
template <typename K, typename T>
class ResidualEndOp final : public TrainOp<K, T> {
 public:
  ResidualEndOp(const OpSpec<T>& spec, ResidualBeginOp<K, T>* begin)
      : TrainOp<K, T>(spec), begin_(begin) {}

  void reserve(int64_t batch) override {
    y_.reserve(batch * this->out_);
    skip_grad_.reserve(batch * this->out_);
    begin_->set_skip_grad(skip_grad_.data());
  }

  const T* forward(const T* fx, int64_t batch, bool) override {
    K::template add<T>(y_.data(), fx, begin_->input(), batch * this->out_);
    return y_.data();
  }

  // The block's backward overwrites dy, so the skip keeps its own copy.
  T* backward(T* dy, T*, int64_t batch, bool) override {
    K::template copy<T>(skip_grad_.data(), dy, batch * this->out_);
    return dy;
  }

 private:
  ResidualBeginOp<K, T>* begin_;
  KBuffer<K, T> y_, skip_grad_;
};

}  // namespace nnfast
