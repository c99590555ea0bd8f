"""Layers and containers."""
from . import activations
from .activations import *  # noqa: F403 - the activation layers, as its __all__ lists them
from .batchnorm import BatchNorm1d
from .dense import Dense
from .dropout import Dropout
from . import ops
from .module import Layer, Parameter
from .registry import layer_from_config, layer_to_config, register_layer
from .residual import Residual
from .sequential import Sequential

for _cls in (Dense, *(getattr(activations, name) for name in activations.__all__), Dropout,
             BatchNorm1d, Residual, Sequential):
    register_layer(_cls)
del _cls

__all__ = ["Dense", *activations.__all__, "Dropout", "BatchNorm1d", "Residual", "Sequential",
           "Layer", "Parameter", "register_layer", "layer_to_config", "layer_from_config"]
