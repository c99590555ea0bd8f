"""nnfast.save / nnfast.load: a model, its optimizer and schedule in one .npz, without pickles.

The archive holds plain arrays (parameters, running statistics, optimizer moments) and one
uint8 array, the UTF-8 JSON header: format name and version, the architecture as layer
configs, the arrays' shapes and dtypes, the optimizer's and scheduler's settings and
counters, the epochs trained. It is read with allow_pickle=False, and written to a
temporary file in the same directory, flushed to disk, then renamed over the target, so
a crash never leaves a half-written model under the target name; the next save to that
name removes the temporary files of writers that were killed. A new file's mode follows
the umask.
"""
from __future__ import annotations

import glob
import json
import math
import os
import secrets
import struct
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from . import losses as losses_mod
from . import optim as optim_mod
from ._version import __version__
from .nn.module import Layer
from .nn.registry import declared_size, layer_from_config, layer_to_config
from .optim.schedulers import scheduler_from_config

FORMAT = "nnfast-model"
FORMAT_VERSION = 1
HEADER_KEY = "nnfast_header"
_ZIP_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """The file is not an nnfast model this version can read: what is wrong is in the message."""


def _array_spec(a: np.ndarray) -> list:
    return [list(a.shape), a.dtype.str]


def _optimizer_header(model, arrays: dict):
    opt = getattr(model, "optimizer", None)
    if opt is None or not opt.bound:
        return None
    params = model.parameters()
    if len(opt.params) != len(params) or any(a is not b for a, b in zip(opt.params, params)):
        raise ValueError("save: model.optimizer is bound to parameters other than this model's")
    keys = []
    for i, slots in enumerate(opt.slots):
        state = slots.named()
        keys.append(sorted(state))
        for key, value in state.items():
            arrays[f"optimizer.{i}.{key}"] = value
    header = {"class": type(opt).__name__, "config": opt.get_config(),
              "step_count": opt.step_count, "state_keys": keys}
    scheduler = getattr(model, "scheduler", None)
    if scheduler is not None and scheduler.optimizer is opt:
        header["scheduler"] = {"class": type(scheduler).__name__, "config": scheduler.get_config(),
                               "state": scheduler.get_state()}
    return header


def _loss_name(model):
    loss = getattr(model, "loss", None)
    if loss is None or losses_mod._BY_NAME.get(loss.name) is not type(loss):
        return None
    return loss.name


