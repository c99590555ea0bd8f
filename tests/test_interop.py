"""DLPack: torch tensors (or any __dlpack__ array) into predict/fit without a copy, NumPy
arrays out that torch takes without a copy."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import nn
from nnfast.train import check_inputs

torch = pytest.importorskip("torch")


def model():
    return nn.Sequential(nn.Dense(4, 8, seed=0), nn.ReLU(), nn.Dense(8, 3, seed=1))


def test_from_dlpack_views_a_cpu_tensor():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    a = nnfast.from_dlpack(t)
    assert isinstance(a, np.ndarray) and a.shape == (3, 4)
    t[0, 0] = 42.0
    assert a[0, 0] == 42.0  # the same memory


def test_predict_takes_a_tensor_without_copying_it(backend):
    m = model()
    t = torch.randn(5, 4)
    assert np.shares_memory(check_inputs(m, t), nnfast.from_dlpack(t))
    out = m.predict(t)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, m.predict(t.numpy()))
    back = torch.from_dlpack(out)  # and NumPy's result goes back without a copy
    assert back.data_ptr() == out.ctypes.data


def test_fit_and_evaluate_take_tensors(backend):
    m = model()
    X, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    m.fit(X, y, loss="cross_entropy", epochs=1, batch_size=8, verbose=0)
    assert set(m.evaluate(X, y)) == {"loss", "accuracy"}


def test_a_tensor_numpy_cannot_view_gets_a_clear_error():
    class OnGpu:
        device = "cuda:0"

        def __dlpack__(self, **kwargs):
            raise BufferError("unsupported device")

        def __dlpack_device__(self):
            return (2, 0)

    with pytest.raises(TypeError, match="X: a OnGpu that NumPy cannot view.*move it to the CPU.*cuda:0"):
        model().predict(OnGpu())
