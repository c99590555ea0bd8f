#include "cuda/cuda_trainer.h"

#include "cuda/cuda_kernels.h"
#include "cuda/device_buffer.h"
#include "train/trainer.h"

namespace nnfast {

template class Trainer<CudaKernels, float>;
template class Trainer<CudaKernels, double>;

namespace gpu {

template <typename T>
struct CudaTrainer<T>::Device {
  Device(const std::vector<OpSpec<T>>& specs, LossKind loss, const T* class_weight)
      : trainer(specs, loss, class_weight) {}

  Trainer<CudaKernels, T> trainer;
  const T* X = nullptr;
  const void* targets = nullptr;
  const T* sample_weight = nullptr;
  int64_t rows = 0;
  DeviceBuffer<int64_t> idx;     // (batch): a step's rows
  DeviceBuffer<T> input, output;  // (batch, in), (batch, out): predict's
};

template <typename T>
CudaTrainer<T>::CudaTrainer(const std::vector<OpSpec<T>>& specs, LossKind loss,
                            const T* class_weight)
    : device_(std::make_unique<Device>(specs, loss, class_weight)) {}

template <typename T>
CudaTrainer<T>::~CudaTrainer() = default;

template <typename T>
int64_t CudaTrainer<T>::in_width() const {
  return device_->trainer.in_width();
}

template <typename T>
int64_t CudaTrainer<T>::out_width() const {
  return device_->trainer.out_width();
}

template <typename T>
void CudaTrainer<T>::set_data(const T* X, int64_t n, const void* targets,
                              const T* sample_weight) {
  device_->X = X;
  device_->rows = n;
  device_->targets = targets;
  device_->sample_weight = sample_weight;
}

template <typename T>
int64_t CudaTrainer<T>::data_rows() const {
  return device_->rows;
}

template <typename T>
StepResult CudaTrainer<T>::step(const int64_t* idx, int64_t batch, const UpdateRule& rule) {
  Device& d = *device_;
  d.idx.reserve(batch);
  d.idx.upload(idx, batch);
  return d.trainer.step(d.X, d.targets, d.idx.data(), batch, rule, d.sample_weight);
}

template <typename T>
void CudaTrainer<T>::predict(const T* X, int64_t batch, T* out) {
  Device& d = *device_;
  const int64_t in = d.trainer.in_width(), width = d.trainer.out_width();
  d.input.reserve(batch * in);
  d.output.reserve(batch * width);
  d.input.upload(X, batch * in);
  d.trainer.predict(d.input.data(), batch, d.output.data());
  d.output.download(out, batch * width);
}

template class CudaTrainer<float>;
template class CudaTrainer<double>;

}  // namespace gpu
}  // namespace nnfast
