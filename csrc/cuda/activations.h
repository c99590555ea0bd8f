// Activations on device pointers, forward and backward side by side (activation_device.cuh's
// scalar functions, the formulas of common/activation.h, shared with the GEMM epilogue).
#pragma once

#include <cstdint>

#include "common/activation.h"

namespace nnfast::gpu {

#include "kernels/activations_contract.h"

}  // namespace nnfast::gpu
