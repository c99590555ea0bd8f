// CUDA failures as C++ exceptions; cuda_bindings.cpp turns them into Python's MemoryError
// (OutOfMemory) and RuntimeError (CudaError). No CUDA header here, so plain C++ can catch them.
#pragma once

#include <stdexcept>

namespace nnfast::gpu {

// cudaErrorMemoryAllocation; the message names the size asked for.
class OutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Any other CUDA runtime error, the message naming the call and CUDA's own description.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace nnfast::gpu
