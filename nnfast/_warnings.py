"""Warnings attributed to the user's line: nnfast loads its backends lazily, from many call
sites and through importlib, so no fixed stacklevel points at the caller."""
from __future__ import annotations

import importlib
import os
import sys
import warnings

_INSIDE = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
           os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep)


def _inside(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or os.path.abspath(filename).startswith(_INSIDE)


def warn_at_caller(message: str, category=RuntimeWarning) -> None:
    """warnings.warn, attributed to the first frame outside nnfast and the import machinery."""
    frame = sys._getframe(1)
    while frame.f_back is not None and _inside(frame.f_code.co_filename):
        frame = frame.f_back
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=frame.f_globals.get("__name__", "<unknown>"),
                           registry=frame.f_globals.setdefault("__warningregistry__", {}))
