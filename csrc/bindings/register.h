// What module.cpp calls to fill nnfast._core.
#pragma once

#include <pybind11/pybind11.h>

namespace nnfast::bindings {

// The contract's primitives, and their names as the tuple _core.PRIMITIVES.
void register_primitives(pybind11::module_& m);
// The fused training step, _core.Trainer.
void register_trainer(pybind11::module_& m);

}  // namespace nnfast::bindings
