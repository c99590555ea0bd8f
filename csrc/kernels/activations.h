// Activations, forward and backward side by side: the elementwise ones and row-wise softmax.
#pragma once

#include <cstdint>

#include "common/activation.h"

namespace nnfast {

#include "kernels/activations_contract.h"

}  // namespace nnfast
