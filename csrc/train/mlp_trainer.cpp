#include "train/mlp_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "common/parallel.h"
#include "common/threading.h"
#include "gemm/gemm.h"
#include "kernels/activations.h"
#include "kernels/bias_grad.h"
#include "kernels/optimizers.h"

namespace nnfast {

namespace {
constexpr int64_t kMinRowsPerThread = 16;
constexpr int64_t kMinElementsPerThread = 1 << 14;
}  // namespace

template <typename T>
MlpTrainer<T>::MlpTrainer(std::vector<DenseLayerRef<T>> layers, LossKind loss)
    : layers_(std::move(layers)), loss_(loss), outputs_(layers_.size()), preacts_(layers_.size()) {}

// ReLU, leaky ReLU (positive slope), sigmoid and tanh have derivatives computable from
// their output alone; GELU needs its input, so that layer keeps a pre-activation copy.
template <typename T>
bool MlpTrainer<T>::keeps_preactivation(size_t l) const {
  const auto& layer = layers_[l];
  return layer.activation == Activation::gelu || layer.activation == Activation::gelu_tanh ||
         (layer.activation == Activation::leaky_relu && !(layer.negative_slope > T(0)));
}

template <typename T>
void MlpTrainer<T>::reserve(int64_t batch) {
  if (batch <= capacity_) return;
  int64_t widest = layers_.front().in;
  input_.reserve(batch * layers_.front().in);
  for (size_t l = 0; l < layers_.size(); ++l) {
    widest = std::max(widest, layers_[l].out);
    outputs_[l].reserve(batch * layers_[l].out);
    if (keeps_preactivation(l)) preacts_[l].reserve(batch * layers_[l].out);
  }
  grad_a_.reserve(batch * widest);
  grad_b_.reserve(batch * widest);
  row_loss_.reserve(batch);
  row_correct_.reserve(batch);
  capacity_ = batch;
}

// x0 (batch, in_0) -> outputs_[l] (batch, out_l); the last layer writes into last_out.
template <typename T>
void MlpTrainer<T>::forward(const T* x0, int64_t batch, T* last_out) {
  const T* x = x0;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto& layer = layers_[l];
    T* y = (l + 1 == layers_.size() && last_out) ? last_out : outputs_[l].data();
    if (keeps_preactivation(l)) {
      T* z = preacts_[l].data();
      gemm<T>(false, false, batch, layer.out, layer.in, T(1), x, layer.in, layer.weight,
              layer.out, T(0), z, layer.out, {layer.bias, Activation::identity, T(0)});
      activation_forward<T>(y, z, batch * layer.out, layer.activation, layer.negative_slope);
    } else {
      gemm<T>(false, false, batch, layer.out, layer.in, T(1), x, layer.in, layer.weight,
              layer.out, T(0), y, layer.out, {layer.bias, layer.activation, layer.negative_slope});
    }
    x = y;
  }
}

// From the last layer's output (batch, C) and the targets: the batch-mean loss, the count
// of correct predictions, and d loss / d output written into grad_a_ (batch, C).
template <typename T>
StepResult MlpTrainer<T>::loss_and_gradient(const void* targets, const int64_t* idx,
                                            int64_t batch) {
  const int64_t C = layers_.back().out;
  const T* out = outputs_.back().data();
  T* grad = grad_a_.data();
  double* row_loss = row_loss_.data();
  int64_t* row_correct = row_correct_.data();
  const int threads = threads_for(batch, kMinRowsPerThread);

  if (loss_ == LossKind::cross_entropy) {
    const int64_t* labels = static_cast<const int64_t*>(targets);
    const T inv_batch = T(1) / T(batch);
    parallel_tasks(batch, threads, [&](int64_t i) {
      const T* z = out + i * C;
      T* g = grad + i * C;
      const int64_t label = labels[idx[i]];
      int64_t argmax = 0;
      for (int64_t j = 1; j < C; ++j)
        if (z[j] > z[argmax]) argmax = j;
      const T zmax = z[argmax];
      T sum = T(0);
      for (int64_t j = 0; j < C; ++j) {
        g[j] = std::exp(z[j] - zmax);
        sum += g[j];
      }
      const T scale = inv_batch / sum;
      for (int64_t j = 0; j < C; ++j) g[j] *= scale;
      g[label] -= inv_batch;
      row_loss[i] = static_cast<double>(std::log(sum) + zmax - z[label]);
      row_correct[i] = argmax == label;
    });
  } else {
    const T* t_all = static_cast<const T*>(targets);
    const T inv_count = T(1) / T(batch * C);
    const bool logits = loss_ == LossKind::bce_with_logits;
    parallel_tasks(batch, threads, [&](int64_t i) {
      const T* z = out + i * C;
      const T* t = t_all + idx[i] * C;
      T* g = grad + i * C;
      double loss = 0.0;
      int64_t correct = 0;
      for (int64_t j = 0; j < C; ++j) {
        if (logits) {
          const T zj = z[j];
          loss += static_cast<double>(std::max(zj, T(0)) - zj * t[j] +
                                      std::log1p(std::exp(-std::abs(zj))));
          g[j] = (sigmoid_stable(zj) - t[j]) * inv_count;
          correct += (zj >= T(0)) == (t[j] >= T(0.5));
        } else {
          const T d = z[j] - t[j];
          loss += static_cast<double>(d * d);
          g[j] = T(2) * d * inv_count;
        }
      }
      row_loss[i] = loss;
      row_correct[i] = correct;
    });
  }
  // Summed in row order on one thread, so the loss does not depend on the thread count.
  double total = 0.0;
  int64_t correct = 0;
  for (int64_t i = 0; i < batch; ++i) {
    total += row_loss[i];
    correct += row_correct[i];
  }
  StepResult result;
  result.loss = loss_ == LossKind::cross_entropy ? total / batch : total / (batch * C);
  result.correct = loss_ == LossKind::mse ? -1 : correct;
  return result;
}

