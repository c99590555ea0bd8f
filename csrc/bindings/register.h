// What module.cpp calls to fill nnfast._core, and what the trainer shares with the primitives.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>

#include "kernels/dropout.h"

namespace nnfast::bindings {

// The contract's primitives, and their names as the tuple _core.PRIMITIVES.
void register_primitives(pybind11::module_& m);
// The fused training step, _core.MlpTrainer.
void register_trainer(pybind11::module_& m);

// The kernel's options for probability p, shared by dropout_forward and the fused step so
// that both draw the same mask.
nnfast::DropoutOptions dropout_options(double p, uint64_t seed, uint64_t offset);

}  // namespace nnfast::bindings
