"""Skip, with the backend's own reason, a test that needs a primitive a backend lacks yet."""
from __future__ import annotations

import contextlib

import pytest


@contextlib.contextmanager
def skip_if_unimplemented():
    """Turn the contract's NotImplementedError ("the 'x' backend does not implement y()") into
    a skip; any other error, NotImplementedError included, fails the test."""
    try:
        yield
    except NotImplementedError as exc:
        if "does not implement" not in str(exc):
            raise
        pytest.skip(str(exc))
