#include "cuda/device_buffer.h"

#include <cstdint>
#include <string>
#include <utility>

#include "cuda/launch.cuh"

namespace nnfast::gpu {

int device_count() {
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  return count;
}

int runtime_version() {
  int version = 0;
  check(cudaRuntimeGetVersion(&version), "cudaRuntimeGetVersion");
  return version;
}

int driver_version() {
  int version = 0;
  check(cudaDriverGetVersion(&version), "cudaDriverGetVersion");
  return version;
}

std::string device_name() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ")";
}

void memory_info(size_t* free_bytes, size_t* total_bytes) {
  check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

void synchronize() { check(cudaDeviceSynchronize(), "running a CUDA kernel"); }

template <typename T>
DeviceBuffer<T>::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}

template <typename T>
DeviceBuffer<T>& DeviceBuffer<T>::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

template <typename T>
DeviceBuffer<T>::~DeviceBuffer() {
  if (data_) cudaFree(data_);  // a destructor cannot report; a failed free leaks nothing new
}

template <typename T>
T* DeviceBuffer<T>::reserve(size_t n) {
  if (n <= capacity_) return data_;
  if (data_) check(cudaFree(data_), "cudaFree");
  data_ = nullptr;
  capacity_ = 0;
  void* p = nullptr;
  const size_t bytes = n * sizeof(T);
  const cudaError_t status = cudaMalloc(&p, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    cudaGetLastError();
    throw OutOfMemory("CUDA out of memory: cudaMalloc of " + std::to_string(bytes) +
                      " bytes failed (" + std::to_string(free_bytes) + " of " +
                      std::to_string(total_bytes) + " bytes free on the device)");
  }
  check(status, ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  data_ = static_cast<T*>(p);
  capacity_ = n;
  return data_;
}

template <typename T>
void DeviceBuffer<T>::upload(const T* host, size_t n) {
  if (n > capacity_) throw CudaError("DeviceBuffer::upload: more elements than the capacity");
  if (n) check(cudaMemcpy(data_, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to the device");
}

template <typename T>
void DeviceBuffer<T>::download(T* host, size_t n) const {
  if (n > capacity_) throw CudaError("DeviceBuffer::download: more elements than the capacity");
  if (n) check(cudaMemcpy(host, data_, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
}

template <typename T>
void DeviceBuffer<T>::fill_zero() {
  if (capacity_) check(cudaMemset(data_, 0, capacity_ * sizeof(T)), "cudaMemset");
}

template class DeviceBuffer<float>;
template class DeviceBuffer<double>;
template class DeviceBuffer<int64_t>;
template class DeviceBuffer<uint8_t>;

}  // namespace nnfast::gpu
