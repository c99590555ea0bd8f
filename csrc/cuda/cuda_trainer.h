// The trainer of train/trainer.h on a GPU, on the CudaKernels table: parameters, gradients,
// optimizer state, running statistics, the data set and every workspace live in device
// memory; a step uploads only the batch's row indices and brings back only the loss and
// the count of correct predictions. Plain C++ interface (no CUDA header), so the bindings
// need no CUDA toolchain.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "train/op_spec.h"

namespace nnfast::gpu {

template <typename T>
class CudaTrainer {
 public:
  // specs chain as Trainer's do. Every array they point to is in device memory, except the
  // dropout counters, which the trainer reads and advances on the host; all are the
  // caller's, and must outlive this trainer; so must class_weight (out) in device memory, or
  // null: the loss's per-class weights.
  CudaTrainer(const std::vector<OpSpec<T>>& specs, LossKind loss, const T* class_weight);
  ~CudaTrainer();

  int64_t in_width() const;
  int64_t out_width() const;

  // X (n, in), targets (int64 labels (n) in [0, out) for cross-entropy, else T (n, out)) and
  // sample_weight (n) or null, in device memory, the caller's: what every step trains on
  // until replaced.
  void set_data(const T* X, int64_t n, const void* targets, const T* sample_weight);
  int64_t data_rows() const;

  // idx (batch) on the host, rows in [0, data_rows()).
  StepResult step(const int64_t* idx, int64_t batch, const UpdateRule& rule);

  // X (batch, in), out (batch, out) on the host: inference in eval mode.
  void predict(const T* X, int64_t batch, T* out);

 private:
  struct Device;  // the trainer and its transfer buffers, defined in the .cu file
  std::unique_ptr<Device> device_;
};

}  // namespace nnfast::gpu
