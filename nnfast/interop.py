"""Arrays from other libraries: anything with __dlpack__ (torch, JAX, CuPy, TensorFlow
tensors) is read as a NumPy array through DLPack, without a copy when it is on the CPU.
The arrays nnfast returns are NumPy arrays, which DLPack consumers take as they are
(torch.from_dlpack(model.predict(x)) shares their memory)."""
from __future__ import annotations

import numpy as np


def from_dlpack(x, name: str = "x") -> np.ndarray:
    """A NumPy view of a DLPack-capable CPU array `x` (no copy), or a clear error for one
    that lives on another device."""
    try:
        return np.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError, ValueError) as exc:
        device = getattr(x, "device", None)
        raise TypeError(f"{name}: a {type(x).__name__} that NumPy cannot view through DLPack "
                        f"({exc}); nnfast reads CPU arrays: move it to the CPU first "
                        f"(x.cpu() in torch){'' if device is None else f'; it is on {device}'}") from None


def as_array(x, name: str = "x") -> np.ndarray:
    """x as a NumPy array: through DLPack for another library's array, else np.asarray."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__"):
        return from_dlpack(x, name)
    return np.asarray(x)
