#include "cuda/cuda_mlp_trainer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda/activations.h"
#include "cuda/device_buffer.h"
#include "cuda/gemm.h"
#include "cuda/launch.cuh"
#include "cuda/losses.h"
#include "cuda/optimizers.h"
#include "cuda/reductions.h"

namespace nnfast::gpu {

namespace {

// out (batch, cols) = rows idx of X (n_total, cols); a row outside X gives zeros.
template <typename T>
__global__ void gather_rows_kernel(T* out, const T* X, const int64_t* idx, int64_t batch,
                                   int64_t cols, int64_t n_total) {
  NNFAST_GRID_STRIDE_LOOP(e, batch * cols) {
    const int64_t row = idx[e / cols];
    out[e] = row >= 0 && row < n_total ? X[row * cols + e % cols] : T(0);
  }
}

}  // namespace

template <typename T>
struct CudaMlpTrainer<T>::Device {
  struct Layer {
    DeviceBuffer<T> weight, bias, weight_grad, bias_grad;
    DeviceBuffer<T> weight_state0, weight_state1, bias_state0, bias_state1;
    DeviceBuffer<T> output;  // (batch, out), after the activation
    DeviceBuffer<T> preact;  // (batch, out), only where act' needs the input

    DeviceBuffer<T>& array(LayerArray which) {
      switch (which) {
        case LayerArray::weight: return weight;
        case LayerArray::bias: return bias;
        case LayerArray::weight_grad: return weight_grad;
        case LayerArray::bias_grad: return bias_grad;
        case LayerArray::weight_state0: return weight_state0;
        case LayerArray::weight_state1: return weight_state1;
        case LayerArray::bias_state0: return bias_state0;
        default: return bias_state1;
      }
    }
  };
  std::vector<Layer> layers;
  DeviceBuffer<T> X, targets;     // the data set: (n_total, in_0), (n_total, out_last)
  DeviceBuffer<int64_t> labels;   // (n_total), for cross-entropy
  int64_t n_total = 0;
  DeviceBuffer<int64_t> idx;      // (batch)
  DeviceBuffer<T> input;          // (batch, in_0): the gathered rows, or predict's input
  DeviceBuffer<T> grad_a, grad_b; // (batch, widest): ping-pong gradients
  DeviceBuffer<double> row_loss, row_correct;  // (batch)
  DeviceBuffer<double> totals{2};              // loss sum, correct count
  int64_t capacity = 0;
};

template <typename T>
CudaMlpTrainer<T>::CudaMlpTrainer(std::vector<LayerShape> layers)
    : layers_(std::move(layers)), device_(std::make_unique<Device>()) {
  if (layers_.empty()) throw std::invalid_argument("CudaMlpTrainer: no layers");
  device_->layers.resize(layers_.size());
  for (size_t l = 0; l < layers_.size(); ++l) {
    if (layers_[l].in <= 0 || layers_[l].out <= 0 || (l && layers_[l].in != layers_[l - 1].out))
      throw std::invalid_argument("CudaMlpTrainer: layer widths do not chain");
    auto& layer = device_->layers[l];
    for (LayerArray which : {LayerArray::weight, LayerArray::bias, LayerArray::weight_grad,
                             LayerArray::bias_grad, LayerArray::weight_state0,
                             LayerArray::weight_state1, LayerArray::bias_state0,
                             LayerArray::bias_state1}) {
      layer.array(which).reserve(size(l, which));
      layer.array(which).fill_zero();
    }
  }
}

template <typename T>
CudaMlpTrainer<T>::~CudaMlpTrainer() = default;

template <typename T>
int64_t CudaMlpTrainer<T>::size(size_t layer, LayerArray which) const {
  const LayerShape& s = layers_.at(layer);
  switch (which) {
    case LayerArray::bias:
    case LayerArray::bias_grad:
    case LayerArray::bias_state0:
    case LayerArray::bias_state1: return s.out;
    default: return s.in * s.out;
  }
}

template <typename T>
void CudaMlpTrainer<T>::upload(size_t layer, LayerArray which, const T* host) {
  device_->layers.at(layer).array(which).upload(host, size(layer, which));
}

template <typename T>
void CudaMlpTrainer<T>::download(size_t layer, LayerArray which, T* host) const {
  device_->layers.at(layer).array(which).download(host, size(layer, which));
}

template <typename T>
void CudaMlpTrainer<T>::set_data(const T* X, int64_t n, const void* targets, LossKind loss) {
  if (n <= 0) throw std::invalid_argument("set_data: no rows");
  Device& d = *device_;
  d.n_total = 0;  // no data until both copies succeed
  loss_ = loss;
  d.X.reserve(n * layers_.front().in);
  d.X.upload(X, n * layers_.front().in);
  if (loss_ == LossKind::cross_entropy) {
    d.labels.reserve(n);
    d.labels.upload(static_cast<const int64_t*>(targets), n);
  } else {
    d.targets.reserve(n * layers_.back().out);
    d.targets.upload(static_cast<const T*>(targets), n * layers_.back().out);
  }
  d.n_total = n;
}

template <typename T>
int64_t CudaMlpTrainer<T>::data_rows() const {
  return device_->n_total;
}

// The other layers' activation derivatives follow from their output: they pass it for z.
template <typename T>
bool CudaMlpTrainer<T>::keeps_preactivation(size_t l) const {
  return grad_needs_input(layers_[l].activation, layers_[l].negative_slope);
}

template <typename T>
void CudaMlpTrainer<T>::reserve(int64_t batch) {
  Device& d = *device_;
  if (batch <= d.capacity) return;
  int64_t widest = layers_.front().in;
  d.idx.reserve(batch);
  d.input.reserve(batch * layers_.front().in);
  for (size_t l = 0; l < layers_.size(); ++l) {
    widest = std::max(widest, layers_[l].out);
    d.layers[l].output.reserve(batch * layers_[l].out);
    if (keeps_preactivation(l)) d.layers[l].preact.reserve(batch * layers_[l].out);
  }
  d.grad_a.reserve(batch * widest);
  d.grad_b.reserve(batch * widest);
  d.row_loss.reserve(batch);
  d.row_correct.reserve(batch);
  d.capacity = batch;
}

// d.input (batch, in_0) -> each layer's output (batch, out_l).
template <typename T>
void CudaMlpTrainer<T>::forward(int64_t batch) {
  Device& d = *device_;
  const T* x = d.input.data();
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerShape& s = layers_[l];
    auto& layer = d.layers[l];
    const T slope = static_cast<T>(s.negative_slope);
    T* y = layer.output.data();
    if (keeps_preactivation(l)) {
      T* z = layer.preact.data();
      gemm<T>(false, false, batch, s.out, s.in, T(1), x, s.in, layer.weight.data(), s.out, T(0),
              z, s.out, {layer.bias.data(), Activation::identity, T(0)});
      activation_forward<T>(y, z, batch * s.out, s.activation, slope);
    } else {
      gemm<T>(false, false, batch, s.out, s.in, T(1), x, s.in, layer.weight.data(), s.out, T(0),
              y, s.out, {layer.bias.data(), s.activation, slope});
    }
    x = y;
  }
}

