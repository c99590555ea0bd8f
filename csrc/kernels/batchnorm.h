// Batch normalization over the batch (torch.nn.BatchNorm1d), forward and backward side by
// side. Column statistics are sums in double over fixed row chunks (common/column_sums.h),
// bitwise the same on any thread count. gamma/beta null: scale 1, shift 0.
#pragma once

#include <cstdint>

namespace nnfast {

#include "kernels/batchnorm_contract.h"

}  // namespace nnfast
