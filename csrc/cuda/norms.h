// Norms, clipping and weight penalties on device pointers, with the formulas of
// kernels/norms.h: what gradient clipping and L1/L2 regularization need. Sums accumulate
// in double in a fixed order (cuda/block_sum.cuh) and return on the host.
#pragma once

#include <cstdint>

namespace nnfast::gpu {

#include "kernels/norms_contract.h"

}  // namespace nnfast::gpu