template <typename T>
void MlpTrainer<T>::update(T* param, const T* grad, T* state0, T* state1, int64_t n,
                           const OptimizerConfig& opt) const {
  if (opt.kind == OptimizerKind::adam) {
    AdamOptions adam;
    adam.lr = opt.lr;
    adam.beta1 = opt.beta1;
    adam.beta2 = opt.beta2;
    adam.eps = opt.eps;
    adam.weight_decay = opt.weight_decay;
    adam.step = opt.step;
    adam.decoupled = opt.decoupled;
    adam_update<T>(param, grad, state0, state1, n, adam);
  } else {
    SgdOptions sgd;
    sgd.lr = opt.lr;
    sgd.momentum = opt.momentum;
    sgd.nesterov = opt.nesterov;
    sgd.weight_decay = opt.weight_decay;
    sgd_update<T>(param, grad, opt.momentum != 0.0 ? state0 : nullptr, n, sgd);
  }
}

template <typename T>
StepResult MlpTrainer<T>::step(const T* X, const void* targets, const int64_t* idx,
                               int64_t batch, const OptimizerConfig& opt) {
  reserve(batch);
  const int64_t in0 = layers_.front().in;
  T* x0 = input_.data();
  const int gather_threads = threads_for(batch * in0, kMinElementsPerThread);
  parallel_tasks(batch, gather_threads, [&](int64_t i) {
    std::memcpy(x0 + i * in0, X + idx[i] * in0, sizeof(T) * in0);
  });

  forward(x0, batch, nullptr);
  const StepResult result = loss_and_gradient(targets, idx, batch);

  // grad_a_ holds d loss / d (output of layer l); walk back, ping-ponging with grad_b_.
  T* dy = grad_a_.data();
  T* dx = grad_b_.data();
  for (size_t l = layers_.size(); l-- > 0;) {
    auto& layer = layers_[l];
    const T* x = l ? outputs_[l - 1].data() : x0;
    const T* y = outputs_[l].data();
    const T* z = keeps_preactivation(l) ? preacts_[l].data() : y;
    const int64_t n = batch * layer.out;
    if (layer.activation != Activation::identity)
      activation_backward<T>(dy, dy, z, y, n, layer.activation, layer.negative_slope);
    // dy is now d loss / d pre-activation (batch, out).
    gemm<T>(true, false, layer.in, layer.out, batch, T(1), x, layer.in, dy, layer.out, T(0),
            layer.weight_grad, layer.out, {});
    bias_grad<T>(layer.bias_grad, dy, batch, layer.out, T(0));
    if (l > 0)  // before the update: the input gradient needs this step's weights
      gemm<T>(false, true, batch, layer.in, layer.out, T(1), dy, layer.out, layer.weight,
              layer.out, T(0), dx, layer.in, {});
    update(layer.weight, layer.weight_grad, layer.weight_state0, layer.weight_state1,
           layer.in * layer.out, opt);
    update(layer.bias, layer.bias_grad, layer.bias_state0, layer.bias_state1, layer.out, opt);
    std::swap(dy, dx);
  }
  return result;
}

template <typename T>
void MlpTrainer<T>::predict(const T* X, int64_t batch, T* out) {
  reserve(batch);
  forward(X, batch, out);
}

template class MlpTrainer<float>;
template class MlpTrainer<double>;

}  // namespace nnfast
