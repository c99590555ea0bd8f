// A growable, 64-byte-aligned scratch buffer: workspaces are sized once per batch shape and
// reused, so steady-state training allocates nothing.
#pragma once

#include <cstddef>
#include <new>

namespace nnfast {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { release(); }

  // Grow to at least n elements; contents are not preserved when it grows.
  T* reserve(size_t n) {
    if (n > capacity_) {
      release();
      data_ = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlign)));
      capacity_ = n;
    }
    return data_;
  }
  T* data() const { return data_; }

 private:
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t(kAlign));
    data_ = nullptr;
    capacity_ = 0;
  }
  static constexpr size_t kAlign = 64;
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace nnfast