def save(model: Layer, path) -> None:
    """Write `model` (architecture, weights, buffers, optimizer and scheduler state) to `path`."""
    if not isinstance(model, Layer):
        raise TypeError(f"save: expected an nnfast model, got {type(model).__name__}")
    arrays = {}
    for i, p in enumerate(model.parameters()):
        arrays[f"param.{i}"] = p.data
    for i, b in enumerate(model.buffers()):
        arrays[f"buffer.{i}"] = b
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nnfast_version": __version__,
        "architecture": layer_to_config(model),
        "epochs_trained": int(getattr(model, "epochs_trained", 0)),
        "loss": _loss_name(model),
        "loss_config": model.loss.get_config() if _loss_name(model) else {},
        "optimizer": _optimizer_header(model, arrays),
    }
    header["arrays"] = {name: _array_spec(a) for name, a in arrays.items()}
    try:
        text = json.dumps(header)
    except TypeError as exc:  # a Dense(init=<callable>), a custom layer's config
        raise TypeError(f"save: the model's configuration is not JSON ({exc}); a layer built "
                        "with a callable (Dense(init=callable)) cannot be saved by name: build "
                        "it with a named init and set_weights() the trained weights") from None
    arrays[HEADER_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_atomically(os.fspath(path), arrays)


def _temporary_name(path: str) -> str:
    """.<name>.<pid>.<random>.tmp beside `path`: the pid tells a later save whether its
    writer still runs (_remove_stale_temporaries)."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _remove_stale_temporaries(path: str) -> None:
    """Delete the temporary files of saves to `path` whose process is gone (killed while
    writing). Only where a pid can be probed harmlessly: os.kill(pid, 0) ends a process on
    Windows."""
    if os.name != "posix":
        return
    directory, name = os.path.split(os.path.abspath(path))
    for stale in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}.*.*.tmp")):
        pid = os.path.basename(stale)[len(name) + 2:].split(".")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                os.unlink(stale)
            except OSError:  # removed meanwhile by another save, or not ours to remove
                pass
        except OSError:  # the process exists (PermissionError: another user's)
            pass


def _write_atomically(path: str, arrays: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(path)
    existing = os.stat(path).st_mode & 0o777 if os.path.exists(path) else None
    tmp = _temporary_name(path)
    # A new file gets 0o666 less the umask, as np.savez and open() give it.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if existing is not None:
            os.chmod(tmp, existing)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable; not every platform can open a directory
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# The file is untrusted until checked: every size it declares (the .npy headers, the layer
# widths, the nesting, the counters) is checked against what it holds before anything of
# that size is allocated, and any way it can be malformed is a ModelFileError.
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}
_ARRAY_KINDS = "fiub"  # what save() writes: floats, and integer counters
_MAX_COUNTER = 2 ** 62  # steps and epochs: far beyond any run, and within int64 once stepped
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                KeyError, TypeError, UnicodeDecodeError, NotImplementedError, RuntimeError,
                RecursionError, OverflowError, struct.error, zlib.error)


class _Member(NamedTuple):
    """One .npy member of the archive, from its headers alone."""
    info: zipfile.ZipInfo
    shape: tuple
    dtype: np.dtype

    def spec(self) -> list:
        return [list(self.shape), self.dtype.str]


def _member(path, archive, info, file_size) -> tuple[str, _Member]:
    name = info.filename[:-4] if info.filename.endswith(".npy") else None
    if name is None:
        raise ModelFileError(f"{path}: unexpected member {info.filename!r} in the archive")
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > file_size:
        raise ModelFileError(f"{path}: member {info.filename!r} is compressed or claims more "
                             f"bytes ({info.file_size}) than the file has; nnfast writes "
                             f"uncompressed archives")
    with archive.open(info) as f:
        reader = _NPY_HEADER_READERS.get(np.lib.format.read_magic(f))
        if reader is None:
            raise ModelFileError(f"{path}: member {info.filename!r} has an unknown .npy version")
        shape, fortran_order, dtype = reader(f)
        held = info.file_size - f.tell()
    count = math.prod(shape)
    if fortran_order or dtype.kind not in _ARRAY_KINDS or count * dtype.itemsize != held:
        raise ModelFileError(f"{path}: member {info.filename!r} declares {dtype} of shape "
                             f"{shape} but holds {held} bytes of data")
    return name, _Member(info, tuple(shape), dtype)


def _read_member(archive, member: _Member) -> np.ndarray:
    with archive.open(member.info) as f:  # the whole member: zipfile checks its CRC
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_archive(path: str):
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != _ZIP_MAGIC:
        raise ModelFileError(f"{path}: not an nnfast model file (not an .npz archive)")
    try:
        file_size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            members = dict(_member(path, archive, info, file_size) for info in archive.infolist())
            if HEADER_KEY not in members:
                raise ModelFileError(f"{path}: not an nnfast model file (an .npz archive without "
                                     f"an nnfast header)")
            header = json.loads(_read_member(archive, members.pop(HEADER_KEY)).tobytes()
                                .decode("utf-8"))
            _check_header(path, header, members)
            arrays = {name: _read_member(archive, m) for name, m in members.items()}
    except ModelFileError:
        raise
    except _READ_ERRORS as exc:
        raise ModelFileError(f"{path}: cannot read the nnfast model file, it is truncated or "
                             f"corrupted ({type(exc).__name__}: {exc})"[:1000]) from exc
    return header, arrays


def _counter(path, value, name) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNTER:
        raise ModelFileError(f"{path}: {name} must be an integer in [0, 2**62), got {value!r}"[:300])
    return value


def _check_header(path, header, members):
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an nnfast model file (header format "
                             f"{header.get('format') if isinstance(header, dict) else None!r})")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ModelFileError(
            f"{path}: nnfast model file format version {version!r} "
            f"(written by nnfast {header.get('nnfast_version', '?')}); this nnfast {__version__} "
            f"reads version {FORMAT_VERSION}" + ("; upgrade nnfast to load it" if newer else ""))
    expected = header.get("arrays", {})
    if not isinstance(expected, dict) or sorted(expected) != sorted(members):
        missing = sorted(set(expected) - set(members)) if isinstance(expected, dict) else "?"
        extra = sorted(set(members) - set(expected)) if isinstance(expected, dict) else "?"
        raise ModelFileError(f"{path}: the archive's arrays do not match its header "
                             f"(missing {missing}, unexpected {extra})"[:1000])
    for name, spec in expected.items():
        if members[name].spec() != spec:
            raise ModelFileError(f"{path}: array {name} has shape/dtype "
                                 f"{members[name].spec()}, the header says {spec}"[:1000])
    try:
        declared = declared_size(header["architecture"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the nnfast model file's architecture is invalid "
                             f"({type(exc).__name__}: {exc})"[:1000]) from exc
    stored = sum(math.prod(m.shape) for name, m in members.items()
                 if name.startswith(("param.", "buffer.")))
    if declared > stored:
        raise ModelFileError(f"{path}: the architecture declares {declared:,} weights and "
                             f"buffer elements, the file holds {stored:,}")
    _counter(path, header.get("epochs_trained", 0), "epochs_trained")
    optimizer = header.get("optimizer")
    if optimizer is not None:
        if not isinstance(optimizer, dict):
            raise ModelFileError(f"{path}: the optimizer entry must be a dict, got {optimizer!r}"[:300])
        _counter(path, optimizer.get("step_count"), "optimizer step_count")


def _copy_array(path, target, arrays, name):
    saved = arrays.get(name)
    if saved is None:
        raise ModelFileError(f"{path}: array {name} is missing")
    if saved.shape != target.shape or saved.dtype != target.dtype:
        raise ModelFileError(f"{path}: {name} has shape {saved.shape} and dtype {saved.dtype}, "
                             f"the architecture expects {target.shape} {target.dtype}")
    target[...] = saved


def _copy_all(path, targets, arrays, prefix):
    count = sum(1 for n in arrays if n.startswith(prefix))
    if count != len(targets):
        raise ModelFileError(f"{path}: {count} saved arrays '{prefix}*' for a model with {len(targets)}")
    for i, target in enumerate(targets):
        _copy_array(path, target, arrays, f"{prefix}{i}")


def _restore_optimizer(path, model, entry, arrays):
    opt = optim_mod.from_config(entry["class"], entry["config"])
    opt.bind(model.parameters())
    opt.step_count = int(entry["step_count"])
    if len(entry["state_keys"]) != len(opt.slots):
        raise ModelFileError(f"{path}: optimizer state for {len(entry['state_keys'])} parameters, "
                             f"the model has {len(opt.slots)}")
    for i, (keys, slots) in enumerate(zip(entry["state_keys"], opt.slots)):
        state = slots.named()
        if sorted(state) != keys:
            raise ModelFileError(f"{path}: optimizer state {keys} for parameter {i}, "
                                 f"{entry['class']} keeps {sorted(state)}")
        for key in keys:
            _copy_array(path, state[key], arrays, f"optimizer.{i}.{key}")
    model.optimizer = opt
    sched = entry.get("scheduler")
    if sched is not None:
        scheduler = scheduler_from_config(sched["class"], sched["config"], sched["state"])
        scheduler.optimizer = opt  # attached as saved: bind() would restart the schedule
        model.scheduler = scheduler


def load(path):
    """The model saved at `path` by nnfast.save / model.save, with its optimizer and scheduler
    (model.optimizer, model.scheduler: fit() continues them) and model.epochs_trained."""
    path = os.fspath(path)
    header, arrays = _read_archive(path)
    try:
        model = layer_from_config(header["architecture"])
        _copy_all(path, [p.data for p in model.parameters()], arrays, "param.")
        _copy_all(path, model.buffers(), arrays, "buffer.")
        model.epochs_trained = int(header.get("epochs_trained", 0))
        if header.get("loss") is not None:
            model.loss = losses_mod.get(header["loss"], header.get("loss_config"))
        if header.get("optimizer") is not None:
            _restore_optimizer(path, model, header["optimizer"], arrays)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        raise ModelFileError(f"{path}: the nnfast model file's description is invalid "
                             f"({type(exc).__name__}: {exc})"[:1000]) from exc
    return model
