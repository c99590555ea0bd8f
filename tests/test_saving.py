"""nnfast.save / nnfast.load: exact round trips, exact resumption, atomic writes, and clear
errors for files that are not nnfast models."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import nnfast
from nnfast import nn, optim
from nnfast.saving import FORMAT_VERSION, HEADER_KEY, ModelFileError
from unimplemented import skip_if_unimplemented


def every_layer_model(dtype=np.float32):
    return nn.Sequential(
        nn.Dense(6, 16, seed=0, dtype=dtype, l2=1e-3), nn.BatchNorm1d(16, momentum=0.2, dtype=dtype),
        nn.LeakyReLU(0.1), nn.Dropout(0.2, seed=7),
        nn.Residual(nn.Sequential(nn.Dense(16, 16, seed=1, dtype=dtype, l1=1e-4), nn.GELU(approximate="tanh"),
                                  nn.BatchNorm1d(16, affine=False, dtype=dtype), nn.ELU(0.7))),
        nn.Tanh(), nn.Dense(16, 8, init="xavier", seed=2, dtype=dtype), nn.SiLU(),
        nn.Dense(8, 3, seed=3, dtype=dtype))


def task(rng, n=96):
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


def test_round_trip_keeps_architecture_weights_buffers_and_state(backend, rng, tmp_path):
    X, y = task(rng)
    model = every_layer_model()
    with skip_if_unimplemented():
        model.fit(X, y, optimizer=optim.AdamW(lr=1e-2, clipnorm=1.0), scheduler=optim.StepLR(1, 0.5),
                  epochs=2, batch_size=16, verbose=0, seed=0)
    model.save(tmp_path / "model.npz")
    loaded = nnfast.load(tmp_path / "model.npz")
    assert repr(loaded) == repr(model)
    for a, b in zip(loaded.parameters() + [o for o in loaded.buffers()],
                    model.parameters() + [o for o in model.buffers()]):
        np.testing.assert_array_equal(getattr(a, "data", a), getattr(b, "data", b))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded[3].offset == model[3].offset and loaded[3].seed == 7
    assert loaded.epochs_trained == 2 and loaded.loss.name == "cross_entropy"
    assert type(loaded.optimizer) is optim.AdamW and loaded.optimizer.step_count == model.optimizer.step_count
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert type(loaded.scheduler) is optim.StepLR and loaded.scheduler.epoch == 2
    # Plain NumPy reads it without pickles; the header is JSON.
    with np.load(tmp_path / "model.npz", allow_pickle=False) as archive:
        header = json.loads(archive[HEADER_KEY].tobytes())
    assert header["format"] == "nnfast-model" and header["format_version"] == FORMAT_VERSION


OPTIMIZERS = {
    "sgd_nesterov": lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam_clipvalue": lambda: optim.Adam(lr=1e-2, clipvalue=0.5),
    "adamw_cosine": lambda: optim.AdamW(lr=1e-2),
}


def dense_only_model(dtype=np.float32):
    """Dense and activations only: the cpp backend trains it with its fused step."""
    return nn.Sequential(nn.Dense(6, 16, seed=0, dtype=dtype), nn.ReLU(), nn.Dense(16, 3, seed=1, dtype=dtype))


@pytest.mark.parametrize("build", [every_layer_model, dense_only_model], ids=["every_layer", "dense_only"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_train_save_load_resume_equals_one_run_bitwise(backend, rng, tmp_path, name, build):
    """2 epochs, save, load, 1 more epoch == 3 epochs in one run, to the last bit (shuffling,
    dropout masks, batch statistics, optimizer moments and schedule all resume)."""
    X, y = task(rng)
    X_val, y_val = task(rng, 32)

    def scheduler():
        return optim.CosineAnnealingLR(3) if name == "adamw_cosine" else optim.ReduceLROnPlateau(patience=0, factor=0.5)

    options = dict(batch_size=16, verbose=0, seed=3, validation_data=(X_val, y_val))
    straight = build()
    with skip_if_unimplemented():
        full = straight.fit(X, y, optimizer=OPTIMIZERS[name](), scheduler=scheduler(), epochs=3, **options)
    first = build()
    first.fit(X, y, optimizer=OPTIMIZERS[name](), scheduler=scheduler(), epochs=2, **options)
    first.save(tmp_path / "two_epochs.npz")
    resumed = nnfast.load(tmp_path / "two_epochs.npz")
    last = resumed.fit(X, y, epochs=1, **options)
    assert last.epoch == [2]
    assert last["loss"][0] == full["loss"][2] and last["lr"][0] == full["lr"][2]
    for a, b in zip(resumed.parameters(), straight.parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    for a, b in zip(resumed.buffers(), straight.buffers()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(resumed.optimizer.slots, straight.optimizer.slots):
        for key, value in a.named().items():
            np.testing.assert_array_equal(value, b.named()[key])


def test_save_is_atomic_and_leaves_no_temporary_files(backend, rng, tmp_path):
    path = tmp_path / "model.npz"
    model = every_layer_model()
    model.save(path)
    before = path.read_bytes()

    class Unsaveable(nn.ReLU):
        pass

    with pytest.raises(TypeError, match="not registered"):
        nn.Sequential(nn.Dense(6, 3), Unsaveable()).save(path)
    assert path.read_bytes() == before  # the failed save left the old model in place
    model[0].weight_param.data += 1
    model.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(nnfast.load(path)[0].weight, model[0].weight)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.npz"
    every_layer_model().save(path)
    return path


def test_load_rejects_a_file_that_is_not_an_nnfast_model(tmp_path, saved):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="not an nnfast model file"):
        nnfast.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(ModelFileError, match="without an nnfast header"):
        nnfast.load(other)
    with pytest.raises(FileNotFoundError):
        nnfast.load(tmp_path / "missing.npz")


def test_load_rejects_truncated_and_corrupted_files(tmp_path, saved):
    data = saved.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="truncated or corrupted"):
            nnfast.load(truncated)
    # Flip a byte inside each stored array: the archive's CRC-32 catches it.
    with zipfile.ZipFile(saved) as archive:
        members = [(info.header_offset + 30 + len(info.filename) + len(info.extra), info.file_size)
                   for info in archive.infolist()]
    for start, size in members:
        corrupted = bytearray(data)
        corrupted[start + size - 5] ^= 0x40
        path = tmp_path / "corrupted.npz"
        path.write_bytes(bytes(corrupted))
        with pytest.raises(ModelFileError, match="truncated or corrupted|not an nnfast"):
            nnfast.load(path)


def _rewrite_header(src, dst, change):
    with np.load(src, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    header = json.loads(arrays[HEADER_KEY].tobytes())
    change(header)
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(dst, **arrays)


@pytest.mark.parametrize("change,match", [
    (lambda h: h.update(format_version=FORMAT_VERSION + 1), r"format version 2 .*upgrade nnfast"),
    (lambda h: h.update(format_version=0), "format version 0"),
    (lambda h: h.update(format="keras"), "not an nnfast model file"),
    (lambda h: h["architecture"]["config"]["layers"][0].update({"class": "Conv2d"}), "unknown layer class 'Conv2d'"),
    (lambda h: h["architecture"]["config"]["layers"][0]["config"].update(out_features=17),
     "the architecture declares 650 weights and buffer elements, the file holds 643"),
    (lambda h: h["arrays"].pop("param.0"), "do not match its header"),
])
def test_load_rejects_wrong_versions_and_inconsistent_files(tmp_path, saved, change, match):
    path = tmp_path / "changed.npz"
    _rewrite_header(saved, path, change)
    with pytest.raises(ModelFileError, match=match):
        nnfast.load(path)
