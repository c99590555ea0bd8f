"""The primitives every backend implements (DESIGN.md, "The backend contract").

A backend that lacks one answers with NotImplementedError naming it, never with something
else computed silently: backend modules end with `__getattr__ = missing_primitives(name)`.
"""
from __future__ import annotations

PRIMITIVES = (
    "gemm",
    "activation_forward", "activation_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "mse_forward", "mse_backward",
    "bce_forward", "bce_backward",
    "bce_with_logits_forward", "bce_with_logits_backward",
    "bias_grad",
    "sgd_update", "adam_update",
    "dropout_forward", "dropout_backward",
    "batchnorm_forward_train", "batchnorm_forward_eval", "batchnorm_backward",
    "sum_squares", "scale_inplace", "clip_inplace",
    "weight_penalty_forward", "weight_penalty_backward",
)

# The activations the primitives take by name (gemm's epilogue all but softmax), in the
# order of the Activation enum of csrc/common/activation.h: the numba kernels take the
# index as the code.
ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "softmax",
               "silu", "elu")


def missing_primitives(backend_name: str):
    """A module-level __getattr__ that raises NotImplementedError for contract primitives."""

    def __getattr__(attr: str):
        if attr in PRIMITIVES:
            def not_implemented(*args, **kwargs):
                raise NotImplementedError(
                    f"the '{backend_name}' backend does not implement {attr}(); "
                    f"use another backend (nnfast.set_backend) for it")
            not_implemented.__name__ = attr
            return not_implemented
        raise AttributeError(f"backend '{backend_name}' has no attribute '{attr}'")

    return __getattr__
