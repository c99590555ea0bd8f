"""What a model holds, by name: the arrays under torch's names (state_dict, named_parameters),
in Keras's order (get_weights), counted (count_params) and tabulated (summary).

A name is the path of child names to a layer and the array's own name: "0.weight", "4.block.0.bias",
"1.running_mean" (a Sequential names its layers by index, a Residual its block "block";
BatchNorm1d's gamma and beta are torch's "weight" and "bias"). Dense's weight is
(in_features, out_features), the transpose of torch's Linear.weight.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .module import Parameter


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) did not match, as torch returns it."""

    missing_keys: list
    unexpected_keys: list


def named_entries(layer, prefix: str = ""):
    """(name, Parameter or buffer array) of `layer` and every layer inside it, depth first."""
    for name, entry in layer.own_state():
        yield prefix + name, entry
    for name, child in layer.named_children():
        yield from named_entries(child, f"{prefix}{name}.")


def _array(entry) -> np.ndarray:
    return entry.data if isinstance(entry, Parameter) else entry


def state_dict(layer) -> "OrderedDict[str, np.ndarray]":
    return OrderedDict((name, _array(entry).copy()) for name, entry in named_entries(layer))


def _assign(name: str, target: np.ndarray, value) -> None:
    value = np.asarray(value)
    if value.shape != target.shape:
        raise ValueError(f"{name}: the model's array has shape {target.shape}, the given one "
                         f"{value.shape}")
    if value.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected numeric data, got dtype {value.dtype}")
    target[...] = value  # in place: optimizers and compiled executors keep the same arrays


def load_state_dict(layer, state, strict: bool = True) -> IncompatibleKeys:
    entries = OrderedDict(named_entries(layer))
    missing = [name for name in entries if name not in state]
    unexpected = [name for name in state if name not in entries]
    if strict and (missing or unexpected):
        raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}; "
                       f"the model's keys are {list(entries)} (pass strict=False to load the "
                       "keys that match)")
    for name, entry in entries.items():
        if name in state:
            _assign(name, _array(entry), state[name])
    return IncompatibleKeys(missing, unexpected)


def set_weights(layer, weights) -> None:
    entries = list(named_entries(layer))
    weights = list(weights)
    if len(weights) != len(entries):
        raise ValueError(f"set_weights: the model has {len(entries)} arrays "
                         f"({', '.join(n for n, _ in entries)}), got {len(weights)}")
    for (name, entry), value in zip(entries, weights):
        _assign(name, _array(entry), value)


def count_params(layer) -> int:
    """Every weight, trained or not (BatchNorm1d's running statistics too), as Keras counts."""
    return sum(_array(entry).size for _, entry in named_entries(layer))


def _size_text(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n_bytes < 1024 or unit == "MB":
            return f"{n_bytes:.2f} {unit}" if unit != "B" else f"{n_bytes} B"
        n_bytes /= 1024


def summary_lines(model, line_length: int = 65) -> list[str]:
    """Keras's model.summary() table: one row per layer (name, type, output shape, weights),
    then the total, trained and untrained weights, with their size in memory."""
    widths = (29, 22, line_length - 51)
    def row(*cells):
        return "".join(f" {str(c):<{w - 1}}" for c, w in zip(cells, widths)).rstrip()
    lines = [f'Model: "{type(model).__name__}"', "_" * line_length,
             row("Layer (type)", "Output Shape", "Param #"), "=" * line_length]
    width = model.in_features
    layers = list(model.named_children()) or [("0", model)]
    for i, (name, layer) in enumerate(layers):
        out = getattr(layer, "out_features", None)
        width = out if isinstance(out, (int, np.integer)) else width
        shape = f"(None, {width if width is not None else '?'})"
        lines.append(row(f"{name} ({type(layer).__name__})", shape, f"{count_params(layer):,}"))
        lines.append("=" * line_length if i == len(layers) - 1 else "")
    entries = [_array(e) for _, e in named_entries(model)]
    trained = [_array(e) for _, e in named_entries(model) if isinstance(e, Parameter)]
    untrained = [_array(e) for _, e in named_entries(model) if not isinstance(e, Parameter)]
    for label, arrays in (("Total", entries), ("Trainable", trained), ("Non-trainable", untrained)):
        n, size = sum(a.size for a in arrays), sum(a.nbytes for a in arrays)
        lines.append(f"{label} params: {n:,} ({_size_text(size)})")
    lines.append("_" * line_length)
    return lines
