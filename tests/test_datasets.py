"""The shipped data sets load offline and verify themselves; splitting and scaling."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from nnfast import datasets
from nnfast.datasets import loaders


def test_mnist_test_set_loads_and_matches_its_checksum():
    images, labels = datasets.load_mnist_test()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.max() == 9 and labels.min() == 0
    assert np.bincount(labels).min() > 800  # every digit is well represented
    assert images.max() == 255


def test_mnist_split_follows_the_project_convention():
    (X_train, y_train), (X_test, y_test) = datasets.load_mnist_split()
    assert X_train.shape == (8000, 784) and X_test.shape == (2000, 784)
    assert X_train.dtype == np.float32 and 0.0 <= X_train.min() and X_train.max() <= 1.0
    images, labels = datasets.load_mnist_test()
    np.testing.assert_array_equal(y_test, labels[8000:])


def test_corrupted_file_is_detected(tmp_path, monkeypatch):
    for name, _ in (loaders.MNIST_TEST_IMAGES, loaders.MNIST_TEST_LABELS):
        shutil.copy(loaders.DATA_DIR / name, tmp_path / name)
    path = tmp_path / loaders.MNIST_TEST_LABELS[0]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    monkeypatch.setattr(loaders, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match="md5"):
        datasets.load_mnist_test()


def test_idx_reader_round_trip_and_errors(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(header + array.tobytes()))
    np.testing.assert_array_equal(datasets.read_idx(path), array)
    with pytest.raises(datasets.IDXFormatError, match="expected 40 bytes"):
        datasets.parse_idx(header + array.tobytes()[:-4])
    with pytest.raises(datasets.IDXFormatError, match="magic"):
        datasets.parse_idx(b"\x01\x02\x08\x01" + bytes(8))
    ints = np.array([[1, -2], [300, 4]], dtype=">i4")
    header = bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") * 2
    np.testing.assert_array_equal(datasets.parse_idx(header + ints.tobytes()), ints.astype(np.int32))


def test_breast_cancer():
    X, y = datasets.load_breast_cancer()
    assert X.shape == (569, 30) and y.shape == (569,)
    assert y.sum() == 212  # malignant cases in the UCI set
    assert len(datasets.load_breast_cancer.feature_names) == 30
    np.testing.assert_allclose(X[:, 0].min(), 6.981)  # radius_mean, as in the UCI description
    np.testing.assert_allclose(X[:, 3].max(), 2501.0)


def test_stratified_split_keeps_class_proportions():
    X, y = datasets.load_breast_cancer()
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
    assert len(y_te) == 114 and len(y_tr) == 455
    assert abs(y_te.mean() - y.mean()) < 0.01 and abs(y_tr.mean() - y.mean()) < 0.01
    again = datasets.train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
    np.testing.assert_array_equal(again[3], y_te)
    rows = {tuple(r) for r in X_tr} | {tuple(r) for r in X_te}
    assert len(rows) == len({tuple(r) for r in X})


def test_standard_scaler():
    rng = np.random.default_rng(0)
    X = rng.normal(5, 3, (100, 4))
    X[:, 2] = 7.0  # a constant feature must not divide by zero
    scaler = datasets.StandardScaler().fit(X)
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z[:, [0, 1, 3]].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, [0, 1, 3]].std(axis=0), 1, atol=1e-12)
    np.testing.assert_array_equal(Z[:, 2], 0)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X)
    with pytest.raises(ValueError, match="fitted on 4 features"):
        scaler.transform(X[:, :3])


def test_synthetic_sets():
    X, y = datasets.xor()
    assert X.shape == (4, 2) and y.ravel().tolist() == [0, 1, 1, 0]
    X, y = datasets.circles(201, noise=0.0, factor=0.5, seed=1)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.5, rtol=1e-6)
    assert y.sum() == 101
