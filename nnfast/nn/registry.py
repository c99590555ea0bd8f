"""Layers as JSON: the architecture that nnfast.save writes and nnfast.load rebuilds."""
from __future__ import annotations

from .module import Layer

_LAYERS: dict[str, type] = {}


def register_layer(cls: type) -> type:
    """Make a Layer subclass loadable by name (usable as a class decorator). The class needs
    get_config() returning JSON-able constructor arguments (and from_config if they are not
    plain keyword arguments)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer: expected a Layer subclass, got {cls!r}")
    _LAYERS[cls.__name__] = cls
    return cls


def layer_to_config(layer: Layer) -> dict:
    """{"class": name, "config": constructor arguments, "state": scalar state}."""
    name = type(layer).__name__
    if _LAYERS.get(name) is not type(layer):
        raise TypeError(f"cannot save a {name} layer: its class is not registered "
                        "(nnfast.nn.register_layer)")
    entry = {"class": name, "config": layer.get_config()}
    state = layer.get_state()
    if state:
        entry["state"] = state
    return entry


def without_state(entry):
    """A layer_to_config() description without the scalar state of any layer in it (the
    architecture alone, as a fresh model would be built)."""
    if isinstance(entry, list):
        return [without_state(item) for item in entry]
    if not isinstance(entry, dict):
        return entry
    is_layer = "class" in entry
    return {key: without_state(value) for key, value in entry.items()
            if not (is_layer and key == "state")}


# Containers nested deeper than this are refused on loading: no real model comes near, and
# building (or the recursion limit) would fail on a hostile file instead.
MAX_NESTING = 100


def _layer_class(entry) -> type:
    if not isinstance(entry, dict) or "class" not in entry:
        raise ValueError(f"layer description must be a dict with a 'class', got {entry!r}"[:300])
    cls = _LAYERS.get(entry["class"]) if isinstance(entry["class"], str) else None
    if cls is None:
        raise ValueError(f"unknown layer class {entry['class']!r} (known: {sorted(_LAYERS)})"[:300])
    return cls


def declared_size(entry: dict, depth: int = 0) -> int:
    """The parameter and buffer elements of the model `entry` describes, without building it
    (Layer.declared_size); ValueError for nesting deeper than MAX_NESTING."""
    if depth > MAX_NESTING:
        raise ValueError(f"layers nested more than {MAX_NESTING} deep")
    config = entry.get("config", {}) if isinstance(entry, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"a layer's config must be a dict, got {config!r}"[:300])
    return _layer_class(entry).declared_size(config, lambda child: declared_size(child, depth + 1))


def layer_from_config(entry: dict) -> Layer:
    cls = _layer_class(entry)
    config = entry.get("config", {})
    layer = cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    if "state" in entry:
        layer.set_state(entry["state"])
    return layer
