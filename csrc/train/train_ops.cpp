#include "train/train_ops.h"

#include <algorithm>

#include "gemm/gemm.h"
#include "kernels/activations.h"
#include "kernels/batchnorm.h"
#include "kernels/bias_grad.h"

namespace nnfast {

// ------------------------------------------------------------------------- Dense

template <typename T>
DenseOp<T>::DenseOp(int64_t in, int64_t out, Activation act, T negative_slope, Param<T> weight,
                    Param<T> bias)
    : TrainOp<T>(in, out), act_(act), slope_(negative_slope) {
  this->params_ = {weight, bias};
}

// ReLU, leaky ReLU (positive slope), sigmoid and tanh have derivatives computable from
// their output alone; GELU needs its input, so that layer keeps a pre-activation copy.
template <typename T>
bool DenseOp<T>::keeps_preactivation() const {
  return act_ == Activation::gelu || act_ == Activation::gelu_tanh ||
         (act_ == Activation::leaky_relu && !(slope_ > T(0)));
}

template <typename T>
void DenseOp<T>::reserve(int64_t batch) {
  y_.reserve(batch * this->out_);
  if (keeps_preactivation()) z_.reserve(batch * this->out_);
}

template <typename T>
const T* DenseOp<T>::forward(const T* x, int64_t batch, bool) {
  const int64_t in = this->in_, out = this->out_;
  const T* weight = this->params_[0].value;
  const T* bias = this->params_[1].value;
  x_ = x;
  T* y = y_.data();
  if (keeps_preactivation()) {
    T* z = z_.data();
    gemm<T>(false, false, batch, out, in, T(1), x, in, weight, out, T(0), z, out,
            {bias, Activation::identity, T(0)});
    activation_forward<T>(y, z, batch * out, act_, slope_);
  } else {
    gemm<T>(false, false, batch, out, in, T(1), x, in, weight, out, T(0), y, out,
            {bias, act_, slope_});
  }
  return y;
}

template <typename T>
T* DenseOp<T>::backward(T* dy, T* spare, int64_t batch, bool need_dx) {
  const int64_t in = this->in_, out = this->out_;
  const Param<T>& weight = this->params_[0];
  const Param<T>& bias = this->params_[1];
  const T* y = y_.data();
  const T* z = keeps_preactivation() ? z_.data() : y;
  if (act_ != Activation::identity)
    activation_backward<T>(dy, dy, z, y, batch * out, act_, slope_);
  // dy is now d loss / d pre-activation (batch, out).
  gemm<T>(true, false, in, out, batch, T(1), x_, in, dy, out, T(0), weight.grad, out, {});
  bias_grad<T>(bias.grad, dy, batch, out, T(0));
  if (!need_dx) return nullptr;
  gemm<T>(false, true, batch, in, out, T(1), dy, out, weight.value, out, T(0), spare, in, {});
  return spare;
}

// ------------------------------------------------------------------------- activation

template <typename T>
ActivationOp<T>::ActivationOp(int64_t width, Activation act, T negative_slope)
    : TrainOp<T>(width, width), act_(act), slope_(negative_slope) {}

template <typename T>
void ActivationOp<T>::reserve(int64_t batch) {
  y_.reserve(batch * this->out_);
}

template <typename T>
const T* ActivationOp<T>::forward(const T* x, int64_t batch, bool) {
  x_ = x;
  activation_forward<T>(y_.data(), x, batch * this->out_, act_, slope_);
  return y_.data();
}

template <typename T>
T* ActivationOp<T>::backward(T* dy, T*, int64_t batch, bool need_dx) {
  if (!need_dx) return nullptr;
  activation_backward<T>(dy, dy, x_, y_.data(), batch * this->out_, act_, slope_);
  return dy;
}

// ------------------------------------------------------------------------- dropout

template <typename T>
DropoutOp<T>::DropoutOp(int64_t width, const DropoutOptions& options, bool active,
                        uint64_t* offset)
    : TrainOp<T>(width, width), options_(options), active_(active), offset_(offset) {}

template <typename T>
void DropoutOp<T>::reserve(int64_t batch) {
  y_.reserve(batch * this->out_);
  mask_.reserve(batch * this->out_);
}

template <typename T>
const T* DropoutOp<T>::forward(const T* x, int64_t batch, bool training) {
  // nn.Dropout is the identity in eval mode and at p = 0, and then leaves its counter alone.
  masked_ = training && active_;
  if (!masked_) return x;
  const int64_t n = batch * this->out_;
  options_.offset = *offset_;
  dropout_forward<T>(y_.data(), mask_.data(), x, n, options_);
  *offset_ += static_cast<uint64_t>(n);
  return y_.data();
}

template <typename T>
T* DropoutOp<T>::backward(T* dy, T*, int64_t batch, bool need_dx) {
  if (!need_dx) return nullptr;
  if (masked_) dropout_backward<T>(dy, dy, mask_.data(), batch * this->out_, options_.scale);
  return dy;
}

// ------------------------------------------------------------------------- batch norm

template <typename T>
BatchNormOp<T>::BatchNormOp(int64_t width, double momentum, double eps, Param<T> gamma,
                            Param<T> beta, T* running_mean, T* running_var)
    : TrainOp<T>(width, width),
      momentum_(momentum),
      eps_(eps),
      gamma_(gamma.value),
      beta_(beta.value),
      gamma_grad_(gamma.grad),
      beta_grad_(beta.grad),
      running_mean_(running_mean),
      running_var_(running_var) {
  if (gamma.value) this->params_.push_back(gamma);
  if (beta.value) this->params_.push_back(beta);
  mean_.reserve(width);
  inv_std_.reserve(width);
}

template <typename T>
void BatchNormOp<T>::reserve(int64_t batch) {
  y_.reserve(batch * this->out_);
}

template <typename T>
const T* BatchNormOp<T>::forward(const T* x, int64_t batch, bool training) {
  const int64_t C = this->out_;
  x_ = x;
  if (training)
    batchnorm_forward_train<T>(y_.data(), mean_.data(), inv_std_.data(), running_mean_,
                               running_var_, x, gamma_, beta_, batch, C, momentum_, eps_);
  else
    batchnorm_forward_eval<T>(y_.data(), x, running_mean_, running_var_, gamma_, beta_, batch,
                              C, eps_);
  return y_.data();
}

template <typename T>
T* BatchNormOp<T>::backward(T* dy, T*, int64_t batch, bool need_dx) {
  const int64_t C = this->out_;
  // The kernel accumulates into the gradients, as the layer path after zero_grad().
  if (gamma_grad_) std::fill(gamma_grad_, gamma_grad_ + C, T(0));
  if (beta_grad_) std::fill(beta_grad_, beta_grad_ + C, T(0));
  batchnorm_backward<T>(dy, gamma_grad_, beta_grad_, dy, x_, mean_.data(), inv_std_.data(),
                        gamma_, batch, C, true);
  return need_dx ? dy : nullptr;
}

template class DenseOp<float>;
template class DenseOp<double>;
template class ActivationOp<float>;
template class ActivationOp<double>;
template class DropoutOp<float>;
template class DropoutOp<double>;
template class BatchNormOp<float>;
template class BatchNormOp<double>;

}  // namespace nnfast
