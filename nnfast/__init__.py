"""nnfast: train neural networks from Python with compiled kernels.

    import nnfast as nf
    from nnfast import nn, optim
    model = nn.Sequential(nn.Dense(784, 128), nn.ReLU(), nn.Dense(128, 10))
    model.fit(X, y, loss="cross_entropy", optimizer=optim.Adam(lr=1e-3), epochs=5)

Backends: "cpp" (compiled, default), "numba" (fallback), "numpy" (reference), "cuda".
"""
from . import data, datasets, losses, metrics, nn, optim, threshold
from ._info import info
from ._version import __version__
from ._warmup import warmup
from .backends import (BackendUnavailableError, available_backends, backend, get_backend,
                       get_num_threads, set_backend, set_num_threads)
from .callbacks import Callback, EarlyStopping, ModelCheckpoint, TerminateOnNaN
from .history import History
from .interop import from_dlpack
from .saving import ModelFileError, load, save
from .seeding import manual_seed
from . import device as _device, saving as _saving, train as _train

nn.sequential.provide_training_api(nn.sequential.TrainingAPI(
    fit=_train.fit, evaluate=_train.evaluate, predict=_train.predict,
    predict_proba=_train.predict_proba, predict_classes=_train.predict_classes, save=_saving.save,
    to=_device.to, device_of=_device.device_of))

__all__ = ["nn", "optim", "losses", "metrics", "threshold", "data", "datasets", "manual_seed",
           "from_dlpack", "info", "backend", "get_backend", "set_backend",
           "available_backends", "set_num_threads", "get_num_threads", "BackendUnavailableError",
           "Callback", "EarlyStopping", "ModelCheckpoint", "TerminateOnNaN", "History", "save", "load",
           "ModelFileError", "warmup", "__version__"]
