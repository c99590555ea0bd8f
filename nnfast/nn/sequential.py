"""Sequential: layers applied in order, with backward in reverse and the training API."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .module import Layer, as_float_input, note_edit
from .registry import layer_from_config, layer_to_config


@dataclass(frozen=True)
class TrainingAPI:
    """What Sequential's training methods call. nnfast/__init__.py provides it
    (nnfast.train, nnfast.saving, nnfast.device), so that nn depends on no module above it."""

    fit: Callable
    evaluate: Callable
    predict: Callable
    predict_proba: Callable
    predict_classes: Callable
    save: Callable
    to: Callable
    device_of: Callable


_api: TrainingAPI | None = None


def provide_training_api(api: TrainingAPI) -> None:
    global _api
    _api = api


def _counted(method):
    def mutate(self, *args):
        result = method(self, *args)
        note_edit()
        return result
    mutate.__name__ = method.__name__
    return mutate


class LayerList(list):
    """A Sequential's layers: a list whose every change counts as an edit (module.edits()),
    so that a compiled predictor notices a layer swapped in place."""


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert",
              "pop", "remove", "clear", "sort", "reverse"):
    setattr(LayerList, _name, _counted(getattr(list, _name)))
del _name


def _refuse_shared_layers(layers) -> None:
    """One layer object in two places (weight tying, Sequential(d, Tanh(), d)) is refused on
    every backend: a layer keeps the input of its last forward for its backward, so its
    first use would get the second's gradient (0.11 off torch after one SGD step on numpy
    and numba), and the compiled trainer updates each parameter once."""
    seen: dict[int, int] = {}
    for i, layer in enumerate(layers):
        for module in layer.modules():
            first = seen.setdefault(id(module), i)
            if first != i:
                raise ValueError(
                    f"Sequential: the same {type(module).__name__} object is used at positions "
                    f"{first} and {i}; a layer can appear once in a model. Create a separate "
                    f"layer for each position (weight tying is not supported)")


class Sequential(Layer):
    """A stack of layers. `model(x)` runs forward, `model.backward(grad)` runs backward
    and returns the gradient with respect to the input; fit/evaluate/predict train and use it.

    Set by fit() (and nnfast.load), as in Keras: `history` (the last fit's History), `loss`,
    `optimizer` and `scheduler` (what a later fit() continues with), `epochs_trained`
    (epochs over every fit() call), `stop_training` (a callback sets it to end fit()).
    """

    can_skip_input_grad = True

    def __init__(self, *layers: Layer):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer")
        _refuse_shared_layers(layers)
        self.layers = LayerList(layers)
        self._check_widths()
        self.history = self.loss = self.optimizer = self.scheduler = None
        self.epochs_trained = 0
        self.stop_training = False

    def _check_widths(self) -> None:
        """Refuse layers whose widths do not chain, naming both, before any data flows."""
        previous = None
        for i, layer in enumerate(self.layers):
            fan_in = getattr(layer, "in_features", None)
            if previous is not None and isinstance(fan_in, (int, np.integer)) and fan_in != previous[2]:
                j, before, width = previous
                raise ValueError(f"Sequential: layer {i}, {layer!r}, takes {fan_in} inputs, but "
                                 f"layer {j}, {before!r}, gives {width} outputs; make layer {i}'s "
                                 f"input width {width}")
            fan_out = getattr(layer, "out_features", None)
            if isinstance(fan_out, (int, np.integer)):
                previous = (i, layer, int(fan_out))

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first parametrized layer (float32 for a model without one)."""
        for layer in self.layers:
            params = layer.parameters()
            if params:
                return params[0].dtype
        return np.dtype(np.float32)

    @property
    def in_features(self) -> int | None:
        return next((layer.in_features for layer in self.layers
                     if getattr(layer, "in_features", None) is not None), None)

    @property
    def out_features(self) -> int | None:
        return next((layer.out_features for layer in reversed(self.layers)
                     if getattr(layer, "out_features", None) is not None), None)

    def forward(self, x):
        x = as_float_input(x, self.dtype)
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad_out, need_input_grad: bool = True):
        """Backpropagate `grad_out` (d loss / d output); accumulate parameter gradients.

        Returns d loss / d input, or None when need_input_grad is False (fit() skips the
        first layer's input gradient, which nothing uses).
        """
        grad = grad_out
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == 0 and not need_input_grad and getattr(layer, "can_skip_input_grad", False):
                return layer.backward(grad, need_input_grad=False)
            grad = layer.backward(grad)
        return grad

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def children(self):
        return list(self.layers)

    def buffers(self):
        return [b for layer in self.layers for b in layer.buffers()]

    def lower(self):
        return [op for layer in self.layers for op in layer.lower()]

    def penalty(self) -> float:
        """The sum of the layers' L1/L2 penalties: add it to the loss in a manual loop
        (backward() already adds its gradient); fit() reports loss + penalty."""
        return sum((layer.penalty() for layer in self.layers), 0.0)

    def get_config(self):
        return {"layers": [layer_to_config(layer) for layer in self.layers]}

    @classmethod
    def declared_size(cls, config, size_of):
        layers = config.get("layers") if isinstance(config, dict) else None
        if not isinstance(layers, list):
            raise ValueError(f"Sequential: 'layers' must be a list, got {layers!r}")
        return sum(size_of(entry) for entry in layers)

    @classmethod
    def from_config(cls, config):
        return cls(*[layer_from_config(entry) for entry in config["layers"]])

    def save(self, path) -> None:
        """Write the architecture, weights, running statistics and optimizer state to `path`
        (an .npz archive without pickles); nnfast.load(path) gives the model back."""
        _api.save(self, path)

    def train(self, mode: bool = True):
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def to(self, device: str):
        """Move training to "cuda" (parameters, optimizer state and data in GPU memory) or
        back to "cpu"; returns the model. See nnfast.device."""
        return _api.to(self, device)

    @property
    def device(self) -> str:
        return _api.device_of(self)

    def fit(self, X, y, **kwargs):
        """Train on (X, y); see nnfast.train.fit for the arguments. Returns a History."""
        return _api.fit(self, X, y, **kwargs)

    def evaluate(self, X, y, **kwargs):
        """Loss and accuracy on (X, y) in eval mode; see nnfast.train.evaluate."""
        return _api.evaluate(self, X, y, **kwargs)

    def predict(self, X, **kwargs):
        """The model's outputs on X in eval mode (logits for a CrossEntropy model)."""
        return _api.predict(self, X, **kwargs)

    def predict_proba(self, X, **kwargs):
        """Probabilities on X by the loss the model trained with; see nnfast.train.predict_proba."""
        return _api.predict_proba(self, X, **kwargs)

    def predict_classes(self, X, threshold=None, **kwargs):
        """Predicted classes on X, sigmoid outputs cut at `threshold` (default 0.5); see
        nnfast.train.predict_classes."""
        return _api.predict_classes(self, X, threshold=threshold, **kwargs)

    def summary(self, print_fn=print, line_length: int = 65) -> None:
        """Print the layers, their output shapes and weight counts, and the totals, in
        Keras's format; print_fn receives each line."""
        from .inspection import summary_lines
        for line in summary_lines(self, line_length):
            print_fn(line)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __repr__(self):
        # A nested block's lines are indented one level deeper than the line that opens it.
        inner = "\n".join(f"  ({i}): " + repr(layer).replace("\n", "\n  ")
                          for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
