// Elementwise losses, mean over all n elements, optionally weighted, forward and backward
// side by side.
// Forward sums run in double in fixed chunks (common/deterministic_sum.h).
#pragma once

#include <cstdint>

#include "kernels/loss_weights.h"

namespace nnfast {

#include "kernels/losses_contract.h"

}  // namespace nnfast
