// Batch normalization over the batch (torch.nn.BatchNorm1d) on device pointers, forward and
// backward side by side, with the formulas of kernels/batchnorm.h. Column statistics are
// sums in double in a fixed order (cuda/block_sum.cuh). gamma/beta null: scale 1, shift 0.
#pragma once

#include <cstdint>

namespace nnfast::gpu {

#include "kernels/batchnorm_contract.h"

}  // namespace nnfast::gpu
