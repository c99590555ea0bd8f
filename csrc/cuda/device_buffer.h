// An owning array in GPU memory, and the runtime queries the Python side needs. Plain C++
// (no CUDA header), so the bindings can hold buffers without being compiled by nvcc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nnfast::gpu {

// Number of CUDA devices; throws CudaError with CUDA's reason when there is no usable
// driver or device (cudaGetDeviceCount's error).
int device_count();
// CUDA versions as 1000 * major + 10 * minor: the runtime linked in, and the newest the
// installed driver supports (0 when no driver is installed).
int runtime_version();
int driver_version();
std::string device_name();
// (free, total) bytes of device memory.
void memory_info(size_t* free_bytes, size_t* total_bytes);
// Waits for all queued work and throws on any asynchronous error it produced.
void synchronize();

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) { reserve(n); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  ~DeviceBuffer();

  // Grow to at least n elements (contents are not kept when it grows). Throws OutOfMemory
  // naming the bytes asked for.
  T* reserve(size_t n);
  // Copies between host and device; n must not exceed the capacity.
  void upload(const T* host, size_t n);
  void download(T* host, size_t n) const;
  void fill_zero();

  T* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace nnfast::gpu
