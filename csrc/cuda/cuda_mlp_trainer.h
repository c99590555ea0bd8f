// The fused training step of train/mlp_trainer.h on a GPU: parameters, gradients, optimizer
// state, the data set and every workspace live in device memory; a step uploads only the
// batch's row indices and downloads only the loss and the count of correct predictions.
// Plain C++ interface (no CUDA header), so the bindings need no CUDA toolchain.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/activation.h"
#include "train/mlp_trainer.h"

namespace nnfast::gpu {

struct LayerShape {
  int64_t in = 0, out = 0;
  Activation activation = Activation::identity;
  double negative_slope = 0.01;
};

// The arrays of one layer that the host can read and write, named as in nnfast/fused.py.
// Optimizer state: SGD momentum uses state0 (velocity); Adam uses state0 (m), state1 (v).
enum class LayerArray {
  weight, bias, weight_grad, bias_grad, weight_state0, weight_state1, bias_state0, bias_state1
};

template <typename T>
class CudaMlpTrainer {
 public:
  using value_type = T;
  // Allocates every layer's arrays on the device; gradients and optimizer state start at 0.
  explicit CudaMlpTrainer(std::vector<LayerShape> layers);
  ~CudaMlpTrainer();

  const std::vector<LayerShape>& layers() const { return layers_; }
  // Elements of `which` in layer l: in * out for weight arrays, out for bias arrays.
  int64_t size(size_t layer, LayerArray which) const;
  void upload(size_t layer, LayerArray which, const T* host);
  void download(size_t layer, LayerArray which, T* host) const;

  // X (n, in_0); labels int64 (n), each in [0, out_last), for cross-entropy, else targets
  // T (n, out_last). Copied to the device once and trained on with `loss` by every step
  // until replaced.
  void set_data(const T* X, int64_t n, const void* targets, LossKind loss);
  int64_t data_rows() const;

  // idx (batch), rows of the data set in [0, data_rows()), on the host.
  StepResult step(const int64_t* idx, int64_t batch, const OptimizerConfig& opt);

  // X (batch, in_0), out (batch, out_last), both on the host.
  void predict(const T* X, int64_t batch, T* out);

 private:
  struct Device;  // the device buffers, defined in the .cu file
  void reserve(int64_t batch);
  void forward(int64_t batch);
  bool keeps_preactivation(size_t layer) const;

  std::vector<LayerShape> layers_;
  LossKind loss_ = LossKind::cross_entropy;  // of the data set
  std::unique_ptr<Device> device_;
};

}  // namespace nnfast::gpu
