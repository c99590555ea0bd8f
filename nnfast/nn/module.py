"""Parameter and Layer: the two things every layer is made of."""
from __future__ import annotations

import numpy as np

# How many times an attribute of any Layer or Parameter, or a Sequential's layer list, was
# set. A compiled predictor checked at one count is still valid at the same count, so
# predict() rebuilds the op records only after something was set (nnfast.fused).
_EDITS = [0]


def edits() -> int:
    """The count of attribute sets on layers, parameters and layer lists so far."""
    return _EDITS[0]


def note_edit() -> None:
    _EDITS[0] += 1


class CannotLower(ValueError):
    """A layer that has no op record (a custom layer, Softmax): the compiled executors cannot
    run a model holding it, the layer-by-layer path can."""


class Parameter:
    """A trainable array and its gradient, of the same shape and dtype.

    `data` is updated in place by optimizers; `grad` accumulates across backward calls
    until `zero_grad()` (as in PyTorch).
    """

    __slots__ = ("data", "grad", "name")

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        _EDITS[0] += 1

    def __init__(self, data: np.ndarray, name: str):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={self.data.shape}, dtype={self.data.dtype})"


def as_float_input(x, dtype, name: str = "x") -> np.ndarray:
    """x as a C-contiguous array of `dtype`, copied only when it is not one already."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected numeric data, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=dtype)


def as_batch_input(x, dtype, features: int, layer: str) -> np.ndarray:
    """as_float_input for a layer that takes (N, features) batches, the shape checked too."""
    x = as_float_input(x, dtype)
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{layer}: expected input of shape (N, {features}), got {x.shape}")
    return x


def config_width(config: dict, key: str) -> int:
    """config[key] when it is a positive int (a layer width), else ValueError."""
    value = config.get(key) if isinstance(config, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return value


class Layer:
    """Base class: forward(x) -> y, backward(grad_y) -> grad_x, parameters().

    Containers list their sub-layers in children(); a layer with non-trainable arrays
    (running statistics) returns them from buffers(); a layer with an L1/L2 penalty
    returns its value from penalty(). get_config() gives the constructor arguments that
    nnfast.save writes as JSON, get_state()/set_state() any scalar state beyond them.
    """

    training = True
    # The smallest batch a training-mode forward accepts (BatchNorm1d needs 2).
    min_train_batch = 1

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        _EDITS[0] += 1

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def __call__(self, x):
        return self.forward(x)

    def train(self, mode: bool = True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def children(self) -> list["Layer"]:
        return []

    def named_children(self) -> list[tuple[str, "Layer"]]:
        """(name, layer) of the layers inside this one; the names of state_dict() keys."""
        return [(str(i), child) for i, child in enumerate(self.children())]

    def own_state(self) -> list:
        """(name, Parameter or buffer array) of this layer's own arrays, not its children's,
        under torch's names (by default its parameters' names)."""
        return [] if self.children() else [(p.name, p) for p in self.parameters()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """(name, Parameter) of every trained array, as torch's named_parameters()."""
        from . import inspection
        return [(n, e) for n, e in inspection.named_entries(self) if isinstance(e, Parameter)]

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        from . import inspection
        return [(n, e) for n, e in inspection.named_entries(self) if not isinstance(e, Parameter)]

    def state_dict(self):
        """An OrderedDict of copies of every parameter and buffer, under torch's names (see
        nnfast.nn.inspection); load_state_dict() writes them back."""
        from . import inspection
        return inspection.state_dict(self)

    def load_state_dict(self, state, strict: bool = True):
        """Copy the arrays of `state` (a state_dict()) into this layer's arrays, in place;
        strict=False loads the keys that match and returns (missing_keys, unexpected_keys)."""
        from . import inspection
        return inspection.load_state_dict(self, state, strict)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, trained or not, in Keras's order (a Dense: kernel, bias;
        a BatchNorm1d: gamma, beta, running mean, running variance)."""
        return list(self.state_dict().values())

    def set_weights(self, weights) -> None:
        """Write a list such as get_weights() returns into this layer's arrays, in place."""
        from . import inspection
        inspection.set_weights(self, weights)

    def count_params(self) -> int:
        """The number of weights, trained or not, as Keras's count_params()."""
        from . import inspection
        return inspection.count_params(self)

    def modules(self):
        """This layer and every layer inside it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def buffers(self) -> list[np.ndarray]:
        """Arrays that are state but not trained (updated in place, saved with the model)."""
        return []

    def penalty(self) -> float:
        """The L1/L2 penalty this layer adds to the loss (0 for most layers)."""
        return 0.0

    def lower(self) -> list:
        """This layer as typed op records (nnfast.nn.ops), the description the compiled
        executors run; raises ops.CannotLower for a layer that has none."""
        raise CannotLower(f"{type(self).__name__} has no op record")

    def get_config(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} does not define get_config(), so it "
                                  "cannot be saved; define get_config() and register the class "
                                  "with nnfast.nn.register_layer")

    @classmethod
    def declared_size(cls, config: dict, size_of) -> int:
        """How many parameter and buffer elements a layer built from `config` would hold,
        worked out without building it: nnfast.load checks a file's claims with it before
        allocating anything. size_of(entry) gives a sub-layer's. Raises ValueError for a
        config that cannot be built. Layers without arrays keep this default."""
        return 0

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__}: unexpected saved state {sorted(state)}")

    def __sklearn_clone__(self):
        """sklearn.base.clone(layer): the same architecture and settings, freshly initialized
        and untrained, as clone gives an unfitted estimator (copy.deepcopy and pickle keep the
        weights and state)."""
        from .registry import layer_from_config, layer_to_config, without_state
        return layer_from_config(without_state(layer_to_config(self)))

    def _saved(self, *names):
        values = [getattr(self, n, None) for n in names]
        if any(v is None for v in values):
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward()")
        return values