template <typename T>
StepResult CudaMlpTrainer<T>::step(const int64_t* idx, int64_t batch, const OptimizerConfig& opt) {
  Device& d = *device_;
  if (d.n_total == 0) throw std::invalid_argument("step: no data on the device (set_data first)");
  if (batch <= 0) throw std::invalid_argument("step: empty batch");
  reserve(batch);
  const int64_t in0 = layers_.front().in, C = layers_.back().out;
  d.idx.upload(idx, batch);
  gather_rows_kernel<T><<<blocks_for(batch * in0), kThreadsPerBlock>>>(
      d.input.data(), d.X.data(), d.idx.data(), batch, in0, d.n_total);
  check_launch("gather_rows");

  forward(batch);
  const bool labels = loss_ == LossKind::cross_entropy;
  loss_and_gradient_rows<T>(d.grad_a.data(), d.row_loss.data(), d.row_correct.data(),
                            d.layers.back().output.data(), labels ? d.labels.data() : nullptr,
                            labels ? nullptr : d.targets.data(), d.idx.data(), batch, C,
                            d.n_total, loss_);
  sum(d.totals.data(), d.row_loss.data(), batch);
  sum(d.totals.data() + 1, d.row_correct.data(), batch);

  // grad_a holds d loss / d (output of layer l); walk back, ping-ponging with grad_b.
  T* dy = d.grad_a.data();
  T* dx = d.grad_b.data();
  for (size_t l = layers_.size(); l-- > 0;) {
    const LayerShape& s = layers_[l];
    auto& layer = d.layers[l];
    const T* x = l ? d.layers[l - 1].output.data() : d.input.data();
    const T* y = layer.output.data();
    const T* z = keeps_preactivation(l) ? layer.preact.data() : y;
    if (s.activation != Activation::identity)
      activation_backward<T>(dy, dy, z, y, batch * s.out, s.activation,
                             static_cast<T>(s.negative_slope));
    // dy is now d loss / d pre-activation (batch, out).
    gemm<T>(true, false, s.in, s.out, batch, T(1), x, s.in, dy, s.out, T(0),
            layer.weight_grad.data(), s.out, {});
    bias_grad<T>(layer.bias_grad.data(), dy, batch, s.out, T(0));
    if (l > 0)  // before the update: the input gradient needs this step's weights
      gemm<T>(false, true, batch, s.in, s.out, T(1), dy, s.out, layer.weight.data(), s.out, T(0),
              dx, s.in, {});
    for (bool is_weight : {true, false}) {
      T* param = (is_weight ? layer.weight : layer.bias).data();
      const T* grad = (is_weight ? layer.weight_grad : layer.bias_grad).data();
      T* state0 = (is_weight ? layer.weight_state0 : layer.bias_state0).data();
      T* state1 = (is_weight ? layer.weight_state1 : layer.bias_state1).data();
      const int64_t n = is_weight ? s.in * s.out : s.out;
      if (opt.kind == OptimizerKind::adam)
        adam_update<T>(param, grad, state0, state1, n, opt.lr, opt.beta1, opt.beta2, opt.eps,
                       opt.weight_decay, opt.step, opt.decoupled);
      else
        sgd_update<T>(param, grad, state0, n, opt.lr, opt.momentum, opt.nesterov,
                      opt.weight_decay);
    }
    std::swap(dy, dx);
  }

  // The one synchronization of a step; it also reports any fault of the kernels above.
  double totals[2];
  d.totals.download(totals, 2);
  StepResult result;
  result.loss = labels ? totals[0] / batch : totals[0] / static_cast<double>(batch * C);
  result.correct = loss_ == LossKind::mse ? -1 : std::llround(totals[1]);
  return result;
}

template <typename T>
void CudaMlpTrainer<T>::predict(const T* X, int64_t batch, T* out) {
  if (batch <= 0) return;
  reserve(batch);
  device_->input.upload(X, batch * layers_.front().in);
  forward(batch);
  device_->layers.back().output.download(out, batch * layers_.back().out);
}

template class CudaMlpTrainer<float>;
template class CudaMlpTrainer<double>;

}  // namespace nnfast::gpu
