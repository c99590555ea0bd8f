// Norms, clipping and weight penalties: what gradient clipping and L1/L2 regularization
// need. Sums to a scalar accumulate in double over fixed chunks (common/deterministic_sum.h).
#pragma once

#include <cstdint>

namespace nnfast {

#include "kernels/norms_contract.h"

}  // namespace nnfast
