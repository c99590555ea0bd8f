"""The real data sets shipped inside the package: they load with no network."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .idx import read_idx

DATA_DIR = Path(__file__).parent / "_data"

MNIST_TEST_IMAGES = ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3")
MNIST_TEST_LABELS = ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")
# The project's convention (the 60,000-image training file is not shipped): train on the
# first 8,000 test images, evaluate on the last 2,000.
MNIST_TRAIN_SPLIT = 8000


def load_mnist_test():
    """The 10,000 MNIST test digits: (images uint8 (10000, 28, 28), labels uint8 (10000,))."""
    images = read_idx(DATA_DIR / MNIST_TEST_IMAGES[0], md5=MNIST_TEST_IMAGES[1])
    labels = read_idx(DATA_DIR / MNIST_TEST_LABELS[0], md5=MNIST_TEST_LABELS[1])
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise ValueError(f"MNIST files have unexpected shapes {images.shape}, {labels.shape}")
    return images, labels


def load_mnist_split(dtype=np.float32):
    """MNIST as the project trains on it: ((X_train, y_train), (X_test, y_test)) with pixels
    scaled to [0, 1], flattened to 784 features, labels int64; 8,000 train, 2,000 test."""
    images, labels = load_mnist_test()
    X = (images.reshape(len(images), -1) / 255.0).astype(dtype)
    y = labels.astype(np.int64)
    k = MNIST_TRAIN_SPLIT
    return (X[:k], y[:k]), (X[k:], y[k:])


def load_breast_cancer():
    """The UCI Wisconsin Diagnostic Breast Cancer set: X float64 (569, 30), y int64 (569,)
    with 1 = malignant, 0 = benign. Feature names: `load_breast_cancer.feature_names`."""
    with open(DATA_DIR / "wdbc.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    X = np.array([[float(v) for v in row[1:]] for row in body], dtype=np.float64)
    y = np.array([1 if row[0] == "M" else 0 for row in body], dtype=np.int64)
    if X.shape != (569, 30):
        raise ValueError(f"wdbc.csv has unexpected shape {X.shape}")
    load_breast_cancer.feature_names = header[1:]
    return X, y
