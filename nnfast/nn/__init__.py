"""Layers and containers."""
from .activations import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .dense import Dense
from .module import Layer, Parameter
from .sequential import Sequential

__all__ = ["Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "GELU", "Sequential",
           "Layer", "Parameter"]
